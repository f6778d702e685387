//! Preemption at PostFilter with kube-scheduler's `DefaultPreemption` semantics
//! (<https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/>,
//! `pkg/scheduler/framework/preemption` and `plugins/defaultpreemption` of
//! kubernetes/kubernetes).
//!
//! When no node fits a pod:
//! 1. A pod whose `preemptionPolicy` is `Never` preempts nothing.
//! 2. Candidate nodes are those whose status in the diagnosis is `Unschedulable`; a node
//!    rejected as `UnschedulableAndUnresolvable` (taints, affinity, a throttle) is one
//!    where removing pods cannot help.
//! 3. On each candidate, every pod of lower priority is removed from a scratch copy of
//!    the node; if the pod still does not pass the profile's filters there, the node is
//!    no candidate. Otherwise the removed pods are added back one by one, most important
//!    first (higher priority, then placed earlier), and each one the pod still fits
//!    beside is reprieved; the rest are the node's victims. (PodDisruptionBudgets are not
//!    modelled, so no victim violates one.)
//! 4. Among the candidates, the node is chosen by kube's order: the lowest highest
//!    victim priority; then the smallest sum of victim priorities (each shifted by
//!    2^31 so that negative priorities count); then the fewest victims; then the latest
//!    placed among each node's highest-priority victims; then node order.
//!
//! **Fair share among equal priorities** ([`DefaultPreemption::with_fair_share`]): each
//! tenant's weighted dominant resource share (DRF, Ghodsi et al., NSDI 2011: the largest
//! of its shares of the cluster's CPU, GPU compute and GPU memory, divided by its
//! weight) orders the reprieve among victims of equal priority: the tenant with the
//! smaller weighted share is reprieved first, so victims come from the tenant furthest
//! above its fair share. Reclaim across tenants of equal priority is not here yet.
//!
//! The result is a [`Nomination`]: the node and its victims. The caller evicts the
//! victims (the simulator after their grace time, the Kubernetes scheduler through the
//! API) and schedules the pod again. Every candidate node is evaluated (kube samples a
//! share of them to bound the work; here the answer is the same for every run).

use std::collections::BTreeMap;

use mlplane_model::{PodId, PreemptionPolicy};

use crate::framework::{CycleState, Diagnosis, FilterRunner, Nomination, Plugin, PostFilterPlugin};
use crate::state::{ClusterState, NodeId, NodeInfo};
use crate::status::{Code, Status};

use mlplane_model::Pod;

/// kube's reason for a node where removing pods would not help.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// kube's reason for a node where even removing every lower-priority pod does not help.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The `DefaultPreemption` PostFilter plugin (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct DefaultPreemption {
    /// Tenant weights for the fair-share victim order; `None`: kube's order only.
    weights: Option<std::sync::Arc<BTreeMap<String, f64>>>,
}

impl DefaultPreemption {
    /// kube's DefaultPreemption.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the fair-share victim order; tenants missing from `weights` weigh 1, and
    /// pods without a tenant count as one tenant of weight 1.
    pub fn with_fair_share(weights: BTreeMap<String, f64>) -> Self {
        DefaultPreemption {
            weights: Some(std::sync::Arc::new(weights)),
        }
    }
}

/// Arguments of the `DefaultPreemption` plugin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreemptionArgs {
    /// Order victims of equal priority by their tenants' weighted shares.
    pub fair_share: bool,
    /// Tenant weights (missing tenants weigh 1).
    pub tenant_weights: BTreeMap<String, f64>,
}

/// Each tenant's weighted dominant resource share over `state`: the largest of its
/// shares of the cluster's CPU, GPU compute and GPU memory, divided by its weight
/// (missing tenants weigh 1). Pods without a tenant are the tenant `""`.
pub fn weighted_shares(
    state: &ClusterState,
    weights: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let cluster = state.cluster();
    let total_cpu: u64 = cluster.nodes().iter().map(|n| n.cpu_milli).sum();
    let total_compute: u64 = cluster
        .nodes()
        .iter()
        .flat_map(|n| &n.devices)
        .map(|d| u64::from(d.compute_milli))
        .sum();
    let total_mem = cluster.gpu_memory_mib();
    let mut used: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for i in 0..state.len() {
        for b in state.pods_on(NodeId(i as u32)) {
            let e = used
                .entry(b.pod.tenant.clone().unwrap_or_default())
                .or_default();
            e.0 += b.pod.cpu_milli;
            for g in &b.placement.grants {
                e.1 += u64::from(g.compute_milli);
                e.2 += g.memory_mib;
            }
        }
    }
    let frac = |a: u64, t: u64| if t == 0 { 0.0 } else { a as f64 / t as f64 };
    used.into_iter()
        .map(|(t, (cpu, comp, mem))| {
            let dominant = frac(cpu, total_cpu)
                .max(frac(comp, total_compute))
                .max(frac(mem, total_mem));
            let w = weights.get(&t).copied().filter(|w| *w > 0.0).unwrap_or(1.0);
            (t, dominant / w)
        })
        .collect()
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        "DefaultPreemption"
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

/// One candidate: a node and the victims it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    node: NodeId,
    /// (priority, placement order, id), most important first.
    victims: Vec<(i32, u64, PodId)>,
}

impl Candidate {
    /// kube's `pickOneNodeForPreemption` key, smaller is better.
    fn key(&self) -> (i64, i64, usize, std::cmp::Reverse<u64>) {
        let highest = self.victims.iter().map(|v| v.0).max().unwrap_or(i32::MIN);
        let sum: i64 = self
            .victims
            .iter()
            .map(|v| i64::from(v.0) + (1i64 << 31))
            .sum();
        // The earliest placed among the highest-priority victims; the node where that
        // is latest wins.
        let earliest = self
            .victims
            .iter()
            .filter(|v| v.0 == highest)
            .map(|v| v.1)
            .min()
            .unwrap_or(u64::MAX);
        (
            i64::from(highest),
            sum,
            self.victims.len(),
            std::cmp::Reverse(earliest),
        )
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        _: &CycleState,
        state: &ClusterState,
        pod: &Pod,
        diagnosis: &Diagnosis,
        filters: &FilterRunner<'_>,
    ) -> Result<Option<Nomination>, Status> {
        if pod.preemption_policy == PreemptionPolicy::Never {
            return Err(Status::unschedulable(
                self.name(),
                "preemption: not eligible due to preemptionPolicy=Never.",
            ));
        }
        let shares = self.weights.as_ref().map(|w| weighted_shares(state, w));
        let mut candidates = Vec::new();
        let (mut not_helpful, mut no_victims) = (0usize, 0usize);
        for (id, status) in &diagnosis.statuses {
            if status.code != Code::Unschedulable {
                not_helpful += 1;
                continue;
            }
            match victims_on(state, *id, pod, filters, shares.as_ref()) {
                Some(v) => candidates.push(Candidate {
                    node: *id,
                    victims: v,
                }),
                None => no_victims += 1,
            }
        }
        let best = candidates.iter().min_by_key(|c| (c.key(), c.node)).cloned();
        match best {
            Some(c) => Ok(Some(Nomination {
                node: c.node,
                victims: c.victims.iter().map(|v| v.2).collect(),
            })),
            None => {
                // kube's message: the sorted histogram of why preemption failed.
                let mut parts: Vec<String> = [(no_victims, NO_VICTIMS), (not_helpful, NOT_HELPFUL)]
                    .into_iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, r)| format!("{n} {r}"))
                    .collect();
                parts.sort();
                Err(Status::unschedulable(
                    self.name(),
                    format!(
                        "preemption: 0/{} nodes are available: {}.",
                        diagnosis.nodes,
                        parts.join(", ")
                    ),
                ))
            }
        }
    }
}

/// The victims `pod` needs on `node` (most important first), or `None` if removing
/// every lower-priority pod does not make it fit.
fn victims_on(
    state: &ClusterState,
    node: NodeId,
    pod: &Pod,
    filters: &FilterRunner<'_>,
    shares: Option<&BTreeMap<String, f64>>,
) -> Option<Vec<(i32, u64, PodId)>> {
    let info = state.node(node);
    let mut scratch = info.state.clone();
    let mut lower: Vec<(i32, u64, PodId)> = state
        .pods_on(node)
        .filter(|b| b.pod.priority < pod.priority)
        .map(|b| (b.pod.priority, b.seq, b.pod.id))
        .collect();
    if lower.is_empty() {
        return None;
    }
    for &(_, _, id) in &lower {
        let b = state.bound(id).expect("pods_on lists bound pods");
        scratch.give_back(info.node, &b.pod, &b.placement);
    }
    let fits = |s: &crate::state::NodeState| {
        filters(&NodeInfo {
            id: node,
            node: info.node,
            state: s,
        })
        .is_ok()
    };
    if !fits(&scratch) {
        return None;
    }
    // Most important first: higher priority, then (with fair share) the tenant with the
    // smaller weighted share, then placed earlier.
    let share = |id: PodId| {
        shares.map_or(0.0, |s| {
            let t = state
                .bound(id)
                .and_then(|b| b.pod.tenant.clone())
                .unwrap_or_default();
            s.get(&t).copied().unwrap_or(0.0)
        })
    };
    lower.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(share(a.2).total_cmp(&share(b.2)))
            .then(a.1.cmp(&b.1))
    });
    let mut victims = Vec::new();
    for v in lower {
        let b = state.bound(v.2).expect("bound");
        scratch.take(info.node, &b.pod, &b.placement);
        if !fits(&scratch) {
            scratch.give_back(info.node, &b.pod, &b.placement);
            victims.push(v);
        }
    }
    Some(victims)
}

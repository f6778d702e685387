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
//! The result is a [`Nomination`]: the node and its victims. The caller evicts the
//! victims (the simulator after their grace time, the Kubernetes scheduler through the
//! API) and schedules the pod again. Every candidate node is evaluated (kube samples a
//! share of them to bound the work; here the answer is the same for every run).

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
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPreemption;

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
        let mut candidates = Vec::new();
        let (mut not_helpful, mut no_victims) = (0usize, 0usize);
        for (id, status) in &diagnosis.statuses {
            if status.code != Code::Unschedulable {
                not_helpful += 1;
                continue;
            }
            match victims_on(state, *id, pod, filters) {
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
    // Most important first: higher priority, then placed earlier.
    lower.sort_by_key(|&(p, seq, _)| (std::cmp::Reverse(p), seq));
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

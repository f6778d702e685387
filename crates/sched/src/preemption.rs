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
//! **Fair share** ([`DefaultPreemption::with_fair_share`]). A tenant's share is its
//! weighted dominant resource share (DRF, Ghodsi et al., NSDI 2011): the largest of its
//! shares of the cluster's CPU, GPU compute and GPU memory, divided by its weight.
//! - *Victim order.* Among victims of equal priority, the tenant with the smaller share is
//!   reprieved first, so victims come from the tenant furthest above its fair share.
//! - *Reclaim* (on with fair share, off with [`DefaultPreemption::without_reclaim`]): a
//!   pod of tenant A may also preempt pods of its own priority from another tenant B, if
//!   the preemption raises A's share, `s_A < s_A'`, and leaves it at most B's,
//!   `s_A' ≤ s_B'` (Kueue's `LessThanOrEqualToFinalShare`). `s_A'` counts the preemptor
//!   (at the charge its request has on the node's devices) and A's own lower-priority
//!   victims leaving; `s_B'` counts all of B's victims on the node leaving. Each such pod
//!   is admitted as a potential victim only if the rule holds for it alone, and the node
//!   is dropped if the rule fails for the final victim set. The first condition matters:
//!   without it a pod that does not move its tenant's dominant share (a CPU-only pod of a
//!   tenant whose dominant resource is GPUs) could reclaim from an equal tenant, which
//!   could then reclaim back at once, for ever (`s_A = s_B` both times).
//!
//! *Why reclaim cannot loop.* Take a fixed set of pods (no arrivals or departures) and
//! the vector of tenant shares sorted in increasing order. A reclaim by A from B has
//! `s_A < s_A' ≤ s_B' ≤ s_B` (B only loses pods), and every other tenant's share is
//! unchanged. The values below `s_A` are unchanged; the old vector holds `s_A` once more
//! than the new one at the first position where they differ, where the new one holds
//! something larger (`s_A'`, `s_B'` and the others there all exceed `s_A`). So the
//! sorted vector strictly increases in lexicographic order. There are finitely many
//! placements of a fixed set of pods, so no sequence of reclaims returns to an earlier
//! state; in particular, right after A reclaims from B, B cannot reclaim from A (that
//! would need `s_B'' ≤ s_A''` with `s_B'' > s_B' ≥ s_A' > s_A''`). Preemption of lower
//! priorities cannot loop either: a victim never has a higher priority than its
//! preemptor.
//!
//! The result is a [`Nomination`]: the node and its victims. The caller evicts the
//! victims (the simulator after their grace time, the Kubernetes scheduler through the
//! API) and schedules the pod again. Every candidate node is evaluated (kube samples a
//! share of them to bound the work; here the answer is the same for every run).

use std::collections::BTreeMap;

use mlplane_model::{PodId, PreemptionPolicy};

use crate::framework::{CycleState, Diagnosis, FilterRunner, Nomination, Plugin, PostFilterPlugin};
use crate::state::{charge, Bound, ClusterState, NodeId, NodeInfo};
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
    /// Reclaim from other tenants at equal priority (with fair share only).
    reclaim: bool,
    /// The reclaim window, if any (see [`DefaultPreemption::with_reclaim_window`]).
    window: Option<std::sync::Arc<ReclaimWindow>>,
}

/// When each tenant last reclaimed from each other tenant.
#[derive(Debug)]
struct ReclaimWindow {
    seconds: u64,
    clock: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// (reclaiming tenant, victim tenant) -> time of the last nomination, seconds.
    last: std::sync::Mutex<BTreeMap<(String, String), u64>>,
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
            reclaim: true,
            window: None,
        }
    }

    /// This plugin without reclaim: fair share orders victims only.
    pub fn without_reclaim(mut self) -> Self {
        self.reclaim = false;
        self
    }

    /// Reclaim with a window of `seconds`: after tenant A reclaims from tenant B (this
    /// plugin nominates a node with B's pods of A's priority among the victims), B may
    /// not reclaim from A for `seconds`. Without it, two tenants near equal shares trade
    /// pods at every departure (each trade within the share rule, none of them useful: a
    /// victim restarts from the beginning). Time is read from [`Self::clock`], which the
    /// caller sets to the current time in seconds (the simulator's clock, or the wall
    /// clock).
    pub fn with_reclaim_window(mut self, seconds: u64) -> Self {
        self.window = Some(std::sync::Arc::new(ReclaimWindow {
            seconds,
            clock: std::sync::Arc::default(),
            last: std::sync::Mutex::default(),
        }));
        self
    }

    /// The clock of the reclaim window, seconds; `None` without a window.
    pub fn clock(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        self.window.as_ref().map(|w| w.clock.clone())
    }

    /// True if `victim`'s tenant reclaimed from `by` within the window.
    fn held_back(&self, by: &str, victim: &str) -> bool {
        let Some(w) = &self.window else {
            return false;
        };
        let now = w.clock.load(std::sync::atomic::Ordering::Relaxed);
        let last = w.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(&(victim.to_string(), by.to_string()))
            .is_some_and(|&t| now < t.saturating_add(w.seconds))
    }
}

/// Arguments of the `DefaultPreemption` plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct PreemptionArgs {
    /// Order victims of equal priority by their tenants' weighted shares (default off:
    /// kube's order).
    pub fair_share: bool,
    /// With fair share, reclaim from other tenants at equal priority (default on).
    pub reclaim: bool,
    /// Tenant weights (missing tenants weigh 1).
    pub tenant_weights: BTreeMap<String, f64>,
}

impl Default for PreemptionArgs {
    fn default() -> Self {
        PreemptionArgs {
            fair_share: false,
            reclaim: true,
            tenant_weights: BTreeMap::new(),
        }
    }
}

/// Tenants' usage of the cluster, for weighted dominant shares: CPU (millicores), GPU
/// compute (milli-GPU) and GPU memory (MiB), summed over placed pods by tenant (pods
/// without a tenant are the tenant `""`).
#[derive(Clone, Debug, PartialEq)]
pub struct Shares {
    totals: [u64; 3],
    used: BTreeMap<String, [u64; 3]>,
    weights: BTreeMap<String, f64>,
}

fn held(b: &Bound) -> [u64; 3] {
    b.held()
}

/// What `pod` would hold on `node`: its CPU, and its GPU request at the charge of the
/// first device of the node that can serve it, times the devices asked.
fn would_hold(pod: &Pod, node: &mlplane_model::Node) -> [u64; 3] {
    let count = pod.gpu.gpu_count();
    let multi = count > 1;
    let per = node
        .devices
        .iter()
        .find_map(|d| charge(d, pod.gpu, multi))
        .unwrap_or((0, 0));
    [
        pod.cpu_milli,
        u64::from(per.1) * u64::from(count),
        per.0 * u64::from(count),
    ]
}

fn tenant(p: &Pod) -> String {
    p.tenant.clone().unwrap_or_default()
}

impl Shares {
    /// The usage of `state`; tenants missing from `weights` weigh 1.
    pub fn of(state: &ClusterState, weights: &BTreeMap<String, f64>) -> Self {
        let cluster = state.cluster();
        let totals = [
            cluster.nodes().iter().map(|n| n.cpu_milli).sum(),
            cluster
                .nodes()
                .iter()
                .flat_map(|n| &n.devices)
                .map(|d| u64::from(d.compute_milli))
                .sum(),
            cluster.gpu_memory_mib(),
        ];
        let mut used: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for i in 0..state.len() {
            for b in state.pods_on(NodeId(i as u32)) {
                let e = used.entry(tenant(&b.pod)).or_default();
                for (x, y) in e.iter_mut().zip(held(b)) {
                    *x += y;
                }
            }
        }
        Shares {
            totals,
            used,
            weights: weights.clone(),
        }
    }

    /// Tenant `t`'s weighted dominant share with `delta` added to its usage (negative:
    /// pods leaving).
    pub fn share(&self, t: &str, delta: [i64; 3]) -> f64 {
        let u = self.used.get(t).copied().unwrap_or_default();
        let dominant = (0..3)
            .map(|k| {
                let used = (u[k] as i64 + delta[k]).max(0) as f64;
                if self.totals[k] == 0 {
                    0.0
                } else {
                    used / self.totals[k] as f64
                }
            })
            .fold(0.0, f64::max);
        let w = self
            .weights
            .get(t)
            .copied()
            .filter(|w| *w > 0.0)
            .unwrap_or(1.0);
        dominant / w
    }

    /// Every tenant with placed pods and its weighted dominant share.
    pub fn all(&self) -> BTreeMap<String, f64> {
        self.used
            .keys()
            .map(|t| (t.clone(), self.share(t, [0; 3])))
            .collect()
    }
}

/// Each tenant's weighted dominant resource share over `state` ([`Shares::all`]).
pub fn weighted_shares(
    state: &ClusterState,
    weights: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    Shares::of(state, weights).all()
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
        let shares = self.weights.as_ref().map(|w| Shares::of(state, w));
        let mut candidates = Vec::new();
        let (mut not_helpful, mut no_victims) = (0usize, 0usize);
        for (id, status) in &diagnosis.statuses {
            if status.code != Code::Unschedulable {
                not_helpful += 1;
                continue;
            }
            let held_back = |victim: &str| self.held_back(&tenant(pod), victim);
            match victims_on(
                state,
                *id,
                pod,
                filters,
                shares.as_ref(),
                self.reclaim,
                &held_back,
            ) {
                Some(v) => candidates.push(Candidate {
                    node: *id,
                    victims: v,
                }),
                None => no_victims += 1,
            }
        }
        let best = candidates.iter().min_by_key(|c| (c.key(), c.node)).cloned();
        match best {
            Some(c) => {
                if let Some(w) = &self.window {
                    let now = w.clock.load(std::sync::atomic::Ordering::Relaxed);
                    let a = tenant(pod);
                    let mut last = w.last.lock().unwrap_or_else(|e| e.into_inner());
                    for v in &c.victims {
                        let t = tenant(&state.bound(v.2).expect("bound").pod);
                        if v.0 == pod.priority && t != a {
                            last.insert((a.clone(), t), now);
                        }
                    }
                }
                Ok(Some(Nomination {
                    node: c.node,
                    victims: c.victims.iter().map(|v| v.2).collect(),
                }))
            }
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
    shares: Option<&Shares>,
    reclaim: bool,
    held_back: &dyn Fn(&str) -> bool,
) -> Option<Vec<(i32, u64, PodId)>> {
    let info = state.node(node);
    let mut scratch = info.state.clone();
    let a = tenant(pod);
    let gain = would_hold(pod, info.node).map(|x| x as i64);
    let neg = |h: [u64; 3]| h.map(|x| -(x as i64));
    // Lower priorities, and with reclaim the pods of this priority of other tenants
    // for which the rule holds alone.
    let reclaimable = |b: &Bound| {
        let Some(s) = shares.filter(|_| reclaim) else {
            return false;
        };
        b.pod.priority == pod.priority
            && tenant(&b.pod) != a
            && !held_back(&tenant(&b.pod))
            && s.share(&a, gain) > s.share(&a, [0; 3])
            && s.share(&a, gain) <= s.share(&tenant(&b.pod), neg(held(b)))
    };
    let mut lower: Vec<(i32, u64, PodId)> = state
        .pods_on(node)
        .filter(|b| b.pod.priority < pod.priority || reclaimable(b))
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
            s.share(&t, [0; 3])
        })
    };
    lower.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then(share(x.2).total_cmp(&share(y.2)))
            .then(x.1.cmp(&y.1))
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
    // The reclaim rule for the final victim set: A's share after (the preemptor in, A's
    // own victims out) at most each reclaimed tenant's share after (all its victims out).
    if let Some(s) = shares.filter(|_| reclaim) {
        let mut delta: BTreeMap<String, [i64; 3]> = BTreeMap::new();
        delta.insert(a.clone(), gain);
        for &(_, _, id) in &victims {
            let b = state.bound(id).expect("bound");
            let d = delta.entry(tenant(&b.pod)).or_default();
            for (x, y) in d.iter_mut().zip(neg(held(b))) {
                *x += y;
            }
        }
        let s_a = s.share(&a, delta[&a]);
        let raises = s_a > s.share(&a, [0; 3]);
        let breaks = victims.iter().any(|&(p, _, id)| {
            let t = tenant(&state.bound(id).expect("bound").pod);
            p == pod.priority && (!raises || s_a > s.share(&t, delta[&t]))
        });
        if breaks {
            return None;
        }
    }
    Some(victims)
}

//! The replay simulator: a trace replayed in time order, with departures, priorities,
//! preemption, fair share across tenants and throttles, all on the one scheduling core
//! (`mlplane-sched`). Time is simulated by an event queue; nothing sleeps.
//!
//! **Workload** ([`Workload::from_trace`]). Each pod of Alibaba's v2023 pod list is a
//! [`Job`]:
//! - it arrives at `creation_time / speedup` (the speedup compresses arrivals only, so
//!   a speedup of K offers K times the trace's load; the default trace uses about 1% of
//!   its cluster's GPUs at its own pace, see `docs/scheduling.md`);
//! - once placed it runs `deletion_time - scheduled_time` seconds, or to the end of the
//!   replay if the trace records no deletion;
//! - a pod the trace never scheduled (phase `Pending`) is deleted
//!   `deletion_time - creation_time` seconds after it arrives, waiting or running (its
//!   user gave up then);
//! - its priority class: CPU-only pods `low-cpu` (50); `qos` `LS` or `Guaranteed` `high`
//!   (1000); `BE`, `Burstable` or anything else `low` (100); every class preempts lower
//!   priorities ([`default_classes`]);
//! - its tenant: drawn among the configured tenants in proportion to their demands
//!   ([`Tenant::demand`]) from stream 3 of the seed ([`crate::experiment::stream`]), in
//!   file order; the namespace is the tenant's name
//!   and the pod carries the label `mlplane.io/priority-class` with its class.
//!
//! **Events.** Arrivals, departures, victims' evictions (a preemption victim leaves
//! `grace_s` after it is chosen, then is restarted from the beginning as a new pod of
//! the same job, created at its eviction), withdrawals, the queue's backoff expiries
//! and its 5-minute flush. After the events of an instant, pods are popped from the
//! [`SchedulingQueue`] and scheduled until none is active. A pod that does not fit waits
//! in the unschedulable set; a departure or eviction on node N moves only the waiting
//! pods that pass the filters on N (a queueing hint); a new nomination's victims are
//! marked terminating and the preemptor is nominated to the node, which pods of lower
//! or equal priority then leave to it ([`ClusterState::nominate`]). A preemptor whose
//! victims are still terminating does not preempt again (kube's
//! `PodEligibleToPreemptOthers`).
//!
//! **Measures.** Queueing delay of each placement: from the arrival (or the restart) to
//! the placement; a pod still waiting when it is withdrawn or when the replay ends
//! counts with the time it waited (so the tail is never flattered). Preemptions
//! suffered (as victim) and caused (victims chosen by the group's pods). Every
//! `sample_s`: the GPU allocation ratio (allocated GPU compute / capacity) and each
//! tenant's dominant share (DRF: the largest of its shares of CPU, GPU compute and GPU
//! memory). A tenant's fair share is its weight over the sum of weights; Jain's
//! fairness index (Jain, Chiu, Hawe, DEC-TR-301, 1984) is taken over each tenant's
//! time-averaged dominant share divided by its fair share: 1 when every tenant has its
//! fair share, 1/n at worst.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use mlplane_model::throttle::Throttle;
use mlplane_model::throttle::{Amount, LabelSelector, ThrottleTerm};
use mlplane_model::{Cluster, GpuRequest, Pod, PodId, PodShape, PreemptionPolicy, PriorityClass};
use mlplane_policies::{profile_config, registry, Policy, PolicyContext, TypicalPods};
use mlplane_sched::preemption::DefaultPreemption;
use mlplane_sched::queue::SchedulingQueue;
use mlplane_sched::throttle::Throttles;
use mlplane_sched::{ClusterState, NodeId, ScheduleError, Scheduler, TieBreak};
use rand::distributions::Distribution;
use rand::Rng;
use serde::Serialize;

use crate::experiment::{node_rank, stream};
use crate::trace::PodTimes;

/// The label that carries a pod's priority class (throttles select by it).
pub const CLASS_LABEL: &str = "mlplane.io/priority-class";
/// The namespace label that carries the tenant (ClusterThrottles select by it).
pub const TENANT_LABEL: &str = "mlplane.io/tenant";

/// The replay's priority classes: `high` 1000, `low` 100, `low-cpu` 50, all
/// `PreemptLowerPriority`, none the global default; in this order (a [`Job::class`]
/// indexes it).
pub fn default_classes() -> Vec<PriorityClass> {
    [("high", 1000), ("low", 100), ("low-cpu", 50)]
        .into_iter()
        .map(|(name, value)| PriorityClass {
            name: name.into(),
            value,
            preemption_policy: PreemptionPolicy::PreemptLowerPriority,
            global_default: false,
        })
        .collect()
}

/// Nodes of the built-in replay's cluster.
pub const BUILTIN_NODES: usize = 100;
/// Pods of the built-in replay's workload.
pub const BUILTIN_JOBS: usize = 8000;
/// Offered GPU load of the built-in replay, times the cluster's GPUs.
pub const BUILTIN_LOAD: f64 = 1.3;

/// A tenant and its fair-share weight.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tenant {
    /// Name (also the namespace of its pods).
    pub name: String,
    /// Weight, > 0.
    pub weight: f64,
    /// Relative share of the pods drawn for it (demand), > 0.
    pub demand: f64,
}

/// The default tenants: `team-a` weight 3 submitting 20% of the pods, `team-b` weight 2
/// and 30%, `team-c` weight 1 and 50%: the team with the least weight asks the most,
/// the case fair share exists for.
pub fn default_tenants() -> Vec<Tenant> {
    [
        ("team-a", 3.0, 20.0),
        ("team-b", 2.0, 30.0),
        ("team-c", 1.0, 50.0),
    ]
    .into_iter()
    .map(|(n, w, d)| Tenant {
        name: n.into(),
        weight: w,
        demand: d,
    })
    .collect()
}

/// One pod of the replayed workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The pod (priority, tenant, namespace and labels set).
    pub pod: Pod,
    /// Index of its class in [`Workload::classes`].
    pub class: usize,
    /// Index of its tenant in [`Workload::tenants`].
    pub tenant: usize,
    /// Arrival, seconds from the start of the replay.
    pub arrival_s: f64,
    /// How long it runs once placed, seconds; `None`: to the end of the replay.
    pub run_s: Option<f64>,
    /// For a pod never scheduled in the trace: deleted this long after its arrival,
    /// seconds, waiting or running.
    pub withdraw_after_s: Option<f64>,
}

/// A cluster and a timed workload to replay.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The jobs, by arrival.
    pub jobs: Vec<Job>,
    /// The priority classes ([`default_classes`]).
    pub classes: Vec<PriorityClass>,
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// The arrival speedup applied.
    pub speedup: f64,
}

/// A bad workload or configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(pub String);

fn class_of(pod: &Pod, qos: &str) -> usize {
    if pod.gpu == GpuRequest::None {
        2
    } else if matches!(qos, "LS" | "Guaranteed") {
        0
    } else {
        1
    }
}

impl Workload {
    /// The workload of a trace's pods with their times (see the module documentation
    /// for every rule); `seed` draws the tenants.
    ///
    /// # Errors
    /// [`ReplayError`] for no tenants, a weight that is not a positive finite number, a
    /// duplicate tenant, a speedup that is not a positive finite number, or no pods.
    pub fn from_trace(
        cluster: Arc<Cluster>,
        pods: Vec<(Pod, PodTimes)>,
        tenants: Vec<Tenant>,
        speedup: f64,
        seed: u64,
    ) -> Result<Self, ReplayError> {
        check_tenants(&tenants)?;
        if !(speedup.is_finite() && speedup > 0.0) {
            return Err(ReplayError(format!(
                "the speedup must be a positive number, got {speedup}"
            )));
        }
        if pods.is_empty() {
            return Err(ReplayError("the workload has no pods".into()));
        }
        let classes = default_classes();
        let mut rng = stream(seed, 3);
        let pick = rand::distributions::WeightedIndex::new(tenants.iter().map(|t| t.demand))
            .map_err(|e| ReplayError(format!("tenants' demands: {e}")))?;
        let mut jobs: Vec<Job> = pods
            .into_iter()
            .map(|(pod, t)| {
                let class = class_of(&pod, &t.qos);
                let tenant = pick.sample(&mut rng);
                let (run_s, withdraw_after_s) = match (t.scheduled_s, t.deletion_s) {
                    (Some(s), Some(d)) => (Some((d - s) as f64), None),
                    (Some(_), None) => (None, None),
                    (None, Some(d)) => (None, Some((d - t.creation_s) as f64)),
                    (None, None) => (None, None),
                };
                Job {
                    pod,
                    class,
                    tenant,
                    arrival_s: t.creation_s as f64 / speedup,
                    run_s,
                    withdraw_after_s,
                }
            })
            .collect();
        jobs.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        for j in &mut jobs {
            dress(
                &mut j.pod,
                &classes[j.class],
                &tenants[j.tenant],
                j.arrival_s,
            );
        }
        Ok(Workload {
            cluster,
            jobs,
            classes,
            tenants,
            speedup,
        })
    }

    /// The built-in default: a synthetic cluster of [`BUILTIN_NODES`] nodes and
    /// [`BUILTIN_JOBS`] pods ([`crate::synth::cluster`], [`crate::synth::workload`],
    /// generator seed 1) with times drawn from `seed`: run times log-normal with the
    /// trace's median (616 s) and 90th percentile (7,764 s); arrivals a Poisson process
    /// whose offered GPU load (rate x mean run time x mean GPUs per pod) is
    /// [`BUILTIN_LOAD`] times the cluster's GPUs; `qos` `LS` for 57% of pods (the trace's
    /// share), the rest `BE`.
    ///
    /// # Errors
    /// As [`Workload::from_trace`].
    pub fn builtin(tenants: Vec<Tenant>, seed: u64) -> Result<Self, ReplayError> {
        let g = crate::input::DEFAULT_INPUT_SEED;
        let (cluster, pods) = (
            crate::synth::cluster(BUILTIN_NODES, g),
            crate::synth::workload(BUILTIN_JOBS, g),
        );
        let mut rng = stream(seed, 4);
        // Log-normal run times: median 616 s, p90 7764 s => sigma = ln(7764/616)/1.2816.
        let (mu, sigma) = (616f64.ln(), (7764f64 / 616.0).ln() / 1.2816);
        let gpus = cluster.gpu_count() as f64;
        let mean_run = (mu + sigma * sigma / 2.0).exp();
        let mean_gpu: f64 = pods.iter().map(gpu_of).sum::<f64>() / pods.len() as f64;
        let rate = BUILTIN_LOAD * gpus / (mean_run * mean_gpu);
        let mut t = 0f64;
        let timed = pods
            .into_iter()
            .map(|mut p| {
                t += -(1.0 - rng.gen::<f64>()).ln() / rate;
                let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let run = (mu + sigma * z).exp().round().max(1.0) as u64;
                let qos = if rng.gen::<f64>() < 0.57 { "LS" } else { "BE" };
                let created = t.round() as u64;
                p.created_s = created;
                let times = PodTimes {
                    line: 0,
                    qos: qos.into(),
                    phase: "Succeeded".into(),
                    creation_s: created,
                    scheduled_s: Some(created),
                    deletion_s: Some(created + run),
                };
                (p, times)
            })
            .collect();
        Self::from_trace(Arc::new(cluster), timed, tenants, 1.0, seed)
    }

    /// The fair share of tenant `i`: its weight over the sum of weights.
    pub fn fair_share(&self, i: usize) -> f64 {
        let total: f64 = self.tenants.iter().map(|t| t.weight).sum();
        self.tenants[i].weight / total
    }

    /// The namespaces' labels: each tenant's namespace has [`TENANT_LABEL`] = its name.
    pub fn namespaces(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.tenants
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    BTreeMap::from([(TENANT_LABEL.to_string(), t.name.clone())]),
                )
            })
            .collect()
    }
}

fn gpu_of(p: &Pod) -> f64 {
    match p.gpu {
        GpuRequest::None => 0.0,
        GpuRequest::Whole(n) => f64::from(n),
        GpuRequest::Milli(m) => f64::from(m) / 1000.0,
        GpuRequest::Memory { compute_milli, .. } => f64::from(compute_milli) / 1000.0,
        GpuRequest::Devices { count, .. } => f64::from(count),
    }
}

fn dress(pod: &mut Pod, class: &PriorityClass, tenant: &Tenant, arrival_s: f64) {
    pod.priority = class.value;
    pod.preemption_policy = class.preemption_policy;
    pod.tenant = Some(tenant.name.clone());
    pod.namespace = tenant.name.clone();
    pod.labels
        .insert(CLASS_LABEL.to_string(), class.name.clone());
    pod.created_s = arrival_s.floor() as u64;
}

fn check_tenants(tenants: &[Tenant]) -> Result<(), ReplayError> {
    if tenants.is_empty() {
        return Err(ReplayError("at least one tenant is needed".into()));
    }
    for (k, t) in tenants.iter().enumerate() {
        if t.name.is_empty() {
            return Err(ReplayError(format!("tenant {} has an empty name", k + 1)));
        }
        if !(t.weight.is_finite() && t.weight > 0.0) {
            return Err(ReplayError(format!(
                "tenant {:?}: the weight must be a positive number, got {}",
                t.name, t.weight
            )));
        }
        if !(t.demand.is_finite() && t.demand > 0.0) {
            return Err(ReplayError(format!(
                "tenant {:?}: the demand must be a positive number, got {}",
                t.name, t.demand
            )));
        }
        if tenants[..k].iter().any(|u| u.name == t.name) {
            return Err(ReplayError(format!("tenant {:?} is listed twice", t.name)));
        }
    }
    Ok(())
}

/// A ClusterThrottle that caps the GPUs (`nvidia.com/gpu`, a GPU share counting one)
/// that `tenant`'s pods of priority class `class` hold at once: namespaceSelector
/// [`TENANT_LABEL`] = tenant, podSelector [`CLASS_LABEL`] = class.
pub fn gpu_cap(tenant: &str, class: &str, gpus: u64) -> Throttle {
    Throttle {
        name: format!("{tenant}-{class}-gpus"),
        namespace: None,
        terms: vec![ThrottleTerm {
            pod_selector: LabelSelector {
                match_labels: BTreeMap::from([(CLASS_LABEL.to_string(), class.to_string())]),
                match_expressions: Vec::new(),
            },
            namespace_selector: Some(LabelSelector {
                match_labels: BTreeMap::from([(TENANT_LABEL.to_string(), tenant.to_string())]),
                match_expressions: Vec::new(),
            }),
        }],
        threshold: Amount {
            pods: None,
            requests: BTreeMap::from([(mlplane_model::GPU_RESOURCE.to_string(), gpus)]),
        },
        overrides: Vec::new(),
    }
}

/// Settings of one replay.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayConfig {
    /// The placement policy (its score plugin and device allocator).
    pub policy: Policy,
    /// Fair-share victim order and reclaim across tenants (DefaultPreemption's
    /// fair-share mode); off: kube's order.
    pub fair_share: bool,
    /// With fair share, reclaim at equal priority (default on).
    pub reclaim: bool,
    /// With reclaim, seconds after tenant A reclaims from B during which B may not
    /// reclaim from A ([`DefaultPreemption::with_reclaim_window`]; default 600).
    pub reclaim_window_s: u64,
    /// Seconds a preemption victim takes to leave (kube's default
    /// `terminationGracePeriodSeconds` is 30).
    pub grace_s: f64,
    /// Throttles and ClusterThrottles (namespaces carry [`TENANT_LABEL`]).
    pub throttles: Vec<Throttle>,
    /// Seconds between samples of allocation and shares; `None`: 400 samples over the
    /// replay.
    pub sample_s: Option<f64>,
    /// Seed of the node order that breaks ties and of the policy's draws.
    pub seed: u64,
    /// When the replay ends, seconds; `None`: at the last arrival (after it the
    /// cluster only drains).
    pub end_s: Option<f64>,
}

impl ReplayConfig {
    /// `policy` with fair share on (reclaim on, a 600 s reclaim window), a 30 s grace
    /// time, no throttles, seed 42.
    pub fn new(policy: Policy) -> Self {
        ReplayConfig {
            policy,
            fair_share: true,
            reclaim: true,
            reclaim_window_s: 600,
            grace_s: 30.0,
            throttles: Vec::new(),
            sample_s: None,
            seed: 42,
            end_s: None,
        }
    }
}

/// Delays and preemptions of one group of pods (a class and a tenant, or a class over
/// all tenants: tenant `*`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupStats {
    /// Priority class.
    pub class: String,
    /// Tenant, or `*` for all.
    pub tenant: String,
    /// Jobs of the group.
    pub jobs: u64,
    /// Placements: a restarted victim is placed again, so this may exceed `jobs`.
    pub placements: u64,
    /// Waits that ended without a placement (withdrawn, or the replay ended).
    pub unplaced: u64,
    /// Queueing delay percentiles and maximum, seconds (nearest rank).
    pub delay_p50_s: f64,
    /// 95th percentile.
    pub delay_p95_s: f64,
    /// 99th percentile.
    pub delay_p99_s: f64,
    /// Maximum.
    pub delay_max_s: f64,
    /// Times the group's pods were chosen as preemption victims.
    pub preempted: u64,
    /// Victims chosen by the group's pods.
    pub preempting: u64,
}

/// One sample of the cluster over time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Time, seconds.
    pub t_s: f64,
    /// Allocated GPU compute over capacity, 0..=1.
    pub gpu_allocation: f64,
    /// Each tenant's dominant share, 0..=1, in [`Workload::tenants`] order.
    pub shares: Vec<f64>,
    /// Each tenant's fair share of what is allocated ([`water_fill`] of the sum of
    /// `shares` over the tenants' dominant demands, placed plus waiting, by weight).
    pub fair: Vec<f64>,
    /// Pods waiting in the queue.
    pub pending: usize,
}

/// The result of one replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayResult {
    /// The run's label: the policy, `kube` or `fair` (fair share off or on), and
    /// ` capped` with throttles, e.g. `FGD fair capped`.
    pub run: String,
    /// The policy's name.
    pub policy: String,
    /// Fair share on.
    pub fair_share: bool,
    /// Names of the throttles in force.
    pub throttles: Vec<String>,
    /// Per class and tenant, then per class over all tenants (`*`).
    pub groups: Vec<GroupStats>,
    /// Samples over time.
    pub samples: Vec<Sample>,
    /// Tenants' time-averaged dominant shares, in tenant order.
    pub mean_shares: Vec<f64>,
    /// Tenants' time-averaged fair shares (see [`Sample::fair`]).
    pub fair_shares: Vec<f64>,
    /// Jain's index of share / fair share over the tenants with a fair share, averaged
    /// over the contended samples (pods waiting); 1 without any.
    pub jain: f64,
    /// Samples with pods waiting.
    pub contended_samples: usize,
    /// Time-averaged GPU allocation ratio.
    pub mean_gpu_allocation: f64,
    /// Preemption victims in all.
    pub preemptions: u64,
    /// Preemptions (nominations that chose running victims).
    pub nominations: u64,
    /// Jobs that arrived.
    pub arrivals: u64,
    /// Scheduling cycles run.
    pub cycles: u64,
    /// Simulated seconds replayed.
    pub span_s: f64,
    /// Every delay of each class in seconds (for CDFs), sorted, in class order.
    #[serde(skip)]
    pub delays: Vec<Vec<f64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Job arrives.
    Arrive(usize),
    /// Job's attempt finishes.
    Finish(usize, u32),
    /// Job's attempt is evicted (preemption victim).
    Evict(usize, u32),
    /// Job is withdrawn (deleted by its user).
    Withdraw(usize),
    /// Wake up for the queue (backoff or flush).
    Wake,
    /// Take a sample.
    Sample(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    NotYet,
    Waiting { since: f64 },
    Running,
    Terminating,
    Done,
}

struct JobState {
    attempt: u32,
    phase: Phase,
    id: PodId,
}

/// The event queue, by (time in ms, rank, entry order): at one instant samples come
/// last (rank 1), so they see the state after that instant's events and scheduling.
struct Events {
    heap: BinaryHeap<Reverse<(u64, u8, u64, Event)>>,
    seq: u64,
}

impl Events {
    fn push(&mut self, t_s: f64, e: Event) {
        self.seq += 1;
        let ms = (t_s.max(0.0) * 1000.0).round() as u64;
        let rank = u8::from(matches!(e, Event::Sample(_)));
        self.heap.push(Reverse((ms, rank, self.seq, e)));
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[k.clamp(1, sorted.len()) - 1]
}

/// What a pod asks, as tenants' usage counts it: [CPU millicores, GPU compute milli,
/// GPU memory MiB] (memory only for a memory share: a whole GPU's memory is known once
/// placed).
fn ask(p: &Pod) -> [u64; 3] {
    let (milli, mem) = match p.gpu {
        GpuRequest::None => (0, 0),
        GpuRequest::Whole(n) => (1000 * u64::from(n), 0),
        GpuRequest::Milli(m) => (u64::from(m), 0),
        GpuRequest::Memory { mib, compute_milli } => (u64::from(compute_milli), mib),
        GpuRequest::Devices { count, .. } => (1000 * u64::from(count), 0),
    };
    [p.cpu_milli, milli, mem]
}

fn add(a: &mut [u64; 3], b: [u64; 3], sign: i64) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = if sign >= 0 {
            *x + y
        } else {
            x.saturating_sub(y)
        };
    }
}

/// Weighted max-min fair division of `capacity` among tenants with `demands` and
/// `weights` (water-filling): each gets `min(demand, λ·weight)`, with λ the largest
/// value for which the total stays within `capacity`; so a tenant that asks less than
/// its weighted part gets what it asks and the rest is split by weight among the others.
/// The result sums to `min(capacity, Σ demands)`.
///
/// # Panics
/// If the slices differ in length.
pub fn water_fill(capacity: f64, demands: &[f64], weights: &[f64]) -> Vec<f64> {
    assert_eq!(demands.len(), weights.len(), "one weight per demand");
    let mut out = vec![0.0; demands.len()];
    let mut open: Vec<usize> = (0..demands.len())
        .filter(|&i| demands[i] > 0.0 && weights[i] > 0.0)
        .collect();
    // Tenants in order of demand per weight: each either is satisfied or caps the level.
    open.sort_by(|&a, &b| (demands[a] / weights[a]).total_cmp(&(demands[b] / weights[b])));
    let mut left = capacity.max(0.0);
    let mut wsum: f64 = open.iter().map(|&i| weights[i]).sum();
    for (k, &i) in open.iter().enumerate() {
        let level = left / wsum;
        if demands[i] <= level * weights[i] {
            out[i] = demands[i];
            left -= demands[i];
            wsum -= weights[i];
        } else {
            for &j in &open[k..] {
                out[j] = level * weights[j];
            }
            break;
        }
    }
    out
}

/// Jain's fairness index of `x`: (Σx)² / (n·Σx²); 1 for an empty or all-zero vector.
pub fn jain(x: &[f64]) -> f64 {
    let s: f64 = x.iter().sum();
    let q: f64 = x.iter().map(|v| v * v).sum();
    if x.is_empty() || q == 0.0 {
        1.0
    } else {
        s * s / (x.len() as f64 * q)
    }
}

/// Replays `w` under `cfg`; `progress` is called with the number of jobs that arrived
/// so far (at most once per 64 arrivals, and at the end).
///
/// # Errors
/// [`ReplayError`] for a grace time or sample interval that is not a non-negative
/// (positive, for the interval) finite number, or a policy profile that cannot be built.
pub fn replay(
    w: &Workload,
    cfg: &ReplayConfig,
    progress: &mut dyn FnMut(u64),
) -> Result<ReplayResult, ReplayError> {
    if !(cfg.grace_s.is_finite() && cfg.grace_s >= 0.0) {
        return Err(ReplayError(format!(
            "the grace time must be a non-negative number of seconds, got {}",
            cfg.grace_s
        )));
    }
    if let Some(e) = cfg.end_s {
        if !(e.is_finite() && e >= 0.0) {
            return Err(ReplayError(format!(
                "the end time must be a non-negative number of seconds, got {e}"
            )));
        }
    }
    if let Some(s) = cfg.sample_s {
        if !(s.is_finite() && s > 0.0) {
            return Err(ReplayError(format!(
                "the sample interval must be a positive number of seconds, got {s}"
            )));
        }
    }
    let cluster = w.cluster.clone();
    let typical = Arc::new(TypicalPods::from_workload(
        w.jobs.iter().map(|j| &j.pod),
        0.95,
    ));
    let ctx = PolicyContext::new(&cluster, typical);
    let weights: BTreeMap<String, f64> = w
        .tenants
        .iter()
        .map(|t| (t.name.clone(), t.weight))
        .collect();
    let config = profile_config(cfg.policy, &ctx).plugin("PrioritySort", 1);
    let mut profile = registry()
        .build(&config, &cluster)
        .map_err(|e| ReplayError(format!("profile {}: {e}", cfg.policy.name())))?;
    let preemption = if cfg.fair_share {
        let p = DefaultPreemption::with_fair_share(weights);
        if cfg.reclaim {
            p.with_reclaim_window(cfg.reclaim_window_s)
        } else {
            p.without_reclaim()
        }
    } else {
        DefaultPreemption::new()
    };
    let preemption_clock = preemption.clock();
    profile = profile.with(Arc::new(preemption), 1);
    let mut clock = None;
    if !cfg.throttles.is_empty() {
        let t = Throttles::new(cfg.throttles.clone(), w.namespaces());
        clock = Some(t.clock());
        profile = profile.with(Arc::new(t), 1);
    }
    let mut sched = Scheduler::new(profile)
        .with_tie_break(TieBreak::Rank(node_rank(cluster.nodes().len(), cfg.seed)));
    let mut rng = stream(cfg.seed, 1);
    let mut state = ClusterState::new(cluster.clone());
    let mut queue = SchedulingQueue::new();

    // The end: the last arrival (after it the cluster only drains).
    let end_s = cfg
        .end_s
        .unwrap_or_else(|| w.jobs.last().map_or(0.0, |j| j.arrival_s));
    // Samples from the arrival of the first 1% of jobs: a trace's quiet start (19 of the
    // default trace's 8,152 pods arrive in its first 110 days) would measure an empty
    // cluster.
    let start_s = w
        .jobs
        .get(w.jobs.len() / 100)
        .map_or(0.0, |j| j.arrival_s)
        .min(end_s);
    let sample_s = cfg.sample_s.unwrap_or(((end_s - start_s) / 400.0).max(1.0));
    let n_samples = ((end_s - start_s) / sample_s).floor() as usize + 1;

    let mut ev = Events {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    for (k, j) in w.jobs.iter().enumerate() {
        ev.push(j.arrival_s, Event::Arrive(k));
        if let Some(a) = j.withdraw_after_s {
            ev.push(j.arrival_s + a, Event::Withdraw(k));
        }
    }
    for s in 0..n_samples {
        ev.push(start_s + s as f64 * sample_s, Event::Sample(s));
    }

    let nt = w.tenants.len();
    let nc = w.classes.len();
    let mut jobs: Vec<JobState> = w
        .jobs
        .iter()
        .map(|j| JobState {
            attempt: 0,
            phase: Phase::NotYet,
            id: j.pod.id,
        })
        .collect();
    let mut by_id: BTreeMap<PodId, usize> = BTreeMap::new();
    let mut pods: Vec<Pod> = w.jobs.iter().map(|j| j.pod.clone()).collect();
    for (k, p) in pods.iter().enumerate() {
        by_id.insert(p.id, k);
    }
    // delays[class][tenant]
    let mut delays: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); nt]; nc];
    let mut unplaced = vec![vec![0u64; nt]; nc];
    let mut placements = vec![vec![0u64; nt]; nc];
    let mut preempted = vec![vec![0u64; nt]; nc];
    let mut preempting = vec![vec![0u64; nt]; nc];
    // Terminating victims per preemptor, to hold back a second preemption.
    let mut waiting_on: BTreeMap<PodId, Vec<usize>> = BTreeMap::new();
    let totals = [
        cluster.nodes().iter().map(|n| n.cpu_milli).sum::<u64>() as f64,
        (cluster.gpu_count() * 1000) as f64,
        cluster
            .nodes()
            .iter()
            .flat_map(|n| n.devices.iter().map(|d| d.memory_mib))
            .sum::<u64>() as f64,
    ];
    let mut usage = vec![[0u64; 3]; nt];
    // What each tenant's waiting pods ask: [CPU, GPU compute, GPU memory].
    let mut waiting = vec![[0u64; 3]; nt];
    let weights_v: Vec<f64> = w.tenants.iter().map(|t| t.weight).collect();
    let mut samples = Vec::with_capacity(n_samples);
    let mut arrivals = 0u64;
    let mut cycles = 0u64;
    let mut preemptions = 0u64;
    let mut nominations = 0u64;
    let mut next_wake: Option<u64> = None;
    // Pods that failed without a nomination since the state last changed, by what their
    // cycle depends on: another such pod fails the same way (filters see the shape;
    // nominated room the priority; preemption the priority, tenant and policy), so its
    // cycle is not run again. Cleared at each new instant and each change of the state.
    let mut failed: HashSet<(PodShape, i32, Option<String>, PreemptionPolicy)> = HashSet::new();
    let mut last_ms = u64::MAX;
    let total_gpu_milli = totals[1].max(1.0);

    let held = |state: &ClusterState, id: PodId| state.bound(id).expect("bound").held();

    while let Some(Reverse((ms, _, _, e))) = ev.heap.pop() {
        let now = ms as f64 / 1000.0;
        if now > end_s {
            break;
        }
        if ms != last_ms {
            failed.clear();
            last_ms = ms;
        }
        for c in clock.iter().chain(&preemption_clock) {
            c.store(now as u64, Ordering::Relaxed);
        }
        let mut freed: Vec<NodeId> = Vec::new();
        match e {
            Event::Arrive(k) => {
                arrivals += 1;
                if arrivals.is_multiple_of(64) {
                    progress(arrivals);
                }
                jobs[k].phase = Phase::Waiting { since: now };
                add(&mut waiting[w.jobs[k].tenant], ask(&pods[k]), 1);
                queue.add(sched.profile(), pods[k].clone(), now);
            }
            Event::Finish(k, a) | Event::Evict(k, a) => {
                if jobs[k].attempt != a
                    || !matches!(jobs[k].phase, Phase::Running | Phase::Terminating)
                {
                    continue;
                }
                let id = jobs[k].id;
                let u = held(&state, id);
                let t = w.jobs[k].tenant;
                for (x, y) in usage[t].iter_mut().zip(u) {
                    *x -= y;
                }
                let b = state.forget(id).expect("running pods are bound");
                freed.push(b.placement.node);
                failed.clear();
                if matches!(e, Event::Evict(..)) {
                    // Restarted as a new pod of the same job, created now.
                    let mut p = pods[k].clone();
                    p.id = PodId::fresh();
                    p.created_s = now.floor() as u64;
                    by_id.remove(&id);
                    by_id.insert(p.id, k);
                    jobs[k].id = p.id;
                    jobs[k].attempt += 1;
                    jobs[k].phase = Phase::Waiting { since: now };
                    pods[k] = p.clone();
                    add(&mut waiting[w.jobs[k].tenant], ask(&p), 1);
                    queue.add(sched.profile(), p, now);
                } else {
                    jobs[k].phase = Phase::Done;
                }
            }
            Event::Withdraw(k) => match jobs[k].phase {
                Phase::Waiting { since } => {
                    let id = jobs[k].id;
                    queue.remove(sched.profile(), id);
                    if state.clear_nomination(id).is_some() {
                        failed.clear();
                        queue.cluster_changed(sched.profile(), now);
                    }
                    waiting_on.remove(&id);
                    let (c, t) = (w.jobs[k].class, w.jobs[k].tenant);
                    add(&mut waiting[t], ask(&pods[k]), -1);
                    delays[c][t].push(now - since);
                    unplaced[c][t] += 1;
                    jobs[k].phase = Phase::Done;
                }
                Phase::Running | Phase::Terminating => {
                    let id = jobs[k].id;
                    let u = held(&state, id);
                    let t = w.jobs[k].tenant;
                    for (x, y) in usage[t].iter_mut().zip(u) {
                        *x -= y;
                    }
                    let b = state.forget(id).expect("running pods are bound");
                    freed.push(b.placement.node);
                    failed.clear();
                    jobs[k].phase = Phase::Done;
                }
                Phase::NotYet | Phase::Done => {}
            },
            Event::Wake => {
                if next_wake == Some(ms) {
                    next_wake = None;
                }
            }
            Event::Sample(_) => {
                let dominant = |u: [u64; 3]| {
                    (0..3)
                        .map(|r| u[r] as f64 / totals[r].max(1.0))
                        .fold(0.0, f64::max)
                };
                let shares: Vec<f64> = usage.iter().map(|&u| dominant(u)).collect();
                let demands: Vec<f64> = usage
                    .iter()
                    .zip(&waiting)
                    .map(|(u, q)| dominant([u[0] + q[0], u[1] + q[1], u[2] + q[2]]))
                    .collect();
                let fair = water_fill(shares.iter().sum(), &demands, &weights_v);
                samples.push(Sample {
                    t_s: now,
                    gpu_allocation: state.gpu_used_milli() as f64 / total_gpu_milli,
                    shares,
                    fair,
                    pending: queue.len(),
                });
                continue;
            }
        }
        // Queueing hints: a pod waits on until something it could use is freed.
        for n in freed {
            let (st, s) = (&state, &sched);
            queue.cluster_changed_for(s.profile(), now, &mut |p| s.fits(st, p, n));
        }
        // Drain the events of this instant before scheduling.
        if ev
            .heap
            .peek()
            .is_some_and(|Reverse((t, rank, _, _))| *t == ms && *rank == 0)
        {
            continue;
        }
        if queue.next_flush_s().is_some_and(|f| f <= now) {
            queue.flush(sched.profile(), now);
        }
        while let Some(q) = queue.pop(sched.profile(), now) {
            let k = by_id[&q.pod.id];
            let (c, t) = (w.jobs[k].class, w.jobs[k].tenant);
            let key = (state.nominated_node(q.pod.id).is_none()).then(|| {
                (
                    q.pod.shape(),
                    q.pod.priority,
                    q.pod.tenant.clone(),
                    q.pod.preemption_policy,
                )
            });
            if key.as_ref().is_some_and(|k| failed.contains(k)) {
                queue.requeue(q, now);
                continue;
            }
            cycles += 1;
            let blocked = waiting_on
                .get(&q.pod.id)
                .is_some_and(|v| v.iter().any(|&x| jobs[x].phase == Phase::Terminating));
            match sched.schedule(&mut state, &q.pod, &mut rng) {
                Ok(_) => {
                    failed.clear();
                    let Phase::Waiting { since } = jobs[k].phase else {
                        unreachable!("only waiting pods are queued")
                    };
                    delays[c][t].push(now - since);
                    add(&mut waiting[t], ask(&q.pod), -1);
                    placements[c][t] += 1;
                    jobs[k].phase = Phase::Running;
                    waiting_on.remove(&q.pod.id);
                    let u = held(&state, q.pod.id);
                    for (x, y) in usage[t].iter_mut().zip(u) {
                        *x += y;
                    }
                    let job = &w.jobs[k];
                    let leave = match (job.run_s, job.withdraw_after_s) {
                        (Some(r), _) => Some(now + r),
                        (None, Some(_)) => None, // its Withdraw event ends it
                        (None, None) => None,
                    };
                    if let Some(l) = leave {
                        ev.push(l, Event::Finish(k, jobs[k].attempt));
                    }
                }
                Err(ScheduleError::Unschedulable {
                    nominated: Some(nom),
                    ..
                }) if !nom.victims.is_empty() && !blocked => {
                    state.nominate(&q.pod, nom.node);
                    failed.clear();
                    // It waits for every victim still on the node, including those
                    // another preemptor chose first (kube's PodEligibleToPreemptOthers
                    // looks at the terminating pods of the nominated node).
                    let mut mine = Vec::new();
                    let mut fresh = false;
                    for v in &nom.victims {
                        let Some(&x) = by_id.get(v) else { continue };
                        match jobs[x].phase {
                            Phase::Running => {
                                jobs[x].phase = Phase::Terminating;
                                ev.push(now + cfg.grace_s, Event::Evict(x, jobs[x].attempt));
                                preempted[w.jobs[x].class][w.jobs[x].tenant] += 1;
                                preempting[c][t] += 1;
                                preemptions += 1;
                                fresh = true;
                                mine.push(x);
                            }
                            Phase::Terminating => mine.push(x),
                            _ => {}
                        }
                    }
                    if fresh {
                        nominations += 1;
                    }
                    waiting_on.insert(q.pod.id, mine);
                    queue.requeue(q, now);
                }
                Err(e) => {
                    if let ScheduleError::Unschedulable {
                        nominated: None, ..
                    } = &e
                    {
                        if let Some(k) = key {
                            failed.insert(k);
                        }
                        // No candidate: kube clears the pod's nomination (unless it is
                        // still waiting for its victims), freeing the room it held.
                        if !blocked && state.clear_nomination(q.pod.id).is_some() {
                            failed.clear();
                            queue.cluster_changed(sched.profile(), now);
                        }
                    }
                    queue.requeue(q, now);
                }
            }
        }
        // Wake up for the next backoff expiry or flush.
        let wake = [queue.next_backoff_s(), queue.next_flush_s()]
            .into_iter()
            .flatten()
            .min_by(f64::total_cmp);
        if let Some(t) = wake {
            let t_ms = (t * 1000.0).round() as u64;
            if next_wake.is_none_or(|w| t_ms < w || w <= ms) {
                next_wake = Some(t_ms.max(ms + 1));
                ev.push(t.max(now + 0.001), Event::Wake);
            }
        }
    }
    progress(arrivals);
    // Waits still open at the end count with the time they waited.
    for (k, j) in jobs.iter().enumerate() {
        if let Phase::Waiting { since } = j.phase {
            let (c, t) = (w.jobs[k].class, w.jobs[k].tenant);
            delays[c][t].push(end_s - since);
            unplaced[c][t] += 1;
        }
    }
    let mut groups = Vec::new();
    let mut class_delays = Vec::new();
    for c in 0..nc {
        let mut all = Vec::new();
        let mut sum = GroupStats {
            class: w.classes[c].name.clone(),
            tenant: "*".into(),
            jobs: 0,
            placements: 0,
            unplaced: 0,
            delay_p50_s: 0.0,
            delay_p95_s: 0.0,
            delay_p99_s: 0.0,
            delay_max_s: 0.0,
            preempted: 0,
            preempting: 0,
        };
        for t in 0..nt {
            let mut d = delays[c][t].clone();
            d.sort_by(f64::total_cmp);
            let jobs_n = w
                .jobs
                .iter()
                .filter(|j| j.class == c && j.tenant == t)
                .count() as u64;
            let g = GroupStats {
                class: w.classes[c].name.clone(),
                tenant: w.tenants[t].name.clone(),
                jobs: jobs_n,
                placements: placements[c][t],
                unplaced: unplaced[c][t],
                delay_p50_s: pct(&d, 50.0),
                delay_p95_s: pct(&d, 95.0),
                delay_p99_s: pct(&d, 99.0),
                delay_max_s: d.last().copied().unwrap_or(0.0),
                preempted: preempted[c][t],
                preempting: preempting[c][t],
            };
            sum.jobs += g.jobs;
            sum.placements += g.placements;
            sum.unplaced += g.unplaced;
            sum.preempted += g.preempted;
            sum.preempting += g.preempting;
            all.extend(d);
            groups.push(g);
        }
        all.sort_by(f64::total_cmp);
        sum.delay_p50_s = pct(&all, 50.0);
        sum.delay_p95_s = pct(&all, 95.0);
        sum.delay_p99_s = pct(&all, 99.0);
        sum.delay_max_s = all.last().copied().unwrap_or(0.0);
        groups.push(sum);
        class_delays.push(all);
    }
    let ns = samples.len().max(1) as f64;
    let mean_shares: Vec<f64> = (0..nt)
        .map(|t| samples.iter().map(|s| s.shares[t]).sum::<f64>() / ns)
        .collect();
    let fair_shares: Vec<f64> = (0..nt)
        .map(|t| samples.iter().map(|s| s.fair[t]).sum::<f64>() / ns)
        .collect();
    // Jain's index per contended sample (pods waiting), averaged.
    let per: Vec<f64> = samples
        .iter()
        .filter(|s| s.pending > 0)
        .map(|s| {
            let x: Vec<f64> = s
                .shares
                .iter()
                .zip(&s.fair)
                .filter(|(_, &f)| f > 0.0)
                .map(|(a, f)| a / f)
                .collect();
            jain(&x)
        })
        .collect();
    let jain_index = if per.is_empty() {
        1.0
    } else {
        per.iter().sum::<f64>() / per.len() as f64
    };
    let contended = per.len();
    Ok(ReplayResult {
        run: format!(
            "{} {}{}",
            cfg.policy.name(),
            if cfg.fair_share { "fair" } else { "kube" },
            if cfg.throttles.is_empty() {
                ""
            } else {
                " capped"
            }
        ),
        policy: cfg.policy.name().to_string(),
        fair_share: cfg.fair_share,
        throttles: cfg.throttles.iter().map(|t| t.name.clone()).collect(),
        groups,
        mean_gpu_allocation: samples.iter().map(|s| s.gpu_allocation).sum::<f64>() / ns,
        samples,
        jain: jain_index,
        contended_samples: contended,
        mean_shares,
        fair_shares,
        preemptions,
        nominations,
        arrivals,
        cycles,
        span_s: end_s,
        delays: class_delays,
    })
}

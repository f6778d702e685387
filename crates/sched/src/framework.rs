//! Plugin traits and the scheduling cycle, shaped like kube-scheduler's framework
//! (<https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/>).
//!
//! One cycle for one pod ([`Scheduler::schedule`]):
//! 1. **PreFilter**: each plugin sees the pod once; it may narrow the nodes to look at
//!    (the intersection of all answers is kept) or reject the pod outright. A
//!    rejection is a diagnosis for every node, and with
//!    [`Code::UnschedulableAndUnresolvable`] preemption cannot help.
//! 2. **Filter**: every filter plugin looks at every remaining node, in profile order;
//!    the first that rejects a node gives the node's status.
//! 3. **PostFilter** (only when no node is feasible): plugins get the diagnosis and may
//!    nominate a node (preemption lives here); the first success ends the phase.
//! 4. **PreScore**: plugins see the feasible nodes once and may record state in the
//!    [`CycleState`]; a [`Code::Skip`] skips the plugin's own Score.
//! 5. **Score** + **NormalizeScore**: each score plugin scores each feasible node and
//!    may rescale its list; scores must end in `0..=MAX_NODE_SCORE`; the framework
//!    multiplies each by the plugin's weight and sums.
//! 6. **Select**: the highest total; ties by the scheduler's [`TieBreak`]: uniformly at
//!    random, as upstream's `selectHost`, or by a fixed node order, as the FGD paper's
//!    simulator.
//! 7. **Reserve**: the profile's reserve plugins in order; one of them, the device
//!    allocator, sets the pod's grants ([`CycleState::set_grants`]). If one fails,
//!    every reserve plugin's Unreserve runs in reverse order.
//! 8. The pod is **assumed** into the [`ClusterState`] (kube's scheduler cache).
//! 9. **Permit**: each plugin allows, rejects or asks to wait.
//! 10. **Bind**: the first bind plugin that does not skip binds (the Kubernetes
//!     scheduler through the API); with no bind plugin the assume is the bind (the
//!     simulator). A failure after the assume forgets the pod and unreserves.
//!
//! The framework owns how results combine; plugins own one decision each.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use mlplane_model::{GpuRequest, Pod, PodId, PodShape};
use rand::{Rng, RngCore};

use crate::state::{ClusterState, Grant, NodeId, NodeInfo, Placement};
use crate::status::{Code, Status};

/// The status of a node whose room is held for pods nominated there with a priority at
/// least the pod's ([`ClusterState::nominated_fit`]). Unresolvable: preemption does not
/// compete with a nominee for the room its victims are leaving.
pub const NOMINATED_ELSEWHERE: &str =
    "node(s) had room held for nominated pods of equal or higher priority";

/// The highest score a plugin may give a node (kube-scheduler's `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest score a plugin may give a node (kube-scheduler's `MinNodeScore`).
pub const MIN_NODE_SCORE: i64 = 0;

/// A named plugin. A plugin takes part in every extension point whose `as_*` method
/// returns it (kube's `multiPoint`: enabling a plugin enables all it implements).
pub trait Plugin: Send + Sync {
    /// The plugin's name, as used in profiles and messages.
    fn name(&self) -> &'static str;
    /// True if the plugin's Filter and Score answers depend only on the node, the
    /// node's state and the pod's shape ([`Pod::shape`]), never on the cycle state,
    /// the RNG, the pod's identity or the other nodes. The scheduler then reuses them
    /// while the node's version ([`crate::NodeState::version`]) is unchanged, which
    /// changes no result. Default: false.
    fn node_local(&self) -> bool {
        false
    }
    /// The plugin as a QueueSort plugin.
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    /// The plugin as a PreFilter plugin.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// The plugin as a Filter plugin.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// The plugin as a PostFilter plugin.
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// The plugin as a PreScore plugin.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// The plugin as a Score plugin.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// The plugin as a Reserve plugin.
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    /// The plugin as a Permit plugin.
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    /// The plugin as a Bind plugin.
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
}

/// QueueSort extension point: the order of the scheduling queue.
pub trait QueueSortPlugin: Plugin {
    /// True if `a` should be scheduled before `b`.
    fn less(&self, a: &Pod, b: &Pod) -> bool;
}

/// PreFilter extension point: runs once per pod before filtering.
pub trait PreFilterPlugin: Plugin {
    /// `Ok(None)` to look at every node, `Ok(Some(nodes))` to look only at those, or a
    /// rejection of the pod (for every node).
    ///
    /// # Errors
    /// The [`Status`] of the rejection.
    fn pre_filter(
        &self,
        cycle: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
    ) -> Result<Option<Vec<NodeId>>, Status>;
}

/// Filter extension point: may this pod run on this node?
pub trait FilterPlugin: Plugin {
    /// `Ok(())` if the node is feasible for the pod.
    ///
    /// # Errors
    /// Why not, as a [`Status`].
    fn filter(&self, cycle: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status>;
}

/// Where a pod may run once something changes: the node PostFilter nominates and the
/// pods that must leave it first (preemption victims; none if the node only needs to
/// free up by itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nomination {
    /// The nominated node.
    pub node: NodeId,
    /// Pods to evict from it, by id.
    pub victims: Vec<PodId>,
}

/// Runs the profile's filters on one node, as PostFilter plugins may ask (kube's
/// `RunFilterPlugins` through the framework handle).
pub type FilterRunner<'r> = dyn Fn(&NodeInfo<'_>) -> Result<(), Status> + 'r;

/// PostFilter extension point: runs when no node is feasible (preemption).
pub trait PostFilterPlugin: Plugin {
    /// A nomination where the pod may fit once something changes, or `Ok(None)` / an
    /// unschedulable status when the plugin cannot help. `filters` runs the profile's
    /// filters for the pod on a node (a scratch copy, for preemption's what-ifs).
    ///
    /// # Errors
    /// A [`Status`] saying why the plugin could not help.
    fn post_filter(
        &self,
        cycle: &CycleState,
        state: &ClusterState,
        pod: &Pod,
        diagnosis: &Diagnosis,
        filters: &FilterRunner<'_>,
    ) -> Result<Option<Nomination>, Status>;
}

/// PreScore extension point: runs once per cycle over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    /// Records whatever the plugin's scores need in `cycle`.
    ///
    /// # Errors
    /// [`Code::Skip`] to skip this plugin's Score; any other status ends the cycle
    /// with an error.
    fn pre_score(
        &self,
        cycle: &mut CycleState,
        pod: &Pod,
        feasible: &[NodeInfo<'_>],
        rng: &mut dyn RngCore,
    ) -> Result<(), Status>;
}

/// One node's score in a score list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeScore {
    /// The node.
    pub node: NodeId,
    /// Its score.
    pub score: i64,
}

/// Score extension point: how good is this node for this pod?
pub trait ScorePlugin: Plugin {
    /// The node's raw score. After [`ScorePlugin::normalize`] it must lie in
    /// `MIN_NODE_SCORE..=MAX_NODE_SCORE`.
    fn score(&self, cycle: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64;

    /// NormalizeScore extension point: rescales this plugin's scores of all feasible
    /// nodes. The default keeps them.
    fn normalize(&self, _cycle: &CycleState, _pod: &Pod, _scores: &mut [NodeScore]) {}
}

/// Reserve extension point: claims what the pod will use on the chosen node before it
/// is bound. The device allocator among them sets the grants.
pub trait ReservePlugin: Plugin {
    /// Reserves for `pod` on `node`.
    ///
    /// # Errors
    /// A [`Status`]; then every reserve plugin's [`ReservePlugin::unreserve`] runs, in
    /// reverse order.
    fn reserve(
        &self,
        cycle: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<(), Status>;

    /// Undoes [`ReservePlugin::reserve`] (also called when this plugin's reserve did
    /// not run or failed, as kube does: it must be idempotent). Default: nothing.
    fn unreserve(&self, _cycle: &mut CycleState, _pod: &Pod, _node: NodeId) {}
}

/// What a Permit plugin says.
#[derive(Clone, Debug, PartialEq)]
pub enum Permit {
    /// Bind now.
    Allow,
    /// Hold the pod up to `timeout_s` seconds.
    Wait {
        /// Seconds to wait at most.
        timeout_s: f64,
    },
    /// Do not bind.
    Reject(Status),
}

/// Permit extension point: the last word before binding.
pub trait PermitPlugin: Plugin {
    /// Allow, wait or reject.
    fn permit(&self, cycle: &mut CycleState, pod: &Pod, placement: &Placement) -> Permit;
}

/// Bind extension point: makes the placement real.
pub trait BindPlugin: Plugin {
    /// Binds `pod` to `placement`.
    ///
    /// # Errors
    /// [`Code::Skip`] to let the next bind plugin bind; anything else is a failure.
    fn bind(&self, cycle: &mut CycleState, pod: &Pod, placement: &Placement) -> Result<(), Status>;
}

/// Per-cycle scratch state that plugins write and later plugins read, keyed by name
/// (kube-scheduler's `CycleState`), and the grants the device allocator chose.
#[derive(Default)]
pub struct CycleState {
    entries: Vec<(&'static str, Box<dyn Any + Send>)>,
    grants: Option<Vec<Grant>>,
}

impl CycleState {
    /// Stores a value under `key`, replacing an earlier one.
    pub fn write<T: Any + Send>(&mut self, key: &'static str, value: T) {
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, Box::new(value)));
    }

    /// Reads the value under `key`, if it is there and of type `T`.
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref())
    }

    /// Sets the pod's grants on the chosen node (the device allocator, at Reserve).
    pub fn set_grants(&mut self, grants: Vec<Grant>) {
        self.grants = Some(grants);
    }

    /// The grants set at Reserve, if any.
    pub fn grants(&self) -> Option<&[Grant]> {
        self.grants.as_deref()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.grants = None;
    }
}

/// Why no node was feasible: every node's status (kube's `Diagnosis`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The status of each node that was rejected, by PreFilter or Filter.
    pub statuses: Vec<(NodeId, Status)>,
    /// PreFilter's message, when PreFilter rejected the pod.
    pub pre_filter_msg: Option<String>,
    /// PostFilter's message, when it ran and could not help.
    pub post_filter_msg: Option<String>,
}

impl Diagnosis {
    /// Each reason with the number of nodes that gave it, sorted as kube sorts the
    /// histogram: by the text `"<count> <reason>"`.
    pub fn reason_counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, s) in &self.statuses {
            for r in &s.reasons {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect();
        v.sort_by_cached_key(|(r, n)| format!("{n} {r}"));
        v
    }

    /// True if some node was rejected only as [`Code::Unschedulable`], so that
    /// preemption might help there.
    pub fn preemption_might_help(&self) -> bool {
        self.statuses
            .iter()
            .any(|(_, s)| s.code == Code::Unschedulable)
    }
}

impl fmt::Display for Diagnosis {
    /// kube's `FitError.Error()`: `0/N nodes are available: <sorted histogram>.`, the
    /// PreFilter message instead of the histogram when PreFilter rejected the pod, then
    /// the PostFilter message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.nodes)?;
        if let Some(m) = &self.pre_filter_msg {
            write!(f, " {m}.")?;
        } else {
            let parts: Vec<String> = self
                .reason_counts()
                .into_iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            if !parts.is_empty() {
                write!(f, " {}.", parts.join(", "))?;
            }
        }
        if let Some(m) = &self.post_filter_msg {
            write!(f, " {m}.")?;
        }
        Ok(())
    }
}

/// Why a pod could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// No node was feasible. `nominated` is what PostFilter nominated, if anything.
    #[error("{diagnosis}")]
    Unschedulable {
        /// Every node's status.
        diagnosis: Diagnosis,
        /// The node a PostFilter plugin nominated (preemption) and its victims.
        nominated: Option<Nomination>,
    },
    /// A plugin returned an error or rejected the pod after a node was chosen
    /// (Reserve, the assume, Permit or Bind). Nothing stays reserved or assumed.
    #[error("{phase}: {status}")]
    Failed {
        /// The extension point: `PreScore`, `Reserve`, `Assume`, `Permit`, `Bind`.
        phase: &'static str,
        /// What the plugin said.
        status: Status,
    },
}

impl ScheduleError {
    /// The diagnosis, for an unschedulable pod.
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            ScheduleError::Unschedulable { diagnosis, .. } => Some(diagnosis),
            ScheduleError::Failed { .. } => None,
        }
    }
}

/// How the scheduler picks among nodes with the same highest total score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TieBreak {
    /// Uniformly at random (upstream kube-scheduler's `selectHost`).
    Uniform,
    /// The node with the lowest rank, `rank[node index]`. The FGD paper's simulator
    /// prefixes node names with a random permutation per run and takes the
    /// lexicographically smallest name among ties: a rank from a random permutation
    /// reproduces that. Ranks must be distinct and cover every node.
    Rank(Arc<[u32]>),
}

/// A scheduling profile: the plugins at each extension point, with score weights, in
/// the order they run (kube's `KubeSchedulerConfiguration` profile). Build one with
/// [`Profile::new`] and [`Profile::with`], or from a [`crate::registry::ProfileConfig`].
#[derive(Clone)]
pub struct Profile {
    name: String,
    plugins: Vec<(Arc<dyn Plugin>, i64)>,
    queue_sort: Option<usize>,
    pre_filters: Vec<usize>,
    filters: Vec<usize>,
    post_filters: Vec<usize>,
    pre_scores: Vec<usize>,
    scores: Vec<usize>,
    reserves: Vec<usize>,
    permits: Vec<usize>,
    binds: Vec<usize>,
}

impl Profile {
    /// An empty profile (no filters at all; see [`crate::plugins::default_filters`]).
    pub fn new(name: impl Into<String>) -> Self {
        Profile {
            name: name.into(),
            plugins: Vec::new(),
            queue_sort: None,
            pre_filters: Vec::new(),
            filters: Vec::new(),
            post_filters: Vec::new(),
            pre_scores: Vec::new(),
            scores: Vec::new(),
            reserves: Vec::new(),
            permits: Vec::new(),
            binds: Vec::new(),
        }
    }

    /// Adds a plugin at every extension point it implements, after those already there;
    /// `weight` is its score weight (kube's weights are positive integers; ignored for a
    /// plugin that does not score). A second QueueSort plugin replaces the first.
    pub fn with(mut self, plugin: Arc<dyn Plugin>, weight: i64) -> Self {
        let i = self.plugins.len();
        let p = plugin.as_ref();
        if p.as_queue_sort().is_some() {
            self.queue_sort = Some(i);
        }
        let points: [(bool, &mut Vec<usize>); 8] = [
            (p.as_pre_filter().is_some(), &mut self.pre_filters),
            (p.as_filter().is_some(), &mut self.filters),
            (p.as_post_filter().is_some(), &mut self.post_filters),
            (p.as_pre_score().is_some(), &mut self.pre_scores),
            (p.as_score().is_some(), &mut self.scores),
            (p.as_reserve().is_some(), &mut self.reserves),
            (p.as_permit().is_some(), &mut self.permits),
            (p.as_bind().is_some(), &mut self.binds),
        ];
        for (has, list) in points {
            if has {
                list.push(i);
            }
        }
        self.plugins.push((plugin, weight));
        self
    }

    /// Adds every plugin of `plugins` with weight 1.
    pub fn with_all(self, plugins: impl IntoIterator<Item = Arc<dyn Plugin>>) -> Self {
        plugins.into_iter().fold(self, |p, x| p.with(x, 1))
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugins with their weights, in the order they were added.
    pub fn plugins(&self) -> impl Iterator<Item = (&Arc<dyn Plugin>, i64)> {
        self.plugins.iter().map(|(p, w)| (p, *w))
    }

    /// True if `a` goes before `b` in the queue: the QueueSort plugin's order, else
    /// higher priority first, then earlier creation (kube's PrioritySort).
    pub fn queue_less(&self, a: &Pod, b: &Pod) -> bool {
        match self.queue_sort {
            Some(i) => self.plugins[i]
                .0
                .as_queue_sort()
                .expect("indexed")
                .less(a, b),
            None => (b.priority, a.created_s) < (a.priority, b.created_s),
        }
    }

    /// Names of the plugins, by extension point, for logs and docs.
    pub fn describe(&self) -> String {
        let names = |l: &[usize]| {
            l.iter()
                .map(|&i| self.plugins[i].0.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let scores: Vec<String> = self
            .scores
            .iter()
            .map(|&i| format!("{}x{}", self.plugins[i].0.name(), self.plugins[i].1))
            .collect();
        format!(
            "{}: queueSort [{}], preFilter [{}], filter [{}], postFilter [{}], preScore [{}], score [{}], reserve [{}], permit [{}], bind [{}]",
            self.name,
            self.queue_sort
                .map_or("", |i| self.plugins[i].0.name()),
            names(&self.pre_filters),
            names(&self.filters),
            names(&self.post_filters),
            names(&self.pre_scores),
            scores.join(", "),
            names(&self.reserves),
            names(&self.permits),
            names(&self.binds),
        )
    }

    fn plugin(&self, i: usize) -> &dyn Plugin {
        self.plugins[i].0.as_ref()
    }
}

/// Runs scheduling cycles for one [`Profile`].
///
/// Deterministic: the same profile, cluster state, pod and RNG state always give the
/// same placement.
pub struct Scheduler {
    profile: Profile,
    tie_break: TieBreak,
    cycle: CycleState,
    totals: Vec<i64>,
    plugin_scores: Vec<NodeScore>,
    statuses: Vec<(NodeId, Status)>,
    feasible: Vec<NodeId>,
    cached_out: Vec<(NodeId, u16)>,
    cache: ShapeCaches,
}

/// Filter verdicts and raw scores of node-local plugins per pod shape and node, valid
/// while the node's version is the one recorded. Results are the same with or without
/// it; it only skips recomputing nodes that did not change.
#[derive(Default)]
struct ShapeCaches {
    /// True if every filter of the profile is node-local.
    enabled: bool,
    /// Positions in `Profile::scores` of the node-local score plugins, and so the
    /// columns of [`ShapeCache::raw`].
    columns: Vec<usize>,
    /// The shapes seen, each with its cache.
    index: HashMap<PodShape, usize>,
    shapes: Vec<ShapeCache>,
    /// Nodes of the state the caches were made for.
    nodes: usize,
}

/// Filter verdict meaning "feasible".
const FEASIBLE: u16 = u16::MAX;

/// Cache entries (nodes × shapes) kept at most; past it the caches start afresh.
const CACHE_ENTRIES: usize = 4 << 20;

struct ShapeCache {
    versions: Vec<u64>,
    /// [`FEASIBLE`], or the position in `Profile::filters` of the filter that rejected
    /// the node.
    verdict: Vec<u16>,
    /// `raw[node * columns + j]`: raw score of node-local score plugin `j`.
    raw: Vec<i64>,
}

impl Scheduler {
    /// A scheduler running `profile`, breaking ties uniformly at random.
    pub fn new(profile: Profile) -> Self {
        let enabled = profile.filters.len() < usize::from(FEASIBLE)
            && profile
                .filters
                .iter()
                .all(|&i| profile.plugin(i).node_local());
        let columns = (0..profile.scores.len())
            .filter(|&k| profile.plugin(profile.scores[k]).node_local())
            .collect();
        Scheduler {
            profile,
            tie_break: TieBreak::Uniform,
            cycle: CycleState::default(),
            totals: Vec::new(),
            plugin_scores: Vec::new(),
            statuses: Vec::new(),
            feasible: Vec::new(),
            cached_out: Vec::new(),
            cache: ShapeCaches {
                enabled,
                columns,
                ..ShapeCaches::default()
            },
        }
    }

    /// This scheduler without its per-shape cache: every node is filtered and scored in
    /// every cycle (the plain full scan, for benchmarks and cross-checks; the results
    /// are the same).
    pub fn full_scan(mut self) -> Self {
        self.cache.enabled = false;
        self.cache.columns.clear();
        self
    }

    /// Sets how ties between best nodes are broken.
    pub fn with_tie_break(mut self, tie_break: TieBreak) -> Self {
        self.tie_break = tie_break;
        self
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Runs one whole cycle for `pod` (see the module documentation) and, on success,
    /// leaves the pod assumed in `state` and bound.
    ///
    /// # Errors
    /// [`ScheduleError::Unschedulable`] with the diagnosis (and PostFilter's nominated
    /// node) if no node is feasible; [`ScheduleError::Failed`] if a plugin fails after a
    /// node is chosen, or a Permit plugin asks to wait (this scheduler binds
    /// synchronously and has no waiting room yet). Nothing stays reserved or assumed
    /// after an error.
    ///
    /// # Panics
    /// If a score plugin leaves a score outside `0..=100` after normalisation: that is a
    /// bug in the plugin.
    pub fn schedule(
        &mut self,
        state: &mut ClusterState,
        pod: &Pod,
        rng: &mut dyn RngCore,
    ) -> Result<Placement, ScheduleError> {
        let placement = self.decide(state, pod, rng)?;
        if let Err(e) = state.assume(pod, placement.clone()) {
            self.unreserve(pod, placement.node);
            return Err(ScheduleError::Failed {
                phase: "Assume",
                status: Status::error("", e.to_string()),
            });
        }
        let fail = |s: &mut Self, state: &mut ClusterState, phase, status| {
            state.forget(pod.id);
            s.unreserve(pod, placement.node);
            Err(ScheduleError::Failed { phase, status })
        };
        for &i in &self.profile.permits {
            let p = self.profile.plugins[i].0.clone();
            match p
                .as_permit()
                .expect("indexed")
                .permit(&mut self.cycle, pod, &placement)
            {
                Permit::Allow => {}
                Permit::Reject(status) => return fail(self, state, "Permit", status),
                Permit::Wait { timeout_s } => {
                    let status = Status::new(
                        Code::Wait,
                        p.name(),
                        format!("asked to wait up to {timeout_s} s; this scheduler binds at once"),
                    );
                    return fail(self, state, "Permit", status);
                }
            }
        }
        for &i in &self.profile.binds {
            let p = self.profile.plugins[i].0.clone();
            match p
                .as_bind()
                .expect("indexed")
                .bind(&mut self.cycle, pod, &placement)
            {
                Ok(()) => break,
                Err(s) if s.code == Code::Skip => continue,
                Err(status) => return fail(self, state, "Bind", status),
            }
        }
        Ok(placement)
    }

    /// The scheduling cycle without committing: PreFilter through Reserve, then every
    /// Unreserve. What [`Scheduler::schedule`] would place, leaving `state` and the
    /// plugins as they were.
    ///
    /// # Errors
    /// As [`Scheduler::schedule`], without the Permit and Bind failures.
    pub fn evaluate(
        &mut self,
        state: &ClusterState,
        pod: &Pod,
        rng: &mut dyn RngCore,
    ) -> Result<Placement, ScheduleError> {
        let p = self.decide(state, pod, rng)?;
        self.unreserve(pod, p.node);
        Ok(p)
    }

    /// True if `pod` passes the profile's filters on `node` in `state` (no PreFilter,
    /// no nominated pods): a queueing hint's question "could this pod fit where
    /// something was just freed?" (kube's `QueueingHintFn`).
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn fits(&self, state: &ClusterState, pod: &Pod, node: NodeId) -> bool {
        let cycle = CycleState::default();
        let info = state.node(node);
        self.profile.filters.iter().all(|&i| {
            self.profile
                .plugin(i)
                .as_filter()
                .expect("indexed")
                .filter(&cycle, pod, &info)
                .is_ok()
        })
    }

    fn unreserve(&mut self, pod: &Pod, node: NodeId) {
        for &i in self.profile.reserves.iter().rev() {
            let p = self.profile.plugins[i].0.clone();
            p.as_reserve()
                .expect("indexed")
                .unreserve(&mut self.cycle, pod, node);
        }
    }

    /// PreFilter through Reserve; on success the reserve plugins hold the pod.
    fn decide<'a>(
        &mut self,
        state: &'a ClusterState,
        pod: &Pod,
        rng: &mut dyn RngCore,
    ) -> Result<Placement, ScheduleError> {
        self.cycle.clear();
        self.statuses.clear();
        let profile = &self.profile;
        // PreFilter.
        let mut subset: Option<Vec<NodeId>> = None;
        for &i in &profile.pre_filters {
            let p = profile.plugin(i);
            match p
                .as_pre_filter()
                .expect("indexed")
                .pre_filter(&mut self.cycle, state, pod)
            {
                Ok(None) => {}
                Ok(Some(mut nodes)) => {
                    nodes.sort_unstable();
                    nodes.dedup();
                    subset = Some(match subset {
                        None => nodes,
                        Some(prev) => prev
                            .into_iter()
                            .filter(|n| nodes.binary_search(n).is_ok())
                            .collect(),
                    });
                }
                Err(status) if status.code == Code::Error => {
                    return Err(ScheduleError::Failed {
                        phase: "PreFilter",
                        status,
                    })
                }
                Err(status) => {
                    let diagnosis = Diagnosis {
                        nodes: state.len(),
                        pre_filter_msg: Some(status.message()),
                        statuses: (0..state.len())
                            .map(|n| (NodeId(n as u32), status.clone()))
                            .collect(),
                        post_filter_msg: None,
                    };
                    return Err(self.post_filter(state, pod, diagnosis));
                }
            }
        }
        // Filter (node-local verdicts and scores come from the shape cache when the
        // node did not change since they were computed).
        let mut feasible = std::mem::take(&mut self.feasible);
        let mut cached_out = std::mem::take(&mut self.cached_out);
        feasible.clear();
        cached_out.clear();
        let slot = self
            .cache
            .enabled
            .then(|| self.cache.slot(pod, state.len()));
        let columns = self.cache.columns.len();
        match (slot, &subset) {
            (Some(k), None) => {
                // The common case, on dense arrays: only changed nodes are evaluated.
                let versions = state.versions();
                for (n, &version) in versions.iter().enumerate() {
                    let c = &mut self.cache.shapes[k];
                    if c.versions[n] != version {
                        let info = state.node(NodeId(n as u32));
                        refresh(profile, &self.cache.columns, c, n, &self.cycle, pod, &info);
                    }
                    if c.verdict[n] == FEASIBLE {
                        feasible.push(NodeId(n as u32));
                    }
                }
            }
            _ => {
                let mut visit = |info: NodeInfo<'a>| {
                    let Some(k) = slot else {
                        for &i in &profile.filters {
                            if let Err(s) = profile.plugin(i).as_filter().expect("indexed").filter(
                                &self.cycle,
                                pod,
                                &info,
                            ) {
                                self.statuses.push((info.id, s));
                                return;
                            }
                        }
                        feasible.push(info.id);
                        return;
                    };
                    let c = &mut self.cache.shapes[k];
                    let n = info.id.index();
                    if c.versions[n] != info.state.version {
                        refresh(profile, &self.cache.columns, c, n, &self.cycle, pod, &info);
                    }
                    if c.verdict[n] == FEASIBLE {
                        feasible.push(info.id);
                    }
                };
                match &subset {
                    None => state.iter().for_each(&mut visit),
                    Some(nodes) => nodes
                        .iter()
                        .filter(|n| n.index() < state.len())
                        .for_each(|&n| visit(state.node(n))),
                }
            }
        }
        if state.has_nominations() {
            // Nominated pods (kube's evaluateNominatedNode and filters "with nominated
            // pods"): a pod goes to its own nominated node when that node fits, and
            // leaves room on other nodes for nominees of its priority or higher.
            let own = state
                .nominated_node(pod.id)
                .filter(|n| feasible.contains(n) && state.nominated_fit(*n, pod));
            if let Some(n) = own {
                feasible.clear();
                feasible.push(n);
            } else {
                let statuses = &mut self.statuses;
                feasible.retain(|&n| {
                    let fits = state.nominated_fit(n, pod);
                    if !fits {
                        statuses.push((n, Status::unresolvable("", NOMINATED_ELSEWHERE)));
                    }
                    fits
                });
            }
        }
        if let Some(k) = slot {
            if feasible.is_empty() {
                let c = &self.cache.shapes[k];
                let mut out = |n: NodeId| {
                    if c.verdict[n.index()] != FEASIBLE {
                        cached_out.push((n, c.verdict[n.index()]));
                    }
                };
                match &subset {
                    None => (0..state.len() as u32).for_each(|n| out(NodeId(n))),
                    Some(nodes) => nodes
                        .iter()
                        .filter(|n| n.index() < state.len())
                        .for_each(|&n| out(n)),
                }
            }
        }
        if feasible.is_empty() {
            // Statuses of cached rejections are made only now, from the node-local
            // filter that rejected each node: the same answer it gave then.
            for &(id, f) in &cached_out {
                let f = profile.filters[usize::from(f)];
                let status = profile
                    .plugin(f)
                    .as_filter()
                    .expect("indexed")
                    .filter(&self.cycle, pod, &state.node(id))
                    .err()
                    .unwrap_or_else(|| {
                        Status::error(
                            profile.plugin(f).name(),
                            "a node-local filter changed its answer",
                        )
                    });
                self.statuses.push((id, status));
            }
            self.feasible = feasible;
            self.cached_out = cached_out;
            self.statuses.sort_by_key(|(id, _)| *id);
            let mut statuses = std::mem::take(&mut self.statuses);
            if let Some(nodes) = &subset {
                // Nodes PreFilter left out are unresolvable for this pod.
                let mut out = Vec::with_capacity(state.len());
                let mut k = 0;
                for n in 0..state.len() as u32 {
                    let id = NodeId(n);
                    if nodes.binary_search(&id).is_ok() {
                        if k < statuses.len() && statuses[k].0 == id {
                            out.push(statuses[k].clone());
                            k += 1;
                        }
                    } else {
                        out.push((
                            id,
                            Status::unresolvable(
                                "",
                                "node(s) didn't satisfy plugin(s) at PreFilter",
                            ),
                        ));
                    }
                }
                statuses = out;
            }
            let diagnosis = Diagnosis {
                nodes: state.len(),
                statuses,
                pre_filter_msg: None,
                post_filter_msg: None,
            };
            return Err(self.post_filter(state, pod, diagnosis));
        }
        // PreScore (plugins see the feasible nodes with their states).
        let mut skipped: Vec<&'static str> = Vec::new();
        if !profile.pre_scores.is_empty() {
            let infos: Vec<NodeInfo<'_>> = feasible.iter().map(|&n| state.node(n)).collect();
            for &i in &profile.pre_scores {
                let p = profile.plugin(i);
                match p.as_pre_score().expect("indexed").pre_score(
                    &mut self.cycle,
                    pod,
                    &infos,
                    rng,
                ) {
                    Ok(()) => {}
                    Err(s) if s.code == Code::Skip => skipped.push(p.name()),
                    Err(status) => {
                        self.feasible = feasible;
                        self.cached_out = cached_out;
                        return Err(ScheduleError::Failed {
                            phase: "PreScore",
                            status,
                        });
                    }
                }
            }
        }
        // Score and select.
        let chosen = if feasible.len() == 1 {
            state.node(feasible[0])
        } else {
            self.totals.clear();
            self.totals.resize(feasible.len(), 0);
            for (pos, &i) in profile.scores.iter().enumerate() {
                let (plugin, weight) = (&profile.plugins[i].0, profile.plugins[i].1);
                if skipped.contains(&plugin.name()) {
                    continue;
                }
                let sp = plugin.as_score().expect("indexed");
                self.plugin_scores.clear();
                let column = slot.and_then(|_| self.cache.columns.iter().position(|&c| c == pos));
                match (slot, column) {
                    (Some(k), Some(j)) => {
                        let raw = &self.cache.shapes[k].raw;
                        self.plugin_scores
                            .extend(feasible.iter().map(|&n| NodeScore {
                                node: n,
                                score: raw[n.index() * columns + j],
                            }));
                    }
                    _ => self
                        .plugin_scores
                        .extend(feasible.iter().map(|&n| NodeScore {
                            node: n,
                            score: sp.score(&self.cycle, pod, &state.node(n)),
                        })),
                }
                sp.normalize(&self.cycle, pod, &mut self.plugin_scores);
                for (t, s) in self.totals.iter_mut().zip(&self.plugin_scores) {
                    assert!(
                        (MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&s.score),
                        "plugin {} gave node {:?} score {} outside 0..=100",
                        plugin.name(),
                        s.node,
                        s.score
                    );
                    *t += s.score * weight;
                }
            }
            let best = match &self.tie_break {
                TieBreak::Uniform => select_host(&self.totals, rng),
                TieBreak::Rank(rank) => select_by_rank(&self.totals, &feasible, rank),
            };
            state.node(feasible[best])
        };
        self.feasible = feasible;
        self.cached_out = cached_out;
        // Reserve.
        for &i in &profile.reserves {
            let p = profile.plugin(i);
            if let Err(status) =
                p.as_reserve()
                    .expect("indexed")
                    .reserve(&mut self.cycle, state, pod, &chosen, rng)
            {
                let id = chosen.id;
                self.unreserve(pod, id);
                return Err(ScheduleError::Failed {
                    phase: "Reserve",
                    status,
                });
            }
        }
        let grants = match self.cycle.grants.take() {
            Some(g) => g,
            None if pod.gpu == GpuRequest::None => Vec::new(),
            None => {
                let id = chosen.id;
                self.unreserve(pod, id);
                return Err(ScheduleError::Failed {
                    phase: "Reserve",
                    status: Status::error(
                        "",
                        format!(
                            "no reserve plugin of profile {} assigned devices to pod {:?}",
                            self.profile.name, pod.name
                        ),
                    ),
                });
            }
        };
        Ok(Placement {
            node: chosen.id,
            grants,
        })
    }

    /// Runs PostFilter over `diagnosis` and returns the unschedulable error.
    fn post_filter(
        &mut self,
        state: &ClusterState,
        pod: &Pod,
        mut diagnosis: Diagnosis,
    ) -> ScheduleError {
        let mut nominated = None;
        let mut msgs = Vec::new();
        let profile = &self.profile;
        let cycle = &self.cycle;
        let filters = |info: &NodeInfo<'_>| {
            for &i in &profile.filters {
                profile
                    .plugin(i)
                    .as_filter()
                    .expect("indexed")
                    .filter(cycle, pod, info)?;
            }
            Ok(())
        };
        for &i in &profile.post_filters {
            let p = profile.plugin(i);
            match p
                .as_post_filter()
                .expect("indexed")
                .post_filter(cycle, state, pod, &diagnosis, &filters)
            {
                Ok(Some(n)) => {
                    nominated = Some(n);
                    break;
                }
                Ok(None) => {}
                Err(s) => msgs.push(s.message()),
            }
        }
        if nominated.is_none() && !msgs.is_empty() {
            diagnosis.post_filter_msg = Some(msgs.join(" "));
        }
        ScheduleError::Unschedulable {
            diagnosis,
            nominated,
        }
    }
}

/// Index of the highest total, ties broken by the lowest `rank` of the node.
///
/// # Panics
/// If `totals` is empty, or `rank` has no entry for a node.
pub fn select_host_by_rank(totals: &[i64], nodes: &[NodeInfo<'_>], rank: &[u32]) -> usize {
    let mut best = 0;
    for i in 1..totals.len() {
        if totals[i] > totals[best]
            || (totals[i] == totals[best]
                && rank[nodes[i].id.index()] < rank[nodes[best].id.index()])
        {
            best = i;
        }
    }
    best
}

/// [`select_host_by_rank`] over node ids.
fn select_by_rank(totals: &[i64], nodes: &[NodeId], rank: &[u32]) -> usize {
    let mut best = 0;
    for i in 1..totals.len() {
        if totals[i] > totals[best]
            || (totals[i] == totals[best] && rank[nodes[i].index()] < rank[nodes[best].index()])
        {
            best = i;
        }
    }
    best
}

/// Index of the highest total, ties broken uniformly at random (the same distribution
/// as kube-scheduler's reservoir sampling in `selectHost`, with one draw).
///
/// # Panics
/// If `totals` is empty.
pub fn select_host(totals: &[i64], rng: &mut dyn RngCore) -> usize {
    let max = *totals.iter().max().expect("select_host on no nodes");
    let ties = totals.iter().filter(|&&t| t == max).count();
    let k = if ties == 1 { 0 } else { rng.gen_range(0..ties) };
    totals
        .iter()
        .enumerate()
        .filter(|(_, &t)| t == max)
        .nth(k)
        .map(|(i, _)| i)
        .expect("k < ties")
}

impl ShapeCaches {
    /// The cache of `pod`'s shape for a state of `nodes` nodes, made if new.
    fn slot(&mut self, pod: &Pod, nodes: usize) -> usize {
        let limit = (CACHE_ENTRIES / nodes.max(1)).max(16);
        if self.nodes != nodes || self.shapes.len() >= limit {
            self.index.clear();
            self.shapes.clear();
            self.nodes = nodes;
        }
        let columns = self.columns.len();
        let shapes = &mut self.shapes;
        *self.index.entry(pod.shape()).or_insert_with(|| {
            shapes.push(ShapeCache {
                versions: vec![0; nodes],
                verdict: vec![FEASIBLE; nodes],
                raw: vec![0; nodes * columns],
            });
            shapes.len() - 1
        })
    }
}

/// Evaluates node `n` (`info`) for the cache `c`: the first node-local filter that
/// rejects it, or its raw node-local scores.
fn refresh(
    profile: &Profile,
    columns: &[usize],
    c: &mut ShapeCache,
    n: usize,
    cycle: &CycleState,
    pod: &Pod,
    info: &NodeInfo<'_>,
) {
    let rejected = profile.filters.iter().position(|&i| {
        profile
            .plugin(i)
            .as_filter()
            .expect("indexed")
            .filter(cycle, pod, info)
            .is_err()
    });
    c.verdict[n] = rejected.map_or(FEASIBLE, |f| f as u16);
    if c.verdict[n] == FEASIBLE {
        let width = columns.len();
        for (j, &pos) in columns.iter().enumerate() {
            let plugin = profile.plugin(profile.scores[pos]);
            c.raw[n * width + j] = plugin.as_score().expect("indexed").score(cycle, pod, info);
        }
    }
    c.versions[n] = info.state.version;
}

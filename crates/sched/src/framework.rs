//! Plugin traits and the scheduling cycle, shaped like kube-scheduler's framework
//! (<https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/>).
//!
//! One cycle for one pod:
//! 1. **Filter**: every filter plugin looks at every node; a node that any plugin rejects
//!    is infeasible. No feasible node: the pod is [`Unschedulable`].
//! 2. **PreScore**: plugins see the feasible nodes once and may record state in the
//!    [`CycleState`] (the Random policy draws its node here).
//! 3. **Score**: each score plugin gives each feasible node an integer score;
//!    **NormalizeScore** may then rescale the plugin's list. Scores must end in
//!    `0..=MAX_NODE_SCORE`; the framework multiplies each by the plugin's weight and sums.
//! 4. **Select**: the node with the highest total; ties are broken by the scheduler's
//!    [`TieBreak`]: uniformly at random, as upstream kube-scheduler's `selectHost` does,
//!    or by a fixed node order, as the FGD paper's simulator does.
//! 5. **Reserve**: the profile's one reserve plugin picks the physical GPUs on the chosen
//!    node (the role open-gpu-share's Reserve plays for the FGD simulator).
//!
//! The framework owns how results combine; plugins own one decision each.

use std::any::Any;

use mlplane_model::Pod;
use rand::{Rng, RngCore};

use crate::state::{ClusterState, GpuSet, NodeId, NodeInfo, Placement};

/// The highest score a plugin may give a node (kube-scheduler's `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest score a plugin may give a node (kube-scheduler's `MinNodeScore`).
pub const MIN_NODE_SCORE: i64 = 0;

/// A named plugin.
pub trait Plugin: Send + Sync {
    /// The plugin's name, as used in profiles and messages.
    fn name(&self) -> &'static str;
}

/// Why a filter rejected a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejection {
    /// The rejecting plugin.
    pub plugin: &'static str,
    /// A short reason, e.g. `"insufficient cpu"`.
    pub reason: &'static str,
}

/// Filter extension point: may this pod run on this node?
pub trait FilterPlugin: Plugin {
    /// `Ok(())` if the node is feasible for the pod, else why not.
    fn filter(&self, cycle: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Rejection>;
}

/// PreScore extension point: runs once per cycle over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    /// Records whatever the plugin's scores need in `cycle`.
    fn pre_score(
        &self,
        cycle: &mut CycleState,
        pod: &Pod,
        feasible: &[NodeInfo<'_>],
        rng: &mut dyn RngCore,
    );
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

/// Reserve extension point: picks the physical GPUs on the chosen node.
pub trait ReservePlugin: Plugin {
    /// The GPUs for `pod` on `node`: `n` distinct GPUs for `n` whole GPUs, one for a
    /// share, none for a CPU-only pod. `None` if the node cannot hold the request
    /// (it passed the filters, so that is a bug in a plugin, reported as
    /// [`ScheduleError::Reserve`]).
    fn reserve(
        &self,
        cycle: &CycleState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        rng: &mut dyn RngCore,
    ) -> Option<GpuSet>;
}

/// Per-cycle scratch state that PreScore plugins write and Score plugins read, keyed by
/// plugin name (kube-scheduler's `CycleState`).
#[derive(Default)]
pub struct CycleState {
    entries: Vec<(&'static str, Box<dyn Any + Send>)>,
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

    fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A scheduling profile: the plugins at each extension point, with score weights.
pub struct Profile {
    name: String,
    filters: Vec<Box<dyn FilterPlugin>>,
    pre_scores: Vec<Box<dyn PreScorePlugin>>,
    scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    reserve: Box<dyn ReservePlugin>,
}

impl Profile {
    /// A profile with the default filters ([`crate::plugins::default_filters`]), no
    /// scores, and `reserve` to pick GPUs.
    pub fn new(name: impl Into<String>, reserve: Box<dyn ReservePlugin>) -> Self {
        Profile {
            name: name.into(),
            filters: crate::plugins::default_filters(),
            pre_scores: Vec::new(),
            scores: Vec::new(),
            reserve,
        }
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a filter plugin.
    pub fn with_filter(mut self, p: Box<dyn FilterPlugin>) -> Self {
        self.filters.push(p);
        self
    }

    /// Adds a PreScore plugin.
    pub fn with_pre_score(mut self, p: Box<dyn PreScorePlugin>) -> Self {
        self.pre_scores.push(p);
        self
    }

    /// Adds a score plugin with a weight (kube-scheduler weights are positive integers).
    pub fn with_score(mut self, p: Box<dyn ScorePlugin>, weight: i64) -> Self {
        self.scores.push((p, weight));
        self
    }

    /// Names of the plugins, by extension point, for logs and docs.
    pub fn describe(&self) -> String {
        let f: Vec<_> = self.filters.iter().map(|p| p.name()).collect();
        let p: Vec<_> = self.pre_scores.iter().map(|p| p.name()).collect();
        let s: Vec<_> = self
            .scores
            .iter()
            .map(|(p, w)| format!("{}x{w}", p.name()))
            .collect();
        format!(
            "{}: filter [{}], preScore [{}], score [{}], reserve {}",
            self.name,
            f.join(", "),
            p.join(", "),
            s.join(", "),
            self.reserve.name()
        )
    }
}

/// Why a pod could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// No node passed the filters. `reasons` counts, per rejection, the nodes that
    /// gave it (first rejecting filter only), most frequent first.
    #[error("0/{nodes} nodes are available: {}", fmt_reasons(reasons))]
    Unschedulable {
        /// Number of nodes considered.
        nodes: usize,
        /// `(rejection, node count)`, most frequent first.
        reasons: Vec<(Rejection, usize)>,
    },
    /// The reserve plugin found no GPUs on a node that passed the filters (a plugin bug).
    #[error("reserve plugin {plugin} found no GPUs for pod {pod:?} on a feasible node")]
    Reserve {
        /// The reserve plugin.
        plugin: &'static str,
        /// The pod.
        pod: String,
    },
}

fn fmt_reasons(reasons: &[(Rejection, usize)]) -> String {
    reasons
        .iter()
        .map(|(r, n)| format!("{n} {}", r.reason))
        .collect::<Vec<_>>()
        .join(", ")
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
    Rank(std::sync::Arc<[u32]>),
}

/// Runs scheduling cycles for one [`Profile`].
///
/// Deterministic: the same profile, cluster state, pod and RNG state always give the
/// same placement. The scheduler holds no cluster state; the caller commits a
/// placement with [`ClusterState::assume`].
pub struct Scheduler {
    profile: Profile,
    tie_break: TieBreak,
    cycle: CycleState,
    totals: Vec<i64>,
    plugin_scores: Vec<NodeScore>,
}

impl Scheduler {
    /// A scheduler running `profile`, breaking ties uniformly at random.
    pub fn new(profile: Profile) -> Self {
        Scheduler {
            profile,
            tie_break: TieBreak::Uniform,
            cycle: CycleState::default(),
            totals: Vec::new(),
            plugin_scores: Vec::new(),
        }
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

    /// Runs one scheduling cycle for `pod` and returns where it should go. Does not
    /// change `state`.
    ///
    /// # Errors
    /// [`ScheduleError::Unschedulable`] if no node passes the filters;
    /// [`ScheduleError::Reserve`] if the reserve plugin fails on the chosen node.
    ///
    /// # Panics
    /// If a score plugin leaves a score outside `0..=100` after normalisation: that is a
    /// bug in the plugin.
    pub fn schedule(
        &mut self,
        state: &ClusterState,
        pod: &Pod,
        rng: &mut dyn RngCore,
    ) -> Result<Placement, ScheduleError> {
        self.cycle.clear();
        let mut feasible: Vec<NodeInfo<'_>> = Vec::with_capacity(state.len());
        let mut reasons: Vec<(Rejection, usize)> = Vec::new();
        'nodes: for info in state.iter() {
            for f in &self.profile.filters {
                if let Err(r) = f.filter(&self.cycle, pod, &info) {
                    match reasons.iter_mut().find(|(x, _)| *x == r) {
                        Some((_, n)) => *n += 1,
                        None => reasons.push((r, 1)),
                    }
                    continue 'nodes;
                }
            }
            feasible.push(info);
        }
        if feasible.is_empty() {
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.reason.cmp(b.0.reason)));
            return Err(ScheduleError::Unschedulable {
                nodes: state.len(),
                reasons,
            });
        }
        for p in &self.profile.pre_scores {
            p.pre_score(&mut self.cycle, pod, &feasible, rng);
        }

        let chosen = if feasible.len() == 1 {
            feasible[0]
        } else {
            self.totals.clear();
            self.totals.resize(feasible.len(), 0);
            for (plugin, weight) in &self.profile.scores {
                self.plugin_scores.clear();
                self.plugin_scores
                    .extend(feasible.iter().map(|n| NodeScore {
                        node: n.id,
                        score: plugin.score(&self.cycle, pod, n),
                    }));
                plugin.normalize(&self.cycle, pod, &mut self.plugin_scores);
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
                TieBreak::Rank(rank) => select_host_by_rank(&self.totals, &feasible, rank),
            };
            feasible[best]
        };

        match self.profile.reserve.reserve(&self.cycle, pod, &chosen, rng) {
            Some(gpus) => Ok(Placement {
                node: chosen.id,
                gpus,
            }),
            None => Err(ScheduleError::Reserve {
                plugin: self.profile.reserve.name(),
                pod: pod.name.clone(),
            }),
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

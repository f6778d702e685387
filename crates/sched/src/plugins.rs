//! Built-in plugins: kube-scheduler's filters over the model (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodeResourcesFit), the GPU filters (GpuModelFit,
//! DeviceFit), PrioritySort, TaintToleration's PreferNoSchedule score, and the device
//! allocators that pick grants at Reserve.
//!
//! Each kube plugin follows upstream's semantics and reason texts
//! (`pkg/scheduler/framework/plugins/` of kubernetes/kubernetes):
//! - **NodeUnschedulable**: a cordoned node (`spec.unschedulable`) rejects pods that do
//!   not tolerate `node.kubernetes.io/unschedulable:NoSchedule`, as
//!   UnschedulableAndUnresolvable, "node(s) were unschedulable".
//! - **TaintToleration**: the first `NoSchedule` or `NoExecute` taint the pod does not
//!   tolerate rejects the node as UnschedulableAndUnresolvable, "node(s) had
//!   untolerated taint {key: value}"; its Score counts the `PreferNoSchedule` taints not
//!   tolerated by the pod's tolerations with no effect or `PreferNoSchedule`, normalised
//!   in reverse (fewest is 100).
//! - **NodeAffinity**: every `nodeSelector` label and the required affinity must match,
//!   else UnschedulableAndUnresolvable, "node(s) didn't match Pod's node
//!   affinity/selector".
//! - **NodeResourcesFit**: "Too many pods", "Insufficient cpu", "Insufficient memory",
//!   "Insufficient <resource>" for extended resources, every one that applies, as
//!   Unschedulable (preemption may help).

use std::sync::Arc;

use mlplane_model::{
    constraints::tolerated, Cluster, GpuRequest, Pod, ResourceId, Taint, TaintEffect,
    MEMORY_RESOURCE,
};
use rand::{Rng, RngCore};

use crate::framework::{
    CycleState, FilterPlugin, NodeScore, Plugin, QueueSortPlugin, ReservePlugin, ScorePlugin,
    MAX_NODE_SCORE,
};
use crate::state::{
    device_candidates, device_fit, ClusterState, DeviceRefusal, GpuSet, Grant, NodeInfo,
};
use crate::status::{Reason, Status};

/// Names of the default filters, in the order they run (kube's default order, then the
/// GPU filters).
pub const DEFAULT_FILTERS: [&str; 6] = [
    "NodeUnschedulable",
    "TaintToleration",
    "NodeAffinity",
    "NodeResourcesFit",
    "GpuModelFit",
    "DeviceFit",
];

/// The default filters for `cluster`, in [`DEFAULT_FILTERS`] order. TaintToleration
/// also scores (PreferNoSchedule), with the weight the caller gives it.
pub fn default_filters(cluster: &Cluster) -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(NodeUnschedulable),
        Arc::new(TaintToleration),
        Arc::new(NodeAffinity),
        Arc::new(NodeResourcesFit::new(cluster)),
        Arc::new(GpuModelFit),
        Arc::new(DeviceFit::new(cluster)),
    ]
}

/// kube's PrioritySort: higher priority first, then earlier creation.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrioritySort;

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        "PrioritySort"
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &Pod, b: &Pod) -> bool {
        (b.priority, a.created_s) < (a.priority, b.created_s)
    }
}

/// The taint kube puts on a cordoned node, which NodeUnschedulable checks tolerations
/// against.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Rejects cordoned nodes (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        if !node.node.unschedulable {
            return Ok(());
        }
        let taint = Taint {
            key: UNSCHEDULABLE_TAINT.into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        };
        if tolerated(&pod.tolerations, &taint) {
            Ok(())
        } else {
            Err(Status::unresolvable(
                self.name(),
                "node(s) were unschedulable",
            ))
        }
    }
}

/// Taints and tolerations (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        let untolerated = node.node.taints.iter().find(|t| {
            matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
                && !tolerated(&pod.tolerations, t)
        });
        match untolerated {
            None => Ok(()),
            Some(t) => Err(Status::unresolvable(
                self.name(),
                format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value),
            )),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        node.node
            .taints
            .iter()
            .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
            .filter(|t| {
                !pod.tolerations.iter().any(|tol| {
                    tol.effect
                        .is_none_or(|e| e == TaintEffect::PreferNoSchedule)
                        && tol.tolerates(t)
                })
            })
            .count() as i64
    }

    fn normalize(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) {
        default_normalize(scores, true);
    }
}

/// kube's `DefaultNormalizeScore(MaxNodeScore, reverse, scores)`: scale to `0..=100` by
/// the highest score; with `reverse`, `100 - score`. All zero: 0, or 100 when reversed.
pub fn default_normalize(scores: &mut [NodeScore], reverse: bool) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| s.score = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores {
        let v = MAX_NODE_SCORE * s.score / max;
        s.score = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// `nodeSelector` and required node affinity (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        let labels = &node.node.labels;
        let selector_ok = pod
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        let affinity_ok = pod.affinity.as_ref().is_none_or(|a| a.matches(labels));
        if selector_ok && affinity_ok {
            Ok(())
        } else {
            Err(Status::unresolvable(
                self.name(),
                "node(s) didn't match Pod's node affinity/selector",
            ))
        }
    }
}

/// "Insufficient <resource>" for every resource of a cluster, made once.
fn insufficient_reasons(cluster: &Cluster) -> Vec<Reason> {
    cluster
        .resources()
        .iter()
        .map(|r| Reason::from(format!("Insufficient {r}")))
        .collect()
}

/// CPU, memory, the pod limit and extended resources (see the module documentation).
#[derive(Debug, Clone)]
pub struct NodeResourcesFit {
    insufficient: Vec<Reason>,
}

impl NodeResourcesFit {
    /// The filter for `cluster` (its resource names word the reasons).
    pub fn new(cluster: &Cluster) -> Self {
        NodeResourcesFit {
            insufficient: insufficient_reasons(cluster),
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        let (n, s) = (node.node, node.state);
        let ok = s.pods < n.max_pods
            && s.cpu_free_milli >= pod.cpu_milli
            && s.memory_free_mib >= pod.memory_mib
            && pod.extended.is_empty();
        if ok {
            return Ok(());
        }
        let mut status = Status::unschedulable(self.name(), "");
        status.reasons.clear();
        if s.pods >= n.max_pods {
            status.reasons.push("Too many pods".into());
        }
        if s.cpu_free_milli < pod.cpu_milli {
            status.reasons.push("Insufficient cpu".into());
        }
        if s.memory_free_mib < pod.memory_mib {
            status.reasons.push("Insufficient memory".into());
        }
        for (r, amount) in &pod.extended {
            let free = n
                .extended
                .iter()
                .position(|(q, _)| q == r)
                .map_or(0, |k| n.extended[k].1 - s.extended_used[k]);
            if free < *amount {
                let why = self
                    .insufficient
                    .get(usize::from(r.0))
                    .cloned()
                    .unwrap_or(Reason::Static("Insufficient extended resource"));
                status.reasons.push(why);
            }
        }
        if status.reasons.is_empty() {
            Ok(())
        } else {
            Err(status)
        }
    }
}

/// Rejects, for a pod that asks for GPUs, nodes whose GPU model the pod does not allow
/// (the trace's `gpu_spec`) as UnschedulableAndUnresolvable, "node(s) didn't have an
/// allowed GPU model". Nodes without GPUs are left to DeviceFit.
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuModelFit;

impl Plugin for GpuModelFit {
    fn name(&self) -> &'static str {
        "GpuModelFit"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for GpuModelFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        if pod.gpu == GpuRequest::None || pod.allowed_models.is_none() {
            return Ok(());
        }
        match node.node.gpu_model() {
            Some(m) if !pod.allows_model(m) => Err(Status::unresolvable(
                self.name(),
                "node(s) didn't have an allowed GPU model",
            )),
            _ => Ok(()),
        }
    }
}

/// Rejects nodes whose devices cannot serve the GPU request now (the charge rules of
/// [`crate::state`]): "Insufficient nvidia.com/gpu" for whole GPUs and milli shares,
/// "Insufficient mlplane.io/gpu-memory" for memory shares, "Insufficient <resource>"
/// for named device resources, as Unschedulable; a request for several replicas where
/// the device plugin refuses it, and a malformed request, as
/// UnschedulableAndUnresolvable.
#[derive(Debug, Clone)]
pub struct DeviceFit {
    insufficient: Vec<Reason>,
    memory: Reason,
}

impl DeviceFit {
    /// The filter for `cluster` (its resource names word the reasons).
    pub fn new(cluster: &Cluster) -> Self {
        DeviceFit {
            insufficient: insufficient_reasons(cluster),
            memory: Reason::from(format!("Insufficient {MEMORY_RESOURCE}")),
        }
    }

    fn insufficient(&self, req: GpuRequest) -> Reason {
        match req {
            GpuRequest::Memory { .. } => self.memory.clone(),
            _ => {
                let r = req.resource().unwrap_or(ResourceId::GPU);
                self.insufficient
                    .get(usize::from(r.0))
                    .cloned()
                    .unwrap_or(Reason::Static("Insufficient device resource"))
            }
        }
    }
}

impl Plugin for DeviceFit {
    fn name(&self) -> &'static str {
        "DeviceFit"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for DeviceFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Status> {
        match device_fit(node.node, node.state, pod.gpu) {
            Ok(()) => Ok(()),
            Err(DeviceRefusal::Invalid) => {
                Err(Status::unresolvable(self.name(), "invalid GPU request"))
            }
            Err(DeviceRefusal::MultiReplica) => Err(Status::unresolvable(
                self.name(),
                "node(s) share the resource with failRequestsGreaterThanOne (one replica per container)",
            )),
            Err(DeviceRefusal::NoResource | DeviceRefusal::Insufficient) => Err(
                Status::unschedulable(self.name(), self.insufficient(pod.gpu)),
            ),
        }
    }
}

/// How [`GpuSelector`] orders a node's candidate devices (the FGD simulator's
/// `gpuSelMethod`, and its memory twin for the sharing study).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuSelectMode {
    /// Least free compute left after the grant, then lowest physical GPU and device
    /// index (the paper's best fit in milli-GPU).
    BestFit,
    /// Least free GPU memory left after the grant, then lowest physical GPU and device
    /// index (best fit in memory, for memory shares, replicas and MIG instances).
    BestFitMemory,
    /// Most free compute (lowest index on ties).
    WorstFit,
    /// A uniformly random device among those that fit.
    Random,
}

/// Device allocator at Reserve that picks grants without looking ahead: a share goes
/// to the node's candidate device first in [`GpuSelectMode`] order; count requests
/// (`nvidia.com/gpu: n`, named devices) take the lowest-indexed free devices, except in
/// [`GpuSelectMode::BestFitMemory`], which orders them too; several devices are
/// distinct physical GPUs (distinct instances for MIG).
#[derive(Debug, Clone, Copy)]
pub struct GpuSelector(pub GpuSelectMode);

impl Plugin for GpuSelector {
    fn name(&self) -> &'static str {
        match self.0 {
            GpuSelectMode::BestFit => "GpuSelectBestFit",
            GpuSelectMode::BestFitMemory => "GpuSelectBestFitMemory",
            GpuSelectMode::WorstFit => "GpuSelectWorstFit",
            GpuSelectMode::Random => "GpuSelectRandom",
        }
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
}

impl ReservePlugin for GpuSelector {
    fn reserve(
        &self,
        cycle: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<(), Status> {
        if pod.gpu == GpuRequest::None {
            cycle.set_grants(Vec::new());
            return Ok(());
        }
        let grants = select_grants(state, node, pod.gpu, self.0, rng);
        reserve_grants(cycle, self.name(), pod, node, grants)
    }
}

/// Sets `grants` as the pod's grants at Reserve, or, for `None`, the error of device
/// allocator `plugin` that found no devices for `pod` on `node` (a feasible node, so a
/// plugin bug).
///
/// # Errors
/// [`Status`] with [`crate::Code::Error`] for `None`.
pub fn reserve_grants(
    cycle: &mut CycleState,
    plugin: &'static str,
    pod: &Pod,
    node: &NodeInfo<'_>,
    grants: Option<Vec<Grant>>,
) -> Result<(), Status> {
    match grants {
        Some(g) => {
            cycle.set_grants(g);
            Ok(())
        }
        None => Err(Status::error(
            plugin,
            format!("no devices for {} on node {:?}", pod.gpu, node.node.name),
        )),
    }
}

/// Grants for `req` on `node` in `mode` order, or `None` if the node's devices cannot
/// serve it.
pub fn select_grants(
    state: &ClusterState,
    node: &NodeInfo<'_>,
    req: GpuRequest,
    mode: GpuSelectMode,
    rng: &mut dyn RngCore,
) -> Option<Vec<Grant>> {
    let mut cands = Vec::new();
    device_candidates(node.node, node.state, req, &mut cands).ok()?;
    let key = |&(k, c): &(u16, (u64, u32))| {
        let d = &node.node.devices[usize::from(k)];
        let s = &node.state.devices[usize::from(k)];
        let (mem_left, comp_left) = (s.memory_free(d) - c.0, s.compute_free(d) - c.1);
        match mode {
            GpuSelectMode::BestFit => (u64::from(comp_left), u64::from(d.gpu), 0, k),
            GpuSelectMode::BestFitMemory => (mem_left, u64::from(d.gpu), 0, k),
            GpuSelectMode::WorstFit => (
                u64::from(u32::MAX - s.compute_free(d)),
                0,
                u64::from(d.gpu),
                k,
            ),
            GpuSelectMode::Random => (0, 0, 0, k),
        }
    };
    if req.resource().is_some() && mode != GpuSelectMode::BestFitMemory {
        // Count requests take the lowest-indexed free devices, as the FGD simulator's
        // selectors do for whole GPUs (candidates come in device order).
    } else if mode == GpuSelectMode::Random {
        // One draw, as the paper's random GPU selection for a share.
        let (k, c) = cands[rng.gen_range(0..cands.len())];
        return Some(vec![grant(state, node, k, c)?]);
    } else {
        cands.sort_by_key(key);
    }
    take_distinct(state, node, &cands, usize::from(req.gpu_count()))
}

/// The first `count` of `cands` (in order) on distinct physical GPUs (distinct
/// instances for MIG) when `count > 1`, as grants at their lowest free replicas.
pub fn take_distinct(
    state: &ClusterState,
    node: &NodeInfo<'_>,
    cands: &[(u16, (u64, u32))],
    count: usize,
) -> Option<Vec<Grant>> {
    let mut out = Vec::with_capacity(count);
    let mut gpus = GpuSet::empty();
    for &(k, c) in cands {
        if out.len() == count {
            break;
        }
        let d = &node.node.devices[usize::from(k)];
        if count > 1 && d.mig.is_none() {
            if gpus.contains(usize::from(d.gpu)) {
                continue;
            }
            gpus.insert(usize::from(d.gpu));
        }
        out.push(grant(state, node, k, c)?);
    }
    (out.len() == count).then_some(out)
}

/// A grant of device `k` with charge `c` at its lowest free replica.
pub fn grant(state: &ClusterState, node: &NodeInfo<'_>, k: u16, c: (u64, u32)) -> Option<Grant> {
    Some(Grant {
        device: k,
        replica: state.free_replica(node.id, k)?,
        memory_mib: c.0,
        compute_milli: c.1,
    })
}

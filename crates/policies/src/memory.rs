//! GPU-memory policies for shared devices: the sharing study's placement policies
//! (`mlplane simulate --sharing`, `--share-policy`) as plugins on the one cluster state.
//!
//! Whole GPUs, time-slicing replicas, MPS slots, MIG instances and memory shares are
//! compared in MiB of GPU memory, the unit every one of them is charged in
//! (`mlplane_sched::charge`). Every policy grants devices with
//! `GpuSelectBestFitMemory` (least free memory left on the device, then the lowest
//! physical GPU and device index), except FGD, which grants the devices it scored.
//!
//! | policy | plugins (weight) | score of a feasible node |
//! | --- | --- | --- |
//! | `random` | `RandomScore` (1) | the FGD paper's Random: 100 for one node drawn uniformly at PreScore, 0 elsewhere |
//! | `bestfit` | `BestFitMemoryScore` (1) | raw `−free_after`, min-max normalised |
//! | `leastallocated` | `LeastAllocatedMemoryScore` (1) | raw `free_after`, min-max normalised |
//! | `fgd` | `FGDMemoryScore` (101), `BestFitMemoryScore` (1, GPU pods only) | `⌊100 · sigmoid(Δ / S)⌋`; ties by BestFit |
//!
//! - **`free_after`**: the node's free GPU memory (MiB, summed over its devices) minus
//!   what the devices `GpuSelectBestFitMemory` would grant are charged.
//! - **Min-max normalisation** ([`crate::best_fit::min_max_normalize`], the FGD paper
//!   simulator's `NormalizeScore`): the feasible nodes' raw scores mapped linearly
//!   onto `0..=100`, truncated; all 0 when they are equal. Nodes whose raw scores lie
//!   within 1% of the cycle's range of each other may share a score, and the
//!   scheduler's tie-break (the node rank of the seed) decides between them.
//! - **FGD measured in GPU memory** (Weng et al., "Beware of Fragmentation: Scheduling
//!   GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023,
//!   <https://www.usenix.org/conference/atc23/presentation/weng>, §4, carried from
//!   milli-GPU to memory): a node's fragmentation for a typical request is the free
//!   GPU memory that request could not use there, on devices it cannot use, or all of
//!   it when the node cannot host the request at all (too few usable devices);
//!   `F(n) = Σ p_r · F_n(r)` over the workload's [`TypicalPods`] (the most
//!   frequent GPU requests covering 95% of its GPU pods, `p_r` their shares). `Δ =
//!   F(n) − F(n')` with `n'` the node after the placement; for a one-device request
//!   every distinct device state that fits is tried and the lowest `F(n')` kept (the
//!   first in device order on ties), for several devices the BestFit devices are
//!   measured. CPU is left out of the measure (GPU requests alone key the typical
//!   set), as is a node's CPU for the typical requests.
//! - **The FGD score** is the paper simulator's `⌊100 · sigmoid(Δ / 1000)⌋` with the
//!   milli-GPU of one GPU replaced by the memory of one GPU: `S` is the largest device
//!   memory of the cluster (81920 MiB on H100-80GB), so near `Δ = 0` one point is
//!   about `S/25` (3.3 GiB) and a score saturates at 1 and 99 about `4.6 S` away
//!   ([`FgdMemoryArgs::scale_mib`] sets another `S`).
//! - **FGD's tie-break**: the weights 101 and 1 order nodes by the FGD score first
//!   and by BestFit only among equal FGD scores (`101 · a + b` with `b ∈ 0..=100` is
//!   lexicographic in `(a, b)`), as the sharing scheduler before the one core ordered
//!   equal fragmentation growth by least free memory; a CPU-only pod changes no
//!   fragmentation and skips the BestFit tie-break (all nodes tie; the node rank
//!   decides), as before.
//!
//! The per-node fragmentation breakdown is cached by the node's state version, so a
//! cycle measures again only the nodes that changed since the last one.

use std::fmt;
use std::sync::{Arc, Mutex};

use mlplane_model::{Device, GpuRequest, Pod};
use mlplane_sched::plugins::{grant, reserve_grants};
use mlplane_sched::state::{device_candidates, needs_idle, DeviceState};
use mlplane_sched::{
    charge, Charge, ClusterState, CycleState, GpuSet, NodeInfo, NodeScore, Plugin, PreScorePlugin,
    Profile, ProfileConfig, Registry, ReservePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};
use rand::RngCore;

use crate::best_fit::min_max_normalize;
use crate::fgd::TypicalPods;

/// A placement policy of the sharing study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SharePolicy {
    /// A random feasible node.
    Random,
    /// Least free GPU memory after placement.
    BestFit,
    /// Most free GPU memory after placement.
    LeastAllocated,
    /// Least growth of expected fragmentation, in GPU memory.
    Fgd,
}

impl SharePolicy {
    /// Every policy.
    pub const ALL: [SharePolicy; 4] = [
        SharePolicy::Random,
        SharePolicy::BestFit,
        SharePolicy::LeastAllocated,
        SharePolicy::Fgd,
    ];

    /// Its name on the command line (`--share-policy`).
    pub fn name(self) -> &'static str {
        match self {
            SharePolicy::Random => "random",
            SharePolicy::BestFit => "bestfit",
            SharePolicy::LeastAllocated => "leastallocated",
            SharePolicy::Fgd => "fgd",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for SharePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The weight of `FGDMemoryScore` in the `fgd` profile: one more than the highest
/// score, so that BestFit at weight 1 only breaks FGD's ties.
pub const FGD_MEMORY_WEIGHT: i64 = MAX_NODE_SCORE + 1;

/// Registers the GPU-memory plugins: `BestFitMemoryScore` (optional args
/// [`MemoryFitArgs`]), `LeastAllocatedMemoryScore` and `FGDMemoryScore` (args
/// [`FgdMemoryArgs`], required; also the device allocator at Reserve).
pub fn register_memory(r: &mut Registry) {
    r.register("BestFitMemoryScore", |i| {
        let gpu_pods_only = i.args::<MemoryFitArgs>()?.is_some_and(|a| a.gpu_pods_only);
        Ok(Arc::new(BestFitMemoryScore { gpu_pods_only }))
    });
    r.register("LeastAllocatedMemoryScore", |_| {
        Ok(Arc::new(LeastAllocatedMemoryScore))
    });
    r.register("FGDMemoryScore", |i| {
        let args = i
            .args::<FgdMemoryArgs>()?
            .ok_or("needs pluginConfig args FgdMemoryArgs (the typical requests)")?;
        let scale = match args.scale_mib {
            Some(0) => return Err("scale_mib must be more than 0".into()),
            Some(s) => s,
            None => largest_device_mib(i.cluster),
        };
        Ok(Arc::new(FgdMemoryScore::new(args.typical.clone(), scale)))
    });
}

/// The largest device memory of `cluster` in MiB (at least 1): FGD's default scale.
pub fn largest_device_mib(cluster: &mlplane_model::Cluster) -> u64 {
    cluster
        .nodes()
        .iter()
        .flat_map(|n| &n.devices)
        .map(|d| d.memory_mib)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// The profile of a sharing policy by plugin name (see the module table): the
/// default filters, the policy's scores and its device allocator. `typical` is what
/// FGD measures fragmentation against (unused by the others).
pub fn share_profile_config(policy: SharePolicy, typical: Arc<TypicalPods>) -> ProfileConfig {
    let base = ProfileConfig::new(format!("share-{}", policy.name())).with_default_filters();
    match policy {
        SharePolicy::Random => base
            .plugin("RandomScore", 1)
            .plugin("GpuSelectBestFitMemory", 1),
        SharePolicy::BestFit => base
            .plugin("BestFitMemoryScore", 1)
            .plugin("GpuSelectBestFitMemory", 1),
        SharePolicy::LeastAllocated => base
            .plugin("LeastAllocatedMemoryScore", 1)
            .plugin("GpuSelectBestFitMemory", 1),
        SharePolicy::Fgd => base
            .plugin("FGDMemoryScore", FGD_MEMORY_WEIGHT)
            .plugin("BestFitMemoryScore", 1)
            .args(
                "FGDMemoryScore",
                Arc::new(FgdMemoryArgs {
                    typical,
                    scale_mib: None,
                }),
            )
            .args(
                "BestFitMemoryScore",
                Arc::new(MemoryFitArgs {
                    gpu_pods_only: true,
                }),
            ),
    }
}

/// The built profile of a sharing policy for `cluster` ([`share_profile_config`]
/// through [`crate::registry`]).
///
/// # Panics
/// Never for the built-in policies (a test builds every one).
pub fn share_profile(
    policy: SharePolicy,
    typical: Arc<TypicalPods>,
    cluster: &mlplane_model::Cluster,
) -> Profile {
    crate::registry()
        .build(&share_profile_config(policy, typical), cluster)
        .expect("built-in sharing profiles are valid")
}

/// The devices `GpuSelectBestFitMemory` grants `req` on `node`, with their charges:
/// the candidates ordered by free memory left on the device after the grant, then
/// physical GPU, then device index; the first `count` of them, on distinct physical
/// GPUs (distinct instances for MIG) when `count > 1`. `None` if the devices cannot
/// serve `req`; empty for a CPU-only request.
pub fn best_fit_memory(node: &NodeInfo<'_>, req: GpuRequest) -> Option<Vec<(u16, Charge)>> {
    if req == GpuRequest::None {
        return Some(Vec::new());
    }
    let mut cands = Vec::new();
    device_candidates(node.node, node.state, req, &mut cands).ok()?;
    cands.sort_by_key(|&(k, c)| {
        let d = &node.node.devices[usize::from(k)];
        let s = &node.state.devices[usize::from(k)];
        (s.memory_free(d) - c.0, d.gpu, k)
    });
    let count = usize::from(req.gpu_count());
    let mut out = Vec::with_capacity(count);
    let mut gpus = GpuSet::empty();
    for (k, c) in cands {
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
        out.push((k, c));
    }
    (out.len() == count).then_some(out)
}

/// The node's free GPU memory after `pod` gets its BestFit devices, MiB
/// ([`best_fit_memory`]'s choice; for one device, found in one pass without sorting).
fn free_after(node: &NodeInfo<'_>, pod: &Pod) -> u64 {
    let req = pod.gpu;
    if req.gpu_count() != 1 {
        let free = node.state.gpu_memory_free(node.node);
        let taken: u64 = best_fit_memory(node, req).map_or(0, |g| g.iter().map(|(_, c)| c.0).sum());
        return free - taken;
    }
    let mut free = 0;
    // (memory left on the device, GPU, index, charged memory) of the best device.
    let mut best: Option<(u64, u8, usize, u64)> = None;
    for (k, (d, s)) in node
        .node
        .devices
        .iter()
        .zip(&node.state.devices)
        .enumerate()
    {
        let left = s.memory_free(d);
        free += left;
        let Some(c) = charge(d, req, false) else {
            continue;
        };
        if !s.can_take(d, c, needs_idle(d, req, false)) {
            continue;
        }
        let key = (left - c.0, d.gpu, k, c.0);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    free - best.map_or(0, |b| b.3)
}

/// Arguments of `BestFitMemoryScore`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryFitArgs {
    /// Skip the score for CPU-only pods (FGD's tie-break: a CPU-only pod changes no GPU
    /// fragmentation, and no node is better for it).
    pub gpu_pods_only: bool,
}

/// BestFit in GPU memory: the node with the least free GPU memory after placement
/// (raw `−free_after`, min-max normalised; see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct BestFitMemoryScore {
    gpu_pods_only: bool,
}

impl BestFitMemoryScore {
    /// The plugin; with `gpu_pods_only` it skips CPU-only pods.
    pub fn new(args: MemoryFitArgs) -> Self {
        BestFitMemoryScore {
            gpu_pods_only: args.gpu_pods_only,
        }
    }
}

impl Plugin for BestFitMemoryScore {
    fn name(&self) -> &'static str {
        "BestFitMemoryScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BestFitMemoryScore {
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &Pod,
        _: &[NodeInfo<'_>],
        _: &mut dyn RngCore,
    ) -> Result<(), Status> {
        if self.gpu_pods_only && pod.gpu == GpuRequest::None {
            Err(Status::skip(self.name()))
        } else {
            Ok(())
        }
    }
}

impl ScorePlugin for BestFitMemoryScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        -(free_after(node, pod) as i64)
    }

    fn normalize(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) {
        min_max_normalize(scores);
    }
}

/// LeastAllocated in GPU memory (kube's spread): the node with the most free GPU
/// memory after placement (raw `free_after`, min-max normalised).
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastAllocatedMemoryScore;

impl Plugin for LeastAllocatedMemoryScore {
    fn name(&self) -> &'static str {
        "LeastAllocatedMemoryScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for LeastAllocatedMemoryScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        free_after(node, pod) as i64
    }

    fn normalize(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) {
        min_max_normalize(scores);
    }
}

/// Share of the GPU pods the typical requests cover (the FGD simulator's
/// `podPopularityThreshold: 95`).
pub const TYPICAL_COVERAGE: f64 = crate::fgd::DEFAULT_POPULARITY;

/// What fragmentation needs to know of a device's usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Free memory, MiB.
    pub free_mib: u64,
    /// Free compute, milli.
    pub free_milli: u32,
    /// Free replicas (`u16::MAX` for a fractional device).
    pub free_replicas: u16,
    /// Nothing held.
    pub idle: bool,
}

impl View {
    /// The view of device `d` in state `s`.
    pub fn of(d: &Device, s: &DeviceState) -> Self {
        View {
            free_mib: s.memory_free(d),
            free_milli: s.compute_free(d),
            free_replicas: s.replicas_free(d),
            idle: s.is_idle(),
        }
    }

    /// After one more grant of `c`.
    pub fn take(self, c: Charge) -> Self {
        View {
            free_mib: self.free_mib - c.0,
            free_milli: self.free_milli - c.1,
            free_replicas: self.free_replicas.saturating_sub(1),
            idle: false,
        }
    }

    /// True if a grant of `c` fits: a free replica, memory, compute, and the device
    /// idle when `whole`.
    pub fn can_take(self, c: Charge, whole: bool) -> bool {
        self.free_replicas > 0
            && self.free_mib >= c.0
            && self.free_milli >= c.1
            && (!whole || self.idle)
    }
}

/// True if `req` could take one unit of `d` in view `v` (the charge rule of
/// `mlplane_sched::charge`; several units are taken whole, from idle devices whose
/// device plugin allows several replicas per container).
fn can_use(d: &Device, v: View, req: GpuRequest) -> bool {
    let multi = req.gpu_count() > 1;
    if multi && d.sharing.fails_multi() {
        return false;
    }
    charge(d, req, multi).is_some_and(|c| v.can_take(c, needs_idle(d, req, multi)))
}

/// A node's expected fragmentation in MiB of GPU memory (see the module
/// documentation): for each typical request, weighted by its popularity, the free GPU
/// memory it could not use on this node (all of it when too few devices are usable:
/// distinct physical GPUs, or distinct MIG instances).
pub fn fragmentation(typical: &TypicalPods, devices: &[Device], views: &[View]) -> f64 {
    let total: u64 = views.iter().map(|v| v.free_mib).sum();
    if total == 0 {
        return 0.0;
    }
    let mut f = 0.0;
    for &(req, p) in typical.requests() {
        let need = usize::from(req.gpu_count());
        let mut gpus = GpuSet::empty();
        let mut instances = 0usize;
        let mut unusable = 0u64;
        for (d, v) in devices.iter().zip(views) {
            if can_use(d, *v, req) {
                if d.mig.is_some() {
                    instances += 1;
                } else {
                    gpus.insert(usize::from(d.gpu));
                }
            } else {
                unusable += v.free_mib;
            }
        }
        let frag = if gpus.len() + instances < need {
            total
        } else {
            unusable
        };
        f += p * frag as f64;
    }
    f
}

/// A node's fragmentation broken down per typical request, so that the effect of
/// changing one device is computed in O(requests) ([`NodeFrag::with`]). Usable devices
/// are counted, not distinct GPUs: the devices that are not MIG instances are whole
/// GPUs, one per physical GPU, on every node the sharing configuration resolves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFrag {
    total: u64,
    /// Per typical request: usable devices, free memory on unusable devices, and which
    /// devices are usable (bit `k` for device `k < 128`).
    per: Vec<(u32, u64, u128)>,
    /// The fragmentation, MiB.
    value: f64,
}

impl NodeFrag {
    /// The breakdown of a node with `devices` in `views`.
    pub fn new(typical: &TypicalPods, devices: &[Device], views: &[View]) -> Self {
        let total = views.iter().map(|v| v.free_mib).sum();
        let per: Vec<(u32, u64, u128)> = typical
            .requests()
            .iter()
            .map(|&(req, _)| {
                let (mut usable, mut unusable, mut bits) = (0, 0, 0u128);
                for (k, (d, v)) in devices.iter().zip(views).enumerate() {
                    if can_use(d, *v, req) {
                        usable += 1;
                        if k < 128 {
                            bits |= 1 << k;
                        }
                    } else {
                        unusable += v.free_mib;
                    }
                }
                (usable, unusable, bits)
            })
            .collect();
        let value = if total == 0 {
            0.0
        } else {
            typical
                .requests()
                .iter()
                .zip(&per)
                .map(|(&(req, p), &(usable, unusable, _))| {
                    p * if usable < u32::from(req.gpu_count()) {
                        total
                    } else {
                        unusable
                    } as f64
                })
                .sum()
        };
        NodeFrag { total, per, value }
    }

    /// The fragmentation, MiB.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The fragmentation with device `k` (`d`) changed from its view `old` (the one
    /// [`NodeFrag::new`] was given) to `new`, MiB.
    pub fn with(&self, typical: &TypicalPods, k: usize, d: &Device, old: View, new: View) -> f64 {
        let total = self.total - old.free_mib + new.free_mib;
        if total == 0 {
            return 0.0;
        }
        let mut f = 0.0;
        for (&(req, p), &(usable, unusable, bits)) in typical.requests().iter().zip(&self.per) {
            let u0 = if k < 128 {
                bits & (1 << k) != 0
            } else {
                can_use(d, old, req)
            };
            let u1 = can_use(d, new, req);
            let usable = usable - u32::from(u0) + u32::from(u1);
            let unusable =
                unusable - if u0 { 0 } else { old.free_mib } + if u1 { 0 } else { new.free_mib };
            let frag = if usable < u32::from(req.gpu_count()) {
                total
            } else {
                unusable
            };
            f += p * frag as f64;
        }
        f
    }
}

/// `⌊100 · sigmoid(Δ / scale)⌋` for a fragmentation decrease `Δ` in MiB (the FGD
/// simulator's score with one GPU's memory for its 1000 milli-GPU).
pub fn fgd_memory_score(delta_mib: f64, scale_mib: f64) -> i64 {
    let s = 1.0 / (1.0 + (-delta_mib / scale_mib).exp());
    ((s * MAX_NODE_SCORE as f64) as i64).clamp(0, MAX_NODE_SCORE)
}

/// Arguments of `FGDMemoryScore`.
#[derive(Clone, Debug)]
pub struct FgdMemoryArgs {
    /// The workload's typical requests.
    pub typical: Arc<TypicalPods>,
    /// The sigmoid's scale `S` in MiB; `None` for the largest device memory of the
    /// cluster ([`largest_device_mib`]).
    pub scale_mib: Option<u64>,
}

/// FGD in GPU memory: score and device allocator (see the module documentation).
#[derive(Debug)]
pub struct FgdMemoryScore {
    typical: Arc<TypicalPods>,
    scale_mib: f64,
    scratch: Mutex<Scratch>,
}

/// The per-node cache and buffers reused between evaluations.
#[derive(Debug, Default)]
struct Scratch {
    /// Each node's fragmentation breakdown and the state version it was computed at.
    cache: Vec<Option<(u64, NodeFrag)>>,
    views: Vec<View>,
    tried: Vec<(View, u16)>,
}

impl FgdMemoryScore {
    /// The plugin measuring against `typical`, with sigmoid scale `scale_mib`.
    pub fn new(typical: Arc<TypicalPods>, scale_mib: u64) -> Self {
        FgdMemoryScore {
            typical,
            scale_mib: scale_mib.max(1) as f64,
            scratch: Mutex::default(),
        }
    }

    /// The fragmentation decrease `Δ` (MiB) of placing `pod` on `node`, and the devices
    /// it gets there with their charges; `None` if the node's devices cannot serve it.
    pub fn evaluate(&self, pod: &Pod, node: &NodeInfo<'_>) -> Option<(f64, Vec<(u16, Charge)>)> {
        let req = pod.gpu;
        let count = usize::from(req.gpu_count());
        if count == 0 {
            return Some((0.0, Vec::new()));
        }
        let devices = &node.node.devices;
        let typical = &*self.typical;
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let Scratch {
            cache,
            views,
            tried,
        } = &mut *guard;
        views.clear();
        views.extend(
            devices
                .iter()
                .zip(&node.state.devices)
                .map(|(d, s)| View::of(d, s)),
        );
        let i = node.id.index();
        if cache.len() <= i {
            cache.resize(i + 1, None);
        }
        let version = node.state.version;
        if cache[i].as_ref().is_none_or(|(v, _)| *v != version) {
            cache[i] = Some((version, NodeFrag::new(typical, devices, views)));
        }
        let frag = &cache[i].as_ref().expect("just filled").1;
        let before = frag.value();
        if count == 1 {
            // Each distinct device state that can take the request once (the
            // candidates of `device_candidates`, in device order); the one that
            // fragments least.
            let mut best: Option<(f64, u16, Charge)> = None;
            tried.clear();
            for (k, (d, s)) in devices.iter().zip(&node.state.devices).enumerate() {
                let Some(c) = charge(d, req, false) else {
                    continue;
                };
                if !s.can_take(d, c, needs_idle(d, req, false)) {
                    continue;
                }
                let v = views[k];
                if d.mig.is_none() {
                    if tried.contains(&(v, d.resource.0)) {
                        continue;
                    }
                    tried.push((v, d.resource.0));
                }
                let after = frag.with(typical, k, d, v, v.take(c));
                if best.as_ref().is_none_or(|(b, _, _)| after < *b - 1e-9) {
                    best = Some((after, k as u16, c));
                }
            }
            let (after, k, c) = best?;
            Some((before - after, vec![(k, c)]))
        } else {
            let chosen = best_fit_memory(node, req)?;
            for &(k, c) in &chosen {
                let k = usize::from(k);
                views[k] = views[k].take(c);
            }
            let after = fragmentation(typical, devices, views);
            Some((before - after, chosen))
        }
    }
}

impl Plugin for FgdMemoryScore {
    fn name(&self) -> &'static str {
        "FGDMemoryScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
}

impl ScorePlugin for FgdMemoryScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        self.evaluate(pod, node)
            .map_or(0, |(delta, _)| fgd_memory_score(delta, self.scale_mib))
    }
}

impl ReservePlugin for FgdMemoryScore {
    fn reserve(
        &self,
        cycle: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        _: &mut dyn RngCore,
    ) -> Result<(), Status> {
        let grants = self.evaluate(pod, node).and_then(|(_, chosen)| {
            chosen
                .into_iter()
                .map(|(k, c)| grant(state, node, k, c))
                .collect::<Option<Vec<_>>>()
        });
        reserve_grants(cycle, self.name(), pod, node, grants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlplane_model::{MigInstance, ResourceId, Sharing};
    use proptest::prelude::*;

    fn device(gpu: u8, mig: bool, replicas: u16) -> Device {
        Device {
            gpu,
            mig: mig.then(|| MigInstance {
                profile: "1g.10gb".into(),
                start: gpu % 7,
            }),
            resource: ResourceId(u16::from(mig)),
            memory_mib: if mig { 10_240 } else { 81_920 },
            compute_milli: if mig { 142 } else { 1000 },
            sharing: if replicas > 1 {
                Sharing::TimeSliced {
                    replicas,
                    fail_multi: false,
                }
            } else {
                Sharing::Exclusive
            },
        }
    }

    /// Two nodes (`a`, `b`) of one H100-80GB (81920 MiB) time-sliced 8 ways, `b`'s GPU
    /// holding `used_b` MiB; the state, with `b` filled by a pod of that share.
    fn two_nodes(used_b: u64) -> ClusterState {
        use mlplane_model::{Cluster, GpuModel, GpuModelId, Node};
        let ts = Device {
            sharing: Sharing::TimeSliced {
                replicas: 8,
                fail_multi: false,
            },
            ..Device::exclusive(0, 81_920)
        };
        let node = |name: &str| {
            Node::new(name, 64_000, 262_144).with_devices(GpuModelId(0), vec![ts.clone()])
        };
        let c = Cluster::new(
            vec![GpuModel {
                name: "H100-80GB".into(),
                memory_mib: Some(81_920),
            }],
            vec![node("a"), node("b")],
        )
        .unwrap();
        let mut st = ClusterState::new(Arc::new(c));
        let filler = Pod::new("filler", 0, 0, share(used_b));
        st.assume(
            &filler,
            mlplane_sched::Placement {
                node: mlplane_sched::NodeId(1),
                grants: vec![mlplane_sched::Grant {
                    device: 0,
                    replica: 0,
                    memory_mib: used_b,
                    compute_milli: 0,
                }],
            },
        )
        .unwrap();
        st
    }

    fn share(mib: u64) -> GpuRequest {
        GpuRequest::Memory {
            mib,
            compute_milli: 0,
        }
    }

    /// The node `policy` puts `pod` on, with node `a` first in the tie-break order.
    fn chosen(st: &ClusterState, policy: SharePolicy, typical: TypicalPods, pod: &Pod) -> usize {
        let mut sched =
            mlplane_sched::Scheduler::new(share_profile(policy, Arc::new(typical), st.cluster()))
                .with_tie_break(mlplane_sched::TieBreak::Rank(vec![0, 1].into()));
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        let pl = sched.evaluate(st, pod, &mut rng).unwrap();
        assert_eq!(pl.grants.len(), 1);
        pl.node.index()
    }

    #[test]
    fn best_fit_and_least_allocated_in_memory() {
        // b holds 40960 MiB. A 20480 MiB share leaves a with 61440 free, b with 20480:
        // BestFit raw (-61440, -20480) -> min-max (0, 100): b. LeastAllocated raw
        // (61440, 20480) -> (100, 0): a.
        let st = two_nodes(40_960);
        let pod = Pod::new("p", 1000, 1024, share(20_480));
        let node = |i: u32| st.node(mlplane_sched::NodeId(i));
        assert_eq!(free_after(&node(0), &pod), 61_440);
        assert_eq!(free_after(&node(1), &pod), 20_480);
        let none = TypicalPods::default();
        assert_eq!(chosen(&st, SharePolicy::BestFit, none.clone(), &pod), 1);
        assert_eq!(chosen(&st, SharePolicy::LeastAllocated, none, &pod), 0);
    }

    #[test]
    fn fgd_in_memory_by_hand() {
        // Typical: one request, a 40960 MiB share (p = 1). b holds 20480 MiB.
        let typical = TypicalPods::from_requests(vec![(share(40_960), 1.0)]);
        let st = two_nodes(20_480);
        let f = FgdMemoryScore::new(Arc::new(typical.clone()), 81_920);
        let node = |i: u32| st.node(mlplane_sched::NodeId(i));
        // A 30720 MiB share. a: 81920 free, usable before; 51200 after, still usable:
        // F = 0 before and after, Δ = 0, score ⌊100·sigmoid(0)⌋ = 50.
        let pod = Pod::new("p", 1000, 1024, share(30_720));
        let (d, g) = f.evaluate(&pod, &node(0)).unwrap();
        assert_eq!((d, g), (0.0, vec![(0, (30_720, 0))]));
        assert_eq!(fgd_memory_score(d, 81_920.0), 50);
        // b: 61440 free, usable (F = 0); after, 30720 free < 40960: the node can no
        // longer host the request, all 30720 MiB are fragments. Δ = -30720,
        // ⌊100·sigmoid(-0.375)⌋ = ⌊40.73⌋ = 40.
        let (d, _) = f.evaluate(&pod, &node(1)).unwrap();
        assert_eq!(d, -30_720.0);
        assert_eq!(fgd_memory_score(d, 81_920.0), 40);
        // FGD picks a, where BestFit (less free memory after) would pick b.
        assert_eq!(chosen(&st, SharePolicy::Fgd, typical.clone(), &pod), 0);
        assert_eq!(chosen(&st, SharePolicy::BestFit, typical.clone(), &pod), 1);
        // A 20480 MiB share keeps both nodes usable (61440 and 40960 free after):
        // Δ = 0 on both, FGD ties at 50, and the BestFit tie-break picks b, before a
        // in the rank.
        let pod = Pod::new("q", 1000, 1024, share(20_480));
        assert_eq!(f.evaluate(&pod, &node(1)).unwrap().0, 0.0);
        assert_eq!(chosen(&st, SharePolicy::Fgd, typical.clone(), &pod), 1);
        // A CPU-only pod changes no fragmentation and skips the tie-break: the rank
        // decides (a).
        let cpu = Pod::new("c", 1000, 1024, GpuRequest::None);
        let mut sched = mlplane_sched::Scheduler::new(share_profile(
            SharePolicy::Fgd,
            Arc::new(typical),
            st.cluster(),
        ))
        .with_tie_break(mlplane_sched::TieBreak::Rank(vec![0, 1].into()));
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        assert_eq!(sched.evaluate(&st, &cpu, &mut rng).unwrap().node.index(), 0);
    }

    #[test]
    fn typical_requests_cover_95_percent() {
        // 60 + 30 + 6 + 4 GPU pods (and CPU-only pods, not counted): 60 and 30 cover
        // 90% < 95%, with the 6 96%: three classes.
        let mut pods = Vec::new();
        for (n, r) in [
            (60, share(1024)),
            (30, GpuRequest::Whole(1)),
            (6, GpuRequest::Whole(2)),
            (4, share(2048)),
            (50, GpuRequest::None),
        ] {
            pods.extend((0..n).map(|i| Pod::new(format!("p{i}"), 0, 0, r)));
        }
        let t = TypicalPods::by_gpu_request(&pods, TYPICAL_COVERAGE);
        assert_eq!(
            t.requests(),
            [
                (share(1024), 0.6),
                (GpuRequest::Whole(1), 0.3),
                (GpuRequest::Whole(2), 0.06)
            ]
        );
    }

    #[test]
    fn every_share_profile_builds() {
        let st = two_nodes(1024);
        for p in SharePolicy::ALL {
            let prof = share_profile(p, Arc::default(), st.cluster());
            assert_eq!(SharePolicy::parse(p.name()), Some(p));
            assert!(prof.name().ends_with(p.name()));
        }
        assert_eq!(SharePolicy::parse("FGD"), Some(SharePolicy::Fgd));
        assert_eq!(SharePolicy::parse("tetris"), None);
    }

    #[test]
    fn score_is_the_sigmoid_of_the_decrease_in_gpus() {
        let g = 81_920.0;
        assert_eq!(fgd_memory_score(0.0, g), 50);
        // sigmoid(1) = 0.7311, sigmoid(-1) = 0.2689.
        assert_eq!(fgd_memory_score(g, g), 73);
        assert_eq!(fgd_memory_score(-g, g), 26);
        // One point near 0 is about S/25: sigmoid(0.04) = 0.50999 -> 50, 0.041 -> 51.
        assert_eq!(fgd_memory_score(0.04 * g, g), 50);
        assert_eq!(fgd_memory_score(0.041 * g, g), 51);
        assert_eq!(fgd_memory_score(1e12, g), 100);
        assert_eq!(fgd_memory_score(-1e12, g), 0);
    }

    proptest! {
        /// The per-request breakdown gives the same value as the definition, before and
        /// after changing any one device.
        #[test]
        fn incremental_fragmentation_matches_the_definition(
            spec in prop::collection::vec((any::<bool>(), 1u16..5, 0u64..=100, 0u32..=100, 0u16..5), 1..9),
            change in 0usize..8,
            take in (0u64..=100, 0u32..=100),
        ) {
            let devices: Vec<Device> = spec
                .iter()
                .enumerate()
                .map(|(i, &(mig, r, ..))| device(i as u8, mig, r))
                .collect();
            let views: Vec<View> = devices
                .iter()
                .zip(&spec)
                .map(|(d, &(_, _, m, c, used))| {
                    let replicas = d.sharing.replicas().unwrap_or(1);
                    let used = used.min(replicas);
                    View {
                        free_mib: d.memory_mib * m / 100,
                        free_milli: d.compute_milli * c / 100,
                        free_replicas: replicas - used,
                        idle: used == 0,
                    }
                })
                .collect();
            let typical = TypicalPods::from_requests(vec![
                    (GpuRequest::Whole(1), 0.3),
                    (GpuRequest::Whole(2), 0.1),
                    (GpuRequest::Devices { resource: ResourceId(1), count: 1 }, 0.2),
                    (GpuRequest::Memory { mib: 8_000, compute_milli: 0 }, 0.25),
                    (GpuRequest::Memory { mib: 30_000, compute_milli: 300 }, 0.15),
                ]);
            let frag = NodeFrag::new(&typical, &devices, &views);
            let direct = fragmentation(&typical, &devices, &views);
            prop_assert!((frag.value() - direct).abs() < 1e-6);
            let k = change % devices.len();
            let old = views[k];
            let new = View {
                free_mib: old.free_mib * take.0 / 100,
                free_milli: old.free_milli * take.1 / 100,
                free_replicas: old.free_replicas.saturating_sub(1),
                idle: false,
            };
            let mut changed = views.clone();
            changed[k] = new;
            let direct = fragmentation(&typical, &devices, &changed);
            prop_assert!((frag.with(&typical, k, &devices[k], old, new) - direct).abs() < 1e-6);
        }
    }
}

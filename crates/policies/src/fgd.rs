//! FGD, Fragmentation Gradient Descent (Weng et al., USENIX ATC 2023,
//! <https://www.usenix.org/conference/atc23/presentation/weng>): place each pod where
//! the cluster's expected GPU fragmentation grows least.
//!
//! **Fragmentation of a node for a pod** `m` (the paper's §4.1, as its simulator computes
//! it), in milli-GPU: if `m` asks for no GPU, or cannot run on the node (model not
//! allowed, too little CPU, or too few GPUs with enough free milli-GPU), every free
//! milli-GPU of the node is a fragment. Otherwise the fragments are the free milli-GPU of
//! the GPUs that cannot hold `m`'s per-GPU request.
//!
//! **Fragmentation of a node** is the expectation over the workload's *typical pods*
//! ([`TypicalPods`]): `F(n) = Σ_m p_m · F_n(m)`.
//!
//! **Score** of placing the pod on node `n`: with `Δ = F(n) − F(n')` (`n'` = the node
//! after placement), `⌊100 · sigmoid(Δ / 1000)⌋`. For a GPU share every GPU that fits is
//! tried and the best (lowest index on ties) is kept; the Reserve step picks that GPU.
//! Whole GPUs go to the lowest-indexed idle GPUs.
//!
//! FGD measures in milli-GPU on whole GPUs (the paper's nodes: device `i` is GPU `i`,
//! fractional or exclusive). A memory share, a named device resource (MIG), or a node
//! with MIG or replicated devices is outside that measure: such placements score 0 and
//! get best-fit devices at Reserve (FGD measured in GPU memory handles them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mlplane_model::{GpuModelId, GpuRequest, ModelSet, Pod, Sharing, GPU_MILLI, MAX_GPUS_PER_NODE};
use mlplane_sched::plugins::{reserve_grants, select_grants, GpuSelectMode};
use mlplane_sched::{
    charge, ClusterState, CycleState, GpuSet, NodeInfo, Placement, Plugin, ReservePlugin,
    ScorePlugin, Status, MAX_NODE_SCORE,
};
use rand::RngCore;

/// A typical pod: a request shape and its share of the workload.
#[derive(Clone, Debug, PartialEq)]
pub struct TypicalPod {
    /// CPU request in millicores.
    pub cpu_milli: u64,
    /// GPU request.
    pub gpu: GpuRequest,
    /// GPU models allowed, `None` for any.
    pub allowed_models: Option<ModelSet>,
    /// Probability of this shape, `0..=1`; the weights of a [`TypicalPods`] sum to 1.
    pub weight: f64,
}

/// The workload's most popular pod shapes, against which FGD measures fragmentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypicalPods {
    pods: Vec<TypicalPod>,
    /// (GPU request, weight) of the GPU pods among them, most frequent first: what FGD
    /// measured in GPU memory reads.
    requests: Vec<(GpuRequest, f64)>,
    /// The same pods grouped by GPU request, for [`TypicalPods::fragmentation`].
    groups: Vec<Group>,
    /// Total weight of CPU-only typical pods.
    cpu_only_weight: f64,
}

/// Typical pods that share a GPU request and model constraint, with their CPU
/// requests sorted so that the weight of those that fit a node's free CPU is one
/// binary search.
#[derive(Clone, Debug, PartialEq)]
struct Group {
    milli: u32,
    count: u8,
    allowed: Option<ModelSet>,
    /// CPU requests in ascending order, and the cumulative weight up to each.
    cpu: Vec<u64>,
    cum_weight: Vec<f64>,
    weight: f64,
}

impl Group {
    fn allows(&self, model: Option<GpuModelId>) -> bool {
        match (model, self.allowed) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(m), Some(set)) => set.contains(m),
        }
    }
}

/// Share of the workload the typical pods cover, as in the FGD simulator's default
/// (`podPopularityThreshold: 95`).
pub const DEFAULT_POPULARITY: f64 = 0.95;

impl TypicalPods {
    /// The typical pods of a workload: pods are grouped by shape (CPU, GPU request,
    /// allowed models; memory is ignored, as in the paper), shapes are taken from the
    /// most to the least frequent until they cover `popularity` (0..=1) of all pods,
    /// and their frequencies are renormalised to sum to 1. Equal counts are ordered by
    /// shape, larger CPU first, so the result is deterministic.
    pub fn from_workload<'a>(pods: impl IntoIterator<Item = &'a Pod>, popularity: f64) -> Self {
        type Key = (u64, u32, u8, Option<ModelSet>);
        let mut counts: HashMap<Key, u64> = HashMap::new();
        let mut total = 0u64;
        for p in pods {
            let key = (
                p.cpu_milli,
                p.gpu.milli_per_gpu(),
                p.gpu.gpu_count(),
                p.allowed_models,
            );
            *counts.entry(key).or_default() += 1;
            total += 1;
        }
        if total == 0 {
            return TypicalPods::default();
        }
        let mut shapes: Vec<(Key, u64)> = counts.into_iter().collect();
        shapes.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        let want = popularity * total as f64;
        let mut covered = 0u64;
        let mut kept = Vec::new();
        for (key, n) in shapes {
            if covered as f64 >= want && !kept.is_empty() {
                break;
            }
            covered += n;
            kept.push((key, n));
        }
        let pods = kept
            .into_iter()
            .map(|((cpu, milli, count, models), n)| TypicalPod {
                cpu_milli: cpu,
                gpu: match (count, milli) {
                    (0, _) => GpuRequest::None,
                    (c, GPU_MILLI) => GpuRequest::Whole(c),
                    (_, m) => GpuRequest::Milli(m as u16),
                },
                allowed_models: models,
                weight: n as f64 / covered as f64,
            })
            .collect();
        Self::from_pods(pods)
    }

    /// Typical pods given explicitly (weights are used as given).
    pub fn from_pods(pods: Vec<TypicalPod>) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        let mut cpu_only_weight = 0.0;
        for p in &pods {
            if p.gpu == GpuRequest::None {
                cpu_only_weight += p.weight;
                continue;
            }
            let (milli, count) = (p.gpu.milli_per_gpu(), p.gpu.gpu_count());
            let g = match groups
                .iter_mut()
                .position(|g| g.milli == milli && g.count == count && g.allowed == p.allowed_models)
            {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group {
                        milli,
                        count,
                        allowed: p.allowed_models,
                        cpu: Vec::new(),
                        cum_weight: Vec::new(),
                        weight: 0.0,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            g.cpu.push(p.cpu_milli);
            g.cum_weight.push(p.weight);
            g.weight += p.weight;
        }
        for g in &mut groups {
            let mut both: Vec<(u64, f64)> = g
                .cpu
                .iter()
                .copied()
                .zip(g.cum_weight.iter().copied())
                .collect();
            both.sort_by_key(|b| b.0);
            let mut acc = 0.0;
            g.cpu = both.iter().map(|b| b.0).collect();
            g.cum_weight = both
                .iter()
                .map(|b| {
                    acc += b.1;
                    acc
                })
                .collect();
        }
        let requests = pods
            .iter()
            .filter(|p| p.gpu != GpuRequest::None)
            .map(|p| (p.gpu, p.weight))
            .collect();
        TypicalPods {
            pods,
            requests,
            groups,
            cpu_only_weight,
        }
    }

    /// The typical pods, most frequent first.
    pub fn pods(&self) -> &[TypicalPod] {
        &self.pods
    }

    /// (GPU request, weight) of the typical pods that ask for a GPU, most frequent
    /// first.
    pub fn requests(&self) -> &[(GpuRequest, f64)] {
        &self.requests
    }

    /// Typical GPU requests given explicitly, with their weights (no CPU, any model).
    pub fn from_requests(requests: Vec<(GpuRequest, f64)>) -> Self {
        Self::from_pods(
            requests
                .into_iter()
                .map(|(gpu, weight)| TypicalPod {
                    cpu_milli: 0,
                    gpu,
                    allowed_models: None,
                    weight,
                })
                .collect(),
        )
    }

    /// The typical pods as FGD measured in GPU memory keys them (the sharing study's
    /// target workload): the GPU pods grouped by GPU request alone (CPU and models left
    /// out), the most frequent requests taken until they cover `coverage` (0..=1) of
    /// the GPU pods, each weighted by its share of the GPU pods. Equal counts go in a
    /// fixed request order: count requests by resource and count, then memory shares,
    /// then milli shares.
    pub fn by_gpu_request<'a>(pods: impl IntoIterator<Item = &'a Pod>, coverage: f64) -> Self {
        fn order(r: GpuRequest) -> (u8, u64, u64) {
            match r {
                GpuRequest::None => (0, 0, 0),
                GpuRequest::Whole(n) => (1, 0, u64::from(n)),
                GpuRequest::Devices { resource, count } => {
                    (1, u64::from(resource.0), u64::from(count))
                }
                GpuRequest::Memory { mib, compute_milli } => (2, mib, u64::from(compute_milli)),
                GpuRequest::Milli(m) => (3, u64::from(m), 0),
            }
        }
        let mut counts: HashMap<GpuRequest, u64> = HashMap::new();
        for p in pods {
            if p.gpu != GpuRequest::None {
                *counts.entry(p.gpu).or_default() += 1;
            }
        }
        let total: u64 = counts.values().sum();
        let mut v: Vec<(GpuRequest, u64)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(order(a.0).cmp(&order(b.0))));
        let mut requests = Vec::new();
        let mut covered = 0;
        for (r, c) in v {
            if total > 0 && covered as f64 >= coverage * total as f64 {
                break;
            }
            covered += c;
            requests.push((r, c as f64 / total as f64));
        }
        Self::from_requests(requests)
    }

    /// Expected GPU fragmentation `F(n)` in milli-GPU of a node with GPU model `model`,
    /// `cpu_free_milli` free CPU and per-GPU free milli-GPU `gpus`.
    ///
    /// Computed per group of typical pods with the same GPU request: the GPUs are
    /// scanned once per group and the weight of the group's pods whose CPU fits is one
    /// binary search. Equal, up to floating-point rounding, to summing
    /// `weight · F_n(m)` over the pods one by one.
    pub fn fragmentation(
        &self,
        model: Option<GpuModelId>,
        cpu_free_milli: u64,
        gpus: &[u16],
    ) -> f64 {
        let total: u32 = gpus.iter().map(|&g| u32::from(g)).sum();
        if total == 0 {
            return 0.0;
        }
        let total_f = f64::from(total);
        let mut f = self.cpu_only_weight * total_f;
        for g in &self.groups {
            if !g.allows(model) {
                f += g.weight * total_f;
                continue;
            }
            let (mut fit, mut small) = (0u8, 0u32);
            for &free in gpus {
                let free = u32::from(free);
                if free >= g.milli {
                    fit += 1;
                } else {
                    small += free;
                }
            }
            if fit < g.count {
                f += g.weight * total_f;
                continue;
            }
            // Pods of the group with cpu <= cpu_free fit: only the small GPUs are fragments.
            let k = g.cpu.partition_point(|&c| c <= cpu_free_milli);
            let fits = if k == 0 { 0.0 } else { g.cum_weight[k - 1] };
            f += fits * f64::from(small) + (g.weight - fits) * total_f;
        }
        f
    }

    /// [`TypicalPods::fragmentation`] computed pod by pod, straight from the definition
    /// (the paper's simulator's `NodeGpuShareFragAmountScore`); for tests.
    pub fn fragmentation_by_pod(
        &self,
        model: Option<GpuModelId>,
        cpu_free_milli: u64,
        gpus: &[u16],
    ) -> f64 {
        let total: u32 = gpus.iter().map(|&g| u32::from(g)).sum();
        if total == 0 {
            return 0.0;
        }
        let mut f = 0.0;
        for p in &self.pods {
            let frag = match p.gpu {
                GpuRequest::None => total,
                req => {
                    let allowed = match (model, p.allowed_models) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(m), Some(set)) => set.contains(m),
                    };
                    let milli = req.milli_per_gpu();
                    let fit = gpus.iter().filter(|&&g| u32::from(g) >= milli).count();
                    let small: u32 = gpus
                        .iter()
                        .map(|&g| u32::from(g))
                        .filter(|&g| g < milli)
                        .sum();
                    if allowed
                        && cpu_free_milli >= p.cpu_milli
                        && fit >= usize::from(req.gpu_count())
                    {
                        small
                    } else {
                        total
                    }
                }
            };
            f += p.weight * f64::from(frag);
        }
        f
    }
}

/// FGD's score and reserve plugin.
#[derive(Clone, Debug)]
pub struct FgdScore {
    typical: Arc<TypicalPods>,
    /// `F(n)` of each node's last seen state, so that a node that did not change since
    /// the last cycle (all but one, in a simulation) is not measured again.
    current: Arc<Mutex<Vec<Option<CachedFrag>>>>,
}

/// A node state and its fragmentation.
#[derive(Clone, Copy, Debug)]
struct CachedFrag {
    cpu_free_milli: u64,
    gpus: [u16; MAX_GPUS_PER_NODE],
    frag: f64,
}

/// `⌊100 · sigmoid(Δ/1000)⌋` for a fragmentation decrease `Δ` in milli-GPU.
pub fn fgd_score(delta: f64) -> i64 {
    let s = 1.0 / (1.0 + (-delta / 1000.0).exp());
    (s * MAX_NODE_SCORE as f64) as i64
}

impl FgdScore {
    /// An FGD plugin measuring fragmentation against `typical`.
    pub fn new(typical: Arc<TypicalPods>) -> Self {
        FgdScore {
            typical,
            current: Arc::default(),
        }
    }

    /// `F(n)` of the node's current state, from the cache when the state is unchanged.
    fn current_fragmentation(&self, node: &NodeInfo<'_>) -> f64 {
        let st = node.state;
        let idx = node.id.index();
        let mut cache = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(c)) = cache.get(idx) {
            if c.cpu_free_milli == st.cpu_free_milli && c.gpus == st.gpu_free_milli {
                return c.frag;
            }
        }
        let frag = self
            .typical
            .fragmentation(node.node.gpu_model(), st.cpu_free_milli, st.gpus());
        if cache.len() <= idx {
            cache.resize(idx + 1, None);
        }
        cache[idx] = Some(CachedFrag {
            cpu_free_milli: st.cpu_free_milli,
            gpus: st.gpu_free_milli,
            frag,
        });
        frag
    }

    /// The score of `pod` on `node` and the GPUs it would get there; `None` if the
    /// node's GPUs cannot hold the request.
    pub fn evaluate(&self, pod: &Pod, node: &NodeInfo<'_>) -> Option<(i64, GpuSet)> {
        let st = node.state;
        // FGD measures whole GPUs in milli-GPU: nodes whose device i is GPU i, whole and
        // unreplicated (the FGD paper's nodes). Elsewhere, and for memory shares and
        // named devices, it does not apply.
        let whole_gpus = node.node.devices.iter().enumerate().all(|(i, d)| {
            usize::from(d.gpu) == i
                && d.mig.is_none()
                && d.resource == mlplane_model::ResourceId::GPU
                && matches!(d.sharing, Sharing::Fractional | Sharing::Exclusive)
        });
        if !whole_gpus && pod.gpu != GpuRequest::None {
            return None;
        }
        let model = node.node.gpu_model();
        let before = self.current_fragmentation(node);
        let cpu_after = st.cpu_free_milli.saturating_sub(pod.cpu_milli);
        let mut after = [0u16; MAX_GPUS_PER_NODE];
        let n = st.gpus().len();
        after[..n].copy_from_slice(st.gpus());
        match pod.gpu {
            GpuRequest::Milli(m) => {
                let mut best: Option<(i64, usize)> = None;
                for i in 0..n {
                    let d = &node.node.devices[i];
                    let fits = charge(d, pod.gpu, false)
                        .is_some_and(|c| st.devices[i].can_take(d, c, false));
                    if !fits {
                        continue;
                    }
                    // GPUs with the same free milli give the same result.
                    if st.gpus()[..i].iter().any(|&g| g == st.gpu_free_milli[i]) {
                        continue;
                    }
                    after[i] -= m;
                    let f = self.typical.fragmentation(model, cpu_after, &after[..n]);
                    after[i] += m;
                    let s = fgd_score(before - f);
                    if best.is_none_or(|(b, _)| s > b) {
                        best = Some((s, i));
                    }
                }
                best.map(|(s, i)| (s, GpuSet::single(i)))
            }
            GpuRequest::Whole(k) => {
                // The lowest-indexed idle GPUs.
                let mut set = GpuSet::empty();
                for i in (0..n).filter(|&i| st.devices[i].is_idle()) {
                    if set.len() < usize::from(k) {
                        set.insert(i);
                    }
                }
                if set.len() < usize::from(k) {
                    return None;
                }
                for i in set.iter() {
                    after[i] = 0;
                }
                let f = self.typical.fragmentation(model, cpu_after, &after[..n]);
                Some((fgd_score(before - f), set))
            }
            GpuRequest::None => {
                let f = self.typical.fragmentation(model, cpu_after, &after[..n]);
                Some((fgd_score(before - f), GpuSet::empty()))
            }
            // Memory shares and named devices: not measured in milli-GPU.
            GpuRequest::Memory { .. } | GpuRequest::Devices { .. } => None,
        }
    }
}

impl Plugin for FgdScore {
    fn name(&self) -> &'static str {
        "FGDScore"
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

impl ScorePlugin for FgdScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        self.evaluate(pod, node).map_or(0, |(s, _)| s)
    }
}

impl ReservePlugin for FgdScore {
    /// The GPUs FGD chose, or, where FGD does not apply (see [`FgdScore::evaluate`]),
    /// best-fit devices.
    fn reserve(
        &self,
        cycle: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<(), Status> {
        let grants = match self.evaluate(pod, node) {
            Some((_, g)) => Placement::on_gpus(node.id, node.node, pod.gpu, g).map(|p| p.grants),
            None => select_grants(state, node, pod.gpu, GpuSelectMode::BestFit, rng),
        };
        reserve_grants(cycle, self.name(), pod, node, grants)
    }
}

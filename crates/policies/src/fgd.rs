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
//! Whole GPUs go to the lowest-indexed free GPUs.

use std::collections::HashMap;
use std::sync::Arc;

use mlplane_model::{GpuModelId, GpuRequest, ModelSet, Pod, GPU_MILLI, MAX_GPUS_PER_NODE};
use mlplane_sched::plugins::first_free_gpus;
use mlplane_sched::{
    CycleState, GpuSet, NodeInfo, Plugin, ReservePlugin, ScorePlugin, MAX_NODE_SCORE,
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
                    (_, m) => GpuRequest::Shared(m as u16),
                },
                allowed_models: models,
                weight: n as f64 / covered as f64,
            })
            .collect();
        TypicalPods { pods }
    }

    /// Typical pods given explicitly (weights are used as given).
    pub fn from_pods(pods: Vec<TypicalPod>) -> Self {
        TypicalPods { pods }
    }

    /// The typical pods, most frequent first.
    pub fn pods(&self) -> &[TypicalPod] {
        &self.pods
    }

    /// Expected GPU fragmentation `F(n)` in milli-GPU of a node with GPU model `model`,
    /// `cpu_free_milli` free CPU and per-GPU free milli-GPU `gpus`.
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
                    let (mut fit, mut small) = (0u8, 0u32);
                    for &g in gpus {
                        let g = u32::from(g);
                        if g >= milli {
                            fit += 1;
                        } else {
                            small += g;
                        }
                    }
                    if allowed && cpu_free_milli >= p.cpu_milli && fit >= req.gpu_count() {
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
}

/// `⌊100 · sigmoid(Δ/1000)⌋` for a fragmentation decrease `Δ` in milli-GPU.
pub fn fgd_score(delta: f64) -> i64 {
    let s = 1.0 / (1.0 + (-delta / 1000.0).exp());
    (s * MAX_NODE_SCORE as f64) as i64
}

impl FgdScore {
    /// An FGD plugin measuring fragmentation against `typical`.
    pub fn new(typical: Arc<TypicalPods>) -> Self {
        FgdScore { typical }
    }

    /// The score of `pod` on `node` and the GPUs it would get there; `None` if the
    /// node's GPUs cannot hold the request.
    pub fn evaluate(&self, pod: &Pod, node: &NodeInfo<'_>) -> Option<(i64, GpuSet)> {
        let st = node.state;
        let model = node.node.gpu_model();
        let before = self
            .typical
            .fragmentation(model, st.cpu_free_milli, st.gpus());
        let cpu_after = st.cpu_free_milli.saturating_sub(pod.cpu_milli);
        let mut after = [0u16; MAX_GPUS_PER_NODE];
        let n = st.gpus().len();
        after[..n].copy_from_slice(st.gpus());
        match pod.gpu {
            GpuRequest::Shared(m) => {
                let mut best: Option<(i64, usize)> = None;
                for i in 0..n {
                    if st.gpu_free_milli[i] < m {
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
                let set = first_free_gpus(st, k)?;
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
        }
    }
}

impl Plugin for FgdScore {
    fn name(&self) -> &'static str {
        "FGDScore"
    }
}

impl ScorePlugin for FgdScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        self.evaluate(pod, node).map_or(0, |(s, _)| s)
    }
}

impl ReservePlugin for FgdScore {
    fn reserve(
        &self,
        _: &CycleState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        _: &mut dyn RngCore,
    ) -> Option<GpuSet> {
        self.evaluate(pod, node).map(|(_, g)| g)
    }
}

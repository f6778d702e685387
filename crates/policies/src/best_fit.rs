//! BestFit: the node left with the least free CPU and GPU after placement, as the FGD
//! paper's simulator scores it.
//!
//! Raw score: `⌊100 · (1 − (0.5·(cpu_free − cpu)/C + 0.5·(gpu_free_total − gpu)/G))⌋`
//! with C and G the largest node's CPU and GPU capacity; NormalizeScore then maps the
//! feasible nodes' scores linearly onto `0..=100` (all 0 when they are equal).

use mlplane_model::Pod;
use mlplane_sched::{
    CycleState, NodeInfo, NodeScore, Plugin, ScorePlugin, MAX_NODE_SCORE, MIN_NODE_SCORE,
};

use crate::PolicyContext;

/// The BestFit score plugin.
#[derive(Debug, Clone, Copy)]
pub struct BestFitScore {
    max_cpu: f64,
    max_gpu: f64,
}

impl BestFitScore {
    /// A BestFit plugin normalising by the cluster's largest node.
    pub fn new(ctx: &PolicyContext) -> Self {
        BestFitScore {
            max_cpu: ctx.max_node_cpu_milli as f64,
            max_gpu: ctx.max_node_gpu_milli as f64,
        }
    }
}

impl Plugin for BestFitScore {
    fn name(&self) -> &'static str {
        "BestFitScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for BestFitScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        let cpu_left = node.state.cpu_free_milli.saturating_sub(pod.cpu_milli) as f64;
        let gpu_left = node
            .state
            .gpu_free_total()
            .saturating_sub(u64::from(pod.gpu.total_milli())) as f64;
        let mut s = 0.0;
        s += cpu_left / self.max_cpu * 0.5;
        s += gpu_left / self.max_gpu * 0.5;
        ((1.0 - s) * MAX_NODE_SCORE as f64) as i64
    }

    fn normalize(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) {
        min_max_normalize(scores);
    }
}

/// Maps scores linearly so the lowest becomes 0 and the highest 100 (integer
/// arithmetic); if all are equal, all become 0 (the FGD simulator's `NormalizeScore`).
pub fn min_max_normalize(scores: &mut [NodeScore]) {
    let hi = scores.iter().map(|s| s.score).max().unwrap_or(0);
    let lo = scores.iter().map(|s| s.score).min().unwrap_or(0);
    let range = hi - lo;
    for s in scores {
        s.score = if range == 0 {
            MIN_NODE_SCORE
        } else {
            (s.score - lo) * (MAX_NODE_SCORE - MIN_NODE_SCORE) / range + MIN_NODE_SCORE
        };
    }
}

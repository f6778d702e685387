//! DotProd: the Tetris alignment heuristic (Grandl et al., SIGCOMM 2014,
//! <https://dl.acm.org/doi/10.1145/2619239.2626334>) as the FGD paper's simulator
//! configures it (`dimExtMethod: merge`, `normMethod: max`).
//!
//! With the node's free resources `f = (cpu_free, gpu_free_total)` and the pod's request
//! `r = (cpu, gpu_total)`, each divided by the largest node's capacity, the score is
//! `⌊100 · (1 − (f·r)/2)⌋`: the **smaller** the dot product, the higher the score.

use mlplane_model::Pod;
use mlplane_sched::{CycleState, NodeInfo, Plugin, ScorePlugin, MAX_NODE_SCORE};

use crate::PolicyContext;

/// The DotProd score plugin.
#[derive(Debug, Clone, Copy)]
pub struct DotProdScore {
    max_cpu: f64,
    max_gpu: f64,
}

impl DotProdScore {
    /// A DotProd plugin normalising by the cluster's largest node.
    pub fn new(ctx: &PolicyContext) -> Self {
        DotProdScore {
            max_cpu: ctx.max_node_cpu_milli as f64,
            max_gpu: ctx.max_node_gpu_milli as f64,
        }
    }
}

impl Plugin for DotProdScore {
    fn name(&self) -> &'static str {
        "DotProdScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for DotProdScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        let f = [
            node.state.cpu_free_milli as f64 / self.max_cpu,
            node.state.gpu_free_total() as f64 / self.max_gpu,
        ];
        let r = [
            pod.cpu_milli as f64 / self.max_cpu,
            f64::from(pod.gpu.total_milli()) / self.max_gpu,
        ];
        let dot = (f[0] * r[0] + f[1] * r[1]) / 2.0;
        ((MAX_NODE_SCORE as f64) * (1.0 - dot)) as i64
    }
}

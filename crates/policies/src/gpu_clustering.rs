//! GpuClustering: put pods of the same GPU request class (a share, 1 GPU, 2 GPUs, ...)
//! together, as the FGD paper's simulator scores it.
//!
//! With `u = ⌊25 · (G − gpu_free_total) / G⌋` (G = the largest node's GPU milli), a pod
//! asking for GPUs scores:
//! - `75 + u` on a node whose pods are all of its class;
//! - `50 + u` on a node that has its class among others;
//! - `25 + u` on a node with no GPU pods;
//! - `u` on a node with only other classes.
//!
//! CPU-only pods score 0 everywhere (the framework then picks at random).

use mlplane_model::{GpuRequest, Pod};
use mlplane_sched::state::gpu_class;
use mlplane_sched::{CycleState, NodeInfo, Plugin, ScorePlugin};

use crate::PolicyContext;

/// The GpuClustering score plugin.
#[derive(Debug, Clone, Copy)]
pub struct GpuClusteringScore {
    max_gpu: i64,
}

impl GpuClusteringScore {
    /// A GpuClustering plugin for the cluster of `ctx`.
    pub fn new(ctx: &PolicyContext) -> Self {
        GpuClusteringScore {
            max_gpu: ctx.max_node_gpu_milli as i64,
        }
    }
}

impl Plugin for GpuClusteringScore {
    fn name(&self) -> &'static str {
        "GpuClusteringScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for GpuClusteringScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        let Some(class) = gpu_class(pod.gpu) else {
            debug_assert_eq!(pod.gpu, GpuRequest::None);
            return 0;
        };
        let used = 25 * (self.max_gpu - node.state.gpu_free_total() as i64) / self.max_gpu;
        let classes = node.state.gpu_class_count();
        let tier = if node.state.pods_by_gpu_class[class] > 0 {
            if classes == 1 {
                75
            } else {
                50
            }
        } else if classes == 0 {
            25
        } else {
            0
        };
        tier + used
    }
}

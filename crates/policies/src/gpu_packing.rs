//! GpuPacking: prefer partly used GPUs, then free GPUs on partly used nodes, then idle
//! nodes, as the FGD paper's simulator scores it. From high to low:
//!
//! 1. the pod fits on partly used GPUs only: `max(100 − Σ⌊100·free_g/1000⌋/10, 50)`
//!    over the GPUs it would use (the tightest that fit);
//! 2. it needs `k` entirely free GPUs of a partly used node: `max(50 − k, 33)`;
//! 3. every GPU of the node is free (`n` GPUs): `max(33 − n, n)`.
//!
//! CPU-only pods score 0 everywhere.

use mlplane_model::{Pod, GPU_MILLI};
use mlplane_sched::{CycleState, NodeInfo, NodeState, Plugin, ScorePlugin};

/// The GpuPacking score plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuPackingScore;

impl Plugin for GpuPackingScore {
    fn name(&self) -> &'static str {
        "GpuPackingScore"
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

/// GpuPacking's score of `state` for a request of `count` GPUs of `milli` each.
pub fn packing_score(state: &NodeState, count: u8, milli: u32) -> i64 {
    let free = state.fully_free_gpus() as i64;
    if free == i64::from(state.gpu_count) {
        return (33 - free).max(free);
    }
    let mut order: Vec<usize> = (0..usize::from(state.gpu_count)).collect();
    order.sort_by_key(|&i| state.gpu_free_milli[i]); // stable: lowest index first on ties
    let mut need = count;
    let mut fully_free_used = 0i64;
    let mut free_pct_sum = 0i64;
    for i in order {
        if need == 0 {
            break;
        }
        let g = u32::from(state.gpu_free_milli[i]);
        if milli <= g {
            need -= 1;
            if g == GPU_MILLI {
                fully_free_used += 1;
            }
            free_pct_sum += i64::from(g) * 100 / i64::from(GPU_MILLI);
        }
    }
    if need != 0 {
        return 0; // filtered out before scoring; kept total for safety
    }
    if fully_free_used > 0 {
        return (50 - fully_free_used).max(33);
    }
    (100 - free_pct_sum / 10).max(50)
}

impl ScorePlugin for GpuPackingScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        if pod.gpu.gpu_count() == 0 {
            return 0;
        }
        packing_score(node.state, pod.gpu.gpu_count(), pod.gpu.milli_per_gpu())
    }
}

//! kube-scheduler's `NodeResourcesFit` scoring strategies `LeastAllocated` (spread) and
//! `MostAllocated` (bin-pack), for reference
//! (<https://kubernetes.io/docs/reference/config-api/kube-scheduler-config.v1/#kubescheduler-config-k8s-io-v1-ScoringStrategy>).
//!
//! For each resource r (CPU, memory, GPU milli; weight 1 each) with capacity `c` and
//! requested-after-placement `q`: LeastAllocated scores `⌊(c − q)·100/c⌋`,
//! MostAllocated `⌊q·100/c⌋`; the node's score is the weighted mean (integer division).
//! A resource the node has none of (GPU on a CPU-only node) is left out.

use mlplane_model::Pod;
use mlplane_sched::{CycleState, NodeInfo, Plugin, ScorePlugin, MAX_NODE_SCORE};

/// Which end of the allocation the strategy favours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Favour nodes with the most free capacity.
    LeastAllocated,
    /// Favour nodes with the least free capacity.
    MostAllocated,
}

/// A `NodeResourcesFit` score plugin with a scoring strategy.
#[derive(Debug, Clone, Copy)]
pub struct NodeResourcesScore {
    strategy: Strategy,
}

impl NodeResourcesScore {
    /// The `LeastAllocated` strategy.
    pub fn least_allocated() -> Self {
        NodeResourcesScore {
            strategy: Strategy::LeastAllocated,
        }
    }
    /// The `MostAllocated` strategy.
    pub fn most_allocated() -> Self {
        NodeResourcesScore {
            strategy: Strategy::MostAllocated,
        }
    }
}

impl Plugin for NodeResourcesScore {
    fn name(&self) -> &'static str {
        match self.strategy {
            Strategy::LeastAllocated => "NodeResourcesLeastAllocated",
            Strategy::MostAllocated => "NodeResourcesMostAllocated",
        }
    }
    fn node_local(&self) -> bool {
        true
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for NodeResourcesScore {
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        let s = node.state;
        let n = node.node;
        let gpu_cap = n.gpu_milli();
        let resources = [
            (n.cpu_milli, n.cpu_milli - s.cpu_free_milli + pod.cpu_milli),
            (
                n.memory_mib,
                n.memory_mib - s.memory_free_mib + pod.memory_mib,
            ),
            (
                gpu_cap,
                gpu_cap - s.gpu_free_total() + u64::from(pod.gpu.total_milli()),
            ),
        ];
        let (mut sum, mut weights) = (0i64, 0i64);
        for (cap, req) in resources {
            if cap == 0 {
                continue;
            }
            let (cap, req) = (cap as i64, (req as i64).min(cap as i64));
            sum += match self.strategy {
                Strategy::LeastAllocated => (cap - req) * MAX_NODE_SCORE / cap,
                Strategy::MostAllocated => req * MAX_NODE_SCORE / cap,
            };
            weights += 1;
        }
        if weights == 0 {
            0
        } else {
            sum / weights
        }
    }
}

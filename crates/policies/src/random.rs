//! Random: a uniformly random feasible node, and a random fitting GPU for a share.
//!
//! As in the FGD paper's simulator, the node is drawn once at PreScore; Score then gives
//! it 100 and every other node 0.

use mlplane_model::Pod;
use mlplane_sched::{
    CycleState, NodeId, NodeInfo, Plugin, PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
    MIN_NODE_SCORE,
};
use rand::{Rng, RngCore};

const KEY: &str = "RandomScore";

/// The Random policy's PreScore and Score plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomScore;

impl Plugin for RandomScore {
    fn name(&self) -> &'static str {
        "RandomScore"
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for RandomScore {
    fn pre_score(
        &self,
        cycle: &mut CycleState,
        _: &Pod,
        feasible: &[NodeInfo<'_>],
        rng: &mut dyn RngCore,
    ) -> Result<(), Status> {
        let pick = feasible[rng.gen_range(0..feasible.len())].id;
        cycle.write(KEY, pick);
        Ok(())
    }
}

impl ScorePlugin for RandomScore {
    fn score(&self, cycle: &CycleState, _: &Pod, node: &NodeInfo<'_>) -> i64 {
        if cycle.read::<NodeId>(KEY) == Some(&node.id) {
            MAX_NODE_SCORE
        } else {
            MIN_NODE_SCORE
        }
    }
}

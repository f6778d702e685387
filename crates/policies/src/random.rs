//! Random: a uniformly random feasible node, and a random fitting GPU for a share.
//!
//! As in the FGD paper's simulator, the node is drawn once at PreScore and ends with
//! 100, every other node with 0. The raw Score is 0 everywhere (so it is node-local and
//! the scheduler may reuse it); NormalizeScore, which runs every cycle, reads the draw
//! once and gives the drawn node 100.

use mlplane_model::Pod;
use mlplane_sched::{
    CycleState, NodeId, NodeInfo, NodeScore, Plugin, PreScorePlugin, ScorePlugin, Status,
    MAX_NODE_SCORE, MIN_NODE_SCORE,
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
    fn score(&self, _: &CycleState, _: &Pod, _: &NodeInfo<'_>) -> i64 {
        MIN_NODE_SCORE
    }

    fn normalize(&self, cycle: &CycleState, _: &Pod, scores: &mut [NodeScore]) {
        let drawn = cycle.read::<NodeId>(KEY).copied();
        for s in scores {
            s.score = if Some(s.node) == drawn {
                MAX_NODE_SCORE
            } else {
                MIN_NODE_SCORE
            };
        }
    }
}

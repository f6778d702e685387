//! Selecting among best nodes: `select_host` (uniform) and `select_host_by_rank`
//! (`TieBreak::Rank`).

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
use mlplane_sched::framework::{select_host, select_host_by_rank};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{ClusterState, NodeId, NodeInfo, Profile, Scheduler, TieBreak};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `n` nodes of 8 cores and 2 GPUs.
fn nodes(n: usize) -> ClusterState {
    let cluster = Cluster::new(
        vec![GpuModel {
            name: "T4".into(),
            memory_mib: Some(15_109),
        }],
        (0..n)
            .map(|i| Node::new(format!("n{i}"), 8000, 16_384).with_gpus(GpuModelId(0), 2, 15_109))
            .collect(),
    )
    .unwrap();
    ClusterState::new(Arc::new(cluster))
}

#[test]
fn by_rank_takes_the_highest_total_then_the_lowest_rank() {
    let st = nodes(3);
    let all: Vec<NodeInfo<'_>> = st.iter().collect();
    assert_eq!(select_host_by_rank(&[5, 7, 7], &all, &[2, 1, 0]), 2);
    assert_eq!(select_host_by_rank(&[5, 7, 7], &all, &[0, 1, 2]), 1);
    assert_eq!(select_host_by_rank(&[5, 7, 7], &all, &[0, 2, 1]), 2);
    assert_eq!(select_host_by_rank(&[9, 7, 7], &all, &[2, 1, 0]), 0);
    assert_eq!(select_host_by_rank(&[4, 4, 4], &all, &[1, 2, 0]), 2);
    assert_eq!(select_host_by_rank(&[4], &all[..1], &[0, 1, 2]), 0);
    // a feasible subset: the rank is looked up by node id, the result is an index into
    // the subset. n0 (rank 1) beats n2 (rank 2).
    let subset = [all[0], all[2]];
    assert_eq!(select_host_by_rank(&[3, 3], &subset, &[1, 0, 2]), 0);
    assert_eq!(select_host_by_rank(&[3, 3], &subset, &[2, 0, 1]), 1);
}

#[test]
fn uniform_takes_the_highest_total_and_reaches_every_tie() {
    let mut seen = [0usize; 4];
    for seed in 0..200 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        seen[select_host(&[3, 8, 1, 8], &mut rng)] += 1;
    }
    assert_eq!((seen[0], seen[2]), (0, 0), "{seen:?}");
    assert!(seen[1] > 0 && seen[3] > 0, "{seen:?}");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(select_host(&[3, 9, 1, 8], &mut rng), 1);
}

#[test]
fn scheduler_with_rank_is_independent_of_the_rng() {
    // no score plugin: every feasible node ties at 0
    let mut st = nodes(4);
    let rank: Arc<[u32]> = vec![3, 1, 0, 2].into();
    let cluster = st.cluster_arc().clone();
    let prof = || {
        Profile::new("t")
            .with_all(plugins::default_filters(&cluster))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
    };
    let pod = Pod::new("p", 1000, 1024, GpuRequest::Whole(2));
    let mut sched = Scheduler::new(prof()).with_tie_break(TieBreak::Rank(rank.clone()));
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        assert_eq!(sched.evaluate(&st, &pod, &mut rng).unwrap().node, NodeId(2));
    }
    // fill n2 (schedule assumes): the next rank, n1, takes over
    let filler = pod.renewed();
    let p = sched
        .schedule(&mut st, &filler, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert_eq!(p.node, NodeId(2));
    assert_eq!(
        st.bound(filler.id).map(|b| b.placement.node),
        Some(NodeId(2))
    );
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        assert_eq!(sched.evaluate(&st, &pod, &mut rng).unwrap().node, NodeId(1));
    }
    // the uniform scheduler does reach other nodes
    let mut uniform = Scheduler::new(prof());
    let reached: std::collections::BTreeSet<_> = (0..40)
        .map(|seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            uniform.evaluate(&st, &pod, &mut rng).unwrap().node
        })
        .collect();
    assert_eq!(
        reached.into_iter().collect::<Vec<_>>(),
        [NodeId(0), NodeId(1), NodeId(3)]
    );
}

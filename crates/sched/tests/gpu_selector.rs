//! The GPU selection rules of `plugins::GpuSelector` and `plugins::first_free_gpus`.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, NodeGpus, Pod};
use mlplane_sched::plugins::{first_free_gpus, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, NodeId, Placement, Profile, ReservePlugin, Scheduler,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use GpuRequest::{None as NoGpu, Shared, Whole};
use GpuSelectMode::{BestFit, Random, WorstFit};

/// One node whose GPUs have `free` milli-GPU free.
fn node_with_free(free: &[u16]) -> ClusterState {
    let cluster = Cluster::new(
        vec![GpuModel {
            name: "T4".into(),
            memory_mib: None,
        }],
        vec![Node {
            name: "n0".into(),
            cpu_milli: 64_000,
            memory_mib: 65_536,
            gpus: Some(NodeGpus {
                model: GpuModelId(0),
                count: free.len() as u8,
            }),
        }],
    )
    .unwrap();
    let mut st = ClusterState::new(Arc::new(cluster));
    for (g, &f) in free.iter().enumerate() {
        if f < 1000 {
            // A fully used GPU is one whole GPU; a share is 1..=999 milli.
            let req = if f == 0 { Whole(1) } else { Shared(1000 - f) };
            let used = Pod::new("u", 0, 0, req);
            st.assume(
                &used,
                Placement {
                    node: NodeId(0),
                    gpus: GpuSet::single(g),
                },
            )
            .unwrap();
        }
    }
    st
}

fn set(idx: &[usize]) -> GpuSet {
    let mut s = GpuSet::empty();
    for &i in idx {
        s.insert(i);
    }
    s
}

fn reserve(mode: GpuSelectMode, st: &ClusterState, gpu: GpuRequest, seed: u64) -> Option<GpuSet> {
    let pod = Pod::new("p", 1000, 1024, gpu);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    GpuSelector(mode).reserve(&CycleState::default(), &pod, &st.node(NodeId(0)), &mut rng)
}

/// Asserts the GPUs `mode` picks for `gpu` on a node with `free` GPUs.
fn check(mode: GpuSelectMode, free: &[u16], gpu: GpuRequest, want: Option<&[usize]>) {
    let st = node_with_free(free);
    assert_eq!(
        reserve(mode, &st, gpu, 0),
        want.map(set),
        "{mode:?} of {gpu} on free {free:?}"
    );
}

const FREE: [u16; 6] = [600, 300, 1000, 800, 1000, 1000];

#[test]
fn best_fit_picks_the_tightest_fitting_gpu() {
    check(BestFit, &FREE, Shared(250), Some(&[1])); // 300 is the least free that fits
    check(BestFit, &FREE, Shared(300), Some(&[1])); // exact fit
    check(BestFit, &FREE, Shared(500), Some(&[0])); // 300 too small; 600
    check(BestFit, &FREE, Shared(700), Some(&[3])); // 800
    check(BestFit, &FREE, Shared(900), Some(&[2])); // only free GPUs: lowest index
    check(BestFit, &[500, 400, 500], Shared(450), Some(&[0])); // tie: lowest index
    check(BestFit, &[300, 200], Shared(400), None);
}

#[test]
fn worst_fit_picks_the_emptiest_gpu() {
    check(WorstFit, &FREE, Shared(250), Some(&[2])); // 1000, lowest of 2, 4, 5
    check(WorstFit, &[600, 300, 800], Shared(250), Some(&[2]));
    check(WorstFit, &[600, 800, 800], Shared(250), Some(&[1])); // tie: lowest index
    check(WorstFit, &[300, 200], Shared(400), None);
}

#[test]
fn random_picks_only_fitting_gpus_and_reaches_all() {
    let st = node_with_free(&FREE);
    let mut seen = [0usize; 6];
    for seed in 0..200 {
        let s = reserve(Random, &st, Shared(700), seed).unwrap();
        assert_eq!(s.len(), 1);
        seen[s.iter().next().unwrap()] += 1;
    }
    // 700 fits on GPUs 2, 3, 4, 5 (free 1000, 800, 1000, 1000)
    assert_eq!((seen[0], seen[1]), (0, 0), "{seen:?}");
    assert!(seen[2..].iter().all(|&n| n > 0), "{seen:?}");
    assert_eq!(
        reserve(Random, &node_with_free(&[300]), Shared(400), 0),
        None
    );
}

#[test]
fn whole_gpus_are_the_lowest_indexed_fully_free_ones() {
    for mode in [BestFit, WorstFit, Random] {
        check(mode, &FREE, Whole(1), Some(&[2]));
        check(mode, &FREE, Whole(2), Some(&[2, 4]));
        check(mode, &FREE, Whole(3), Some(&[2, 4, 5]));
        check(mode, &FREE, Whole(4), None); // 3 fully free GPUs
        check(mode, &[1000; 8], Whole(8), Some(&[0, 1, 2, 3, 4, 5, 6, 7]));
        check(mode, &[999, 1000], Whole(2), None); // 999 is not fully free
        check(mode, &FREE, NoGpu, Some(&[]));
    }
    let st = node_with_free(&FREE);
    assert_eq!(
        first_free_gpus(st.node(NodeId(0)).state, 2),
        Some(set(&[2, 4]))
    );
    assert_eq!(
        first_free_gpus(st.node(NodeId(0)).state, 0),
        Some(GpuSet::empty())
    );
    assert_eq!(first_free_gpus(st.node(NodeId(0)).state, 4), None);
}

#[test]
fn two_whole_gpus_are_always_two_distinct_gpus() {
    // every free pattern of a 4-GPU node in {0, 500, 1000}
    for code in 0..81u32 {
        let free: Vec<u16> = (0..4)
            .map(|g| [0, 500, 1000][(code / 3u32.pow(g) % 3) as usize])
            .collect();
        let st = node_with_free(&free);
        let fully_free: Vec<usize> = (0..4).filter(|&g| free[g] == 1000).collect();
        for mode in [BestFit, WorstFit, Random] {
            let got = reserve(mode, &st, Whole(2), u64::from(code));
            if fully_free.len() >= 2 {
                let s = got.unwrap_or_else(|| panic!("{mode:?} {free:?}"));
                assert_eq!(s.len(), 2, "{mode:?} {free:?}: {s:?}");
                assert_eq!(s, set(&fully_free[..2]), "{mode:?} {free:?}");
            } else {
                assert_eq!(got, None, "{mode:?} {free:?}");
            }
        }
    }
}

#[test]
fn scheduler_commits_the_selected_gpus() {
    // one node: the scheduler's placement is the selector's choice
    let mut st = node_with_free(&FREE);
    let mut sched = Scheduler::new(Profile::new("t", Box::new(GpuSelector(BestFit))));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let p = Pod::new("p", 1000, 1024, Shared(250));
    let placement = sched.schedule(&st, &p, &mut rng).unwrap();
    assert_eq!(
        placement,
        Placement {
            node: NodeId(0),
            gpus: set(&[1])
        }
    );
    st.assume(&p, placement).unwrap();
    // GPU1 had 300 free: now 50
    assert_eq!(
        st.node(NodeId(0)).state.gpus(),
        &[600, 50, 1000, 800, 1000, 1000]
    );
    let w = Pod::new("w", 1000, 1024, Whole(2));
    let placement = sched.schedule(&st, &w, &mut rng).unwrap();
    assert_eq!(placement.gpus, set(&[2, 4]));
    st.assume(&w, placement).unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[600, 50, 0, 800, 0, 1000]);
}

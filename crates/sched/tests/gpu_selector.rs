//! The GPU selection rules of `plugins::GpuSelector`.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, Grant, NodeId, Placement, Profile, ReservePlugin, Scheduler,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use GpuRequest::{Milli, None as NoGpu, Whole};
use GpuSelectMode::{BestFit, Random, WorstFit};

/// GPU memory of each device, MiB: a share of `m` milli is charged `16 * m` MiB.
const GPU_MIB: u64 = 16_000;

/// One node whose GPUs have `free` milli-GPU free.
fn node_with_free(free: &[u16]) -> ClusterState {
    let cluster = Cluster::new(
        vec![GpuModel {
            name: "T4".into(),
            memory_mib: Some(GPU_MIB),
        }],
        vec![Node::new("n0", 64_000, 65_536).with_gpus(GpuModelId(0), free.len() as u8, GPU_MIB)],
    )
    .unwrap();
    let mut st = ClusterState::new(Arc::new(cluster));
    for (g, &f) in free.iter().enumerate() {
        if f < 1000 {
            // A fully used GPU is one whole GPU; a share is 1..=999 milli.
            let req = if f == 0 { Whole(1) } else { Milli(1000 - f) };
            let used = Pod::new("u", 0, 0, req);
            let node = &st.cluster().nodes()[0];
            let p = Placement::on_gpus(NodeId(0), node, req, GpuSet::single(g)).unwrap();
            st.assume(&used, p).unwrap();
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

/// The GPUs `mode` reserves for a pod asking `gpu` on node 0, `None` if it fails. The
/// grants must be ones `assume` accepts.
fn reserve(mode: GpuSelectMode, st: &ClusterState, gpu: GpuRequest, seed: u64) -> Option<GpuSet> {
    let pod = Pod::new("p", 1000, 1024, gpu);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cycle = CycleState::default();
    let info = st.node(NodeId(0));
    GpuSelector(mode)
        .reserve(&mut cycle, st, &pod, &info, &mut rng)
        .ok()?;
    let p = Placement {
        node: NodeId(0),
        grants: cycle.grants().expect("reserve set the grants").to_vec(),
    };
    st.clone()
        .assume(&pod, p.clone())
        .unwrap_or_else(|e| panic!("{mode:?}: reserved {p:?}, refused: {e}"));
    Some(p.gpus(info.node))
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
    check(BestFit, &FREE, Milli(250), Some(&[1])); // 300 is the least free that fits
    check(BestFit, &FREE, Milli(300), Some(&[1])); // exact fit
    check(BestFit, &FREE, Milli(500), Some(&[0])); // 300 too small; 600
    check(BestFit, &FREE, Milli(700), Some(&[3])); // 800
    check(BestFit, &FREE, Milli(900), Some(&[2])); // only free GPUs: lowest index
    check(BestFit, &[500, 400, 500], Milli(450), Some(&[0])); // tie: lowest index
    check(BestFit, &[300, 200], Milli(400), None);
}

#[test]
fn worst_fit_picks_the_emptiest_gpu() {
    check(WorstFit, &FREE, Milli(250), Some(&[2])); // 1000, lowest of 2, 4, 5
    check(WorstFit, &[600, 300, 800], Milli(250), Some(&[2]));
    check(WorstFit, &[600, 800, 800], Milli(250), Some(&[1])); // tie: lowest index
    check(WorstFit, &[300, 200], Milli(400), None);
}

#[test]
fn random_picks_only_fitting_gpus_and_reaches_all() {
    let st = node_with_free(&FREE);
    let mut seen = [0usize; 6];
    for seed in 0..200 {
        let s = reserve(Random, &st, Milli(700), seed).unwrap();
        assert_eq!(s.len(), 1);
        seen[s.iter().next().unwrap()] += 1;
    }
    // 700 fits on GPUs 2, 3, 4, 5 (free 1000, 800, 1000, 1000)
    assert_eq!((seen[0], seen[1]), (0, 0), "{seen:?}");
    assert!(seen[2..].iter().all(|&n| n > 0), "{seen:?}");
    assert_eq!(
        reserve(Random, &node_with_free(&[300]), Milli(400), 0),
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
    // one node: the scheduler's placement is the selector's choice, and schedule
    // assumes it
    let mut st = node_with_free(&FREE);
    let profile = Profile::new("t")
        .with_all(plugins::default_filters(st.cluster()))
        .with(Arc::new(GpuSelector(BestFit)), 1);
    let mut sched = Scheduler::new(profile);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let p = Pod::new("p", 1000, 1024, Milli(250));
    let placement = sched.schedule(&mut st, &p, &mut rng).unwrap();
    assert_eq!(
        placement,
        Placement {
            node: NodeId(0),
            // 250 milli of a 16000 MiB GPU: 250 milli and 16000*250/1000 = 4000 MiB
            grants: vec![Grant {
                device: 1,
                replica: 0,
                memory_mib: 4000,
                compute_milli: 250,
            }],
        }
    );
    // GPU1 had 300 free: now 50
    assert_eq!(
        st.node(NodeId(0)).state.gpus(),
        &[600, 50, 1000, 800, 1000, 1000]
    );
    let w = Pod::new("w", 1000, 1024, Whole(2));
    let placement = sched.schedule(&mut st, &w, &mut rng).unwrap();
    assert_eq!(placement.gpus(&st.cluster().nodes()[0]), set(&[2, 4]));
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[600, 50, 0, 800, 0, 1000]);
    assert_eq!(st.bound(w.id).map(|b| &b.placement), Some(&placement));
}

//! Property tests of the framework alone (no policy): `ClusterState::assume` agrees with
//! an independent brute-force model, `forget` undoes it, GPU selectors follow their
//! rules, and a scheduling cycle finds a node exactly when one can hold the pod.

#[path = "common/shadow.rs"]
mod shadow;

use std::cmp::Reverse;
use std::sync::Arc;

use mlplane_model::{Cluster, GpuRequest, Pod};
use mlplane_sched::plugins::{GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, NodeId, NodeState, Placement, Profile, ReservePlugin,
    ScheduleError, Scheduler,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shadow::*;
use GpuSelectMode::{BestFit, Random, WorstFit};

const CASES: u32 = 64;

/// A placement attempt: the pod, a node index (may be out of range), GPU indices (may
/// be out of range), and whether to trim the indices to the request's GPU count.
#[derive(Clone, Debug)]
enum Op {
    Assume(Pod, u32, Vec<usize>, bool),
    /// A share of a GPU's current free milli-GPU plus `delta` (-1, 0 or 1), if that is
    /// in `1..=999`: exercises the exact-fit boundary.
    Edge(u32, usize, i32),
    Forget(usize),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    let assume = (
        arb_pod(),
        0u32..7,
        prop::collection::vec(0usize..9, 0..=8),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(p, n, g, trim)| Op::Assume(p, n, g, trim));
    prop::collection::vec(
        prop_oneof![
            5 => assume,
            2 => (0u32..6, 0usize..8, -1i32..=1).prop_map(|(n, g, d)| Op::Edge(n, g, d)),
            1 => any::<usize>().prop_map(Op::Forget),
        ],
        1..=40,
    )
}

fn gpu_set(idx: &[usize], want: usize, trim: bool) -> GpuSet {
    let mut s = GpuSet::empty();
    for &i in idx {
        if trim && s.len() == want {
            break;
        }
        s.insert(i);
    }
    s
}

/// A share of GPU `gpu` of node `node`'s free milli-GPU plus `delta`, if both exist
/// and the share is in `1..=999`.
fn edge_pod(st: &ClusterState, node: u32, gpu: usize, delta: i32) -> Option<Pod> {
    if node as usize >= st.len() {
        return None;
    }
    let free = *st.node(NodeId(node)).state.gpus().get(gpu)?;
    let share = i32::from(free) + delta;
    (1..=999)
        .contains(&share)
        .then(|| Pod::new("edge", 0, 0, GpuRequest::Shared(share as u16)))
}

fn node_states(st: &ClusterState) -> Vec<NodeState> {
    st.iter().map(|n| n.state.clone()).collect()
}

const MODES: [GpuSelectMode; 3] = [BestFit, WorstFit, Random];

/// Fills `cluster` with the valid placements among `ops`, then checks every selector
/// mode's choice for `gpu` on every node.
fn check_selector_rules(cluster: Arc<Cluster>, ops: Vec<Op>, gpu: GpuRequest, seed: u64) {
    let mut st = ClusterState::new(cluster);
    for op in ops {
        if let Op::Assume(pod, node, idx, _) = op {
            let gpus = gpu_set(&idx, usize::from(pod.gpu.gpu_count()), true);
            let _ = st.assume(
                &pod,
                Placement {
                    node: NodeId(node),
                    gpus,
                },
            );
        }
    }
    let pod = Pod::new("p", 0, 0, gpu);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for info in st.iter() {
        let free = info.state.gpus();
        for mode in MODES {
            let got = GpuSelector(mode).reserve(&CycleState::default(), &pod, &info, &mut rng);
            let what = format!("{mode:?} of {gpu} on free {free:?}");
            match gpu {
                GpuRequest::None => assert_eq!(got, Some(GpuSet::empty()), "{what}"),
                GpuRequest::Whole(n) => {
                    let fully: Vec<usize> = (0..free.len()).filter(|&g| free[g] == 1000).collect();
                    let want = (fully.len() >= usize::from(n)).then(|| {
                        let mut want = GpuSet::empty();
                        for &g in &fully[..usize::from(n)] {
                            want.insert(g);
                        }
                        want
                    });
                    assert_eq!(got, want, "{what}");
                }
                GpuRequest::Shared(m) => {
                    let fit: Vec<usize> = (0..free.len()).filter(|&g| free[g] >= m).collect();
                    let Some(s) = got else {
                        assert!(fit.is_empty(), "{what}: none picked");
                        continue;
                    };
                    assert_eq!(s.len(), 1, "{what}");
                    let g = s.iter().next().unwrap();
                    assert!(fit.contains(&g), "{what}: GPU {g} does not fit");
                    let tightest = fit.iter().copied().min_by_key(|&i| (free[i], i));
                    let emptiest = fit.iter().copied().min_by_key(|&i| (Reverse(free[i]), i));
                    match mode {
                        BestFit => assert_eq!(Some(g), tightest, "{what}"),
                        WorstFit => assert_eq!(Some(g), emptiest, "{what}"),
                        Random => {}
                    }
                }
            }
        }
    }
}

/// Schedules `events` with a score-less profile using `mode`, checking after each.
fn check_schedule(cluster: Arc<Cluster>, events: Vec<Event>, mode: GpuSelectMode, seed: u64) {
    let mut st = ClusterState::new(cluster.clone());
    let mut sched = Scheduler::new(Profile::new("t", Box::new(GpuSelector(mode))));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut live: Vec<(Pod, Placement)> = Vec::new();
    for ev in events {
        match ev {
            Event::Arrive(pod) => {
                let u = usage(&cluster, &live);
                let fits = fits_anywhere(&cluster, &u, &pod);
                match sched.schedule(&st, &pod, &mut rng) {
                    Ok(p) => {
                        assert!(fits, "{pod:?} placed at {p:?} but fits nowhere");
                        check_shape(&cluster, &pod, p);
                        assert_eq!(valid(&cluster, &u, &pod, p), Ok(()), "{pod:?} {p:?}");
                        st.assume(&pod, p).expect("assume of a scheduled placement");
                        live.push((pod, p));
                    }
                    Err(ScheduleError::Unschedulable { nodes, .. }) => {
                        assert!(!fits, "{pod:?} unschedulable but fits");
                        assert_eq!(nodes, cluster.nodes().len());
                    }
                    Err(e) => panic!("{pod:?}: {e}"),
                }
            }
            Event::Depart(k) => {
                if !live.is_empty() {
                    let (pod, p) = live.remove(k % live.len());
                    st.forget(&pod, p);
                }
            }
        }
        check_state(&st, &live);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `assume` accepts exactly the placements the brute-force model calls valid,
    /// leaves the state unchanged when it refuses, and `forget` undoes it.
    #[test]
    fn assume_agrees_with_the_model(cluster in arb_cluster(), ops in arb_ops()) {
        let mut st = ClusterState::new(cluster.clone());
        let mut live: Vec<(Pod, Placement)> = Vec::new();
        for op in ops {
            match op {
                Op::Assume(pod, node, idx, trim) => {
                    let p = Placement {
                        node: NodeId(node),
                        gpus: gpu_set(&idx, usize::from(pod.gpu.gpu_count()), trim),
                    };
                    let want = valid(&cluster, &usage(&cluster, &live), &pod, p);
                    let before = node_states(&st);
                    let got = st.assume(&pod, p);
                    prop_assert_eq!(got.is_ok(), want.is_ok(),
                        "assume({:?}, {:?}) = {:?}, model says {:?}", pod, p, got, want);
                    if got.is_ok() {
                        live.push((pod, p));
                    } else {
                        prop_assert_eq!(node_states(&st), before);
                    }
                }
                Op::Edge(node, gpu, delta) => {
                    if let Some(pod) = edge_pod(&st, node, gpu, delta) {
                        let p = Placement { node: NodeId(node), gpus: GpuSet::single(gpu) };
                        let want = valid(&cluster, &usage(&cluster, &live), &pod, p);
                        let got = st.assume(&pod, p);
                        prop_assert_eq!(got.is_ok(), want.is_ok(),
                            "assume({:?}, {:?}) = {:?}, model says {:?}", pod, p, got, want);
                        if got.is_ok() {
                            live.push((pod, p));
                        }
                    }
                }
                Op::Forget(k) => {
                    if !live.is_empty() {
                        let (pod, p) = live.remove(k % live.len());
                        st.forget(&pod, p);
                    }
                }
            }
            check_state(&st, &live);
        }
        // forgetting everything gives back the empty state
        for (pod, p) in live.drain(..).rev() {
            st.forget(&pod, p);
        }
        check_state(&st, &live);
        prop_assert_eq!(node_states(&st), node_states(&ClusterState::new(cluster)));
    }

    /// Every selector mode follows its rule on any node state.
    #[test]
    fn gpu_selector_rules(
        cluster in arb_cluster(),
        ops in arb_ops(),
        gpu in arb_gpu(),
        seed in any::<u64>(),
    ) {
        check_selector_rules(cluster, ops, gpu, seed);
    }

    /// With the default filters and any selector, a pod is placed iff some node can hold
    /// it, and the placement is one `assume` accepts.
    #[test]
    fn schedule_places_exactly_the_pods_that_fit(
        cluster in arb_cluster(),
        events in arb_events(40),
        mode in prop::sample::select(vec![BestFit, WorstFit, Random]),
        seed in any::<u64>(),
    ) {
        check_schedule(cluster, events, mode, seed);
    }
}

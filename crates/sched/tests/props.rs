//! Property tests of the framework alone (no policy): `ClusterState::assume` agrees with
//! an independent brute-force model, `forget` undoes it, GPU selectors follow their
//! rules, and a scheduling cycle finds a node exactly when one can hold the pod.

#[path = "common/shadow.rs"]
mod shadow;

use mlplane_model::{GpuRequest, Pod};
use mlplane_sched::plugins::{GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, NodeId, NodeState, Placement, Profile, ReservePlugin,
    ScheduleError, Scheduler,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shadow::*;

const CASES: u32 = 64;

/// A placement attempt: the pod, a node index (may be out of range), GPU indices (may
/// be out of range), and whether to trim the indices to the request's GPU count.
#[derive(Clone, Debug)]
enum Op {
    Assume(Pod, u32, Vec<usize>, bool),
    Forget(usize),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            5 => (arb_pod(), 0u32..7, prop::collection::vec(0usize..9, 0..=8), prop::bool::weighted(0.8))
                .prop_map(|(p, n, g, trim)| Op::Assume(p, n, g, trim)),
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

fn node_states(st: &ClusterState) -> Vec<NodeState> {
    st.iter().map(|n| n.state.clone()).collect()
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
        // fill the cluster with whatever valid placements the ops give
        let mut st = ClusterState::new(cluster);
        for op in ops {
            if let Op::Assume(pod, node, idx, _) = op {
                let p = Placement { node: NodeId(node), gpus: gpu_set(&idx, usize::from(pod.gpu.gpu_count()), true) };
                let _ = st.assume(&pod, p);
            }
        }
        let pod = Pod::new("p", 0, 0, gpu);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for info in st.iter() {
            let free = info.state.gpus();
            for mode in [GpuSelectMode::BestFit, GpuSelectMode::WorstFit, GpuSelectMode::Random] {
                let got = GpuSelector(mode).reserve(&CycleState::default(), &pod, &info, &mut rng);
                match gpu {
                    GpuRequest::None => prop_assert_eq!(got, Some(GpuSet::empty())),
                    GpuRequest::Whole(n) => {
                        let fully: Vec<usize> = (0..free.len()).filter(|&g| free[g] == 1000).collect();
                        if fully.len() >= usize::from(n) {
                            let mut want = GpuSet::empty();
                            for &g in &fully[..usize::from(n)] { want.insert(g); }
                            prop_assert_eq!(got, Some(want));
                        } else {
                            prop_assert_eq!(got, None);
                        }
                    }
                    GpuRequest::Shared(m) => {
                        let fit: Vec<usize> = (0..free.len()).filter(|&g| free[g] >= m).collect();
                        if fit.is_empty() {
                            prop_assert_eq!(got, None);
                            continue;
                        }
                        let s = got.expect("a GPU fits");
                        prop_assert_eq!(s.len(), 1);
                        let g = s.iter().next().unwrap();
                        prop_assert!(fit.contains(&g));
                        match mode {
                            GpuSelectMode::BestFit => {
                                let best = fit.iter().copied().min_by_key(|&i| (free[i], i)).unwrap();
                                prop_assert_eq!(g, best);
                            }
                            GpuSelectMode::WorstFit => {
                                let best = fit.iter().copied().min_by_key(|&i| (std::cmp::Reverse(free[i]), i)).unwrap();
                                prop_assert_eq!(g, best);
                            }
                            GpuSelectMode::Random => {}
                        }
                    }
                }
            }
        }
    }

    /// With the default filters and any selector, a pod is placed iff some node can hold
    /// it, and the placement is one `assume` accepts.
    #[test]
    fn schedule_places_exactly_the_pods_that_fit(
        cluster in arb_cluster(),
        events in arb_events(40),
        mode in prop::sample::select(vec![GpuSelectMode::BestFit, GpuSelectMode::WorstFit, GpuSelectMode::Random]),
        seed in any::<u64>(),
    ) {
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
                            prop_assert!(fits, "{:?} placed at {:?} but fits nowhere", pod, p);
                            check_shape(&cluster, &pod, p);
                            prop_assert_eq!(valid(&cluster, &u, &pod, p), Ok(()));
                            prop_assert!(st.assume(&pod, p).is_ok());
                            live.push((pod, p));
                        }
                        Err(ScheduleError::Unschedulable { nodes, .. }) => {
                            prop_assert!(!fits, "{:?} unschedulable but fits", pod);
                            prop_assert_eq!(nodes, cluster.nodes().len());
                        }
                        Err(e) => prop_assert!(false, "{:?}: {}", pod, e),
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
}

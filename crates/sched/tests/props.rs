//! Property tests of the framework alone (no policy): `ClusterState::assume` agrees with
//! an independent brute-force model, `forget` undoes it, GPU selectors follow their
//! rules, and a scheduling cycle finds a node exactly when one can hold the pod.

#[path = "common/shadow.rs"]
mod shadow;

use std::cmp::Reverse;
use std::sync::Arc;

use mlplane_model::{Cluster, GpuRequest, Pod, PodId};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, NodeId, NodeState, Placement, Profile, ReservePlugin,
    ScheduleError, Scheduler,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shadow::*;
use GpuSelectMode::{BestFit, BestFitMemory, Random, WorstFit};

const CASES: u32 = 64;

/// How a placement attempt spoils its grants (mostly not at all), so that `assume`'s
/// charge and replica rules are exercised too.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    None,
    /// One MiB more on the first grant.
    Memory,
    /// One milli less on the first grant.
    Compute,
    /// Replica 1 on the first grant (a fractional device has only replica 0).
    Replica,
}

fn arb_tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        12 => Just(Tamper::None),
        1 => Just(Tamper::Memory),
        1 => Just(Tamper::Compute),
        1 => Just(Tamper::Replica),
    ]
}

/// A placement attempt: the pod, a node index (may be out of range), GPU indices (may
/// be out of range or repeated), whether to trim the indices to the request's GPU
/// count, and how to spoil the grants.
#[allow(clippy::large_enum_variant)] // test data: a pod inline reads best
#[derive(Clone, Debug)]
enum Op {
    Assume(Pod, u32, Vec<usize>, bool, Tamper),
    /// A share of a GPU's current free milli-GPU plus `delta` (-1, 0 or 1), if that is
    /// in `1..=999`: exercises the exact-fit boundary (and, spoilt, the charge rules on
    /// placements that are otherwise valid).
    Edge(u32, usize, i32, Tamper),
    /// The `k`-th live pod (mod their number) once more, under the same id, on node
    /// `n`, GPUs `idx` (trimmed): always refused.
    Again(usize, u32, Vec<usize>),
    Forget(usize),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    let assume = (
        arb_pod(),
        0u32..7,
        prop::collection::vec(0usize..9, 0..=8),
        prop::bool::weighted(0.8),
        arb_tamper(),
    )
        .prop_map(|(p, n, g, trim, t)| Op::Assume(p, n, g, trim, t));
    prop::collection::vec(
        prop_oneof![
            5 => assume,
            2 => (0u32..6, 0usize..8, -1i32..=1, arb_tamper())
                .prop_map(|(n, g, d, t)| Op::Edge(n, g, d, t)),
            1 => (any::<usize>(), 0u32..6, prop::collection::vec(0usize..8, 0..=8))
                .prop_map(|(k, n, g)| Op::Again(k, n, g)),
            1 => any::<usize>().prop_map(Op::Forget),
        ],
        1..=40,
    )
}

/// `idx`, cut to `want` distinct indices when `trim`.
fn gpu_idx(idx: &[usize], want: usize, trim: bool) -> Vec<usize> {
    if !trim {
        return idx.to_vec();
    }
    let mut out: Vec<usize> = Vec::new();
    for &i in idx {
        if out.len() == want {
            break;
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn tamper(mut p: Placement, t: Tamper) -> Placement {
    if let Some(g) = p.grants.first_mut() {
        match t {
            Tamper::None => {}
            Tamper::Memory => g.memory_mib += 1,
            Tamper::Compute => g.compute_milli = g.compute_milli.saturating_sub(1),
            Tamper::Replica => g.replica = 1,
        }
    }
    p
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
        .then(|| Pod::new("edge", 0, 0, GpuRequest::Milli(share as u16)))
}

/// The node states without their versions (which change with every assume and forget).
fn node_states(st: &ClusterState) -> Vec<NodeState> {
    st.iter()
        .map(|n| NodeState {
            version: 0,
            ..n.state.clone()
        })
        .collect()
}

/// Assumes `pod` at `p` and checks the answer against the model; on success records it
/// in `live`, on refusal checks that nothing changed (versions included).
fn assume_checked(
    st: &mut ClusterState,
    live: &mut Vec<(Pod, Placement)>,
    pod: Pod,
    p: Placement,
) -> Result<(), TestCaseError> {
    let cluster = st.cluster_arc().clone();
    let want = valid(&cluster, &usage(&cluster, live), &pod, &p);
    let before: Vec<NodeState> = st.iter().map(|n| n.state.clone()).collect();
    let got = st.assume(&pod, p.clone());
    prop_assert_eq!(
        got.is_ok(),
        want.is_ok(),
        "assume({:?}, {:?}) = {:?}, model says {:?}",
        pod,
        p,
        got,
        want
    );
    if got.is_ok() {
        live.push((pod, p));
    } else {
        let after: Vec<NodeState> = st.iter().map(|n| n.state.clone()).collect();
        prop_assert_eq!(after, before, "a refused assume changed the state");
    }
    Ok(())
}

const MODES: [GpuSelectMode; 4] = [BestFit, BestFitMemory, WorstFit, Random];

/// The GPUs `GpuSelector(mode)` reserves for `pod` on `node`, `None` if it fails.
/// Checks that the grants are ones `assume` accepts (on a copy of `st`).
fn reserve(
    mode: GpuSelectMode,
    st: &ClusterState,
    pod: &Pod,
    node: NodeId,
    rng: &mut ChaCha8Rng,
) -> Option<GpuSet> {
    let info = st.node(node);
    let mut cycle = CycleState::default();
    GpuSelector(mode)
        .reserve(&mut cycle, st, pod, &info, rng)
        .ok()?;
    let p = Placement {
        node,
        grants: cycle.grants().expect("reserve set the grants").to_vec(),
    };
    // (a node at its pod limit refuses every pod; the selector looks at devices only)
    if info.state.pods < info.node.max_pods {
        st.clone()
            .assume(pod, p.clone())
            .unwrap_or_else(|e| panic!("{mode:?}: the reserved {p:?} is refused: {e}"));
    }
    Some(p.gpus(info.node))
}

/// Fills `cluster` with the valid placements among `ops`, then checks every selector
/// mode's choice for `gpu` on every node.
fn check_selector_rules(cluster: Arc<Cluster>, ops: Vec<Op>, gpu: GpuRequest, seed: u64) {
    let mut st = ClusterState::new(cluster.clone());
    for op in ops {
        if let Op::Assume(pod, node, idx, _, _) = op {
            let idx = gpu_idx(&idx, usize::from(pod.gpu.gpu_count()), true);
            let _ = st.assume(&pod, placement(&cluster, node, pod.gpu, &idx));
        }
    }
    let pod = Pod::new("p", 0, 0, gpu);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for info in st.iter() {
        let free = info.state.gpus();
        // free GPU memory per GPU (checked against the model by `check_state`)
        let mem_free: Vec<u64> = info
            .node
            .devices
            .iter()
            .zip(&info.state.devices)
            .map(|(d, s)| d.memory_mib - s.memory_used_mib)
            .collect();
        for mode in MODES {
            let got = reserve(mode, &st, &pod, info.id, &mut rng);
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
                GpuRequest::Milli(m) => {
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
                    // every GPU of a node has the same memory, so the same charge
                    let tightest_mem = fit.iter().copied().min_by_key(|&i| (mem_free[i], i));
                    match mode {
                        BestFit => assert_eq!(Some(g), tightest, "{what}"),
                        BestFitMemory => assert_eq!(Some(g), tightest_mem, "{what}"),
                        WorstFit => assert_eq!(Some(g), emptiest, "{what}"),
                        Random => {}
                    }
                }
                other => unreachable!("arb_gpu gave {other:?}"),
            }
        }
    }
}

/// Schedules `events` with a score-less profile (the default filters and `mode`),
/// checking after each.
fn check_schedule(cluster: Arc<Cluster>, events: Vec<Event>, mode: GpuSelectMode, seed: u64) {
    let mut st = ClusterState::new(cluster.clone());
    let profile = Profile::new("t")
        .with_all(plugins::default_filters(&cluster))
        .with(Arc::new(GpuSelector(mode)), 1);
    let mut sched = Scheduler::new(profile);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut live: Vec<(Pod, Placement)> = Vec::new();
    for ev in events {
        match ev {
            Event::Arrive(pod) => {
                let u = usage(&cluster, &live);
                let fits = fits_anywhere(&cluster, &u, &pod);
                let before = node_states(&st);
                match sched.schedule(&mut st, &pod, &mut rng) {
                    Ok(p) => {
                        assert!(fits, "{pod:?} placed at {p:?} but fits nowhere");
                        check_shape(&cluster, &pod, &p);
                        assert_eq!(valid(&cluster, &u, &pod, &p), Ok(()), "{pod:?} {p:?}");
                        // schedule assumed it
                        let b = st.bound(pod.id).expect("a scheduled pod is assumed");
                        assert_eq!(b.placement, p);
                        live.push((pod, p));
                    }
                    Err(ScheduleError::Unschedulable {
                        diagnosis,
                        nominated,
                    }) => {
                        assert!(!fits, "{pod:?} unschedulable but fits: {diagnosis}");
                        assert_eq!(diagnosis.nodes, cluster.nodes().len());
                        // no PreFilter: every node was rejected by a filter
                        assert_eq!(diagnosis.statuses.len(), cluster.nodes().len());
                        assert_eq!(nominated, None);
                        assert!(st.bound(pod.id).is_none());
                        assert_eq!(node_states(&st), before);
                    }
                    Err(e) => panic!("{pod:?}: {e}"),
                }
            }
            Event::Depart(k) => {
                if !live.is_empty() {
                    let (pod, p) = live.remove(k % live.len());
                    let b = st.forget(pod.id).expect("a live pod is forgotten");
                    assert_eq!((b.pod, b.placement), (pod, p));
                }
            }
        }
        check_state(&st, &live);
    }
}

/// One attempt on a mixed cluster: a pod, a node, device indices, a replica per grant,
/// whether to charge one MiB too much, or a departure.
type MixedOp = (Pod, u32, Vec<usize>, u16, bool, Option<usize>);

fn arb_mixed_ops() -> impl Strategy<Value = Vec<MixedOp>> {
    prop::collection::vec(
        (
            arb_any_pod(),
            0u32..6,
            prop::collection::vec(0usize..10, 0..4),
            0u16..5,
            prop::bool::weighted(0.1),
            prop::option::weighted(0.15, any::<usize>()),
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8 * CASES))]

    /// On clusters of every device mode, `assume` accepts exactly the placements the
    /// independent model calls valid (random devices, replicas and charges, some
    /// right, most wrong), refuses the rest unchanged, and `forget` gives everything
    /// back: usage is recounted after every step.
    #[test]
    fn assume_agrees_with_the_model_on_every_device_mode(
        cluster in arb_mixed_cluster(),
        ops in arb_mixed_ops(),
    ) {
        let mut st = ClusterState::new(cluster.clone());
        let mut live: Vec<(Pod, Placement)> = Vec::new();
        for (mut pod, node, idx, replica, over, depart) in ops {
            // Smaller pods than the scheduler tests', so that devices, not CPU, decide.
            pod.cpu_milli /= 4;
            pod.memory_mib /= 4;
            if let Some(k) = depart {
                if !live.is_empty() {
                    let (pod, p) = live.remove(k % live.len());
                    let b = st.forget(pod.id).expect("live pods are bound");
                    prop_assert_eq!((b.pod, b.placement), (pod, p));
                }
                check_state(&st, &live);
                continue;
            }
            // Mostly devices that can serve the request, at their lowest free replica
            // (per the model), so that many attempts are valid; `idx` picks which.
            let node = node % cluster.nodes().len() as u32;
            let nd = &cluster.nodes()[node as usize];
            let u = usage(&cluster, &live);
            let want_count = match pod.gpu {
                GpuRequest::None => 0,
                GpuRequest::Whole(n) | GpuRequest::Devices { count: n, .. } => usize::from(n),
                _ => 1,
            };
            let multi = want_count > 1;
            let serving: Vec<usize> = (0..nd.devices.len())
                .filter(|&d| expected_charge(&nd.devices[d], pod.gpu, multi).is_some())
                .collect();
            let all: Vec<usize> = (0..nd.devices.len().max(1)).collect();
            let pool = if serving.is_empty() { &all } else { &serving };
            let chosen: Vec<usize> = if replica == 4 && over {
                idx.clone() // any devices, any count
            } else {
                (0..want_count)
                    .map(|j| pool[(idx.get(j).copied().unwrap_or(j) + j) % pool.len()])
                    .collect()
            };
            let mut p = placement(&cluster, node, pod.gpu, &chosen);
            for g in &mut p.grants {
                let Some(d) = nd.devices.get(usize::from(g.device)) else {
                    continue;
                };
                let held = u
                    .held
                    .get(node as usize)
                    .and_then(|h| h.get(usize::from(g.device)))
                    .cloned()
                    .unwrap_or_default();
                g.replica = match d.sharing {
                    mlplane_model::Sharing::TimeSliced { replicas, .. }
                    | mlplane_model::Sharing::Mps { replicas }
                        if replica < 3 =>
                    {
                        (0..replicas).find(|r| !held.contains(r)).unwrap_or(replicas)
                    }
                    // A replica already held, where there is one: must be refused.
                    _ if replica == 3 && !held.is_empty() => held[0],
                    _ if replica < 3 => 0,
                    _ => replica,
                };
                if over && replica != 4 {
                    g.memory_mib += 1;
                }
            }
            let want = valid(&cluster, &usage(&cluster, &live), &pod, &p);
            let before: Vec<u64> = st.versions().to_vec();
            let got = st.assume(&pod, p.clone());
            prop_assert_eq!(got.is_ok(), want.is_ok(), "{:?} {:?}: model says {:?}, assume says {:?}", pod, p, want, got);
            if got.is_ok() {
                live.push((pod, p));
            } else {
                prop_assert_eq!(st.versions(), &before[..], "a refusal changed nothing");
            }
            check_state(&st, &live);
        }
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
                Op::Assume(pod, node, idx, trim, t) => {
                    let idx = gpu_idx(&idx, usize::from(pod.gpu.gpu_count()), trim);
                    let p = tamper(placement(&cluster, node, pod.gpu, &idx), t);
                    assume_checked(&mut st, &mut live, pod, p)?;
                }
                Op::Edge(node, gpu, delta, t) => {
                    if let Some(pod) = edge_pod(&st, node, gpu, delta) {
                        let p = tamper(placement(&cluster, node, pod.gpu, &[gpu]), t);
                        assume_checked(&mut st, &mut live, pod, p)?;
                    }
                }
                Op::Again(k, node, idx) => {
                    if !live.is_empty() {
                        let pod = live[k % live.len()].0.clone();
                        let idx = gpu_idx(&idx, usize::from(pod.gpu.gpu_count()), true);
                        let p = placement(&cluster, node, pod.gpu, &idx);
                        let before = live.len();
                        assume_checked(&mut st, &mut live, pod, p)?;
                        prop_assert_eq!(live.len(), before, "a pod id was placed twice");
                    }
                }
                Op::Forget(k) => {
                    if live.is_empty() {
                        // an id that was never placed: nothing to give back
                        let before = node_states(&st);
                        prop_assert!(st.forget(PodId::fresh()).is_none());
                        prop_assert_eq!(node_states(&st), before);
                    } else {
                        let (pod, p) = live.remove(k % live.len());
                        let b = st.forget(pod.id);
                        prop_assert_eq!(b.map(|b| (b.pod, b.placement)), Some((pod.clone(), p)));
                        // a second forget finds nothing
                        prop_assert!(st.forget(pod.id).is_none());
                    }
                }
            }
            check_state(&st, &live);
        }
        // forgetting everything gives back the empty state
        for (pod, _) in live.drain(..).rev() {
            prop_assert!(st.forget(pod.id).is_some());
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
        mode in prop::sample::select(MODES.to_vec()),
        seed in any::<u64>(),
    ) {
        check_schedule(cluster, events, mode, seed);
    }
}

//! Property tests of every policy through a full scheduler: random small clusters and
//! random arrival/departure sequences, checked against an independent model of usage
//! (recomputed from the recorded placements) and a brute-force fit check.

#[path = "../../sched/tests/common/shadow.rs"]
mod shadow;

use std::sync::Arc;

use mlplane_model::{Cluster, Pod};
use mlplane_policies::fgd::DEFAULT_POPULARITY;
use mlplane_policies::memory::{share_profile, SharePolicy};
use mlplane_policies::{profile, Policy, PolicyContext, TypicalPods};
use mlplane_sched::{ClusterState, Placement, ScheduleError, Scheduler, TieBreak};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shadow::*;

const CASES: u32 = 64;

/// Both tie-breaks: uniform, and a node rank from a permutation drawn from `seed`.
fn tie_breaks(nodes: usize, seed: u64) -> [TieBreak; 2] {
    let mut rank: Vec<u32> = (0..nodes as u32).collect();
    rank.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
    [TieBreak::Uniform, TieBreak::Rank(rank.into())]
}

/// Runs `events` under `policy`, checking after every event. Returns how many pods were
/// placed and refused.
fn run(
    policy: Policy,
    tie_break: TieBreak,
    cluster: &Arc<Cluster>,
    events: &[Event],
    seed: u64,
) -> (usize, usize) {
    let arrivals = arrivals_of(events);
    let typical = Arc::new(TypicalPods::from_workload(&arrivals, DEFAULT_POPULARITY));
    let ctx = PolicyContext::new(cluster, typical);
    run_with(
        &policy.to_string(),
        Scheduler::new(profile(policy, &ctx, cluster)).with_tie_break(tie_break),
        cluster,
        events,
        seed,
    )
}

/// Runs `events` under a sharing policy's profile (FGD's typical requests in GPU memory
/// from the arrivals), checking after every event.
fn run_profile(
    policy: &str,
    make: &dyn Fn(Arc<TypicalPods>, &Cluster) -> mlplane_sched::Profile,
    tie_break: TieBreak,
    cluster: &Arc<Cluster>,
    events: &[Event],
    seed: u64,
) -> (usize, usize) {
    let arrivals = arrivals_of(events);
    let typical = Arc::new(TypicalPods::by_gpu_request(&arrivals, DEFAULT_POPULARITY));
    run_with(
        policy,
        Scheduler::new(make(typical, cluster)).with_tie_break(tie_break),
        cluster,
        events,
        seed,
    )
}

/// Runs `events` with `sched`, checking after every event.
fn run_with(
    policy: &str,
    mut sched: Scheduler,
    cluster: &Arc<Cluster>,
    events: &[Event],
    seed: u64,
) -> (usize, usize) {
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut live: Vec<(Pod, Placement)> = Vec::new();
    let (mut placed, mut refused) = (0, 0);
    for ev in events {
        match ev {
            Event::Arrive(pod) => {
                let u = usage(cluster, &live);
                let fits = fits_anywhere(cluster, &u, pod);
                // schedule runs the whole cycle and assumes the placement
                match sched.schedule(&mut st, pod, &mut rng) {
                    Ok(p) => {
                        assert!(fits, "{policy}: {pod:?} placed at {p:?} but fits nowhere");
                        check_shape(cluster, pod, &p);
                        assert_eq!(
                            valid(cluster, &u, pod, &p),
                            Ok(()),
                            "{policy}: {pod:?} {p:?}"
                        );
                        assert_eq!(
                            st.bound(pod.id).map(|b| &b.placement),
                            Some(&p),
                            "{policy}: {pod:?} placed but not assumed"
                        );
                        live.push((pod.clone(), p));
                        placed += 1;
                    }
                    Err(ScheduleError::Unschedulable { diagnosis, .. }) => {
                        assert!(
                            !fits,
                            "{policy}: {pod:?} unschedulable but fits: {diagnosis}"
                        );
                        assert!(st.bound(pod.id).is_none(), "{policy}: {pod:?} assumed");
                        refused += 1;
                    }
                    Err(e) => panic!("{policy}: {pod:?}: {e}"),
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
    (placed, refused)
}

/// Places `pods` in order (no departures) and returns the placements.
fn place_all(
    policy: Policy,
    tie_break: TieBreak,
    cluster: &Arc<Cluster>,
    pods: &[Pod],
    seed: u64,
) -> Vec<Option<Placement>> {
    let typical = TypicalPods::from_workload(pods, DEFAULT_POPULARITY);
    let ctx = PolicyContext::new(cluster, Arc::new(typical));
    let mut sched = Scheduler::new(profile(policy, &ctx, cluster)).with_tie_break(tie_break);
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    pods.iter()
        .map(|pod| sched.schedule(&mut st, pod, &mut rng).ok())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every policy: `assume` accepts every placement, nothing is over-committed, the
    /// state matches the recorded placements, placements have the requested GPU count,
    /// and a pod is refused only when no node can hold it.
    #[test]
    fn every_policy_keeps_the_invariants(
        cluster in arb_cluster(),
        events in arb_events(30),
        seed in any::<u64>(),
    ) {
        for policy in Policy::ALL {
            for tb in tie_breaks(cluster.nodes().len(), seed) {
                run(policy, tb, &cluster, &events, seed);
            }
        }
    }

    /// Every policy on clusters of every device mode (fractional, exclusive,
    /// time-sliced with and without `failRequestsGreaterThanOne` and renamed, MPS, MIG
    /// and time-sliced MIG) with pods of every request kind (whole GPUs, milli and
    /// memory shares, MIG instances, the renamed resource) and random departures: the
    /// same invariants, each refusal checked by brute force.
    #[test]
    fn every_policy_keeps_the_invariants_on_every_device_mode(
        cluster in arb_mixed_cluster(),
        events in arb_any_events(30),
        seed in any::<u64>(),
    ) {
        for policy in Policy::ALL {
            for tb in tie_breaks(cluster.nodes().len(), seed) {
                run(policy, tb, &cluster, &events, seed);
            }
        }
        for policy in SharePolicy::ALL {
            for tb in tie_breaks(cluster.nodes().len(), seed) {
                run_profile(&policy.to_string(), &|typical, c| share_profile(policy, typical, c), tb, &cluster, &events, seed);
            }
        }
    }

    /// The same placements for the same seed: a cycle is deterministic (under both
    /// tie-breaks).
    #[test]
    fn every_policy_is_deterministic(
        cluster in arb_cluster(),
        events in arb_events(15),
        seed in any::<u64>(),
    ) {
        let pods = arrivals_of(&events[..]);
        for policy in Policy::ALL {
            for tb in tie_breaks(cluster.nodes().len(), seed) {
                let first = place_all(policy, tb.clone(), &cluster, &pods, seed);
                let again = place_all(policy, tb.clone(), &cluster, &pods, seed);
                prop_assert_eq!(first, again, "{} {:?}", policy, tb);
            }
        }
    }
}

mod fragmentation_fast_path {
    use mlplane_model::{GpuModelId, GpuRequest, ModelSet};
    use mlplane_policies::fgd::{TypicalPod, TypicalPods};
    use proptest::prelude::*;

    fn typical() -> impl Strategy<Value = TypicalPods> {
        let pod = (0u64..20_000, 0u8..4, 1u16..1000, 1u8..5, 0u8..3, 1u32..100).prop_map(
            |(cpu, kind, milli, n, models, w)| {
                let gpu = match kind {
                    0 => GpuRequest::None,
                    1 => GpuRequest::Milli(milli),
                    _ => GpuRequest::Whole(n),
                };
                let allowed_models = match models {
                    0 => None,
                    1 => {
                        let mut s = ModelSet::empty();
                        s.insert(GpuModelId(0));
                        Some(s)
                    }
                    _ => Some(ModelSet::empty()),
                };
                TypicalPod {
                    cpu_milli: cpu,
                    gpu,
                    allowed_models,
                    weight: f64::from(w) / 100.0,
                }
            },
        );
        prop::collection::vec(pod, 0..40).prop_map(TypicalPods::from_pods)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The grouped computation equals the pod-by-pod definition.
        #[test]
        fn grouped_equals_pod_by_pod(
            t in typical(),
            gpus in prop::collection::vec(0u16..=1000, 0..9),
            cpu in 0u64..25_000,
            model in prop::option::of(0u16..2),
        ) {
            let m = model.map(GpuModelId);
            let fast = t.fragmentation(m, cpu, &gpus);
            let slow = t.fragmentation_by_pod(m, cpu, &gpus);
            prop_assert!((fast - slow).abs() <= 1e-9 * slow.abs().max(1.0), "{fast} vs {slow}");
        }
    }
}

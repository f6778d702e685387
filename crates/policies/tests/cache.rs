//! The scheduler's per-shape cache of node-local verdicts and scores changes no
//! result: every policy, run with its plugins as they are and again with every plugin
//! hidden behind a wrapper that is not node-local (so the scheduler evaluates every
//! node every cycle, the plain full scan), places every pod of random arrival and
//! departure sequences on the same node with the same grants, and refuses the same
//! pods with the same diagnosis.

#[path = "../../sched/tests/common/shadow.rs"]
mod shadow;

use std::sync::Arc;

use mlplane_policies::fgd::DEFAULT_POPULARITY;
use mlplane_policies::{profile, Policy, PolicyContext, TypicalPods};
use mlplane_sched::{
    BindPlugin, ClusterState, FilterPlugin, PermitPlugin, Plugin, PostFilterPlugin,
    PreFilterPlugin, PreScorePlugin, Profile, QueueSortPlugin, ReservePlugin, Scheduler,
    ScorePlugin, TieBreak,
};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shadow::*;

/// A plugin as it is, except that it does not claim to be node-local.
struct Opaque(Arc<dyn Plugin>);

impl Plugin for Opaque {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        self.0.as_queue_sort()
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        self.0.as_pre_filter()
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        self.0.as_filter()
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        self.0.as_post_filter()
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        self.0.as_pre_score()
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        self.0.as_score()
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        self.0.as_reserve()
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        self.0.as_permit()
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        self.0.as_bind()
    }
}

fn full_scan(p: &Profile) -> Profile {
    p.plugins()
        .fold(Profile::new(p.name()), |acc, (plugin, w)| {
            acc.with(Arc::new(Opaque(plugin.clone())), w)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn cached_and_full_scan_schedulers_agree(
        cluster in arb_cluster(),
        events in arb_events(60),
        seed in any::<u64>(),
    ) {
        let arrivals = arrivals_of(&events[..]);
        let typical = Arc::new(TypicalPods::from_workload(&arrivals, DEFAULT_POPULARITY));
        let ctx = PolicyContext::new(&cluster, typical);
        let mut rank: Vec<u32> = (0..cluster.nodes().len() as u32).collect();
        rank.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let rank: Arc<[u32]> = rank.into();
        for policy in Policy::ALL {
            for tie in [TieBreak::Uniform, TieBreak::Rank(rank.clone())] {
                let cached = profile(policy, &ctx, &cluster);
                let plain = full_scan(&cached);
                let mut a = Scheduler::new(cached).with_tie_break(tie.clone());
                let mut b = Scheduler::new(plain).with_tie_break(tie.clone());
                let mut c = Scheduler::new(profile(policy, &ctx, &cluster))
                    .with_tie_break(tie)
                    .full_scan();
                let mut sc = ClusterState::new(cluster.clone());
                let mut rc = ChaCha8Rng::seed_from_u64(seed);
                let (mut sa, mut sb) = (ClusterState::new(cluster.clone()), ClusterState::new(cluster.clone()));
                let (mut ra, mut rb) = (ChaCha8Rng::seed_from_u64(seed), ChaCha8Rng::seed_from_u64(seed));
                let mut live = Vec::new();
                for ev in &events {
                    match ev {
                        Event::Arrive(pod) => {
                            let x = a.schedule(&mut sa, pod, &mut ra);
                            let y = b.schedule(&mut sb, pod, &mut rb);
                            let z = c.schedule(&mut sc, pod, &mut rc);
                            prop_assert_eq!(&y, &z, "full_scan() is the plain scan");
                            match (&x, &y) {
                                (Ok(p), Ok(q)) => prop_assert_eq!(p, q, "{} {:?}", policy, pod),
                                (Err(e), Err(f)) => prop_assert_eq!(e.to_string(), f.to_string()),
                                _ => prop_assert!(false, "{policy}: {x:?} vs {y:?}"),
                            }
                            if x.is_ok() {
                                live.push(pod.id);
                            }
                        }
                        Event::Depart(k) if !live.is_empty() => {
                            let id = live.remove(k % live.len());
                            prop_assert!(sa.forget(id).is_some() && sb.forget(id).is_some());
                            prop_assert!(sc.forget(id).is_some());
                        }
                        Event::Depart(_) => {}
                    }
                }
            }
        }
    }
}

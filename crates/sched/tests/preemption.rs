//! DefaultPreemption, each rule worked by hand from kube-scheduler's documented
//! semantics: the victim set (all lower-priority pods removed, then reprieved most
//! important first), the node choice (lowest highest victim priority, smallest priority
//! sum, fewest victims, latest placed), `preemptionPolicy: Never`, and nodes where
//! preemption cannot help.

use std::sync::Arc;

use mlplane_model::{
    Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, PodId, PreemptionPolicy, Taint,
    TaintEffect,
};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::preemption::DefaultPreemption;
use mlplane_sched::{ClusterState, NodeId, Nomination, Profile, ScheduleError, Scheduler};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn cluster(nodes: Vec<Node>) -> Arc<Cluster> {
    Arc::new(
        Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: Some(15_360),
            }],
            nodes,
        )
        .unwrap(),
    )
}

const HOSTNAME: &str = "kubernetes.io/hostname";

fn gpus(name: &str, n: u8) -> Node {
    let mut node = Node::new(name, 64_000, 262_144).with_gpus(GpuModelId(0), n, 15_360);
    node.labels = [(HOSTNAME.to_string(), name.to_string())].into();
    node
}

fn scheduler(c: &Cluster) -> Scheduler {
    Scheduler::new(
        Profile::new("preempt")
            .with_all(plugins::default_filters(c))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
            .with(Arc::new(DefaultPreemption::new()), 1),
    )
}

fn pod(name: &str, priority: i32, gpu: GpuRequest) -> Pod {
    Pod {
        priority,
        ..Pod::new(name, 1_000, 1_024, gpu)
    }
}

/// Schedules `pods` in order (each must fit).
fn place(st: &mut ClusterState, s: &mut Scheduler, pods: &[&Pod]) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for p in pods {
        s.schedule(st, p, &mut rng).unwrap();
    }
}

fn nominate(st: &mut ClusterState, s: &mut Scheduler, p: &Pod) -> Result<Nomination, String> {
    match s.schedule(st, p, &mut ChaCha8Rng::seed_from_u64(1)) {
        Err(ScheduleError::Unschedulable {
            nominated: Some(n), ..
        }) => Ok(n),
        Err(e) => Err(e.to_string()),
        Ok(pl) => Err(format!("placed at {pl:?}")),
    }
}

#[test]
fn victims_are_reprieved_most_important_first() {
    // One node, two GPUs, both taken by priority-100 pods a (placed first) and b.
    // A priority-1000 pod wants one GPU. Remove both: it fits. Add back the most
    // important first (same priority: the earlier placed, a): it still fits (b's GPU
    // is free), so a is reprieved; add back b: it no longer fits, so b is the victim.
    let c = cluster(vec![gpus("n0", 2)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    let (a, b) = (
        pod("a", 100, GpuRequest::Whole(1)),
        pod("b", 100, GpuRequest::Whole(1)),
    );
    place(&mut st, &mut s, &[&a, &b]);
    let high = pod("high", 1000, GpuRequest::Whole(1));
    let n = nominate(&mut st, &mut s, &high).unwrap();
    assert_eq!(n.node, NodeId(0));
    assert_eq!(n.victims, vec![b.id]);
    // Nothing changed in the state: the caller evicts.
    assert_eq!(st.pod_count(), 2);
    // Once the victim is gone, the pod goes to the nominated node.
    st.forget(b.id).unwrap();
    let p = s
        .schedule(&mut st, &high, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(p.node, NodeId(0));
}

#[test]
fn a_higher_priority_victim_is_kept_when_a_lower_one_suffices() {
    // Two GPUs: `mid` (priority 500) and `low` (100). The reprieve order tries `mid`
    // first (more important): with mid back the pod still fits on low's GPU, so only
    // `low` is a victim.
    let c = cluster(vec![gpus("n0", 2)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    let (low, mid) = (
        pod("low", 100, GpuRequest::Whole(1)),
        pod("mid", 500, GpuRequest::Whole(1)),
    );
    place(&mut st, &mut s, &[&low, &mid]);
    let n = nominate(&mut st, &mut s, &pod("high", 1000, GpuRequest::Whole(1))).unwrap();
    assert_eq!(n.victims, vec![low.id]);
}

/// Two one-GPU nodes, with the given pods placed on n0 and n1 (pinned there by a
/// `kubernetes.io/hostname` node selector), and a priority-1000 pod that needs a whole
/// GPU: the nominated node and its victims.
fn choice(
    on_n0: &[(i32, GpuRequest)],
    on_n1: &[(i32, GpuRequest)],
    n1_first: bool,
) -> (NodeId, Vec<PodId>) {
    let c = cluster(vec![gpus("n0", 1), gpus("n1", 1)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    let mut put = |node: &str, list: &[(i32, GpuRequest)]| {
        for (k, &(prio, gpu)) in list.iter().enumerate() {
            let mut p = pod(&format!("{node}-{k}"), prio, gpu);
            p.node_selector = [(HOSTNAME.to_string(), node.to_string())].into();
            place(&mut st, &mut s, &[&p]);
        }
    };
    if n1_first {
        put("n1", on_n1);
        put("n0", on_n0);
    } else {
        put("n0", on_n0);
        put("n1", on_n1);
    }
    let n = nominate(&mut st, &mut s, &pod("high", 1000, GpuRequest::Whole(1))).unwrap();
    (n.node, n.victims)
}

#[test]
fn the_node_is_chosen_by_kubes_order() {
    use GpuRequest::{Milli, Whole};
    // 1. Lowest highest victim priority: n0's victim has 500, n1's 100.
    assert_eq!(
        choice(&[(500, Whole(1))], &[(100, Whole(1))], false).0,
        NodeId(1)
    );
    // 2. Same highest priority (100): the smaller sum wins: n0 needs two victims of
    //    100 (sum 2·(100+2^31)), n1 one (100+2^31).
    assert_eq!(
        choice(
            &[(100, Milli(500)), (100, Milli(500))],
            &[(100, Whole(1))],
            false
        )
        .0,
        NodeId(1)
    );
    // 3. Same highest (100) and same sum: n0's victims are 100 and i32::MIN (shifted: 0),
    //    n1's one victim of 100: fewer victims wins.
    assert_eq!(
        choice(
            &[(100, Milli(500)), (i32::MIN, Milli(500))],
            &[(100, Whole(1))],
            false
        )
        .0,
        NodeId(1)
    );
    // 4. All equal: the node whose highest-priority victims were placed latest wins.
    //    n1's pod placed after n0's: n1; placed before: n0.
    assert_eq!(
        choice(&[(100, Whole(1))], &[(100, Whole(1))], false).0,
        NodeId(1)
    );
    assert_eq!(
        choice(&[(100, Whole(1))], &[(100, Whole(1))], true).0,
        NodeId(0)
    );
}

#[test]
fn preemption_policy_never_preempts_nothing() {
    let c = cluster(vec![gpus("n0", 1)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    place(&mut st, &mut s, &[&pod("low", 100, GpuRequest::Whole(1))]);
    let mut p = pod("high", 1000, GpuRequest::Whole(1));
    p.preemption_policy = PreemptionPolicy::Never;
    let e = nominate(&mut st, &mut s, &p).unwrap_err();
    assert_eq!(
        e,
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: not eligible due to preemptionPolicy=Never.."
    );
}

#[test]
fn nodes_where_preemption_cannot_help_are_named() {
    // n0 is tainted (unresolvable); n1 holds a pod of equal priority (no lower victims).
    let mut tainted = gpus("n0", 1);
    tainted.taints = vec![Taint {
        key: "gpu".into(),
        value: "shared".into(),
        effect: TaintEffect::NoSchedule,
    }];
    let c = cluster(vec![tainted, gpus("n1", 1)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    place(&mut st, &mut s, &[&pod("same", 1000, GpuRequest::Whole(1))]);
    let e = nominate(&mut st, &mut s, &pod("high", 1000, GpuRequest::Whole(1))).unwrap_err();
    assert_eq!(
        e,
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {gpu: shared}. \
         preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.."
    );
}

#[test]
fn a_pod_that_fits_nowhere_even_empty_finds_no_victims() {
    // Two whole GPUs asked on one-GPU nodes: removing every pod does not help.
    let c = cluster(vec![gpus("n0", 1)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    place(&mut st, &mut s, &[&pod("low", 1, GpuRequest::Milli(100))]);
    let e = nominate(&mut st, &mut s, &pod("big", 1000, GpuRequest::Whole(2))).unwrap_err();
    assert!(
        e.ends_with(
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        ),
        "{e}"
    );
}

#[path = "common/shadow.rs"]
mod shadow;

mod props {
    use super::shadow::*;
    use super::*;
    use mlplane_sched::Placement;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// On clusters of every device mode with pods of random priorities: a
        /// nomination's victims are lower-priority pods on the nominated node, and with
        /// them gone the pod fits there (brute force); when preemption finds nothing,
        /// no node whose status was only Unschedulable fits the pod even with every
        /// lower-priority pod removed.
        #[test]
        fn nominations_are_sound_and_complete(
            cluster in arb_mixed_cluster(),
            events in arb_any_events(30),
            prios in prop::collection::vec(0i32..4, 30),
        ) {
            let mut s = scheduler(&cluster);
            let mut st = ClusterState::new(cluster.clone());
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut live: Vec<(Pod, Placement)> = Vec::new();
            for (k, ev) in events.iter().enumerate() {
                let Event::Arrive(p) = ev else { continue };
                let mut pod = p.clone();
                pod.priority = prios[k % prios.len()] * 100;
                match s.schedule(&mut st, &pod, &mut rng) {
                    Ok(pl) => live.push((pod, pl)),
                    Err(ScheduleError::Unschedulable { diagnosis, nominated }) => {
                        // What is left on node i once its lower-priority pods go.
                        let without = |i: usize, gone: &dyn Fn(&Pod) -> bool| {
                            let kept: Vec<(Pod, Placement)> = live
                                .iter()
                                .filter(|(q, pl)| pl.node.index() != i || !gone(q))
                                .cloned()
                                .collect();
                            usage(&cluster, &kept)
                        };
                        match nominated {
                            Some(n) => {
                                let i = n.node.index();
                                for v in &n.victims {
                                    let (q, pl) = live.iter().find(|(q, _)| q.id == *v).expect("a victim is live");
                                    prop_assert_eq!(pl.node, n.node, "victim on another node");
                                    prop_assert!(q.priority < pod.priority, "victim of equal or higher priority");
                                }
                                let u = without(i, &|q: &Pod| n.victims.contains(&q.id));
                                prop_assert!(fits_node(&cluster, &u, &pod, i), "{:?} does not fit {:?} after its victims leave", pod, n);
                            }
                            None => {
                                for (id, status) in &diagnosis.statuses {
                                    if status.code != mlplane_sched::Code::Unschedulable {
                                        continue;
                                    }
                                    let i = id.index();
                                    let u = without(i, &|q: &Pod| q.priority < pod.priority);
                                    let has_lower = live.iter().any(|(q, pl)| pl.node == *id && q.priority < pod.priority);
                                    prop_assert!(
                                        !(has_lower && fits_node(&cluster, &u, &pod, i)),
                                        "{:?} would fit node {} without its lower-priority pods, but nothing was nominated: {}",
                                        pod, i, diagnosis
                                    );
                                }
                            }
                        }
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
        }
    }
}

#[test]
fn fair_share_takes_victims_from_the_tenant_furthest_above_its_share() {
    // One node, three GPUs, all priority 100: a and c of tenant t1 (placed first and
    // second), b of t2 (third). A priority-1000 pod needs one GPU: one victim.
    // kube's order reprieves a, c (placed earlier) and takes b.
    // Shares (GPU compute dominates: 1000 of 3000 per pod; CPU 1000 of 64000, memory
    // 15360 of 46080 equal to compute's 1/3): t1 2/3, t2 1/3. With fair share, b (t2,
    // the smaller share) is reprieved first, then a; c is the victim. With t2 at weight
    // 0.25 its weighted share is (1/3)/0.25 = 4/3 > t1's 2/3: b is the victim again.
    let run = |preemption: DefaultPreemption| {
        let c = cluster(vec![gpus("n0", 3)]);
        let mut st = ClusterState::new(c.clone());
        let mut s = scheduler(&c);
        let tenant = |p: Pod, t: &str| Pod {
            tenant: Some(t.into()),
            ..p
        };
        let a = tenant(pod("a", 100, GpuRequest::Whole(1)), "t1");
        let cc = tenant(pod("c", 100, GpuRequest::Whole(1)), "t1");
        let b = tenant(pod("b", 100, GpuRequest::Whole(1)), "t2");
        place(&mut st, &mut s, &[&a, &cc, &b]);
        let shares = mlplane_sched::preemption::weighted_shares(&st, &Default::default());
        assert!(
            (shares["t1"] - 2.0 / 3.0).abs() < 1e-12 && (shares["t2"] - 1.0 / 3.0).abs() < 1e-12
        );
        let mut p = Scheduler::new(
            Profile::new("fair")
                .with_all(plugins::default_filters(&c))
                .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
                .with(Arc::new(preemption), 1),
        );
        let n = nominate(&mut st, &mut p, &pod("high", 1000, GpuRequest::Whole(1))).unwrap();
        let name = |id: PodId| st.bound(id).unwrap().pod.name.clone();
        n.victims.iter().map(|&v| name(v)).collect::<Vec<_>>()
    };
    assert_eq!(run(DefaultPreemption::new()), ["b"]);
    assert_eq!(
        run(DefaultPreemption::with_fair_share(Default::default())),
        ["c"]
    );
    let weights = [("t2".to_string(), 0.25)].into();
    assert_eq!(run(DefaultPreemption::with_fair_share(weights)), ["b"]);
}

#[test]
fn default_preemption_is_built_by_name_with_its_arguments() {
    use mlplane_sched::preemption::PreemptionArgs;
    use mlplane_sched::{ProfileConfig, Registry};
    let c = cluster(vec![gpus("n0", 1)]);
    let cfg = ProfileConfig::new("p")
        .with_default_filters()
        .plugin("GpuSelectBestFit", 1)
        .plugin("DefaultPreemption", 1)
        .args(
            "DefaultPreemption",
            Arc::new(PreemptionArgs {
                fair_share: true,
                ..PreemptionArgs::default()
            }),
        );
    let p = Registry::builtin().build(&cfg, &c).unwrap();
    assert!(
        p.describe().contains("postFilter [DefaultPreemption]"),
        "{}",
        p.describe()
    );
    let wrong = cfg.clone().args("DefaultPreemption", Arc::new(1u8));
    let e = Registry::builtin()
        .build(&wrong, &c)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("pluginConfig args must be mlplane_sched::preemption::PreemptionArgs"),
        "{e}"
    );
}

/// One node with three GPUs, all held by tenant B's priority-100 pods; then A's pod of
/// the same priority: the nomination (victim names) or the error text.
fn reclaim_case(
    preemption: DefaultPreemption,
    b_pods: usize,
) -> (ClusterState, Scheduler, Result<Vec<String>, String>) {
    let c = cluster(vec![gpus("n0", 3)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = Scheduler::new(
        Profile::new("fair")
            .with_all(plugins::default_filters(&c))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
            .with(Arc::new(preemption), 1),
    );
    for k in 0..b_pods {
        let p = Pod {
            tenant: Some("B".into()),
            ..pod(&format!("b{k}"), 100, GpuRequest::Whole(1))
        };
        place(&mut st, &mut s, &[&p]);
    }
    let a = Pod {
        tenant: Some("A".into()),
        ..pod("a", 100, GpuRequest::Whole(1))
    };
    let r = nominate(&mut st, &mut s, &a).map(|n| {
        n.victims
            .iter()
            .map(|&v| st.bound(v).unwrap().pod.name.clone())
            .collect()
    });
    (st, s, r)
}

#[test]
fn reclaim_takes_from_a_tenant_above_its_share_and_never_back() {
    // B holds all 3 GPUs (share 1). A's pod, same priority: after, A = 1/3 <= B = 2/3,
    // so A reclaims one GPU; the victim is B's latest pod (the earlier ones are
    // reprieved first).
    let (mut st, mut s, r) =
        reclaim_case(DefaultPreemption::with_fair_share(Default::default()), 3);
    assert_eq!(r.unwrap(), ["b2"]);
    // Evict b2, place a. Now A = 1/3, B = 2/3; b2 comes back: B would end at 1 and A at
    // 0, and 1 > 0: no reclaim back (Kueue#3779's ping-pong cannot happen).
    let b2 = st
        .pods_on(NodeId(0))
        .find(|b| b.pod.name == "b2")
        .unwrap()
        .pod
        .id;
    st.forget(b2).unwrap();
    let a = Pod {
        tenant: Some("A".into()),
        ..pod("a", 100, GpuRequest::Whole(1))
    };
    place(&mut st, &mut s, &[&a]);
    let back = Pod {
        tenant: Some("B".into()),
        ..pod("b2-again", 100, GpuRequest::Whole(1))
    };
    let e = nominate(&mut st, &mut s, &back).unwrap_err();
    assert!(
        e.ends_with(
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        ),
        "{e}"
    );
}

#[test]
fn reclaim_follows_the_weights_and_can_be_off() {
    // B weighs 3: its share is 1/3 with all three GPUs; after losing one, (2/3)/3 =
    // 2/9 < A's 1/3: the rule fails, nothing is reclaimed.
    let weights = [("B".to_string(), 3.0)].into();
    let (_, _, r) = reclaim_case(DefaultPreemption::with_fair_share(weights), 3);
    assert!(r.unwrap_err().contains("No preemption victims found"));
    // Without reclaim, equal priorities are never victims.
    let (_, _, r) = reclaim_case(
        DefaultPreemption::with_fair_share(Default::default()).without_reclaim(),
        3,
    );
    assert!(r.unwrap_err().contains("No preemption victims found"));
    // And kube's plain DefaultPreemption never preempts equal priorities.
    let (_, _, r) = reclaim_case(DefaultPreemption::new(), 3);
    assert!(r.unwrap_err().contains("No preemption victims found"));
}

mod no_loop {
    use super::shadow::*;
    use super::*;
    use mlplane_sched::Placement;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, VecDeque};

    /// Weighted dominant shares from the shadow's usage, computed here independently:
    /// per tenant, the largest of CPU, GPU compute and GPU memory over the cluster's,
    /// divided by the weight.
    fn shares(
        cluster: &Cluster,
        live: &[(Pod, Placement)],
        weights: &BTreeMap<String, f64>,
    ) -> BTreeMap<String, f64> {
        let cpu: u64 = cluster.nodes().iter().map(|n| n.cpu_milli).sum();
        let comp: u64 = cluster
            .nodes()
            .iter()
            .flat_map(|n| &n.devices)
            .map(|d| u64::from(d.compute_milli))
            .sum();
        let mem: u64 = cluster
            .nodes()
            .iter()
            .flat_map(|n| &n.devices)
            .map(|d| d.memory_mib)
            .sum();
        let mut used: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for (p, pl) in live {
            let e = used
                .entry(p.tenant.clone().unwrap_or_default())
                .or_default();
            e[0] += p.cpu_milli;
            for g in &pl.grants {
                e[1] += u64::from(g.compute_milli);
                e[2] += g.memory_mib;
            }
        }
        let f = |a: u64, t: u64| if t == 0 { 0.0 } else { a as f64 / t as f64 };
        used.into_iter()
            .map(|(t, u)| {
                let w = weights.get(&t).copied().unwrap_or(1.0);
                let d = f(u[0], cpu).max(f(u[1], comp)).max(f(u[2], mem));
                (t, d / w)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// A fixed set of pods of three tenants (random weights, two priorities) is
        /// scheduled with fair-share preemption; victims go back to the queue. Every
        /// reclaim of an equal-priority pod satisfies s_A' <= s_B' (recounted from the
        /// shadow model, the preemptor counted at what it got); in a stretch of steps
        /// where only preemptions happen, no tenant reclaims from a tenant that
        /// reclaimed from it; and there are no more preemptions than pods.
        #[test]
        fn reclaim_never_loops(
            cluster in arb_cluster(),
            pods in prop::collection::vec((arb_pod(), 0usize..3, any::<bool>()), 1..24),
            w in prop::collection::vec(1u8..=3, 3),
        ) {
            let tenants = ["A", "B", "C"];
            let weights: BTreeMap<String, f64> =
                tenants.iter().zip(&w).map(|(t, &w)| (t.to_string(), f64::from(w))).collect();
            let c = cluster.clone();
            let mut s = Scheduler::new(
                Profile::new("fair")
                    .with_all(plugins::default_filters(&c))
                    .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
                    .with(Arc::new(DefaultPreemption::with_fair_share(weights.clone())), 1),
            );
            let mut st = ClusterState::new(c.clone());
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut pending: VecDeque<Pod> = pods
                .iter()
                .map(|(p, t, high)| Pod {
                    tenant: Some(tenants[*t].into()),
                    priority: if *high { 100 } else { 50 },
                    ..p.clone()
                })
                .collect();
            let total = pending.len();
            let mut waiting: Vec<Pod> = Vec::new();
            let mut live: Vec<(Pod, Placement)> = Vec::new();
            let mut preemptions = 0usize;
            // (reclaimer tenant, reclaimed tenant) since the last step that was not a
            // preemption.
            let mut stretch: Vec<(String, String)> = Vec::new();
            let mut steps = 0;
            while let Some(pod) = pending.pop_front() {
                steps += 1;
                prop_assert!(steps < 50 * total + 50, "no end");
                match s.schedule(&mut st, &pod, &mut rng) {
                    Ok(pl) => {
                        live.push((pod, pl));
                        stretch.clear();
                    }
                    Err(ScheduleError::Unschedulable { nominated: Some(n), .. }) => {
                        preemptions += 1;
                        let victims: Vec<(Pod, Placement)> = live
                            .iter()
                            .filter(|(q, _)| n.victims.contains(&q.id))
                            .cloned()
                            .collect();
                        live.retain(|(q, _)| !n.victims.contains(&q.id));
                        for (v, _) in &victims {
                            st.forget(v.id).unwrap();
                        }
                        let pl = s.schedule(&mut st, &pod, &mut rng).expect("the nominated node fits once the victims are gone");
                        prop_assert_eq!(pl.node, n.node);
                        live.push((pod.clone(), pl));
                        let after = shares(&c, &live, &weights);
                        let a = pod.tenant.clone().unwrap();
                        for (v, _) in &victims {
                            let b = v.tenant.clone().unwrap();
                            if v.priority == pod.priority {
                                prop_assert_ne!(&a, &b, "reclaim from its own tenant");
                                let sb = after.get(&b).copied().unwrap_or(0.0);
                                prop_assert!(after[&a] <= sb + 1e-9, "s_A' {} > s_B' {} ({} from {})", after[&a], sb, a, b);
                                prop_assert!(!stretch.contains(&(b.clone(), a.clone())), "{} reclaimed back from {}", b, a);
                                stretch.push((a.clone(), b));
                            }
                            pending.push_back(v.clone());
                        }
                        // Evictions free room: the waiting pods may try again.
                        pending.extend(waiting.drain(..));
                    }
                    Err(_) => waiting.push(pod),
                }
                check_state(&st, &live);
            }
            prop_assert!(preemptions <= total, "{} preemptions for {} pods", preemptions, total);
        }
    }
}

#[test]
fn a_nominated_node_keeps_its_room_for_the_nominee() {
    // n0 has 2 GPUs, one held by L (priority 100). H (1000) asks for 2: only by
    // evicting L, so it is nominated to n0. While L terminates, P (100, 1 GPU) must not
    // take n0's free GPU: n0's room is held for H (2 asked beside P's 1; 1 free). A pod
    // of higher priority than H (2000) is not held back. After L leaves, H goes to n0.
    let c = cluster(vec![gpus("n0", 2)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c);
    let l = pod("L", 100, GpuRequest::Whole(1));
    place(&mut st, &mut s, &[&l]);
    let h = pod("H", 1000, GpuRequest::Whole(2));
    let nom = nominate(&mut st, &mut s, &h).unwrap();
    assert_eq!((nom.node, nom.victims.clone()), (NodeId(0), vec![l.id]));
    st.nominate(&h, nom.node);
    assert_eq!(st.nominated_node(h.id), Some(NodeId(0)));
    let p = pod("P", 100, GpuRequest::Whole(1));
    match s.schedule(&mut st, &p, &mut ChaCha8Rng::seed_from_u64(1)) {
        Err(ScheduleError::Unschedulable { diagnosis, .. }) => {
            assert!(
                diagnosis
                    .to_string()
                    .contains(mlplane_sched::framework::NOMINATED_ELSEWHERE),
                "{diagnosis}"
            );
        }
        other => panic!("P must wait, got {other:?}"),
    }
    // The same priority as H is held back too; a higher one is not.
    let top = pod("top", 2000, GpuRequest::Whole(1));
    assert!(st.nominated_fit(NodeId(0), &top));
    assert!(!st.nominated_fit(NodeId(0), &pod("eq", 1000, GpuRequest::Whole(1))));
    // H itself ignores its own nomination.
    st.forget(l.id);
    let placed = s
        .schedule(&mut st, &h, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(placed.node, NodeId(0));
    assert_eq!(
        st.nominated_node(h.id),
        None,
        "placing H clears its nomination"
    );
}

#[test]
fn a_nominee_goes_to_its_nominated_node_when_it_fits() {
    // Two free nodes of 2 GPUs; the node order prefers n1 for a tie, but a pod
    // nominated to n0 goes to n0 (kube's evaluateNominatedNode), and without the
    // nomination it goes to n1.
    let c = cluster(vec![gpus("n0", 2), gpus("n1", 2)]);
    let mut st = ClusterState::new(c.clone());
    let mut s = scheduler(&c).with_tie_break(mlplane_sched::TieBreak::Rank(vec![1, 0].into()));
    let free = pod("free", 1000, GpuRequest::Whole(1));
    let got = s
        .evaluate(&st, &free, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(got.node, NodeId(1));
    let n = pod("nominee", 1000, GpuRequest::Whole(1));
    st.nominate(&n, NodeId(0));
    let got = s
        .schedule(&mut st, &n, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(got.node, NodeId(0));
    assert!(!st.has_nominations());
}

fn tenant_pod(name: &str, tenant: &str, cpu: u64, gpu: GpuRequest) -> Pod {
    Pod {
        priority: 100,
        tenant: Some(tenant.into()),
        ..Pod::new(name, cpu, 1_024, gpu)
    }
}

fn fair_scheduler(c: &Cluster, p: DefaultPreemption) -> Scheduler {
    Scheduler::new(
        Profile::new("fair")
            .with_all(plugins::default_filters(c))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
            .with(Arc::new(p), 1),
    )
}

#[test]
fn reclaim_must_raise_the_preemptors_share() {
    // One node of 4 CPUs and 2 GPUs. A holds a GPU (share 1/2: GPUs dominate); B holds
    // a GPU and 3 CPUs in all (share 3/4: CPU). A's CPU-only pod of the same priority
    // asks 1 CPU; taking B's 2-CPU pod would leave A at max(2/4, 1/2) = 1/2: its share
    // does not rise, so it is no reclaim (before the rule it passed, 1/2 <= B's 1/2
    // after, and such trades could go back and forth at equal shares).
    let mut n = gpus("n0", 2);
    n.cpu_milli = 4_000;
    let c = cluster(vec![n]);
    let mut st = ClusterState::new(c.clone());
    let mut s = fair_scheduler(&c, DefaultPreemption::with_fair_share(Default::default()));
    let a_gpu = tenant_pod("a-gpu", "A", 1_000, GpuRequest::Whole(1));
    let b_gpu = tenant_pod("b-gpu", "B", 1_000, GpuRequest::Whole(1));
    let b_cpu = tenant_pod("b-cpu", "B", 2_000, GpuRequest::None);
    place(&mut st, &mut s, &[&a_gpu, &b_gpu, &b_cpu]);
    let a_cpu = tenant_pod("a-cpu", "A", 1_000, GpuRequest::None);
    assert!(nominate(&mut st, &mut s, &a_cpu).is_err());
    // A CPU-only pod of a tenant with nothing does raise its share, from 0 to 1/4, at
    // most B's 1/2 after: it reclaims B's CPU pod.
    let c_cpu = tenant_pod("c-cpu", "C", 1_000, GpuRequest::None);
    let nom = nominate(&mut st, &mut s, &c_cpu).unwrap();
    assert_eq!(nom.victims, vec![b_cpu.id]);
}

#[test]
fn the_reclaim_window_stops_a_reclaim_back() {
    // Two GPUs held by A; B's pod reclaims one at time 0 (1/2 <= 1/2). In another
    // state where A could reclaim from B by the share rule (B holds both GPUs), A may
    // not within the 600 s window (at 100 s), and may after it (at 700 s).
    let c = cluster(vec![gpus("n0", 2)]);
    let p = DefaultPreemption::with_fair_share(Default::default()).with_reclaim_window(600);
    let clock = p.clock().unwrap();
    let mut s = fair_scheduler(&c, p);
    let mut st = ClusterState::new(c.clone());
    let (a1, a2) = (
        tenant_pod("a1", "A", 1_000, GpuRequest::Whole(1)),
        tenant_pod("a2", "A", 1_000, GpuRequest::Whole(1)),
    );
    place(&mut st, &mut s, &[&a1, &a2]);
    let b = tenant_pod("b", "B", 1_000, GpuRequest::Whole(1));
    assert_eq!(nominate(&mut st, &mut s, &b).unwrap().victims.len(), 1);

    let mut other = ClusterState::new(c.clone());
    let (b1, b2) = (
        tenant_pod("b1", "B", 1_000, GpuRequest::Whole(1)),
        tenant_pod("b2", "B", 1_000, GpuRequest::Whole(1)),
    );
    place(&mut other, &mut s, &[&b1, &b2]);
    let a = tenant_pod("a", "A", 1_000, GpuRequest::Whole(1));
    clock.store(100, std::sync::atomic::Ordering::Relaxed);
    assert!(nominate(&mut other, &mut s, &a).is_err());
    clock.store(700, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(nominate(&mut other, &mut s, &a).unwrap().victims.len(), 1);
}

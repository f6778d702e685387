//! Soft quotas, each rule worked by hand from kube-throttler's `CheckThrottledFor` and
//! `IsThrottled`: active (used at or over the threshold), insufficient (used plus the
//! pod strictly over), pod-requests-exceeds-threshold (the pod alone strictly over),
//! temporary overrides (begin and end inclusive, replacing the spec, merged first-wins),
//! selection (podSelector AND namespaceSelector within a term, terms ORed, a Throttle
//! only in its namespace), Reserve holding a pod's amount, and kube-throttler#15: a pod
//! blocked only by its throttle preempts nothing.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mlplane_model::throttle::{
    Amount, LabelSelector, ThresholdOverride, Throttle, ThrottleCheck, ThrottleTerm,
};
use mlplane_model::{
    Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, SelectorOperator, SelectorRequirement,
};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::preemption::DefaultPreemption;
use mlplane_sched::throttle::Throttles;
use mlplane_sched::{
    ClusterState, CycleState, PreFilterPlugin, Profile, ReservePlugin, ScheduleError, Scheduler,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn team(t: &str) -> LabelSelector {
    LabelSelector {
        match_labels: labels(&[("team", t)]),
        match_expressions: Vec::new(),
    }
}

fn amount(pods: Option<u64>, req: &[(&str, u64)]) -> Amount {
    Amount {
        pods,
        requests: req.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn throttle(ns: Option<&str>, terms: Vec<ThrottleTerm>, threshold: Amount) -> Throttle {
    Throttle {
        name: "t".into(),
        namespace: ns.map(str::to_string),
        terms,
        threshold,
        overrides: Vec::new(),
    }
}

fn term(pod: LabelSelector, ns: Option<LabelSelector>) -> ThrottleTerm {
    ThrottleTerm {
        pod_selector: pod,
        namespace_selector: ns,
    }
}

#[test]
fn active_insufficient_and_exceeds_follow_kube_throttler() {
    // Threshold: 3 GPUs. The pod asks 1.
    let t = throttle(
        None,
        vec![term(team("a"), None)],
        amount(None, &[("nvidia.com/gpu", 3)]),
    );
    let asked = amount(Some(1), &[("nvidia.com/gpu", 1)]);
    let used = |n| amount(Some(n), &[("nvidia.com/gpu", n)]);
    assert_eq!(t.check(&asked, &used(1), 0), ThrottleCheck::NotThrottled);
    // 2 used + 1 = 3 = threshold: allowed (insufficient is strict >).
    assert_eq!(t.check(&asked, &used(2), 0), ThrottleCheck::NotThrottled);
    // 3 used = threshold: active (at or over).
    assert_eq!(t.check(&asked, &used(3), 0), ThrottleCheck::Active);
    // 2 used + 2 asked = 4 > 3: insufficient.
    let two = amount(Some(1), &[("nvidia.com/gpu", 2)]);
    assert_eq!(t.check(&two, &used(2), 0), ThrottleCheck::Insufficient);
    // 4 alone > 3: the pod's requests exceed the threshold, whatever is used.
    let four = amount(Some(1), &[("nvidia.com/gpu", 4)]);
    assert_eq!(
        t.check(&four, &used(0), 0),
        ThrottleCheck::PodRequestsExceedsThreshold
    );
    // A resource the pod does not ask for does not throttle it.
    let cpu_only = amount(Some(1), &[("cpu", 1000)]);
    assert_eq!(t.check(&cpu_only, &used(3), 0), ThrottleCheck::NotThrottled);
    // The pod count always counts: at 2 pods of a threshold of 2, active.
    let pods = throttle(None, vec![term(team("a"), None)], amount(Some(2), &[]));
    assert_eq!(pods.check(&cpu_only, &used(2), 0), ThrottleCheck::Active);
    assert_eq!(
        pods.check(&cpu_only, &used(1), 0),
        ThrottleCheck::NotThrottled
    );
}

#[test]
fn overrides_are_inclusive_replace_the_spec_and_merge_first_wins() {
    let mut t = throttle(
        None,
        vec![term(team("a"), None)],
        amount(None, &[("nvidia.com/gpu", 1), ("cpu", 1000)]),
    );
    t.overrides = vec![
        ThresholdOverride {
            begin_s: 100,
            end_s: 200,
            threshold: amount(None, &[("nvidia.com/gpu", 8)]),
        },
        ThresholdOverride {
            begin_s: 150,
            end_s: 300,
            threshold: amount(Some(5), &[("nvidia.com/gpu", 2), ("memory", 10)]),
        },
    ];
    assert_eq!(t.threshold_at(99), t.threshold);
    // Begin and end inclusive; the spec's cpu is gone while an override is active.
    assert_eq!(t.threshold_at(100), amount(None, &[("nvidia.com/gpu", 8)]));
    // Both active: GPU from the first, pods and memory from the second.
    assert_eq!(
        t.threshold_at(150),
        amount(Some(5), &[("nvidia.com/gpu", 8), ("memory", 10)])
    );
    assert_eq!(
        t.threshold_at(200),
        amount(Some(5), &[("nvidia.com/gpu", 8), ("memory", 10)])
    );
    assert_eq!(
        t.threshold_at(201),
        amount(Some(5), &[("nvidia.com/gpu", 2), ("memory", 10)])
    );
    assert_eq!(
        t.threshold_at(300),
        amount(Some(5), &[("nvidia.com/gpu", 2), ("memory", 10)])
    );
    assert_eq!(t.threshold_at(301), t.threshold);
}

#[test]
fn selection_ands_within_a_term_and_ors_across() {
    let ns_labels = |ns: &str| match ns {
        "prod" => labels(&[("env", "prod")]),
        _ => labels(&[("env", "dev")]),
    };
    let pod = |ns: &str, team: &str| Pod {
        namespace: ns.into(),
        labels: labels(&[("team", team)]),
        ..Pod::new("p", 1, 1, GpuRequest::None)
    };
    let prod = LabelSelector {
        match_labels: labels(&[("env", "prod")]),
        match_expressions: Vec::new(),
    };
    // ClusterThrottle: (team=a AND namespace env=prod) OR (team=b, any namespace).
    let ct = throttle(
        None,
        vec![term(team("a"), Some(prod)), term(team("b"), None)],
        Amount::default(),
    );
    assert!(ct.selects(&pod("prod", "a"), &ns_labels));
    assert!(
        !ct.selects(&pod("dev", "a"), &ns_labels),
        "AND: the namespace must match"
    );
    assert!(
        ct.selects(&pod("dev", "b"), &ns_labels),
        "OR: the second term"
    );
    assert!(!ct.selects(&pod("prod", "c"), &ns_labels));
    // matchExpressions too.
    let expr = throttle(
        None,
        vec![term(
            LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![SelectorRequirement {
                    key: "team".into(),
                    operator: SelectorOperator::In,
                    values: vec!["a".into(), "c".into()],
                }],
            },
            None,
        )],
        Amount::default(),
    );
    assert!(expr.selects(&pod("dev", "c"), &ns_labels));
    assert!(!expr.selects(&pod("dev", "b"), &ns_labels));
    // A namespaced Throttle selects only its own namespace's pods.
    let t = throttle(Some("prod"), vec![term(team("a"), None)], Amount::default());
    assert!(t.selects(&pod("prod", "a"), &ns_labels));
    assert!(!t.selects(&pod("dev", "a"), &ns_labels));
    assert_eq!(t.full_name(), "prod/t");
}

fn cluster() -> Arc<Cluster> {
    Arc::new(
        Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: Some(15_360),
            }],
            vec![Node::new("n0", 64_000, 262_144).with_gpus(GpuModelId(0), 2, 15_360)],
        )
        .unwrap(),
    )
}

fn team_pod(name: &str, team: &str, priority: i32) -> Pod {
    Pod {
        priority,
        labels: labels(&[("team", team)]),
        ..Pod::new(name, 1_000, 1_024, GpuRequest::Whole(1))
    }
}

#[test]
fn a_throttled_pod_waits_and_preempts_nothing() {
    // kube-throttler#15: team a may run 1 GPU. a1 runs; a2 (priority 1000) is blocked by
    // the throttle only. A low-priority pod of team b holds the other GPU, a possible
    // victim: still nothing is preempted, because the throttle's rejection is
    // unresolvable for every node.
    let c = cluster();
    let t = throttle(
        None,
        vec![term(team("a"), None)],
        amount(None, &[("nvidia.com/gpu", 1)]),
    );
    let throttles = Arc::new(Throttles::new(vec![t.clone()], BTreeMap::new()));
    let mut s = Scheduler::new(
        Profile::new("thr")
            .with(throttles.clone(), 1)
            .with_all(plugins::default_filters(&c))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
            .with(Arc::new(DefaultPreemption::new()), 1),
    );
    let mut st = ClusterState::new(c.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    s.schedule(&mut st, &team_pod("a1", "a", 100), &mut rng)
        .unwrap();
    s.schedule(&mut st, &team_pod("b1", "b", 1), &mut rng)
        .unwrap();
    match s.schedule(&mut st, &team_pod("a2", "a", 1000), &mut rng) {
        Err(ScheduleError::Unschedulable {
            diagnosis,
            nominated,
        }) => {
            assert_eq!(nominated, None, "a throttled pod must not preempt");
            assert_eq!(
                diagnosis.to_string(),
                "0/1 nodes are available: clusterthrottle[active]=t. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."
            );
        }
        other => panic!("{other:?}"),
    }
    // Once a1 leaves, a2 fits.
    let a1 = st
        .pods_on(mlplane_sched::NodeId(0))
        .find(|b| b.pod.name == "a1")
        .unwrap()
        .pod
        .id;
    st.forget(a1);
    s.schedule(&mut st, &team_pod("a2", "a", 1000), &mut rng)
        .unwrap();
    assert_eq!(throttles.used(&st, &t).requests["nvidia.com/gpu"], 1);
}

#[test]
fn reserve_holds_the_amount_until_the_pod_is_placed() {
    let c = cluster();
    let st = ClusterState::new(c.clone());
    let t = throttle(
        None,
        vec![term(team("a"), None)],
        amount(None, &[("nvidia.com/gpu", 1)]),
    );
    let plugin = Throttles::new(vec![t.clone()], BTreeMap::new());
    let (a1, a2) = (team_pod("a1", "a", 0), team_pod("a2", "a", 0));
    let mut cycle = CycleState::default();
    assert!(plugin.pre_filter(&mut cycle, &st, &a1).unwrap().is_none());
    // a1 reserved (in flight, not yet in the state): a2 sees the threshold taken.
    plugin
        .reserve(
            &mut cycle,
            &st,
            &a1,
            &st.node(mlplane_sched::NodeId(0)),
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
    assert_eq!(plugin.used(&st, &t).pods, Some(1));
    let e = plugin.pre_filter(&mut cycle, &st, &a2).unwrap_err();
    assert_eq!(e.message(), "clusterthrottle[active]=t");
    // Unreserve gives it back.
    plugin.unreserve(&mut cycle, &a1, mlplane_sched::NodeId(0));
    assert!(plugin.pre_filter(&mut cycle, &st, &a2).unwrap().is_none());
    // The override clock: at 10 s an override of 0 GPUs is active.
    let mut t2 = t.clone();
    t2.overrides = vec![ThresholdOverride {
        begin_s: 10,
        end_s: 20,
        threshold: amount(None, &[("nvidia.com/gpu", 0)]),
    }];
    let plugin = Throttles::new(vec![t2], BTreeMap::new());
    assert!(plugin.pre_filter(&mut cycle, &st, &a1).unwrap().is_none());
    plugin.clock().store(10, Ordering::Relaxed);
    assert_eq!(
        plugin
            .pre_filter(&mut cycle, &st, &a1)
            .unwrap_err()
            .message(),
        "clusterthrottle[pod-requests-exceeds-threshold]=t"
    );
}

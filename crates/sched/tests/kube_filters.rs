//! Hand-worked tests of kube-scheduler's filters over the model, each from upstream's
//! documented semantics (taint-and-toleration and assign-pod-node pages of
//! kubernetes.io, and the reason texts of `pkg/scheduler/framework/plugins/`), and of
//! the diagnosis text of a failed cycle (`FitError.Error()`).

use std::collections::BTreeMap;
use std::sync::Arc;

use mlplane_model::{
    Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, RequiredAffinity, ResourceId,
    SelectorOperator, SelectorRequirement, SelectorTerm, Taint, TaintEffect, Toleration,
    TolerationOperator,
};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector, TaintToleration};
use mlplane_sched::{ClusterState, Code, NodeId, Profile, ScheduleError, Scheduler};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn t4() -> GpuModel {
    GpuModel {
        name: "T4".into(),
        memory_mib: Some(15_360),
    }
}

fn gpu_node(name: &str, gpus: u8) -> Node {
    Node::new(name, 8_000, 32_768).with_gpus(GpuModelId(0), gpus, 15_360)
}

fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
    }
}

fn tol(key: &str, op: TolerationOperator, value: &str, effect: Option<TaintEffect>) -> Toleration {
    Toleration {
        key: key.into(),
        operator: op,
        value: value.into(),
        effect,
    }
}

fn scheduler(cluster: &Cluster) -> Scheduler {
    Scheduler::new(
        Profile::new("test")
            .with_all(plugins::default_filters(cluster))
            .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1),
    )
}

/// Schedules `pod` on a fresh state of `nodes`; the node name, or the failure.
fn place(nodes: Vec<Node>, pod: &Pod) -> Result<String, ScheduleError> {
    let cluster = Arc::new(Cluster::new(vec![t4()], nodes).unwrap());
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let p = scheduler(&cluster).schedule(&mut st, pod, &mut rng)?;
    Ok(cluster.nodes()[p.node.index()].name.clone())
}

/// The diagnosis text of a pod that fits nowhere.
fn why(nodes: Vec<Node>, pod: &Pod) -> String {
    match place(nodes, pod) {
        Ok(n) => panic!("placed on {n}"),
        Err(e) => e.to_string(),
    }
}

fn pod(gpu: GpuRequest) -> Pod {
    Pod::new("p", 1_000, 1_024, gpu)
}

#[test]
fn no_schedule_and_no_execute_taints_reject_unless_tolerated() {
    use TolerationOperator::*;
    for effect in [TaintEffect::NoSchedule, TaintEffect::NoExecute] {
        let mut n = gpu_node("tainted", 1);
        n.taints = vec![taint("gpu", "shared", effect)];
        let p = pod(GpuRequest::Whole(1));
        assert_eq!(
            why(vec![n.clone()], &p),
            "0/1 nodes are available: 1 node(s) had untolerated taint {gpu: shared}."
        );
        let tolerated = [
            tol("gpu", Equal, "shared", None),
            tol("gpu", Equal, "shared", Some(effect)),
            tol("gpu", Exists, "", None),
            tol("", Exists, "", None),
        ];
        for t in tolerated {
            let mut q = p.renewed();
            q.tolerations = vec![t.clone()];
            assert_eq!(place(vec![n.clone()], &q).unwrap(), "tainted", "{t:?}");
        }
        let not_tolerated = [
            tol("gpu", Equal, "other", None),
            tol("other", Exists, "", None),
            tol("gpu", Exists, "", Some(TaintEffect::PreferNoSchedule)),
        ];
        for t in not_tolerated {
            let mut q = p.renewed();
            q.tolerations = vec![t.clone()];
            assert!(place(vec![n.clone()], &q).is_err(), "{t:?}");
        }
    }
}

#[test]
fn untolerated_taint_is_unresolvable_so_preemption_skips_the_node() {
    let mut n = gpu_node("tainted", 1);
    n.taints = vec![taint("gpu", "shared", TaintEffect::NoSchedule)];
    let err = place(vec![n], &pod(GpuRequest::Whole(1))).unwrap_err();
    let d = err.diagnosis().unwrap();
    assert_eq!(d.statuses[0].1.code, Code::UnschedulableAndUnresolvable);
    assert_eq!(d.statuses[0].1.plugin, "TaintToleration");
    assert!(!d.preemption_might_help());
}

#[test]
fn prefer_no_schedule_is_a_score_not_a_filter() {
    // Three equal nodes with 0, 1 and 2 PreferNoSchedule taints the pod does not
    // tolerate: raw scores 0, 1, 2; kube normalises in reverse by the maximum (2):
    // 100 - 100*0/2 = 100, 100 - 100*1/2 = 50, 100 - 100*2/2 = 0.
    let mut nodes = vec![gpu_node("a", 1), gpu_node("b", 1), gpu_node("c", 1)];
    nodes[0].taints = vec![
        taint("x", "1", TaintEffect::PreferNoSchedule),
        taint("y", "1", TaintEffect::PreferNoSchedule),
    ];
    nodes[1].taints = vec![taint("x", "1", TaintEffect::PreferNoSchedule)];
    let cluster = Arc::new(Cluster::new(vec![t4()], nodes.clone()).unwrap());
    let st = ClusterState::new(cluster.clone());
    let p = pod(GpuRequest::None);
    use mlplane_sched::{CycleState, NodeScore, ScorePlugin};
    let cycle = CycleState::default();
    let mut scores: Vec<NodeScore> = st
        .iter()
        .map(|n| NodeScore {
            node: n.id,
            score: TaintToleration.score(&cycle, &p, &n),
        })
        .collect();
    assert_eq!(
        scores.iter().map(|s| s.score).collect::<Vec<_>>(),
        [2, 1, 0]
    );
    TaintToleration.normalize(&cycle, &p, &mut scores);
    assert_eq!(
        scores.iter().map(|s| s.score).collect::<Vec<_>>(),
        [0, 50, 100]
    );
    // With the filter plugins and TaintToleration's score, the untainted node wins.
    assert_eq!(place(nodes.clone(), &p).unwrap(), "c");
    // A toleration with effect PreferNoSchedule (or none) removes the taint from the count.
    let mut q = p.renewed();
    q.tolerations = vec![tol(
        "x",
        TolerationOperator::Exists,
        "",
        Some(TaintEffect::PreferNoSchedule),
    )];
    let mut tolerant = vec![0; 3];
    for (k, n) in st.iter().enumerate() {
        tolerant[k] = TaintToleration.score(&cycle, &q, &n);
    }
    assert_eq!(tolerant, [1, 0, 0]);
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn labelled(name: &str, kv: &[(&str, &str)]) -> Node {
    let mut n = gpu_node(name, 1);
    n.labels = labels(kv);
    n
}

fn affinity(terms: Vec<Vec<(&str, SelectorOperator, &[&str])>>) -> RequiredAffinity {
    RequiredAffinity {
        terms: terms
            .into_iter()
            .map(|reqs| SelectorTerm {
                match_expressions: reqs
                    .into_iter()
                    .map(|(k, op, vs)| SelectorRequirement {
                        key: k.into(),
                        operator: op,
                        values: vs.iter().map(|v| v.to_string()).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn node_selector_and_affinity_choose_the_matching_node() {
    use SelectorOperator::*;
    let nodes = || {
        vec![
            labelled("t4-a", &[("zone", "a"), ("gpus", "1")]),
            labelled("t4-b", &[("zone", "b"), ("gpus", "4"), ("spot", "")]),
            labelled("plain", &[]),
        ]
    };
    let with_aff = |a: RequiredAffinity| {
        let mut p = pod(GpuRequest::Whole(1));
        p.affinity = Some(a);
        p
    };
    let cases: Vec<(RequiredAffinity, Option<&str>)> = vec![
        (affinity(vec![vec![("zone", In, &["b"])]]), Some("t4-b")),
        (
            affinity(vec![vec![("zone", NotIn, &["a", "b"])]]),
            Some("plain"),
        ),
        (affinity(vec![vec![("spot", Exists, &[])]]), Some("t4-b")),
        (
            affinity(vec![vec![
                ("zone", Exists, &[]),
                ("spot", DoesNotExist, &[]),
            ]]),
            Some("t4-a"),
        ),
        (affinity(vec![vec![("gpus", Gt, &["2"])]]), Some("t4-b")),
        (affinity(vec![vec![("gpus", Lt, &["2"])]]), Some("t4-a")),
        (affinity(vec![vec![("gpus", Gt, &["4"])]]), None),
        // Terms are ORed: zone c matches nothing, the second term picks t4-a.
        (
            affinity(vec![vec![("zone", In, &["c"])], vec![("gpus", Lt, &["4"])]]),
            Some("t4-a"),
        ),
        (RequiredAffinity::default(), None),
    ];
    for (a, want) in cases {
        let got = place(nodes(), &with_aff(a.clone()));
        match want {
            Some(n) => assert_eq!(got.unwrap(), n, "{a:?}"),
            None => assert_eq!(
                got.unwrap_err().to_string(),
                "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
                "{a:?}"
            ),
        }
    }
    // nodeSelector: every label must equal.
    let mut p = pod(GpuRequest::Whole(1));
    p.node_selector = labels(&[("zone", "b"), ("gpus", "4")]);
    assert_eq!(place(nodes(), &p).unwrap(), "t4-b");
    p.node_selector = labels(&[("zone", "b"), ("gpus", "1")]);
    assert!(place(nodes(), &p).is_err());
}

#[test]
fn cordoned_nodes_reject_unless_the_pod_tolerates_unschedulable() {
    let mut n = gpu_node("cordoned", 1);
    n.unschedulable = true;
    let p = pod(GpuRequest::None);
    assert_eq!(
        why(vec![n.clone()], &p),
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );
    let mut q = p.renewed();
    q.tolerations = vec![tol(
        plugins::UNSCHEDULABLE_TAINT,
        TolerationOperator::Exists,
        "",
        Some(TaintEffect::NoSchedule),
    )];
    assert_eq!(place(vec![n], &q).unwrap(), "cordoned");
}

#[test]
fn resources_fit_counts_every_shortage_and_the_pod_limit() {
    let cluster = Arc::new(
        Cluster::with_resources(
            vec![t4()],
            vec!["nvidia.com/gpu".into(), "example.com/foo".into()],
            vec![{
                let mut n = gpu_node("n", 1).with_max_pods(1);
                n.extended = vec![(ResourceId(1), 2)];
                n
            }],
        )
        .unwrap(),
    );
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = scheduler(&cluster);
    // Extended resource: 2 available, 3 asked.
    let mut foo = Pod::new("foo", 100, 100, GpuRequest::None);
    foo.extended = vec![(ResourceId(1), 3)];
    assert_eq!(
        s.schedule(&mut st, &foo, &mut rng).unwrap_err().to_string(),
        "0/1 nodes are available: 1 Insufficient example.com/foo."
    );
    foo.extended = vec![(ResourceId(1), 2)];
    s.schedule(&mut st, &foo, &mut rng).unwrap();
    // The node now runs its one pod; a pod too big in cpu and memory gets all three
    // reasons, each counted (kube's fitsRequest collects every insufficiency).
    let big = Pod::new("big", 9_000, 40_000, GpuRequest::None);
    assert_eq!(
        s.schedule(&mut st, &big, &mut rng).unwrap_err().to_string(),
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods."
    );
}

#[test]
fn gpu_model_and_device_filters_use_kube_reasons() {
    let cpu_only = Node::new("cpu", 8_000, 32_768);
    let mut full = gpu_node("full", 1);
    full.name = "full".into();
    let v100 = Node::new("v100", 8_000, 32_768).with_gpus(GpuModelId(1), 1, 16_384);
    let cluster = Arc::new(
        Cluster::new(
            vec![
                t4(),
                GpuModel {
                    name: "V100M16".into(),
                    memory_mib: Some(16_384),
                },
            ],
            vec![cpu_only, full, v100],
        )
        .unwrap(),
    );
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = scheduler(&cluster);
    // Fill the T4.
    let mut filler = pod(GpuRequest::Whole(1));
    filler.allowed_models = Some(cluster.model_set(["T4"]));
    assert_eq!(
        s.schedule(&mut st, &filler, &mut rng).unwrap().node,
        NodeId(1)
    );
    let mut p = pod(GpuRequest::Milli(500));
    p.allowed_models = Some(cluster.model_set(["T4"]));
    assert_eq!(
        s.schedule(&mut st, &p, &mut rng).unwrap_err().to_string(),
        "0/3 nodes are available: 1 node(s) didn't have an allowed GPU model, 2 Insufficient nvidia.com/gpu."
    );
}

#[test]
fn the_diagnosis_histogram_is_sorted_as_kube_sorts_it() {
    // Two full GPU nodes and one tainted: kube sorts "<count> <reason>" strings, so
    // "1 node(s)..." comes before "2 Insufficient ...".
    let mut tainted = gpu_node("c", 1);
    tainted.taints = vec![taint("gpu", "shared", TaintEffect::NoSchedule)];
    let nodes = vec![gpu_node("a", 1), gpu_node("b", 1), tainted];
    let cluster = Arc::new(Cluster::new(vec![t4()], nodes).unwrap());
    let mut st = ClusterState::new(cluster.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = scheduler(&cluster);
    for _ in 0..2 {
        s.schedule(&mut st, &pod(GpuRequest::Whole(1)), &mut rng)
            .unwrap();
    }
    let err = s
        .schedule(&mut st, &pod(GpuRequest::Whole(1)), &mut rng)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: shared}, 2 Insufficient nvidia.com/gpu."
    );
    let d = err.diagnosis().unwrap();
    assert_eq!(d.statuses.len(), 3);
    assert!(d.preemption_might_help(), "Insufficient is Unschedulable");
}

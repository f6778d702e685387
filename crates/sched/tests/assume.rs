//! `ClusterState::assume` and `forget` at their boundaries: exact fits are accepted,
//! one unit more is refused with the matching error, and a refusal changes nothing.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelSet, Node, NodeGpus, Pod};
use mlplane_sched::{AssumeError, ClusterState, GpuSet, NodeId, NodeState, Placement};

use GpuRequest::{None as NoGpu, Shared, Whole};

/// n0: 4000m, 4096 MiB, 2 T4; n1: CPU-only, 4000m, 4096 MiB.
fn state() -> ClusterState {
    let models = vec![
        GpuModel {
            name: "T4".into(),
            memory_mib: None,
        },
        GpuModel {
            name: "A100".into(),
            memory_mib: None,
        },
    ];
    let nodes = vec![
        Node {
            name: "n0".into(),
            cpu_milli: 4000,
            memory_mib: 4096,
            gpus: Some(NodeGpus {
                model: GpuModelId(0),
                count: 2,
            }),
        },
        Node {
            name: "n1".into(),
            cpu_milli: 4000,
            memory_mib: 4096,
            gpus: None,
        },
    ];
    ClusterState::new(Arc::new(Cluster::new(models, nodes).unwrap()))
}

fn at(node: u32, idx: &[usize]) -> Placement {
    let mut gpus = GpuSet::empty();
    for &i in idx {
        gpus.insert(i);
    }
    Placement {
        node: NodeId(node),
        gpus,
    }
}

fn snapshot(st: &ClusterState) -> (Vec<NodeState>, u64, u64) {
    (
        st.iter().map(|n| n.state.clone()).collect(),
        st.gpu_used_milli(),
        st.gpu_pods(),
    )
}

/// Asserts that `assume` refuses with an error `matches` accepts, changing nothing.
fn refused(st: &mut ClusterState, pod: &Pod, p: Placement, matches: fn(&AssumeError) -> bool) {
    let before = snapshot(st);
    let err = st.assume(pod, p).expect_err("assume should refuse");
    assert!(matches(&err), "{pod:?} {p:?}: unexpected {err:?}");
    assert_eq!(snapshot(st), before, "a refused assume changed the state");
}

#[test]
fn cpu_and_memory_fit_exactly_or_are_refused() {
    let mut st = state();
    let insufficient = |e: &AssumeError| matches!(e, AssumeError::Insufficient { .. });
    refused(
        &mut st,
        &Pod::new("p", 4001, 0, NoGpu),
        at(1, &[]),
        insufficient,
    );
    refused(
        &mut st,
        &Pod::new("p", 0, 4097, NoGpu),
        at(1, &[]),
        insufficient,
    );
    st.assume(&Pod::new("p", 4000, 4096, NoGpu), at(1, &[]))
        .unwrap();
    let n1 = st.node(NodeId(1)).state;
    assert_eq!((n1.cpu_free_milli, n1.memory_free_mib, n1.pods), (0, 0, 1));
    refused(
        &mut st,
        &Pod::new("p", 1, 0, NoGpu),
        at(1, &[]),
        insufficient,
    );
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (0, 0));
}

#[test]
fn gpu_milli_fits_exactly_or_is_refused() {
    let mut st = state();
    let gpus = |e: &AssumeError| matches!(e, AssumeError::Gpus { .. });
    st.assume(&Pod::new("a", 0, 0, Shared(700)), at(0, &[0]))
        .unwrap();
    refused(
        &mut st,
        &Pod::new("b", 0, 0, Shared(301)),
        at(0, &[0]),
        gpus,
    );
    st.assume(&Pod::new("b", 0, 0, Shared(300)), at(0, &[0]))
        .unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[0, 1000]);
    refused(&mut st, &Pod::new("c", 0, 0, Shared(1)), at(0, &[0]), gpus);
    // a whole GPU needs an entirely free one
    refused(&mut st, &Pod::new("w", 0, 0, Whole(1)), at(0, &[0]), gpus);
    st.assume(&Pod::new("s", 0, 0, Shared(1)), at(0, &[1]))
        .unwrap();
    refused(&mut st, &Pod::new("w", 0, 0, Whole(1)), at(0, &[1]), gpus);
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (1001, 3));
}

#[test]
fn gpu_set_must_match_the_request() {
    let mut st = state();
    let gpus = |e: &AssumeError| matches!(e, AssumeError::Gpus { .. });
    // wrong number of GPUs
    refused(&mut st, &Pod::new("w", 0, 0, Whole(2)), at(0, &[0]), gpus);
    refused(
        &mut st,
        &Pod::new("s", 0, 0, Shared(5)),
        at(0, &[0, 1]),
        gpus,
    );
    refused(&mut st, &Pod::new("s", 0, 0, Shared(5)), at(0, &[]), gpus);
    refused(&mut st, &Pod::new("c", 0, 0, NoGpu), at(0, &[0]), gpus);
    // a GPU the node lacks
    refused(&mut st, &Pod::new("s", 0, 0, Shared(5)), at(0, &[2]), gpus);
    refused(
        &mut st,
        &Pod::new("w", 0, 0, Whole(2)),
        at(0, &[1, 2]),
        gpus,
    );
    // a GPU pod on a CPU-only node
    let model = |e: &AssumeError| matches!(e, AssumeError::Model { .. });
    refused(&mut st, &Pod::new("s", 0, 0, Shared(5)), at(1, &[0]), model);
    // no such node
    let no_node = |e: &AssumeError| matches!(e, AssumeError::NoSuchNode(2));
    refused(&mut st, &Pod::new("c", 0, 0, NoGpu), at(2, &[]), no_node);
    // 2 whole GPUs: both become entirely used
    st.assume(&Pod::new("w", 0, 0, Whole(2)), at(0, &[0, 1]))
        .unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[0, 0]);
    assert_eq!(st.node(NodeId(0)).state.pods_by_gpu_class[2], 1);
}

#[test]
fn model_constraint_is_checked() {
    let mut st = state();
    let model = |e: &AssumeError| matches!(e, AssumeError::Model { .. });
    let mut a100 = ModelSet::empty();
    a100.insert(GpuModelId(1));
    let only_a100 = Pod {
        allowed_models: Some(a100),
        ..Pod::new("a", 0, 0, Shared(100))
    };
    refused(&mut st, &only_a100, at(0, &[0]), model);
    let nowhere = Pod {
        allowed_models: Some(ModelSet::empty()),
        ..Pod::new("n", 0, 0, Whole(1))
    };
    refused(&mut st, &nowhere, at(0, &[0]), model);
    // a CPU-only pod ignores its model constraint
    let cpu = Pod {
        allowed_models: Some(ModelSet::empty()),
        ..Pod::new("c", 100, 0, NoGpu)
    };
    st.assume(&cpu, at(0, &[])).unwrap();
}

#[test]
fn forget_undoes_assume() {
    let mut st = state();
    let empty = snapshot(&st);
    let pods = [
        (Pod::new("a", 1000, 512, Shared(250)), at(0, &[1])),
        (Pod::new("b", 500, 256, Whole(1)), at(0, &[0])),
        (Pod::new("c", 2000, 1024, NoGpu), at(1, &[])),
    ];
    for (p, at) in &pods {
        st.assume(p, *at).unwrap();
    }
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (1250, 2));
    for (p, at) in pods.iter().rev() {
        st.forget(p, *at);
    }
    assert_eq!(snapshot(&st), empty);
}

#[test]
#[should_panic(expected = "forget() of a pod that is not on node")]
fn forget_of_a_pod_that_is_not_there_panics() {
    let mut st = state();
    st.forget(&Pod::new("a", 0, 0, Shared(250)), at(0, &[0]));
}

/// Regression: a malformed request (9 whole GPUs, a 0 or 1000 milli share) is refused
/// with an error by `assume` and by the filters, never a panic.
#[test]
fn malformed_requests_are_refused_not_panicking() {
    use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, NodeGpus, Pod};
    use mlplane_sched::plugins::{GpuSelectMode, GpuSelector};
    use mlplane_sched::{
        ClusterState, GpuSet, NodeId, Placement, Profile, ScheduleError, Scheduler,
    };
    use rand::SeedableRng;
    let cluster = std::sync::Arc::new(
        Cluster::new(
            vec![GpuModel {
                name: "H".into(),
                memory_mib: None,
            }],
            vec![Node {
                name: "n".into(),
                cpu_milli: 1000,
                memory_mib: 1000,
                gpus: Some(NodeGpus {
                    model: GpuModelId(0),
                    count: 16,
                }),
            }],
        )
        .unwrap(),
    );
    let mut state = ClusterState::new(cluster);
    let mut nine = GpuSet::empty();
    for i in 0..9 {
        nine.insert(i);
    }
    let bad = [
        (GpuRequest::Whole(9), nine),
        (GpuRequest::Whole(0), GpuSet::empty()),
        (GpuRequest::Shared(0), GpuSet::single(0)),
        (GpuRequest::Shared(1000), GpuSet::single(0)),
    ];
    let mut sched = Scheduler::new(Profile::new(
        "t",
        Box::new(GpuSelector(GpuSelectMode::BestFit)),
    ));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for (req, gpus) in bad {
        let pod = Pod::new("p", 0, 0, req);
        let err = state
            .assume(
                &pod,
                Placement {
                    node: NodeId(0),
                    gpus,
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        assert!(matches!(
            sched.schedule(&state, &pod, &mut rng),
            Err(ScheduleError::Unschedulable { .. })
        ));
    }
    assert_eq!(state.gpu_used_milli(), 0);
}

//! `ClusterState::assume` and `forget` at their boundaries: exact fits are accepted,
//! one unit more is refused with the matching error, and a refusal changes nothing.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelSet, Node, Pod, PodId};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, Grant, NodeId, NodeState, Placement, Profile, ScheduleError, Scheduler,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use GpuRequest::{Milli, None as NoGpu, Whole};

/// GPU memory of each T4 device in these tests, MiB: a share of `m` milli is charged
/// `16 * m` MiB.
const GPU_MIB: u64 = 16_000;

fn cluster(nodes: Vec<Node>) -> Arc<Cluster> {
    let models = vec![
        GpuModel {
            name: "T4".into(),
            memory_mib: Some(GPU_MIB),
        },
        GpuModel {
            name: "A100".into(),
            memory_mib: None,
        },
    ];
    Arc::new(Cluster::new(models, nodes).unwrap())
}

/// n0: 4000m, 4096 MiB, 2 T4; n1: CPU-only, 4000m, 4096 MiB.
fn state() -> ClusterState {
    ClusterState::new(cluster(vec![
        Node::new("n0", 4000, 4096).with_gpus(GpuModelId(0), 2, GPU_MIB),
        Node::new("n1", 4000, 4096),
    ]))
}

/// `req` on GPUs `idx` of node `node`, charged by the FGD paper's rule worked out here:
/// a share of `m` is `(16 * m MiB, m milli)`, a whole GPU `(16000 MiB, 1000 milli)`.
fn at(node: u32, req: GpuRequest, idx: &[u16]) -> Placement {
    let (memory_mib, compute_milli) = match req {
        Milli(m) => (GPU_MIB * u64::from(m) / 1000, u32::from(m)),
        Whole(_) => (GPU_MIB, 1000),
        _ => (0, 0),
    };
    Placement {
        node: NodeId(node),
        grants: idx
            .iter()
            .map(|&device| Grant {
                device,
                replica: 0,
                memory_mib,
                compute_milli,
            })
            .collect(),
    }
}

fn snapshot(st: &ClusterState) -> (Vec<NodeState>, u64, u64, u64, usize) {
    (
        st.iter().map(|n| n.state.clone()).collect(),
        st.gpu_used_milli(),
        st.gpu_memory_used_mib(),
        st.gpu_pods(),
        st.pod_count(),
    )
}

/// [`snapshot`] without the node versions, which change with every assume and forget.
fn usage_of(st: &ClusterState) -> (Vec<NodeState>, u64, u64, u64, usize) {
    let mut s = snapshot(st);
    for n in &mut s.0 {
        n.version = 0;
    }
    s
}

/// Asserts that `assume` refuses `pod` at `p` with a rule (`AssumeError::why`) that
/// contains `why`, changing nothing (node versions included).
fn refused(st: &mut ClusterState, pod: &Pod, p: Placement, why: &str) {
    let before = snapshot(st);
    let bound_before = st.bound(pod.id).cloned();
    let err = st.assume(pod, p.clone()).expect_err("assume should refuse");
    assert!(
        err.why.contains(why),
        "{pod:?} {p:?}: refused for {:?}, expected {why:?}",
        err.why
    );
    assert_eq!(err.pod, pod.name);
    assert_eq!(snapshot(st), before, "a refused assume changed the state");
    assert_eq!(st.bound(pod.id), bound_before.as_ref());
}

#[test]
fn cpu_and_memory_fit_exactly_or_are_refused() {
    let mut st = state();
    refused(
        &mut st,
        &Pod::new("p", 4001, 0, NoGpu),
        at(1, NoGpu, &[]),
        "cpu: 4000m free, 4001m asked",
    );
    refused(
        &mut st,
        &Pod::new("p", 0, 4097, NoGpu),
        at(1, NoGpu, &[]),
        "memory: 4096 MiB free, 4097 MiB asked",
    );
    st.assume(&Pod::new("p", 4000, 4096, NoGpu), at(1, NoGpu, &[]))
        .unwrap();
    let n1 = st.node(NodeId(1)).state;
    assert_eq!((n1.cpu_free_milli, n1.memory_free_mib, n1.pods), (0, 0, 1));
    refused(
        &mut st,
        &Pod::new("p", 1, 0, NoGpu),
        at(1, NoGpu, &[]),
        "cpu: 0m free, 1m asked",
    );
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (0, 0));
}

#[test]
fn gpu_milli_fits_exactly_or_is_refused() {
    let mut st = state();
    st.assume(&Pod::new("a", 0, 0, Milli(700)), at(0, Milli(700), &[0]))
        .unwrap();
    // 300m and 16000-11200 = 4800 MiB left on GPU0
    refused(
        &mut st,
        &Pod::new("b", 0, 0, Milli(301)),
        at(0, Milli(301), &[0]),
        "device 0: 4800 MiB / 300m",
    );
    st.assume(&Pod::new("b", 0, 0, Milli(300)), at(0, Milli(300), &[0]))
        .unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[0, 1000]);
    refused(
        &mut st,
        &Pod::new("c", 0, 0, Milli(1)),
        at(0, Milli(1), &[0]),
        "device 0: 0 MiB / 0m",
    );
    // a whole GPU needs an entirely free one
    refused(
        &mut st,
        &Pod::new("w", 0, 0, Whole(1)),
        at(0, Whole(1), &[0]),
        "in use and needed idle",
    );
    st.assume(&Pod::new("s", 0, 0, Milli(1)), at(0, Milli(1), &[1]))
        .unwrap();
    refused(
        &mut st,
        &Pod::new("w", 0, 0, Whole(1)),
        at(0, Whole(1), &[1]),
        "in use and needed idle",
    );
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (1001, 3));
    // 16*700 + 16*300 + 16*1 MiB
    assert_eq!(st.gpu_memory_used_mib(), 16_016);
}

#[test]
fn grants_must_match_the_request() {
    let mut st = state();
    // Each case: the pod's request, the node, the devices granted, the rule broken.
    let cases: &[(GpuRequest, u32, &[u16], &str)] = &[
        // wrong number of devices
        (Whole(2), 0, &[0], "1 device(s) granted, 2 asked"),
        (Milli(5), 0, &[0, 1], "2 device(s) granted, 1 asked"),
        (Milli(5), 0, &[], "0 device(s) granted, 1 asked"),
        (NoGpu, 0, &[0], "1 device(s) granted, 0 asked"),
        // a device the node lacks
        (Milli(5), 0, &[2], "no device 2"),
        (Whole(2), 0, &[1, 2], "no device 2"),
        // one device twice (a GpuSet could not say it; grants can)
        (Whole(2), 0, &[0, 0], "device 0 granted twice"),
        // a GPU pod on a CPU-only node
        (
            Milli(5),
            1,
            &[0],
            "the node's GPU model is not one the pod allows",
        ),
        // no such node
        (NoGpu, 2, &[], "no such node"),
    ];
    for &(req, node, idx, why) in cases {
        refused(&mut st, &Pod::new("p", 0, 0, req), at(node, req, idx), why);
    }
    let err = st
        .assume(&Pod::new("p", 0, 0, NoGpu), at(2, NoGpu, &[]))
        .unwrap_err();
    assert_eq!(err.node, "#2");
    // 2 whole GPUs: both become entirely used
    st.assume(&Pod::new("w", 0, 0, Whole(2)), at(0, Whole(2), &[0, 1]))
        .unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[0, 0]);
    assert_eq!(st.node(NodeId(0)).state.pods_by_gpu_class[2], 1);
}

#[test]
fn charges_and_replicas_must_follow_the_rule() {
    let mut st = state();
    let pod = Pod::new("p", 0, 0, Milli(250));
    // 250m is charged 16*250 = 4000 MiB and 250 milli
    let mut p = at(0, Milli(250), &[0]);
    p.grants[0].memory_mib = 3999;
    refused(
        &mut st,
        &pod,
        p,
        "device 0 charged (3999, 250), the rule says (4000, 250)",
    );
    let mut p = at(0, Milli(250), &[0]);
    p.grants[0].compute_milli = 251;
    refused(&mut st, &pod, p, "the rule says (4000, 250)");
    // a fractional device has replica 0 only
    let mut p = at(0, Milli(250), &[0]);
    p.grants[0].replica = 1;
    refused(&mut st, &pod, p, "device 0 replica 1 is not free");
    st.assume(&pod, at(0, Milli(250), &[0])).unwrap();
}

#[test]
fn model_constraint_is_checked() {
    let mut st = state();
    let model = "the node's GPU model is not one the pod allows";
    let mut a100 = ModelSet::empty();
    a100.insert(GpuModelId(1));
    let only_a100 = Pod {
        allowed_models: Some(a100),
        ..Pod::new("a", 0, 0, Milli(100))
    };
    refused(&mut st, &only_a100, at(0, Milli(100), &[0]), model);
    let nowhere = Pod {
        allowed_models: Some(ModelSet::empty()),
        ..Pod::new("n", 0, 0, Whole(1))
    };
    refused(&mut st, &nowhere, at(0, Whole(1), &[0]), model);
    // a CPU-only pod ignores its model constraint
    let cpu = Pod {
        allowed_models: Some(ModelSet::empty()),
        ..Pod::new("c", 100, 0, NoGpu)
    };
    st.assume(&cpu, at(0, NoGpu, &[])).unwrap();
}

#[test]
fn forget_undoes_assume() {
    let mut st = state();
    let empty = usage_of(&st);
    let pods = [
        (
            Pod::new("a", 1000, 512, Milli(250)),
            at(0, Milli(250), &[1]),
        ),
        (Pod::new("b", 500, 256, Whole(1)), at(0, Whole(1), &[0])),
        (Pod::new("c", 2000, 1024, NoGpu), at(1, NoGpu, &[])),
    ];
    for (p, at) in &pods {
        st.assume(p, at.clone()).unwrap();
    }
    assert_eq!((st.gpu_used_milli(), st.gpu_pods()), (1250, 2));
    assert_eq!(st.gpu_memory_used_mib(), 4000 + 16_000);
    let on_n0: Vec<PodId> = st.pods_on(NodeId(0)).map(|b| b.pod.id).collect();
    assert_eq!(on_n0, [pods[0].0.id, pods[1].0.id]);
    for (p, at) in pods.iter().rev() {
        let b = st.forget(p.id).expect("a placed pod");
        assert_eq!((&b.pod, &b.placement), (p, at));
    }
    assert_eq!(usage_of(&st), empty);
}

/// Semantics changed with the pod-keyed state: `forget` of a pod that is not placed
/// used to panic ("forget() of a pod that is not on node"); now it finds nothing,
/// returns `None` and changes nothing.
#[test]
fn forget_of_a_pod_that_is_not_there_returns_none() {
    let mut st = state();
    let before = snapshot(&st);
    assert!(st.forget(Pod::new("a", 0, 0, Milli(250)).id).is_none());
    assert_eq!(snapshot(&st), before);
    // nor twice
    let p = Pod::new("b", 0, 0, Milli(250));
    st.assume(&p, at(0, Milli(250), &[0])).unwrap();
    assert!(st.forget(p.id).is_some());
    let before = snapshot(&st);
    assert!(st.forget(p.id).is_none());
    assert_eq!(snapshot(&st), before);
}

/// HAMi#2923's scenario: after a pod is deleted its devices are free at once, so the
/// same GPU can be assumed again in the same breath (no stale reservation).
#[test]
fn forget_frees_the_devices_at_once() {
    let mut st = state();
    // a share, then a whole GPU, on GPU0
    let share = Pod::new("share", 0, 0, Milli(700));
    st.assume(&share, at(0, Milli(700), &[0])).unwrap();
    let whole = Pod::new("whole", 0, 0, Whole(1));
    refused(
        &mut st,
        &whole,
        at(0, Whole(1), &[0]),
        "in use and needed idle",
    );
    st.forget(share.id).unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[1000, 1000]);
    st.assume(&whole, at(0, Whole(1), &[0])).unwrap();

    // the same through the scheduler: a 2-GPU pod fills n0, a 1-GPU pod fits nowhere,
    // the 2-GPU pod is deleted, the 1-GPU pod gets GPU0 right away
    let mut st = state();
    let profile = Profile::new("t")
        .with_all(plugins::default_filters(st.cluster()))
        .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1);
    let mut sched = Scheduler::new(profile);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let big = Pod::new("big", 0, 0, Whole(2));
    assert_eq!(
        sched.schedule(&mut st, &big, &mut rng).unwrap(),
        at(0, Whole(2), &[0, 1])
    );
    let one = Pod::new("one", 0, 0, Whole(1));
    let err = sched.schedule(&mut st, &one, &mut rng).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    );
    assert!(st.forget(big.id).is_some());
    assert_eq!(
        sched.schedule(&mut st, &one, &mut rng).unwrap(),
        at(0, Whole(1), &[0])
    );
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[0, 1000]);
}

#[test]
fn a_pod_id_is_placed_once() {
    let mut st = state();
    let p = Pod::new("p", 1000, 0, Milli(100));
    st.assume(&p, at(0, Milli(100), &[0])).unwrap();
    // the same id again, on another GPU or the same one: refused, whatever fits
    let why = format!("pod id {} is already placed", p.id.0);
    refused(&mut st, &p, at(0, Milli(100), &[1]), &why);
    refused(&mut st, &p, at(0, Milli(100), &[0]), &why);
    // another arrival of the same request is another pod
    let q = p.renewed();
    assert_ne!(q.id, p.id);
    st.assume(&q, at(0, Milli(100), &[0])).unwrap();
    assert_eq!((st.pod_count(), st.gpu_used_milli()), (2, 200));
    // once forgotten, the id may be placed again
    st.forget(p.id).unwrap();
    st.assume(&p, at(0, Milli(100), &[1])).unwrap();
    assert_eq!(st.node(NodeId(0)).state.gpus(), &[900, 900]);
}

#[test]
fn the_pod_limit_is_kept() {
    let nodes = vec![Node::new("n0", 4000, 4096)
        .with_gpus(GpuModelId(0), 2, GPU_MIB)
        .with_max_pods(2)];
    let mut st = ClusterState::new(cluster(nodes));
    let a = Pod::new("a", 0, 0, NoGpu);
    let b = Pod::new("b", 0, 0, Milli(1));
    st.assume(&a, at(0, NoGpu, &[])).unwrap();
    st.assume(&b, at(0, Milli(1), &[0])).unwrap();
    refused(
        &mut st,
        &Pod::new("c", 0, 0, NoGpu),
        at(0, NoGpu, &[]),
        "the node runs 2 pods, its limit",
    );
    // the filters say it as kube does
    let profile = Profile::new("t")
        .with_all(plugins::default_filters(st.cluster()))
        .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1);
    let mut sched = Scheduler::new(profile);
    let c = Pod::new("c", 0, 0, NoGpu);
    let err = sched
        .schedule(&mut st, &c, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err();
    assert_eq!(err.to_string(), "0/1 nodes are available: 1 Too many pods.");
    // one leaves: the third fits
    st.forget(a.id).unwrap();
    st.assume(&c, at(0, NoGpu, &[])).unwrap();
    assert_eq!(st.node(NodeId(0)).state.pods, 2);
}

/// Regression: a malformed request (9 whole GPUs, a 0 or 1000 milli share, and the
/// malformed forms of the memory and device requests) is refused with an error by
/// `assume` and by the filters, never a panic.
#[test]
fn malformed_requests_are_refused_not_panicking() {
    use mlplane_model::ResourceId;
    let cluster = cluster(vec![Node::new("n", 1000, 1000).with_gpus(
        GpuModelId(0),
        16,
        GPU_MIB,
    )]);
    let mut state = ClusterState::new(cluster.clone());
    let nine: Vec<u16> = (0..9).collect();
    let bad: [(GpuRequest, &[u16]); 8] = [
        (Whole(9), &nine),
        (Whole(0), &[]),
        (Milli(0), &[0]),
        (Milli(1000), &[0]),
        (
            GpuRequest::Memory {
                mib: 0,
                compute_milli: 0,
            },
            &[0],
        ),
        (
            GpuRequest::Memory {
                mib: 100,
                compute_milli: 1001,
            },
            &[0],
        ),
        (
            // nvidia.com/gpu by count is Whole, not Devices
            GpuRequest::Devices {
                resource: ResourceId::GPU,
                count: 1,
            },
            &[0],
        ),
        (
            GpuRequest::Devices {
                resource: ResourceId(1),
                count: 0,
            },
            &[],
        ),
    ];
    let profile = Profile::new("t")
        .with_all(plugins::default_filters(&cluster))
        .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1);
    let mut sched = Scheduler::new(profile);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (req, idx) in bad {
        let pod = Pod::new("p", 0, 0, req);
        let err = state.assume(&pod, at(0, req, idx)).unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        match sched.schedule(&mut state, &pod, &mut rng) {
            Err(ScheduleError::Unschedulable { diagnosis, .. }) => assert_eq!(
                diagnosis.reason_counts(),
                [("invalid GPU request".to_string(), 1)],
                "{req:?}"
            ),
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert_eq!(state.gpu_used_milli(), 0);
    assert_eq!(state.pod_count(), 0);
}

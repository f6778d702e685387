//! Builders shared by the policy integration tests: small clusters, pods, plugin runs.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelSet, Node, Pod};
use mlplane_policies::{PolicyContext, TypicalPods};
use mlplane_sched::{ClusterState, CycleState, GpuSet, NodeId, Placement, ScorePlugin};

/// Model id 0 of every test cluster.
pub const T4: GpuModelId = GpuModelId(0);
/// Model id 1 of every test cluster.
pub const A100: GpuModelId = GpuModelId(1);

/// A node with `gpus` T4 GPUs (`0` = a CPU-only node).
pub fn node(name: &str, cpu_milli: u64, memory_mib: u64, gpus: u8) -> Node {
    node_of(name, cpu_milli, memory_mib, gpus, T4)
}

/// GPU memory of a T4 device, MiB.
pub const T4_MIB: u64 = 15_109;
/// GPU memory of an A100 device, MiB.
pub const A100_MIB: u64 = 81_920;

/// A node with `gpus` GPUs of `model` (`0` = a CPU-only node), each a fractional device
/// as in the FGD paper (device `i` is GPU `i`).
pub fn node_of(name: &str, cpu_milli: u64, memory_mib: u64, gpus: u8, model: GpuModelId) -> Node {
    let n = Node::new(name, cpu_milli, memory_mib);
    if gpus == 0 {
        return n;
    }
    let mib = if model == A100 { A100_MIB } else { T4_MIB };
    n.with_gpus(model, gpus, mib)
}

/// A cluster with the models `T4` (id 0) and `A100` (id 1).
pub fn cluster(nodes: Vec<Node>) -> Arc<Cluster> {
    let models = vec![
        GpuModel {
            name: "T4".into(),
            memory_mib: Some(T4_MIB),
        },
        GpuModel {
            name: "A100".into(),
            memory_mib: Some(A100_MIB),
        },
    ];
    Arc::new(Cluster::new(models, nodes).expect("valid test cluster"))
}

/// An empty state of `nodes`.
pub fn state(nodes: Vec<Node>) -> ClusterState {
    ClusterState::new(cluster(nodes))
}

/// A pod with 1 GiB of memory.
pub fn pod(cpu_milli: u64, gpu: GpuRequest) -> Pod {
    Pod::new("p", cpu_milli, 1024, gpu)
}

/// A pod that may run only on `models`.
pub fn pod_on(cpu_milli: u64, gpu: GpuRequest, models: &[GpuModelId]) -> Pod {
    let mut set = ModelSet::empty();
    for &m in models {
        set.insert(m);
    }
    Pod {
        allowed_models: Some(set),
        ..pod(cpu_milli, gpu)
    }
}

/// A set of GPU indices.
pub fn gpus(idx: &[usize]) -> GpuSet {
    let mut s = GpuSet::empty();
    for &i in idx {
        s.insert(i);
    }
    s
}

/// The placement of `req` on GPUs `idx` of node `node` of `state`'s cluster, charged as
/// the FGD paper's milli-GPU model charges (`Placement::on_gpus`).
///
/// # Panics
/// If the node lacks one of the GPUs or a GPU cannot serve `req`.
pub fn placement(state: &ClusterState, req: GpuRequest, node: u32, idx: &[usize]) -> Placement {
    let n = &state.cluster().nodes()[node as usize];
    Placement::on_gpus(NodeId(node), n, req, gpus(idx)).unwrap_or_else(|| {
        panic!(
            "test setup: no placement of {req} on {} GPUs {idx:?}",
            n.name
        )
    })
}

/// Commits `pod` on node `node`, GPUs `idx`; panics if `assume` refuses.
pub fn place(state: &mut ClusterState, pod: &Pod, node: u32, idx: &[usize]) {
    let p = placement(state, pod.gpu, node, idx);
    state
        .assume(pod, p.clone())
        .unwrap_or_else(|e| panic!("test setup: assume({pod:?}, {p:?}) failed: {e}"));
}

/// Uses `milli` of GPU `gpu` of node `node` with a zero-CPU, zero-memory share pod.
pub fn use_gpu(state: &mut ClusterState, node: u32, gpu: usize, milli: u16) {
    place(
        state,
        &Pod::new("u", 0, 0, GpuRequest::Milli(milli)),
        node,
        &[gpu],
    );
}

/// Context of `state`'s cluster with no typical pods.
pub fn ctx(state: &ClusterState) -> PolicyContext {
    PolicyContext::new(state.cluster(), Arc::new(TypicalPods::default()))
}

/// Raw (un-normalised) scores of `plugin` for `pod` on the given nodes.
pub fn raw_scores(
    plugin: &dyn ScorePlugin,
    state: &ClusterState,
    pod: &Pod,
    nodes: &[usize],
) -> Vec<i64> {
    let cycle = CycleState::default();
    nodes
        .iter()
        .map(|&i| plugin.score(&cycle, pod, &state.node(NodeId(i as u32))))
        .collect()
}

/// Asserts `plugin`'s raw score of `pod` on each `(node, score)` of `want`.
pub fn check_raw(
    what: &str,
    plugin: &dyn ScorePlugin,
    state: &ClusterState,
    pod: &Pod,
    want: &[(usize, i64)],
) {
    let nodes: Vec<usize> = want.iter().map(|&(n, _)| n).collect();
    let got = raw_scores(plugin, state, pod, &nodes);
    let got: Vec<(usize, i64)> = nodes.into_iter().zip(got).collect();
    assert_eq!(
        got,
        want,
        "{what}: scores (node, score) of {pod:?}",
        what = what
    );
}

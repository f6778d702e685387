//! An independent model of cluster usage for property tests: usage is recomputed from
//! the list of live placements, and fit is checked by brute force over GPU subsets,
//! without `NodeState`'s helpers or the framework's filters.
//!
//! Shared by `mlplane-sched`'s and `mlplane-policies`' property tests (the latter
//! include this file by path), so both check against the same rules.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelSet, Node, NodeGpus, Pod};
use mlplane_sched::{ClusterState, GpuSet, NodeId, Placement};
use proptest::prelude::*;

/// Milli-GPU of one GPU, spelled independently of the crates under test.
const WHOLE: u64 = 1000;

/// Usage of every node, summed from placements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Vec<u64>,
    pub mem: Vec<u64>,
    /// Milli-GPU used per GPU, per node.
    pub gpu: Vec<Vec<u64>>,
    pub pods: Vec<u32>,
    /// Pods per request class (0 = share, n = n whole GPUs), per node.
    pub classes: Vec<[u32; 9]>,
}

fn class(req: GpuRequest) -> Option<usize> {
    match req {
        GpuRequest::None => None,
        GpuRequest::Shared(_) => Some(0),
        GpuRequest::Whole(n) => Some(usize::from(n)),
    }
}

fn per_gpu(req: GpuRequest) -> u64 {
    match req {
        GpuRequest::None => 0,
        GpuRequest::Whole(_) => WHOLE,
        GpuRequest::Shared(m) => u64::from(m),
    }
}

fn count(req: GpuRequest) -> usize {
    match req {
        GpuRequest::None => 0,
        GpuRequest::Whole(n) => usize::from(n),
        GpuRequest::Shared(_) => 1,
    }
}

/// Sums `live` placements; no checks.
pub fn usage(cluster: &Cluster, live: &[(Pod, Placement)]) -> Usage {
    let n = cluster.nodes().len();
    let mut u = Usage {
        cpu: vec![0; n],
        mem: vec![0; n],
        gpu: cluster
            .nodes()
            .iter()
            .map(|nd| vec![0; usize::from(nd.gpus.as_ref().map_or(0, |g| g.count))])
            .collect(),
        pods: vec![0; n],
        classes: vec![[0; 9]; n],
    };
    for (pod, p) in live {
        let i = p.node.index();
        u.cpu[i] += pod.cpu_milli;
        u.mem[i] += pod.memory_mib;
        for g in 0..16 {
            if p.gpus.0 & (1 << g) != 0 {
                u.gpu[i][g] += per_gpu(pod.gpu);
            }
        }
        u.pods[i] += 1;
        if let Some(c) = class(pod.gpu) {
            u.classes[i][c] += 1;
        }
    }
    u
}

/// Why `placement` of `pod` is invalid given `usage`, or `Ok` if it is valid.
pub fn valid(
    cluster: &Cluster,
    u: &Usage,
    pod: &Pod,
    placement: Placement,
) -> Result<(), &'static str> {
    let i = placement.node.index();
    let node = cluster.nodes().get(i).ok_or("no such node")?;
    if u.cpu[i] + pod.cpu_milli > node.cpu_milli {
        return Err("cpu");
    }
    if u.mem[i] + pod.memory_mib > node.memory_mib {
        return Err("memory");
    }
    let set: Vec<usize> = (0..16)
        .filter(|g| placement.gpus.0 & (1 << g) != 0)
        .collect();
    if set.len() != count(pod.gpu) {
        return Err("GPU count");
    }
    if pod.gpu == GpuRequest::None {
        return Ok(());
    }
    let Some(gpus) = &node.gpus else {
        return Err("no GPU");
    };
    if let Some(allowed) = pod.allowed_models {
        if !allowed.contains(gpus.model) {
            return Err("model");
        }
    }
    for &g in &set {
        if g >= usize::from(gpus.count) {
            return Err("GPU index");
        }
        if u.gpu[i][g] + per_gpu(pod.gpu) > WHOLE {
            return Err("GPU milli");
        }
    }
    Ok(())
}

/// True if some GPU subset of node `i` makes a valid placement.
pub fn fits_node(cluster: &Cluster, u: &Usage, pod: &Pod, i: usize) -> bool {
    let gpus = u.gpu[i].len() as u32;
    (0u32..1 << gpus)
        .filter(|s| s.count_ones() as usize == count(pod.gpu))
        .any(|s| {
            let p = Placement {
                node: NodeId(i as u32),
                gpus: GpuSet(s as u16),
            };
            valid(cluster, u, pod, p).is_ok()
        })
}

/// True if some node can hold `pod`.
pub fn fits_anywhere(cluster: &Cluster, u: &Usage, pod: &Pod) -> bool {
    (0..cluster.nodes().len()).any(|i| fits_node(cluster, u, pod, i))
}

/// Asserts that `state` agrees with the usage recomputed from `live` and that nothing
/// is over-committed.
pub fn check_state(state: &ClusterState, live: &[(Pod, Placement)]) {
    let cluster = state.cluster();
    let u = usage(cluster, live);
    let mut gpu_total = 0;
    for (i, node) in cluster.nodes().iter().enumerate() {
        let st = state.node(NodeId(i as u32)).state;
        assert!(u.cpu[i] <= node.cpu_milli, "node {i}: CPU over-committed");
        assert!(
            u.mem[i] <= node.memory_mib,
            "node {i}: memory over-committed"
        );
        assert_eq!(st.cpu_free_milli, node.cpu_milli - u.cpu[i], "node {i} CPU");
        assert_eq!(
            st.memory_free_mib,
            node.memory_mib - u.mem[i],
            "node {i} mem"
        );
        assert_eq!(st.gpus().len(), u.gpu[i].len(), "node {i} GPU count");
        for (g, &used) in u.gpu[i].iter().enumerate() {
            assert!(used <= WHOLE, "node {i} GPU {g}: {used} milli used");
            assert_eq!(
                u64::from(st.gpus()[g]),
                WHOLE - used,
                "node {i} GPU {g} free"
            );
            gpu_total += used;
        }
        assert_eq!(st.pods, u.pods[i], "node {i} pods");
        assert_eq!(st.pods_by_gpu_class, u.classes[i], "node {i} classes");
    }
    assert_eq!(state.gpu_used_milli(), gpu_total, "cluster GPU used");
    let gpu_pods = live
        .iter()
        .filter(|(p, _)| p.gpu != GpuRequest::None)
        .count();
    assert_eq!(state.gpu_pods(), gpu_pods as u64, "GPU pods");
}

/// Asserts the shape of a placement the scheduler returned: `n` GPUs for `n` whole
/// GPUs (a bit set, so distinct), one for a share, none for a CPU-only pod, all on
/// the node.
pub fn check_shape(cluster: &Cluster, pod: &Pod, p: Placement) {
    let node = &cluster.nodes()[p.node.index()];
    assert_eq!(p.gpus.len(), count(pod.gpu), "{pod:?} got {p:?}");
    let have = usize::from(node.gpus.as_ref().map_or(0, |g| g.count));
    assert!(p.gpus.iter().all(|g| g < have), "{pod:?} got {p:?}");
}

// ----- strategies -------------------------------------------------------------------

pub const T4: GpuModelId = GpuModelId(0);
pub const A100: GpuModelId = GpuModelId(1);

/// A node: 1..=64 cores, 1..=64 GiB, 0..=8 GPUs of T4 or A100.
pub fn arb_node() -> impl Strategy<Value = (u64, u64, u8, u16)> {
    (1u64..=64, 1u64..=64, 0u8..=8, 0u16..2)
        .prop_map(|(c, m, g, model)| (c * 1000, m * 1024, g, model))
}

/// A cluster of 1..=6 nodes.
pub fn arb_cluster() -> impl Strategy<Value = Arc<Cluster>> {
    prop::collection::vec(arb_node(), 1..=6).prop_map(|nodes| {
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
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (cpu, mem, g, model))| Node {
                name: format!("n{i}"),
                cpu_milli: cpu,
                memory_mib: mem,
                gpus: (g > 0).then_some(NodeGpus {
                    model: GpuModelId(model),
                    count: g,
                }),
            })
            .collect();
        Arc::new(Cluster::new(models, nodes).expect("valid cluster"))
    })
}

/// A GPU request: none, a share of 1..=999 (often a round one), or 1..=8 whole GPUs.
pub fn arb_gpu() -> impl Strategy<Value = GpuRequest> {
    prop_oneof![
        2 => Just(GpuRequest::None),
        2 => (1u16..=999).prop_map(GpuRequest::Shared),
        1 => prop::sample::select(vec![100u16, 250, 500, 750]).prop_map(GpuRequest::Shared),
        3 => (1u8..=8).prop_map(GpuRequest::Whole),
    ]
}

/// Allowed models: mostly any; sometimes one model; rarely none (fits nowhere).
pub fn arb_models() -> impl Strategy<Value = Option<ModelSet>> {
    let one = |m| {
        let mut s = ModelSet::empty();
        s.insert(m);
        Some(s)
    };
    prop_oneof![
        6 => Just(None),
        1 => Just(one(T4)),
        1 => Just(one(A100)),
        1 => Just(Some(ModelSet::empty())),
    ]
}

/// A pod: 0..=24 cores and 0..=24 GiB in half steps, any GPU request.
pub fn arb_pod() -> impl Strategy<Value = Pod> {
    (0u64..=48, 0u64..=48, arb_gpu(), arb_models()).prop_map(|(c, m, gpu, models)| Pod {
        allowed_models: models,
        ..Pod::new("p", c * 500, m * 512, gpu)
    })
}

/// What happens next: a pod arrives, or the `k`-th live pod (mod their number) leaves.
#[derive(Clone, Debug)]
pub enum Event {
    Arrive(Pod),
    Depart(usize),
}

/// Mostly arrivals, some departures.
pub fn arb_events(max: usize) -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        prop_oneof![
            5 => arb_pod().prop_map(Event::Arrive),
            1 => any::<usize>().prop_map(Event::Depart),
        ],
        1..=max,
    )
}

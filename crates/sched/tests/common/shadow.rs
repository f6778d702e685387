//! An independent model of cluster usage for property tests: usage is recomputed from
//! the list of live placements, and fit is checked by brute force over GPU subsets,
//! without `NodeState`'s helpers, `charge` or the framework's filters.
//!
//! The model is the FGD paper's: every GPU of a node is one fractional device (device
//! `i` is GPU `i`, as `Node::with_gpus` builds them) with 1000 milli-GPU of compute and
//! some memory; a share of `m` milli is charged `m` milli and `⌊memory · m / 1000⌋` MiB,
//! a whole GPU is charged the whole device and needs it idle.
//!
//! Shared by `mlplane-sched`'s and `mlplane-policies`' property tests (the latter
//! include this file by path), so both check against the same rules.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelSet, Node, Pod, PodId};
use mlplane_sched::{ClusterState, Grant, NodeId, Placement};
use proptest::prelude::*;

/// Milli-GPU of one GPU, spelled independently of the crates under test.
const WHOLE: u64 = 1000;

/// GPU memory of a T4 and an A100 device in the generated clusters, MiB. Not multiples
/// of 1000, so that a share's memory charge is rounded down.
pub const T4_MIB: u64 = 15_109;
pub const A100_MIB: u64 = 81_920;

/// kubelet's default pod limit, spelled independently of the crates under test.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// Usage of every node, summed from placements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Vec<u64>,
    pub mem: Vec<u64>,
    /// Milli-GPU used per GPU, per node.
    pub gpu: Vec<Vec<u64>>,
    /// GPU memory used per GPU, per node, MiB.
    pub gpu_mem: Vec<Vec<u64>>,
    /// Grants held per GPU, per node.
    pub grants: Vec<Vec<u32>>,
    pub pods: Vec<u32>,
    /// Pods per request class (0 = share, n = n whole GPUs), per node.
    pub classes: Vec<[u32; 9]>,
    /// Ids of the live pods.
    pub ids: Vec<PodId>,
}

fn class(req: GpuRequest) -> Option<usize> {
    match req {
        GpuRequest::None => None,
        GpuRequest::Milli(_) => Some(0),
        GpuRequest::Whole(n) => Some(usize::from(n)),
        other => panic!("the shadow model has no {other:?}"),
    }
}

fn count(req: GpuRequest) -> usize {
    match req {
        GpuRequest::None => 0,
        GpuRequest::Whole(n) => usize::from(n),
        GpuRequest::Milli(_) => 1,
        other => panic!("the shadow model has no {other:?}"),
    }
}

/// Memory of GPU `g` of `node`, if it has one.
fn gpu_memory(node: &Node, g: usize) -> Option<u64> {
    node.devices.get(g).map(|d| d.memory_mib)
}

/// What one GPU of `memory` MiB is charged for `req`: (MiB, milli).
pub fn expected_charge(memory: u64, req: GpuRequest) -> (u64, u32) {
    match req {
        GpuRequest::None => (0, 0),
        GpuRequest::Whole(_) => (memory, WHOLE as u32),
        GpuRequest::Milli(m) => (memory * u64::from(m) / WHOLE, u32::from(m)),
        other => panic!("the shadow model has no {other:?}"),
    }
}

/// The placement of `req` on GPUs `idx` of node `node`, with the charges of the model
/// (a GPU the node lacks, or a node the cluster lacks, is charged nothing).
pub fn placement(cluster: &Cluster, node: u32, req: GpuRequest, idx: &[usize]) -> Placement {
    let n = cluster.nodes().get(node as usize);
    let grants = idx
        .iter()
        .map(|&g| {
            let (memory_mib, compute_milli) = n
                .and_then(|n| gpu_memory(n, g))
                .map_or((0, 0), |m| expected_charge(m, req));
            Grant {
                device: g as u16,
                replica: 0,
                memory_mib,
                compute_milli,
            }
        })
        .collect();
    Placement {
        node: NodeId(node),
        grants,
    }
}

/// Sums `live` placements; no checks.
pub fn usage(cluster: &Cluster, live: &[(Pod, Placement)]) -> Usage {
    let n = cluster.nodes().len();
    let per_gpu = || -> Vec<Vec<u64>> {
        cluster
            .nodes()
            .iter()
            .map(|nd| vec![0; nd.devices.len()])
            .collect()
    };
    let mut u = Usage {
        cpu: vec![0; n],
        mem: vec![0; n],
        gpu: per_gpu(),
        gpu_mem: per_gpu(),
        grants: cluster
            .nodes()
            .iter()
            .map(|nd| vec![0; nd.devices.len()])
            .collect(),
        pods: vec![0; n],
        classes: vec![[0; 9]; n],
        ids: live.iter().map(|(p, _)| p.id).collect(),
    };
    for (pod, p) in live {
        let i = p.node.index();
        u.cpu[i] += pod.cpu_milli;
        u.mem[i] += pod.memory_mib;
        for g in &p.grants {
            let g_idx = usize::from(g.device);
            u.gpu[i][g_idx] += u64::from(g.compute_milli);
            u.gpu_mem[i][g_idx] += g.memory_mib;
            u.grants[i][g_idx] += 1;
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
    placement: &Placement,
) -> Result<(), &'static str> {
    let i = placement.node.index();
    let node = cluster.nodes().get(i).ok_or("no such node")?;
    if u.ids.contains(&pod.id) {
        return Err("pod id already placed");
    }
    if u.pods[i] + 1 > node.max_pods {
        return Err("pod limit");
    }
    if u.cpu[i] + pod.cpu_milli > node.cpu_milli {
        return Err("cpu");
    }
    if u.mem[i] + pod.memory_mib > node.memory_mib {
        return Err("memory");
    }
    if placement.grants.len() != count(pod.gpu) {
        return Err("GPU count");
    }
    if pod.gpu == GpuRequest::None {
        return Ok(());
    }
    let Some(model) = node.gpu_model.filter(|_| !node.devices.is_empty()) else {
        return Err("no GPU");
    };
    if let Some(allowed) = pod.allowed_models {
        if !allowed.contains(model) {
            return Err("model");
        }
    }
    for (k, g) in placement.grants.iter().enumerate() {
        let d = usize::from(g.device);
        let Some(memory) = gpu_memory(node, d) else {
            return Err("GPU index");
        };
        if placement.grants[..k].iter().any(|h| h.device == g.device) {
            return Err("GPU granted twice");
        }
        if g.replica != 0 {
            return Err("replica of a fractional GPU");
        }
        let (mib, milli) = expected_charge(memory, pod.gpu);
        if (g.memory_mib, g.compute_milli) != (mib, milli) {
            return Err("charge");
        }
        if u.gpu[i][d] + u64::from(milli) > WHOLE {
            return Err("GPU milli");
        }
        if u.gpu_mem[i][d] + mib > memory {
            return Err("GPU memory");
        }
        if matches!(pod.gpu, GpuRequest::Whole(_)) && u.grants[i][d] > 0 {
            return Err("whole GPU in use");
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
            let idx: Vec<usize> = (0..gpus as usize).filter(|g| s & (1 << g) != 0).collect();
            let p = placement(cluster, i as u32, pod.gpu, &idx);
            valid(cluster, u, pod, &p).is_ok()
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
    let (mut gpu_total, mut gpu_mem_total) = (0, 0);
    for (i, node) in cluster.nodes().iter().enumerate() {
        let st = state.node(NodeId(i as u32)).state;
        assert!(u.cpu[i] <= node.cpu_milli, "node {i}: CPU over-committed");
        assert!(
            u.mem[i] <= node.memory_mib,
            "node {i}: memory over-committed"
        );
        assert!(u.pods[i] <= node.max_pods, "node {i}: pod limit exceeded");
        assert_eq!(st.cpu_free_milli, node.cpu_milli - u.cpu[i], "node {i} CPU");
        assert_eq!(
            st.memory_free_mib,
            node.memory_mib - u.mem[i],
            "node {i} mem"
        );
        assert_eq!(st.gpus().len(), u.gpu[i].len(), "node {i} GPU count");
        assert_eq!(st.devices.len(), u.gpu[i].len(), "node {i} device count");
        for (g, &used) in u.gpu[i].iter().enumerate() {
            let mem_used = u.gpu_mem[i][g];
            let memory = node.devices[g].memory_mib;
            assert!(used <= WHOLE, "node {i} GPU {g}: {used} milli used");
            assert!(
                mem_used <= memory,
                "node {i} GPU {g}: {mem_used} of {memory} MiB used"
            );
            assert_eq!(
                u64::from(st.gpus()[g]),
                WHOLE - used,
                "node {i} GPU {g} free"
            );
            let dev = &st.devices[g];
            assert_eq!(
                (
                    u64::from(dev.compute_used_milli),
                    dev.memory_used_mib,
                    u32::from(dev.grants)
                ),
                (used, mem_used, u.grants[i][g]),
                "node {i} device {g}: (compute, memory, grants)"
            );
            gpu_total += used;
            gpu_mem_total += mem_used;
        }
        assert_eq!(st.pods, u.pods[i], "node {i} pods");
        assert_eq!(st.pods_by_gpu_class, u.classes[i], "node {i} classes");
        // the pods on the node, in the order they were placed
        let on: Vec<PodId> = state.pods_on(NodeId(i as u32)).map(|b| b.pod.id).collect();
        let want: Vec<PodId> = live
            .iter()
            .filter(|(_, p)| p.node.index() == i)
            .map(|(pod, _)| pod.id)
            .collect();
        assert_eq!(on, want, "node {i} pods_on");
    }
    for (pod, p) in live {
        let b = state
            .bound(pod.id)
            .unwrap_or_else(|| panic!("{pod:?} is live but not bound"));
        assert_eq!(&b.placement, p, "placement of {pod:?}");
    }
    assert_eq!(state.pod_count(), live.len(), "placed pods");
    assert_eq!(state.gpu_used_milli(), gpu_total, "cluster GPU used");
    assert_eq!(
        state.gpu_memory_used_mib(),
        gpu_mem_total,
        "cluster GPU memory used"
    );
    let gpu_pods = live
        .iter()
        .filter(|(p, _)| p.gpu != GpuRequest::None)
        .count();
    assert_eq!(state.gpu_pods(), gpu_pods as u64, "GPU pods");
}

/// Asserts the shape of a placement the scheduler returned: `n` distinct GPUs for `n`
/// whole GPUs, one for a share, none for a CPU-only pod, all on the node, each at
/// replica 0.
pub fn check_shape(cluster: &Cluster, pod: &Pod, p: &Placement) {
    let node = &cluster.nodes()[p.node.index()];
    assert_eq!(p.grants.len(), count(pod.gpu), "{pod:?} got {p:?}");
    let have = node.devices.len();
    for (k, g) in p.grants.iter().enumerate() {
        assert!(usize::from(g.device) < have, "{pod:?} got {p:?}");
        assert!(
            p.grants[..k].iter().all(|h| h.device != g.device),
            "{pod:?} got {p:?}: a GPU twice"
        );
        assert_eq!(g.replica, 0, "{pod:?} got {p:?}");
    }
}

// ----- strategies -------------------------------------------------------------------

pub const T4: GpuModelId = GpuModelId(0);
pub const A100: GpuModelId = GpuModelId(1);

/// A node: 1..=64 cores, 1..=64 GiB, 0..=8 GPUs of T4 or A100, mostly kubelet's pod
/// limit, sometimes one of 1..=3.
pub fn arb_node() -> impl Strategy<Value = (u64, u64, u8, u16, u32)> {
    let max_pods = prop_oneof![4 => Just(DEFAULT_MAX_PODS), 1 => 1u32..=3];
    (1u64..=64, 1u64..=64, 0u8..=8, 0u16..2, max_pods)
        .prop_map(|(c, m, g, model, pods)| (c * 1000, m * 1024, g, model, pods))
}

/// A cluster of 1..=6 nodes.
pub fn arb_cluster() -> impl Strategy<Value = Arc<Cluster>> {
    prop::collection::vec(arb_node(), 1..=6).prop_map(|nodes| {
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
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (cpu, mem, g, model, pods))| {
                let n = Node::new(format!("n{i}"), cpu, mem).with_max_pods(pods);
                if g == 0 {
                    n
                } else {
                    let mib = if model == 0 { T4_MIB } else { A100_MIB };
                    n.with_gpus(GpuModelId(model), g, mib)
                }
            })
            .collect();
        Arc::new(Cluster::new(models, nodes).expect("valid cluster"))
    })
}

/// A GPU request: none, a share of 1..=999 (often a round one), or 1..=8 whole GPUs.
pub fn arb_gpu() -> impl Strategy<Value = GpuRequest> {
    prop_oneof![
        2 => Just(GpuRequest::None),
        2 => (1u16..=999).prop_map(GpuRequest::Milli),
        1 => prop::sample::select(vec![100u16, 250, 500, 750]).prop_map(GpuRequest::Milli),
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

/// A pod (with a fresh id): 0..=24 cores and 0..=24 GiB in half steps, any GPU request.
pub fn arb_pod() -> impl Strategy<Value = Pod> {
    (0u64..=48, 0u64..=48, arb_gpu(), arb_models()).prop_map(|(c, m, gpu, models)| Pod {
        allowed_models: models,
        ..Pod::new("p", c * 500, m * 512, gpu)
    })
}

/// What happens next: a pod arrives, or the `k`-th live pod (mod their number) leaves.
#[allow(clippy::large_enum_variant)] // test data: a pod inline reads best
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

//! An independent model of cluster usage for property tests: usage is recomputed from
//! the list of live placements, and fit is checked by brute force over device subsets,
//! without `NodeState`'s helpers, `charge` or the framework's filters.
//!
//! The rules, written here from the model's documentation (`mlplane_model::device`
//! and `mlplane_sched::state`), not from the code under test:
//! - a count request (`Whole(n)` for `nvidia.com/gpu`, `Devices{r, n}`) uses devices of
//!   that resource; one unit of a time-sliced or MPS device is one replica, charged the
//!   device divided by its replicas; otherwise (exclusive, fractional, or `n > 1`) a
//!   device is taken whole and must be idle;
//! - a milli share `m` is charged `m` milli and `⌊memory · m / 1000⌋` MiB, a memory share
//!   what it asks, on a fractional or time-sliced device; on an MPS device it must fit the
//!   slot (the device divided by its replicas) and is charged the slot; exclusive
//!   devices take no share;
//! - `n > 1` units are distinct physical GPUs (MIG instances count one each), and are
//!   refused where the device plugin sets `failRequestsGreaterThanOne` (always MPS);
//! - memory, compute and replicas are never over-committed; a replica index is held
//!   once; exclusive and fractional grants are replica 0; fractional devices take any
//!   number of grants.
//!
//! Shared by `mlplane-sched`'s and `mlplane-policies`' property tests (the latter
//! include this file by path), so both check against the same rules.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use mlplane_model::{
    Cluster, Device, GpuModel, GpuModelId, GpuRequest, MigInstance, ModelSet, Node, Pod, PodId,
    ResourceId, Sharing,
};
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
    /// Compute used per device, per node, milli.
    pub gpu: Vec<Vec<u64>>,
    /// GPU memory used per device, per node, MiB.
    pub gpu_mem: Vec<Vec<u64>>,
    /// Grants held per device, per node.
    pub grants: Vec<Vec<u32>>,
    /// Replica indices held per device, per node.
    pub held: Vec<Vec<Vec<u16>>>,
    pub pods: Vec<u32>,
    /// Pods per request class (0 = share, n = n devices), per node.
    pub classes: Vec<[u32; 9]>,
    /// Ids of the live pods.
    pub ids: Vec<PodId>,
}

fn class(req: GpuRequest) -> Option<usize> {
    match req {
        GpuRequest::None => None,
        GpuRequest::Milli(_) | GpuRequest::Memory { .. } => Some(0),
        GpuRequest::Whole(n) | GpuRequest::Devices { count: n, .. } => Some(usize::from(n)),
    }
}

fn count(req: GpuRequest) -> usize {
    match req {
        GpuRequest::None => 0,
        GpuRequest::Whole(n) | GpuRequest::Devices { count: n, .. } => usize::from(n),
        GpuRequest::Milli(_) | GpuRequest::Memory { .. } => 1,
    }
}

/// Replicas of a replicated device (time-sliced or MPS).
fn replicas(d: &Device) -> Option<u16> {
    match d.sharing {
        Sharing::TimeSliced { replicas, .. } | Sharing::Mps { replicas } => Some(replicas),
        _ => None,
    }
}

/// What one grant of `d` is charged for `req` (`multi`: several devices asked), or
/// `None` if `req` cannot use `d`.
pub fn expected_charge(d: &Device, req: GpuRequest, multi: bool) -> Option<(u64, u32)> {
    let whole = (d.memory_mib, d.compute_milli);
    let slot = replicas(d).map(|r| (d.memory_mib / u64::from(r), d.compute_milli / u32::from(r)));
    let share = |mib: u64, milli: u32| match d.sharing {
        Sharing::Exclusive => None,
        Sharing::Mps { .. } => {
            let s = slot.expect("MPS has replicas");
            (mib <= s.0 && milli <= s.1).then_some(s)
        }
        _ => (mib <= d.memory_mib && milli <= d.compute_milli).then_some((mib, milli)),
    };
    match req {
        GpuRequest::None => None,
        GpuRequest::Whole(_) | GpuRequest::Devices { .. } => {
            let want = match req {
                GpuRequest::Devices { resource, .. } => resource,
                _ => ResourceId(0),
            };
            if d.resource != want {
                None
            } else if !multi && slot.is_some() {
                slot
            } else {
                Some(whole)
            }
        }
        GpuRequest::Milli(m) => share(d.memory_mib * u64::from(m) / WHOLE, u32::from(m)),
        GpuRequest::Memory { mib, compute_milli } => share(mib, compute_milli),
    }
}

/// True if a grant of `d` for `req` must find it idle.
fn whole_device(d: &Device, req: GpuRequest, multi: bool) -> bool {
    multi
        || (matches!(req, GpuRequest::Whole(_) | GpuRequest::Devices { .. })
            && replicas(d).is_none())
}

/// The placement of `req` on devices `idx` of node `node`, with the charges of the model
/// and replica 0 (a device the node lacks, or one that cannot serve `req`, is charged
/// nothing).
pub fn placement(cluster: &Cluster, node: u32, req: GpuRequest, idx: &[usize]) -> Placement {
    let n = cluster.nodes().get(node as usize);
    let multi = idx.len() > 1;
    let grants = idx
        .iter()
        .map(|&g| {
            let (memory_mib, compute_milli) = n
                .and_then(|n| n.devices.get(g))
                .and_then(|d| expected_charge(d, req, multi))
                .unwrap_or((0, 0));
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
    let per_device = || -> Vec<Vec<u64>> {
        cluster
            .nodes()
            .iter()
            .map(|nd| vec![0; nd.devices.len()])
            .collect()
    };
    let mut u = Usage {
        cpu: vec![0; n],
        mem: vec![0; n],
        gpu: per_device(),
        gpu_mem: per_device(),
        grants: cluster
            .nodes()
            .iter()
            .map(|nd| vec![0; nd.devices.len()])
            .collect(),
        held: cluster
            .nodes()
            .iter()
            .map(|nd| vec![Vec::new(); nd.devices.len()])
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
            let d = usize::from(g.device);
            u.gpu[i][d] += u64::from(g.compute_milli);
            u.gpu_mem[i][d] += g.memory_mib;
            u.grants[i][d] += 1;
            if replicas(&cluster.nodes()[i].devices[d]).is_some() {
                u.held[i][d].push(g.replica);
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
    let multi = placement.grants.len() > 1;
    let mut gpus: Vec<u8> = Vec::new();
    for (k, g) in placement.grants.iter().enumerate() {
        let di = usize::from(g.device);
        let Some(d) = node.devices.get(di) else {
            return Err("device index");
        };
        if placement.grants[..k].iter().any(|h| h.device == g.device) {
            return Err("device granted twice");
        }
        if multi && d.mig.is_none() {
            if gpus.contains(&d.gpu) {
                return Err("physical GPU granted twice");
            }
            gpus.push(d.gpu);
        }
        let Some((mib, milli)) = expected_charge(d, pod.gpu, multi) else {
            return Err("device cannot serve the request");
        };
        if multi
            && (matches!(d.sharing, Sharing::Mps { .. })
                || matches!(
                    d.sharing,
                    Sharing::TimeSliced {
                        fail_multi: true,
                        ..
                    }
                ))
        {
            return Err("failRequestsGreaterThanOne");
        }
        if (g.memory_mib, g.compute_milli) != (mib, milli) {
            return Err("charge");
        }
        if u.gpu[i][di] + u64::from(milli) > u64::from(d.compute_milli) {
            return Err("device compute");
        }
        if u.gpu_mem[i][di] + mib > d.memory_mib {
            return Err("device memory");
        }
        if whole_device(d, pod.gpu, multi) && u.grants[i][di] > 0 {
            return Err("device in use");
        }
        match d.sharing {
            Sharing::Exclusive if u.grants[i][di] > 0 => return Err("exclusive device in use"),
            Sharing::Exclusive | Sharing::Fractional if g.replica != 0 => {
                return Err("replica of an unreplicated device")
            }
            _ => {}
        }
        if let Some(r) = replicas(d) {
            if g.replica >= r || u.held[i][di].contains(&g.replica) {
                return Err("replica not free");
            }
            if u.grants[i][di] >= u32::from(r) {
                return Err("replicas exhausted");
            }
        }
    }
    Ok(())
}

/// The placement of `req` on devices `idx` of node `i` at each device's lowest free
/// replica in `u`.
fn placement_at_free_replicas(
    cluster: &Cluster,
    u: &Usage,
    i: usize,
    req: GpuRequest,
    idx: &[usize],
) -> Placement {
    let mut p = placement(cluster, i as u32, req, idx);
    for g in &mut p.grants {
        let d = &cluster.nodes()[i].devices[usize::from(g.device)];
        if let Some(r) = replicas(d) {
            let held = &u.held[i][usize::from(g.device)];
            g.replica = (0..r).find(|x| !held.contains(x)).unwrap_or(r);
        }
    }
    p
}

/// True if some set of `count` devices of node `i` makes a valid placement.
pub fn fits_node(cluster: &Cluster, u: &Usage, pod: &Pod, i: usize) -> bool {
    fn combos(
        n: usize,
        k: usize,
        start: usize,
        cur: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        if cur.len() == k {
            return f(cur);
        }
        for d in start..n {
            cur.push(d);
            if combos(n, k, d + 1, cur, f) {
                return true;
            }
            cur.pop();
        }
        false
    }
    let devices = u.gpu[i].len();
    combos(devices, count(pod.gpu), 0, &mut Vec::new(), &mut |idx| {
        let p = placement_at_free_replicas(cluster, u, i, pod.gpu, idx);
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
        assert_eq!(st.devices.len(), u.gpu[i].len(), "node {i} device count");
        let physical = node
            .devices
            .iter()
            .map(|d| usize::from(d.gpu) + 1)
            .max()
            .unwrap_or(0);
        assert_eq!(st.gpus().len(), physical, "node {i} GPU count");
        let mut free_per_gpu = vec![0u64; physical];
        for (g, d) in node.devices.iter().enumerate() {
            let (used, mem_used, grants) = (u.gpu[i][g], u.gpu_mem[i][g], u.grants[i][g]);
            assert!(
                used <= u64::from(d.compute_milli),
                "node {i} device {g}: {used} milli used"
            );
            assert!(
                mem_used <= d.memory_mib,
                "node {i} device {g}: {mem_used} of {} MiB used",
                d.memory_mib
            );
            if let Some(r) = replicas(d) {
                assert!(
                    grants <= u32::from(r),
                    "node {i} device {g}: {grants} of {r} replicas"
                );
                let mut h = u.held[i][g].clone();
                h.sort_unstable();
                h.dedup();
                assert_eq!(
                    h.len(),
                    u.held[i][g].len(),
                    "node {i} device {g}: a replica held twice"
                );
            }
            if d.sharing == Sharing::Exclusive {
                assert!(grants <= 1, "node {i} device {g}: exclusive device shared");
            }
            free_per_gpu[usize::from(d.gpu)] += u64::from(d.compute_milli) - used;
            let dev = &st.devices[g];
            assert_eq!(
                (
                    u64::from(dev.compute_used_milli),
                    dev.memory_used_mib,
                    u32::from(dev.grants)
                ),
                (used, mem_used, grants),
                "node {i} device {g}: (compute, memory, grants)"
            );
            gpu_total += used;
            gpu_mem_total += mem_used;
        }
        for (g, &free) in free_per_gpu.iter().enumerate() {
            assert_eq!(u64::from(st.gpus()[g]), free, "node {i} GPU {g} free milli");
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

/// Asserts the shape of a placement the scheduler returned: as many distinct devices as
/// the request asks, all on the node, distinct physical GPUs for several (MIG instances
/// count one each), replica indices in range.
pub fn check_shape(cluster: &Cluster, pod: &Pod, p: &Placement) {
    let node = &cluster.nodes()[p.node.index()];
    assert_eq!(p.grants.len(), count(pod.gpu), "{pod:?} got {p:?}");
    let mut gpus = Vec::new();
    for (k, g) in p.grants.iter().enumerate() {
        let d = node
            .devices
            .get(usize::from(g.device))
            .unwrap_or_else(|| panic!("{pod:?} got {p:?}: no such device"));
        assert!(
            p.grants[..k].iter().all(|h| h.device != g.device),
            "{pod:?} got {p:?}: a device twice"
        );
        if p.grants.len() > 1 && d.mig.is_none() {
            assert!(!gpus.contains(&d.gpu), "{pod:?} got {p:?}: a GPU twice");
            gpus.push(d.gpu);
        }
        match replicas(d) {
            Some(r) => assert!(g.replica < r, "{pod:?} got {p:?}"),
            None => assert_eq!(g.replica, 0, "{pod:?} got {p:?}"),
        }
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

/// The pods that arrive in `events`, in order.
pub fn arrivals_of(events: &[Event]) -> Vec<Pod> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Arrive(p) => Some(p.clone()),
            Event::Depart(_) => None,
        })
        .collect()
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

// ----- mixed clusters: every device mode -----------------------------------------------

/// Resource names of the mixed clusters: `nvidia.com/gpu`, two MIG profiles and a
/// renamed time-sliced resource.
pub const MIXED_RESOURCES: [&str; 4] = [
    "nvidia.com/gpu",
    "nvidia.com/mig-1g.10gb",
    "nvidia.com/mig-3g.40gb",
    "nvidia.com/gpu.shared",
];

fn gpus_of(kind: u8, count: u8, replicas: u16, fail_multi: bool, renamed: bool) -> Vec<Device> {
    let mk = |gpu: u8, sharing: Sharing, resource: u16| Device {
        gpu,
        mig: None,
        resource: ResourceId(resource),
        memory_mib: A100_MIB,
        compute_milli: 1000,
        sharing,
    };
    let mut out = Vec::new();
    for g in 0..count {
        match kind {
            1 => out.push(Device {
                memory_mib: T4_MIB,
                ..mk(g, Sharing::Fractional, 0)
            }),
            2 => out.push(mk(g, Sharing::Exclusive, 0)),
            3 => out.push(mk(
                g,
                Sharing::TimeSliced {
                    replicas,
                    fail_multi,
                },
                if renamed { 3 } else { 0 },
            )),
            4 => out.push(mk(g, Sharing::Mps { replicas }, 0)),
            _ => {
                // MIG: two 1g.10gb instances (time-sliced when `renamed`) and one
                // 3g.40gb, as on an A100-80GB.
                let inst =
                    |start: u8, profile: &str, res: u16, mem: u64, milli: u32, sharing| Device {
                        gpu: g,
                        mig: Some(MigInstance {
                            profile: profile.into(),
                            start,
                        }),
                        resource: ResourceId(res),
                        memory_mib: mem,
                        compute_milli: milli,
                        sharing,
                    };
                let small = if renamed {
                    Sharing::TimeSliced {
                        replicas: 2,
                        fail_multi,
                    }
                } else {
                    Sharing::Exclusive
                };
                out.push(inst(0, "1g.10gb", 1, 9_856, 142, small));
                out.push(inst(1, "1g.10gb", 1, 9_856, 142, small));
                out.push(inst(4, "3g.40gb", 2, 40_192, 428, Sharing::Exclusive));
            }
        }
    }
    out
}

/// A node of a mixed cluster: CPU only, or 1..=3 GPUs of one sharing mode (fractional
/// T4s; exclusive, time-sliced (2..=4 replicas, maybe `failRequestsGreaterThanOne`,
/// maybe renamed), MPS or MIG A100s).
pub fn arb_mixed_node() -> impl Strategy<Value = (u64, u64, u8, u8, u16, bool, bool, u32)> {
    let max_pods = prop_oneof![4 => Just(DEFAULT_MAX_PODS), 1 => 1u32..=3];
    (
        1u64..=64,
        1u64..=64,
        0u8..=5,
        1u8..=3,
        2u16..=4,
        any::<bool>(),
        any::<bool>(),
        max_pods,
    )
        .prop_map(|(c, m, kind, n, r, fm, ren, pods)| {
            (c * 1000, m * 1024, kind, n, r, fm, ren, pods)
        })
}

/// A cluster of 1..=5 nodes of every device mode.
pub fn arb_mixed_cluster() -> impl Strategy<Value = Arc<Cluster>> {
    prop::collection::vec(arb_mixed_node(), 1..=5).prop_map(|nodes| {
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
            .map(|(i, (cpu, mem, kind, n, r, fm, ren, pods))| {
                let node = Node::new(format!("n{i}"), cpu, mem).with_max_pods(pods);
                if kind == 0 {
                    node
                } else {
                    let model = if kind == 1 { T4 } else { A100 };
                    node.with_devices(model, gpus_of(kind, n, r, fm, ren))
                }
            })
            .collect();
        Arc::new(
            Cluster::with_resources(
                models,
                MIXED_RESOURCES.iter().map(|r| r.to_string()).collect(),
                nodes,
            )
            .expect("valid cluster"),
        )
    })
}

/// A GPU request of any kind: none, whole GPUs, a milli share, a memory share with or
/// without compute, MIG instances or the renamed shared resource.
pub fn arb_any_gpu() -> impl Strategy<Value = GpuRequest> {
    prop_oneof![
        2 => Just(GpuRequest::None),
        2 => (1u8..=3).prop_map(GpuRequest::Whole),
        2 => (1u16..=999).prop_map(GpuRequest::Milli),
        2 => (1u64..=45_000, prop_oneof![Just(0u32), 1u32..=600])
            .prop_map(|(mib, compute_milli)| GpuRequest::Memory { mib, compute_milli }),
        2 => (1u16..=3, 1u8..=2).prop_map(|(r, count)| GpuRequest::Devices {
            resource: ResourceId(r),
            count,
        }),
    ]
}

/// A pod (with a fresh id) with any GPU request.
pub fn arb_any_pod() -> impl Strategy<Value = Pod> {
    (0u64..=48, 0u64..=48, arb_any_gpu(), arb_models()).prop_map(|(c, m, gpu, models)| Pod {
        allowed_models: models,
        ..Pod::new("p", c * 500, m * 512, gpu)
    })
}

/// Mostly arrivals of any pod, some departures.
pub fn arb_any_events(max: usize) -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        prop_oneof![
            5 => arb_any_pod().prop_map(Event::Arrive),
            1 => any::<usize>().prop_map(Event::Depart),
        ],
        1..=max,
    )
}

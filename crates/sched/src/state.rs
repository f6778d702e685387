//! The one cluster state: what every pod holds, on which node and device.
//!
//! Pod-keyed and device-based: [`ClusterState::assume`] records a pod with its
//! [`Placement`] (a node and one [`Grant`] per device: the device, the replica or MIG
//! instance, and what it is charged), [`ClusterState::forget`] gives it all back by the
//! pod's id, and [`ClusterState::pods_on`] lists what runs on a node (preemption
//! victims, departures).
//!
//! **What a grant costs** ([`charge`]), by the device's [`Sharing`] mode:
//! - a count request (`Whole`, `Devices`) on an exclusive or fractional device, or for
//!   more than one device on any device: the whole device, which must be idle;
//! - one replica asked by count on a time-sliced or MPS device: the device divided by
//!   its replicas;
//! - a milli share `m`: `m` milli-GPU and `⌊memory · m / 1000⌋` MiB (so shares that
//!   fit in compute always fit in memory) on a fractional or time-sliced device; the
//!   slot on an MPS device, which must hold it;
//! - a memory share: the MiB and milli asked, on a fractional or time-sliced device; the
//!   slot on an MPS device, which must hold it.
//!
//! **The rules** [`ClusterState::assume`] checks, refusing unchanged:
//! - the node's CPU, memory, extended resources and pod limit are not exceeded;
//! - a device's charged memory and compute never exceed its capacity, however many
//!   replicas it advertises, and a replica index or MIG instance is held by one pod;
//! - `n > 1` devices are `n` distinct physical GPUs (distinct instances for MIG), never
//!   two replicas of one GPU, and a request for several replicas of a resource whose
//!   device plugin sets `failRequestsGreaterThanOne` (always MPS) is refused;
//! - the GPU model is one the pod allows, and a pod id is placed once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mlplane_model::{
    Cluster, Device, GpuRequest, Node, Pod, PodId, Sharing, GPU_MILLI, MAX_GPUS_PER_NODE,
};

/// Index of a node in its [`Cluster`] (and in [`ClusterState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of physical GPU indices on one node, as a bit set (bit `i` = GPU `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GpuSet(pub u16);

impl GpuSet {
    /// The empty set.
    pub fn empty() -> Self {
        GpuSet(0)
    }
    /// A set with one GPU.
    ///
    /// # Panics
    /// If `i >= MAX_GPUS_PER_NODE`.
    pub fn single(i: usize) -> Self {
        assert!(i < MAX_GPUS_PER_NODE);
        GpuSet(1 << i)
    }
    /// Adds GPU `i`.
    ///
    /// # Panics
    /// If `i >= MAX_GPUS_PER_NODE`.
    pub fn insert(&mut self, i: usize) {
        assert!(i < MAX_GPUS_PER_NODE);
        self.0 |= 1 << i;
    }
    /// True if GPU `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        i < MAX_GPUS_PER_NODE && self.0 & (1 << i) != 0
    }
    /// Number of GPUs in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// True if empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// GPU indices in ascending order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_GPUS_PER_NODE).filter(move |&i| self.contains(i))
    }
}

/// What a grant is charged: (GPU memory in MiB, compute in milli-GPU).
pub type Charge = (u64, u32);

/// One device handed to a pod: which device of the node, which replica, and what it is
/// charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Index into the node's device table ([`Node::devices`]).
    pub device: u16,
    /// Replica index on a time-sliced or MPS device; 0 on an exclusive or fractional one.
    pub replica: u16,
    /// GPU memory charged, MiB.
    pub memory_mib: u64,
    /// Compute charged, milli-GPU.
    pub compute_milli: u32,
}

/// Where a pod goes: the node and its grants (none for a CPU-only pod).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// The node.
    pub node: NodeId,
    /// One grant per device, in the order the pod gets them.
    pub grants: Vec<Grant>,
}

impl Placement {
    /// The physical GPUs of the grants on `node`.
    pub fn gpus(&self, node: &Node) -> GpuSet {
        let mut s = GpuSet::empty();
        for g in &self.grants {
            s.insert(usize::from(node.devices[usize::from(g.device)].gpu));
        }
        s
    }

    /// The placement on `node` of `req` on the whole-GPU devices `gpus` of a node whose
    /// device `i` is physical GPU `i` (the FGD paper's nodes), charged by [`charge`].
    /// `None` if a GPU has no such device or the device cannot serve `req`.
    pub fn on_gpus(id: NodeId, node: &Node, req: GpuRequest, gpus: GpuSet) -> Option<Self> {
        let multi = req.gpu_count() > 1;
        let grants = gpus
            .iter()
            .map(|i| {
                let d = node.devices.get(i).filter(|d| usize::from(d.gpu) == i)?;
                let c = charge(d, req, multi)?;
                Some(Grant {
                    device: i as u16,
                    replica: 0,
                    memory_mib: c.0,
                    compute_milli: c.1,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Placement { node: id, grants })
    }
}

/// What one grant of `d` costs for `req` (see the module documentation), or `None` if
/// `req` cannot use `d` at all: another resource, a share on an exclusive device, a
/// share larger than the device or its MPS slot. `multi` is true for a request of more
/// than one device, which takes each device whole.
pub fn charge(d: &Device, req: GpuRequest, multi: bool) -> Option<Charge> {
    let whole = (d.memory_mib, d.compute_milli);
    let fits = |c: Charge| c.0 <= d.memory_mib && c.1 <= d.compute_milli;
    let slot = |asked: Charge| {
        let s = d.replica_share();
        (asked.0 <= s.0 && asked.1 <= s.1).then_some(s)
    };
    match req {
        GpuRequest::None => None,
        GpuRequest::Whole(_) | GpuRequest::Devices { .. } => {
            if req.resource() != Some(d.resource) {
                None
            } else if d.sharing.is_replicated() && !multi {
                Some(d.replica_share())
            } else {
                Some(whole)
            }
        }
        GpuRequest::Milli(m) => {
            let asked = (
                d.memory_mib * u64::from(m) / u64::from(GPU_MILLI),
                u32::from(m),
            );
            match d.sharing {
                Sharing::Exclusive => None,
                Sharing::Mps { .. } => slot(asked),
                _ => fits(asked).then_some(asked),
            }
        }
        GpuRequest::Memory { mib, compute_milli } => {
            let asked = (mib, compute_milli);
            match d.sharing {
                Sharing::Exclusive => None,
                Sharing::Mps { .. } => slot(asked),
                _ => fits(asked).then_some(asked),
            }
        }
    }
}

/// True if a grant of `d` for `req` needs the device idle: a count request on an
/// exclusive or fractional device, or any request for several devices.
pub fn needs_idle(d: &Device, req: GpuRequest, multi: bool) -> bool {
    multi || (req.resource().is_some() && !d.sharing.is_replicated())
}

/// Usage of one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// GPU memory charged, MiB.
    pub memory_used_mib: u64,
    /// Compute charged, milli-GPU.
    pub compute_used_milli: u32,
    /// Grants held.
    pub grants: u16,
    /// Replica indices held (time-sliced and MPS devices), bit `r` for replica `r`.
    held: u128,
}

impl DeviceState {
    /// True if replica `r` is held.
    pub fn holds(&self, r: u16) -> bool {
        r < 128 && self.held & (1 << r) != 0
    }

    /// True if nothing is charged.
    pub fn is_idle(&self) -> bool {
        self.grants == 0
    }

    /// Free memory of `d` in MiB.
    pub fn memory_free(&self, d: &Device) -> u64 {
        d.memory_mib - self.memory_used_mib
    }

    /// Free compute of `d` in milli-GPU.
    pub fn compute_free(&self, d: &Device) -> u32 {
        d.compute_milli - self.compute_used_milli
    }

    /// Free replicas of `d` (`u16::MAX` for a fractional device).
    pub fn replicas_free(&self, d: &Device) -> u16 {
        d.sharing
            .replicas()
            .map_or(u16::MAX, |r| r.saturating_sub(self.grants))
    }

    /// The replica index a new grant of `d` gets: the lowest free one on a replicated
    /// device, 0 on an exclusive or fractional one; `None` if none is free.
    pub fn free_replica(&self, d: &Device) -> Option<u16> {
        match d.sharing {
            Sharing::Fractional => Some(0),
            Sharing::Exclusive => self.is_idle().then_some(0),
            Sharing::TimeSliced { replicas, .. } | Sharing::Mps { replicas } => {
                (0..replicas).find(|&r| !self.holds(r))
            }
        }
    }

    /// True if a grant of `c` fits: a free replica, memory and compute, and the device
    /// idle when `whole`.
    pub fn can_take(&self, d: &Device, c: Charge, whole: bool) -> bool {
        self.replicas_free(d) > 0
            && self.memory_used_mib + c.0 <= d.memory_mib
            && self.compute_used_milli + c.1 <= d.compute_milli
            && (!whole || self.is_idle())
    }
}

/// Number of GPU request classes tracked per node for GpuClustering: index 0 is a
/// share, index `n` (1..=8) is `n` devices.
pub const GPU_CLASSES: usize = 9;

/// The class index of a GPU request, or `None` for a CPU-only request.
pub fn gpu_class(req: GpuRequest) -> Option<usize> {
    match req {
        GpuRequest::None => None,
        GpuRequest::Milli(_) | GpuRequest::Memory { .. } => Some(0),
        GpuRequest::Whole(n) | GpuRequest::Devices { count: n, .. } => {
            Some(usize::from(n).min(GPU_CLASSES - 1))
        }
    }
}

/// What is free and held on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Free CPU in millicores.
    pub cpu_free_milli: u64,
    /// Free memory in MiB.
    pub memory_free_mib: u64,
    /// Free compute of each physical GPU in milli-GPU (the sum over its devices; 1000
    /// for an idle whole GPU): the FGD paper's view of a node. Only the first
    /// `gpu_count` entries are meaningful, the rest are 0.
    pub gpu_free_milli: [u16; MAX_GPUS_PER_NODE],
    /// Number of physical GPUs.
    pub gpu_count: u8,
    /// Pods placed on the node.
    pub pods: u32,
    /// Pods placed on the node per GPU request class (see [`gpu_class`]).
    pub pods_by_gpu_class: [u32; GPU_CLASSES],
    /// Usage per device, in the node's device-table order.
    pub devices: Vec<DeviceState>,
    /// Used amount of each of the node's [`Node::extended`] resources, same order.
    pub extended_used: Vec<u64>,
    /// Changes whenever the node's usage changes, and is unique across every state of
    /// the process, so caches keyed by it never confuse two states or two clones.
    pub version: u64,
    /// The pods on the node, in the order they were placed.
    pub pod_ids: Vec<PodId>,
}

static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

impl NodeState {
    /// The state of an empty node.
    pub fn empty(node: &Node) -> Self {
        let mut gpu_free_milli = [0u16; MAX_GPUS_PER_NODE];
        for d in &node.devices {
            let g = &mut gpu_free_milli[usize::from(d.gpu)];
            *g = g.saturating_add(d.compute_milli.min(u32::from(u16::MAX)) as u16);
        }
        NodeState {
            cpu_free_milli: node.cpu_milli,
            memory_free_mib: node.memory_mib,
            gpu_free_milli,
            gpu_count: node.gpu_count(),
            pods: 0,
            pods_by_gpu_class: [0; GPU_CLASSES],
            devices: vec![DeviceState::default(); node.devices.len()],
            extended_used: vec![0; node.extended.len()],
            version: next_version(),
            pod_ids: Vec::new(),
        }
    }

    /// Free milli-GPU of the node's GPUs, one entry per physical GPU.
    pub fn gpus(&self) -> &[u16] {
        &self.gpu_free_milli[..usize::from(self.gpu_count)]
    }

    /// Total free milli-GPU over all GPUs.
    pub fn gpu_free_total(&self) -> u64 {
        self.gpus().iter().map(|&g| u64::from(g)).sum()
    }

    /// Number of GPUs with nothing allocated.
    pub fn fully_free_gpus(&self) -> usize {
        self.gpus()
            .iter()
            .filter(|&&g| u32::from(g) == GPU_MILLI)
            .count()
    }

    /// Number of GPUs with at least `milli` free.
    pub fn gpus_with_at_least(&self, milli: u32) -> usize {
        self.gpus()
            .iter()
            .filter(|&&g| u32::from(g) >= milli)
            .count()
    }

    /// Number of distinct GPU request classes among the pods on the node.
    pub fn gpu_class_count(&self) -> usize {
        self.pods_by_gpu_class.iter().filter(|&&c| c > 0).count()
    }

    /// Free GPU memory over the node's devices, MiB.
    pub fn gpu_memory_free(&self, node: &Node) -> u64 {
        node.devices
            .iter()
            .zip(&self.devices)
            .map(|(d, s)| s.memory_free(d))
            .sum()
    }

    /// Applies `pod` on `placement` to this node's usage (no checks: see
    /// [`ClusterState::assume`]); for scratch copies that preemption tries victims on.
    pub(crate) fn take(&mut self, node: &Node, pod: &Pod, placement: &Placement) {
        self.cpu_free_milli -= pod.cpu_milli;
        self.memory_free_mib -= pod.memory_mib;
        for (r, amount) in &pod.extended {
            let k = node
                .extended
                .iter()
                .position(|(q, _)| q == r)
                .expect("checked");
            self.extended_used[k] += amount;
        }
        for g in &placement.grants {
            let d = &node.devices[usize::from(g.device)];
            let s = &mut self.devices[usize::from(g.device)];
            s.memory_used_mib += g.memory_mib;
            s.compute_used_milli += g.compute_milli;
            s.grants += 1;
            if d.sharing.is_replicated() {
                s.held |= 1 << g.replica;
            }
            self.gpu_free_milli[usize::from(d.gpu)] -= g.compute_milli as u16;
        }
        self.pods += 1;
        if let Some(c) = gpu_class(pod.gpu) {
            self.pods_by_gpu_class[c] += 1;
        }
        self.pod_ids.push(pod.id);
        self.version = next_version();
    }

    /// Returns what `pod` on `placement` holds (the inverse of `take`).
    pub(crate) fn give_back(&mut self, node: &Node, pod: &Pod, placement: &Placement) {
        self.cpu_free_milli += pod.cpu_milli;
        self.memory_free_mib += pod.memory_mib;
        for (r, amount) in &pod.extended {
            let k = node
                .extended
                .iter()
                .position(|(q, _)| q == r)
                .expect("checked");
            self.extended_used[k] -= amount;
        }
        for g in &placement.grants {
            let d = &node.devices[usize::from(g.device)];
            let s = &mut self.devices[usize::from(g.device)];
            s.memory_used_mib -= g.memory_mib;
            s.compute_used_milli -= g.compute_milli;
            s.grants -= 1;
            if d.sharing.is_replicated() {
                s.held &= !(1 << g.replica);
            }
            self.gpu_free_milli[usize::from(d.gpu)] += g.compute_milli as u16;
        }
        self.pods -= 1;
        if let Some(c) = gpu_class(pod.gpu) {
            self.pods_by_gpu_class[c] -= 1;
        }
        self.pod_ids.retain(|&p| p != pod.id);
        self.version = next_version();
    }
}

/// A node and its current state, as plugins see it.
#[derive(Clone, Copy, Debug)]
pub struct NodeInfo<'a> {
    /// Index of the node.
    pub id: NodeId,
    /// The node as configured (capacity, constraints, devices).
    pub node: &'a Node,
    /// What is free now.
    pub state: &'a NodeState,
}

/// Why a node's devices cannot take a pod's GPU request ([`ClusterState::candidates_into`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceRefusal {
    /// The request is malformed ([`GpuRequest::is_valid`]).
    Invalid,
    /// No device of the asked resource (or, for a share, no shared device).
    NoResource,
    /// More than one replica asked where the device plugin refuses it.
    MultiReplica,
    /// Not enough free devices (distinct physical GPUs for several).
    Insufficient,
}

/// A pod placed in the state, with its placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The pod as it was assumed.
    pub pod: Pod,
    /// Where it is.
    pub placement: Placement,
    /// The order of placement: larger is placed later (preemption's "start time" of a
    /// victim, until the simulator records times).
    pub seq: u64,
}

impl Bound {
    /// What the pod holds: [CPU millicores, GPU compute milli-GPU, GPU memory MiB]
    /// (the dimensions of tenants' dominant shares).
    pub fn held(&self) -> [u64; 3] {
        let mut a = [self.pod.cpu_milli, 0, 0];
        for g in &self.placement.grants {
            a[1] += u64::from(g.compute_milli);
            a[2] += g.memory_mib;
        }
        a
    }
}

/// Why [`ClusterState::assume`] refused a placement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod:?} on node {node}: {why}")]
pub struct AssumeError {
    /// The pod's name.
    pub pod: String,
    /// The node's name (or `#index` when out of range).
    pub node: String,
    /// The rule broken.
    pub why: String,
}

/// Every node's usage and every placed pod.
///
/// **Invariant:** no node's CPU, memory, extended resources or pod count and no
/// device's memory, compute or replicas is ever over-committed, and every placed pod's
/// grants are recorded under its id: [`ClusterState::assume`] checks every rule of the
/// module documentation and refuses, leaving the state unchanged, rather than break one.
#[derive(Clone, Debug)]
pub struct ClusterState {
    cluster: Arc<Cluster>,
    nodes: Vec<NodeState>,
    /// `nodes[i].version`, dense, for scans that only ask what changed.
    versions: Vec<u64>,
    bound: HashMap<PodId, Bound>,
    gpu_used_milli: u64,
    gpu_memory_used_mib: u64,
    gpu_pods: u64,
    placed: u64,
    /// Nominated pods by node (see [`ClusterState::nominate`]).
    nominated: std::collections::BTreeMap<NodeId, Vec<Nominee>>,
}

/// A pod nominated to a node, with what it will claim there: its priority and
/// `[CPU millicores, memory MiB, GPU compute milli, whole GPUs, GPU memory MiB]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Nominee {
    pod: PodId,
    priority: i32,
    claim: [u64; 5],
}

/// What a pod asks of a node in the aggregate, as the nominated-pods check counts it:
/// `[CPU millicores, memory MiB, GPU compute milli, whole GPUs, GPU memory MiB]`. A
/// request for named devices (`Devices`) counts its CPU and memory only.
fn claim_of(pod: &Pod) -> [u64; 5] {
    let (milli, whole, mem) = match pod.gpu {
        GpuRequest::None | GpuRequest::Devices { .. } => (0, 0, 0),
        GpuRequest::Whole(n) => (u64::from(n) * u64::from(GPU_MILLI), u64::from(n), 0),
        GpuRequest::Milli(m) => (u64::from(m), 0, 0),
        GpuRequest::Memory { mib, compute_milli } => (u64::from(compute_milli), 0, mib),
    };
    [pod.cpu_milli, pod.memory_mib, milli, whole, mem]
}

impl ClusterState {
    /// An empty cluster.
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let nodes: Vec<NodeState> = cluster.nodes().iter().map(NodeState::empty).collect();
        let versions = nodes.iter().map(|n| n.version).collect();
        ClusterState {
            cluster,
            nodes,
            versions,
            bound: HashMap::new(),
            gpu_used_milli: 0,
            gpu_memory_used_mib: 0,
            gpu_pods: 0,
            placed: 0,
            nominated: std::collections::BTreeMap::new(),
        }
    }

    /// Records that `pod` is nominated to `node` (PostFilter found room there once its
    /// victims leave), replacing an earlier nomination of the same pod. Until the pod is
    /// placed ([`ClusterState::assume`] clears the nomination) or the nomination is
    /// cleared, pods of lower or equal priority must leave it room there
    /// ([`ClusterState::nominated_fit`]), as kube-scheduler runs filters "with nominated
    /// pods" (`RunFilterPluginsWithNominatedPods`). Nominations do not change the node's
    /// version: they are not usage.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn nominate(&mut self, pod: &Pod, node: NodeId) {
        assert!(
            node.index() < self.nodes.len(),
            "node {node:?} out of range"
        );
        self.clear_nomination(pod.id);
        self.nominated.entry(node).or_default().push(Nominee {
            pod: pod.id,
            priority: pod.priority,
            claim: claim_of(pod),
        });
    }

    /// Removes `id`'s nomination; the node it named, if any.
    pub fn clear_nomination(&mut self, id: PodId) -> Option<NodeId> {
        let node = self
            .nominated
            .iter()
            .find(|(_, v)| v.iter().any(|n| n.pod == id))
            .map(|(&k, _)| k)?;
        let v = self.nominated.get_mut(&node).expect("found");
        v.retain(|n| n.pod != id);
        if v.is_empty() {
            self.nominated.remove(&node);
        }
        Some(node)
    }

    /// The node `id` is nominated to.
    pub fn nominated_node(&self, id: PodId) -> Option<NodeId> {
        self.nominated
            .iter()
            .find(|(_, v)| v.iter().any(|n| n.pod == id))
            .map(|(&k, _)| k)
    }

    /// True if any pod is nominated anywhere.
    pub fn has_nominations(&self) -> bool {
        !self.nominated.is_empty()
    }

    /// Whether `pod` leaves room on `node` for the pods nominated there with a priority
    /// at least its own (other than itself): the node's free CPU, memory, pod slots, GPU
    /// compute, fully free GPUs and GPU memory must cover `pod`'s request plus all of
    /// theirs. The nominees' victims are still counted as using the node while they
    /// terminate, as kube counts them, so a node with a nominee waiting for victims is
    /// usually closed to such pods until the nominee is placed. The check is on node
    /// totals, as kube's `NodeInfo` sums requests; the device allocator's per-device
    /// check still follows for the pod itself.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn nominated_fit(&self, node: NodeId, pod: &Pod) -> bool {
        let Some(list) = self.nominated.get(&node) else {
            return true;
        };
        let mut want = claim_of(pod);
        let mut pods = 1u64;
        for n in list {
            if n.pod == pod.id || n.priority < pod.priority {
                continue;
            }
            for (w, c) in want.iter_mut().zip(n.claim) {
                *w += c;
            }
            pods += 1;
        }
        if pods == 1 {
            return true;
        }
        let (n, st) = (
            &self.cluster.nodes()[node.index()],
            &self.nodes[node.index()],
        );
        want[0] <= st.cpu_free_milli
            && want[1] <= st.memory_free_mib
            && want[2] <= st.gpu_free_total()
            && want[3] <= st.fully_free_gpus() as u64
            && want[4] <= st.gpu_memory_free(n)
            && u64::from(st.pods) + pods <= u64::from(n.max_pods)
    }

    /// The cluster this state belongs to.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The cluster, shared.
    pub fn cluster_arc(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes (never, for a cluster built by [`Cluster::new`]).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The state of one node.
    ///
    /// # Panics
    /// If `id` is out of range.
    pub fn node(&self, id: NodeId) -> NodeInfo<'_> {
        NodeInfo {
            id,
            node: &self.cluster.nodes()[id.index()],
            state: &self.nodes[id.index()],
        }
    }

    /// All nodes with their states, in cluster order.
    pub fn iter(&self) -> impl Iterator<Item = NodeInfo<'_>> {
        self.cluster
            .nodes()
            .iter()
            .zip(&self.nodes)
            .enumerate()
            .map(|(i, (node, state))| NodeInfo {
                id: NodeId(i as u32),
                node,
                state,
            })
    }

    /// Every node's [`NodeState::version`], by node index.
    pub fn versions(&self) -> &[u64] {
        &self.versions
    }

    /// Allocated compute over the cluster, milli-GPU.
    pub fn gpu_used_milli(&self) -> u64 {
        self.gpu_used_milli
    }

    /// Charged GPU memory over the cluster, MiB.
    pub fn gpu_memory_used_mib(&self) -> u64 {
        self.gpu_memory_used_mib
    }

    /// Placed pods that use a GPU.
    pub fn gpu_pods(&self) -> u64 {
        self.gpu_pods
    }

    /// Placed pods.
    pub fn pod_count(&self) -> usize {
        self.bound.len()
    }

    /// Physical GPUs with at least one grant.
    pub fn occupied_gpus(&self) -> u64 {
        self.iter()
            .map(|n| {
                let mut seen = GpuSet::empty();
                for (d, s) in n.node.devices.iter().zip(&n.state.devices) {
                    if !s.is_idle() {
                        seen.insert(usize::from(d.gpu));
                    }
                }
                seen.len() as u64
            })
            .sum()
    }

    /// A placed pod and its placement.
    pub fn bound(&self, id: PodId) -> Option<&Bound> {
        self.bound.get(&id)
    }

    /// The pods on a node with their placements, in the order they were placed.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn pods_on(&self, node: NodeId) -> impl Iterator<Item = &Bound> {
        self.nodes[node.index()]
            .pod_ids
            .iter()
            .map(|id| &self.bound[id])
    }

    /// Why node `node`'s devices cannot take `req` of a pod, or the devices that could
    /// each serve one unit of it with their charges, into `out` (cleared first; empty
    /// for a CPU-only request). Looks at devices only: CPU, memory and the model are
    /// the other filters' business.
    ///
    /// # Errors
    /// The [`DeviceRefusal`].
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn candidates_into(
        &self,
        node: NodeId,
        req: GpuRequest,
        out: &mut Vec<(u16, Charge)>,
    ) -> Result<(), DeviceRefusal> {
        device_candidates(
            &self.cluster.nodes()[node.index()],
            &self.nodes[node.index()],
            req,
            out,
        )
    }

    /// The lowest free replica of device `k` on `node`.
    ///
    /// # Panics
    /// If `node` or `k` is out of range.
    pub fn free_replica(&self, node: NodeId, k: u16) -> Option<u16> {
        let d = &self.cluster.nodes()[node.index()].devices[usize::from(k)];
        self.nodes[node.index()].devices[usize::from(k)].free_replica(d)
    }

    /// Records `pod` as placed by `placement`, after checking every rule (see the
    /// module documentation); on error nothing changes.
    ///
    /// # Errors
    /// [`AssumeError`] naming the pod, the node and the rule broken.
    pub fn assume(&mut self, pod: &Pod, placement: Placement) -> Result<(), AssumeError> {
        let i = placement.node.index();
        let Some(node) = self.cluster.nodes().get(i) else {
            return Err(AssumeError {
                pod: pod.name.clone(),
                node: format!("#{i}"),
                why: "no such node".into(),
            });
        };
        if self.bound.contains_key(&pod.id) {
            return Err(AssumeError {
                pod: pod.name.clone(),
                node: node.name.clone(),
                why: format!("pod id {} is already placed", pod.id.0),
            });
        }
        check(&self.cluster, node, &self.nodes[i], pod, &placement).map_err(|why| AssumeError {
            pod: pod.name.clone(),
            node: node.name.clone(),
            why,
        })?;
        self.nodes[i].take(node, pod, &placement);
        self.versions[i] = self.nodes[i].version;
        self.account(&placement, 1);
        if pod.gpu != GpuRequest::None {
            self.gpu_pods += 1;
        }
        self.placed += 1;
        if !self.nominated.is_empty() {
            self.clear_nomination(pod.id);
        }
        self.bound.insert(
            pod.id,
            Bound {
                pod: pod.clone(),
                placement,
                seq: self.placed,
            },
        );
        Ok(())
    }

    /// Removes a placed pod (a departure, a deletion or a preemption victim) and gives
    /// back everything it held; its devices are free at once. `None` if no pod of that
    /// id is placed.
    pub fn forget(&mut self, id: PodId) -> Option<Bound> {
        let b = self.bound.remove(&id)?;
        let i = b.placement.node.index();
        self.nodes[i].give_back(&self.cluster.nodes()[i], &b.pod, &b.placement);
        self.versions[i] = self.nodes[i].version;
        self.account(&b.placement, -1);
        if b.pod.gpu != GpuRequest::None {
            self.gpu_pods -= 1;
        }
        Some(b)
    }

    fn account(&mut self, placement: &Placement, sign: i64) {
        for g in &placement.grants {
            let (m, c) = (
                g.memory_mib as i64 * sign,
                i64::from(g.compute_milli) * sign,
            );
            self.gpu_memory_used_mib = (self.gpu_memory_used_mib as i64 + m) as u64;
            self.gpu_used_milli = (self.gpu_used_milli as i64 + c) as u64;
        }
    }
}

/// The devices of `node` (in state `st`) that could each serve one unit of `req`, with
/// their charges, into `out`; or why none can.
///
/// # Errors
/// The [`DeviceRefusal`].
pub fn device_candidates(
    node: &Node,
    st: &NodeState,
    req: GpuRequest,
    out: &mut Vec<(u16, Charge)>,
) -> Result<(), DeviceRefusal> {
    out.clear();
    if req == GpuRequest::None {
        return Ok(());
    }
    if !req.is_valid() {
        return Err(DeviceRefusal::Invalid);
    }
    let count = req.gpu_count();
    let multi = count > 1;
    let mut any = false;
    for (k, (d, s)) in node.devices.iter().zip(&st.devices).enumerate() {
        let Some(c) = charge(d, req, multi) else {
            continue;
        };
        any = true;
        if multi && d.sharing.fails_multi() {
            return Err(DeviceRefusal::MultiReplica);
        }
        if s.can_take(d, c, needs_idle(d, req, multi)) {
            out.push((k as u16, c));
        }
    }
    if !any {
        return Err(DeviceRefusal::NoResource);
    }
    if distinct_units(&node.devices, out) < usize::from(count) {
        return Err(DeviceRefusal::Insufficient);
    }
    Ok(())
}

/// [`device_candidates`] without collecting: whether `node`'s devices can serve `req`
/// now. For filters, which run on every node.
///
/// # Errors
/// The [`DeviceRefusal`].
pub fn device_fit(node: &Node, st: &NodeState, req: GpuRequest) -> Result<(), DeviceRefusal> {
    if req == GpuRequest::None {
        return Ok(());
    }
    if !req.is_valid() {
        return Err(DeviceRefusal::Invalid);
    }
    let count = usize::from(req.gpu_count());
    let multi = count > 1;
    let mut any = false;
    let (mut gpus, mut mig) = (GpuSet::empty(), 0usize);
    for (d, s) in node.devices.iter().zip(&st.devices) {
        let Some(c) = charge(d, req, multi) else {
            continue;
        };
        any = true;
        if multi && d.sharing.fails_multi() {
            return Err(DeviceRefusal::MultiReplica);
        }
        if s.can_take(d, c, needs_idle(d, req, multi)) {
            if d.mig.is_some() {
                mig += 1;
            } else {
                gpus.insert(usize::from(d.gpu));
            }
            if !multi {
                return Ok(());
            }
        }
    }
    if !any {
        Err(DeviceRefusal::NoResource)
    } else if gpus.len() + mig < count {
        Err(DeviceRefusal::Insufficient)
    } else {
        Ok(())
    }
}

/// How many of `cands` can be used together: distinct physical GPUs for whole GPUs,
/// distinct instances for MIG devices.
pub fn distinct_units(devices: &[Device], cands: &[(u16, Charge)]) -> usize {
    let mut gpus = GpuSet::empty();
    let mut mig = 0;
    for &(k, _) in cands {
        let d = &devices[usize::from(k)];
        if d.mig.is_some() {
            mig += 1;
        } else {
            gpus.insert(usize::from(d.gpu));
        }
    }
    gpus.len() + mig
}

/// Every rule of [`ClusterState::assume`] for `pod` on `node` (in state `st`).
fn check(
    cluster: &Cluster,
    node: &Node,
    st: &NodeState,
    pod: &Pod,
    placement: &Placement,
) -> Result<(), String> {
    if st.pods >= node.max_pods {
        return Err(format!("the node runs {} pods, its limit", node.max_pods));
    }
    if st.cpu_free_milli < pod.cpu_milli {
        return Err(format!(
            "cpu: {}m free, {}m asked",
            st.cpu_free_milli, pod.cpu_milli
        ));
    }
    if st.memory_free_mib < pod.memory_mib {
        return Err(format!(
            "memory: {} MiB free, {} MiB asked",
            st.memory_free_mib, pod.memory_mib
        ));
    }
    for (r, amount) in &pod.extended {
        let name = cluster.resource_name(*r);
        let Some(k) = node.extended.iter().position(|(q, _)| q == r) else {
            return Err(format!("{name}: the node has none"));
        };
        let free = node.extended[k].1 - st.extended_used[k];
        if free < *amount {
            return Err(format!("{name}: {free} free, {amount} asked"));
        }
    }
    let req = pod.gpu;
    if !req.is_valid() {
        return Err(format!("the GPU request {req:?} is malformed"));
    }
    let want = usize::from(req.gpu_count());
    if placement.grants.len() != want {
        return Err(format!(
            "{} device(s) granted, {want} asked",
            placement.grants.len()
        ));
    }
    if want > 0 {
        match node.gpu_model() {
            Some(m) if pod.allows_model(m) => {}
            _ => return Err("the node's GPU model is not one the pod allows".into()),
        }
    }
    let multi = want > 1;
    let mut gpus_seen = GpuSet::empty();
    for (n, g) in placement.grants.iter().enumerate() {
        let Some(d) = node.devices.get(usize::from(g.device)) else {
            return Err(format!("no device {}", g.device));
        };
        let s = &st.devices[usize::from(g.device)];
        if placement.grants[..n].iter().any(|h| h.device == g.device) {
            return Err(format!("device {} granted twice", g.device));
        }
        if multi && d.mig.is_none() {
            if gpus_seen.contains(usize::from(d.gpu)) {
                return Err(format!("GPU {} granted twice for {want} devices", d.gpu));
            }
            gpus_seen.insert(usize::from(d.gpu));
        }
        let Some(c) = charge(d, req, multi) else {
            return Err(format!("device {} cannot serve {req}", g.device));
        };
        if multi && d.sharing.fails_multi() {
            return Err(format!(
                "{want} replicas of {} asked; the device plugin sets failRequestsGreaterThanOne",
                cluster.resource_name(d.resource)
            ));
        }
        if (g.memory_mib, g.compute_milli) != c {
            return Err(format!(
                "device {} charged {:?}, the rule says {c:?}",
                g.device,
                (g.memory_mib, g.compute_milli)
            ));
        }
        let whole = needs_idle(d, req, multi);
        if !s.can_take(d, c, whole) {
            let replicas = match d.sharing.replicas() {
                Some(_) => format!("{} replica(s)", s.replicas_free(d)),
                None => "unbounded shares".to_string(),
            };
            return Err(format!(
                "device {}: {} MiB / {}m / {replicas} free{}, {} MiB / {}m asked",
                g.device,
                s.memory_free(d),
                s.compute_free(d),
                if whole && !s.is_idle() {
                    ", in use and needed idle"
                } else {
                    ""
                },
                c.0,
                c.1
            ));
        }
        let replica_ok = match d.sharing {
            Sharing::Exclusive | Sharing::Fractional => g.replica == 0,
            Sharing::TimeSliced { replicas, .. } | Sharing::Mps { replicas } => {
                g.replica < replicas
                    && !s.holds(g.replica)
                    && !placement.grants[..n]
                        .iter()
                        .any(|h| h.device == g.device && h.replica == g.replica)
            }
        };
        if !replica_ok {
            return Err(format!(
                "device {} replica {} is not free",
                g.device, g.replica
            ));
        }
    }
    Ok(())
}

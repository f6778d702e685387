//! Mutable cluster state: what is free on every node and GPU.

use mlplane_model::{Cluster, GpuRequest, Node, Pod, GPU_MILLI, MAX_GPUS_PER_NODE};

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

/// The result of scheduling a pod: a node and the physical GPUs it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The node.
    pub node: NodeId,
    /// The physical GPUs: `n` distinct GPUs for [`GpuRequest::Whole`]`(n)`, one for a
    /// share, none for a CPU-only pod.
    pub gpus: GpuSet,
}

/// Number of GPU request classes tracked per node: index 0 is a GPU share, index `n`
/// (1..=8) is `n` whole GPUs.
pub const GPU_CLASSES: usize = 9;

/// The class index of a GPU request, or `None` for a CPU-only request.
pub fn gpu_class(req: GpuRequest) -> Option<usize> {
    match req {
        GpuRequest::None => None,
        GpuRequest::Shared(_) => Some(0),
        GpuRequest::Whole(n) => Some(usize::from(n)),
    }
}

/// What is free on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Free CPU in millicores.
    pub cpu_free_milli: u64,
    /// Free memory in MiB.
    pub memory_free_mib: u64,
    /// Free milli-GPU of each physical GPU (`0..=1000`); only the first `gpu_count`
    /// entries are meaningful, the rest are 0.
    pub gpu_free_milli: [u16; MAX_GPUS_PER_NODE],
    /// Number of physical GPUs.
    pub gpu_count: u8,
    /// Pods placed on the node.
    pub pods: u32,
    /// Pods placed on the node per GPU request class (see [`gpu_class`]).
    pub pods_by_gpu_class: [u32; GPU_CLASSES],
}

impl NodeState {
    /// The state of an empty node.
    pub fn empty(node: &Node) -> Self {
        let count = node.gpu_count();
        let mut gpu_free_milli = [0u16; MAX_GPUS_PER_NODE];
        for g in gpu_free_milli.iter_mut().take(usize::from(count)) {
            *g = GPU_MILLI as u16;
        }
        NodeState {
            cpu_free_milli: node.cpu_milli,
            memory_free_mib: node.memory_mib,
            gpu_free_milli,
            gpu_count: count,
            pods: 0,
            pods_by_gpu_class: [0; GPU_CLASSES],
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

    /// True if the node's free CPU, memory and GPUs can hold `req` at all (the GPU
    /// part as the open-gpu-share filter checks it: a share needs one GPU with enough
    /// free milli, `n` whole GPUs need `n` GPUs that are entirely free).
    pub fn gpu_fits(&self, req: GpuRequest) -> bool {
        match req {
            GpuRequest::None => true,
            GpuRequest::Whole(n) => self.fully_free_gpus() >= usize::from(n),
            GpuRequest::Shared(m) => self.gpus_with_at_least(u32::from(m)) >= 1,
        }
    }

    /// Applies `pod` on `gpus` to this state (no checks: see [`ClusterState::assume`]).
    fn take(&mut self, pod: &Pod, gpus: GpuSet) {
        self.cpu_free_milli -= pod.cpu_milli;
        self.memory_free_mib -= pod.memory_mib;
        let m = pod.gpu.milli_per_gpu() as u16;
        for i in gpus.iter() {
            self.gpu_free_milli[i] -= m;
        }
        self.pods += 1;
        if let Some(c) = gpu_class(pod.gpu) {
            self.pods_by_gpu_class[c] += 1;
        }
    }

    /// Returns `pod` on `gpus` to this state.
    fn give_back(&mut self, pod: &Pod, gpus: GpuSet) {
        self.cpu_free_milli += pod.cpu_milli;
        self.memory_free_mib += pod.memory_mib;
        let m = pod.gpu.milli_per_gpu() as u16;
        for i in gpus.iter() {
            self.gpu_free_milli[i] += m;
        }
        self.pods -= 1;
        if let Some(c) = gpu_class(pod.gpu) {
            self.pods_by_gpu_class[c] -= 1;
        }
    }
}

/// A node and its current state, as plugins see it.
#[derive(Clone, Copy, Debug)]
pub struct NodeInfo<'a> {
    /// Index of the node.
    pub id: NodeId,
    /// The node as configured (capacity, GPU model).
    pub node: &'a Node,
    /// What is free now.
    pub state: &'a NodeState,
}

/// Why [`ClusterState::assume`] refused a placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssumeError {
    /// The node id is out of range.
    #[error("node index {0} is out of range")]
    NoSuchNode(u32),
    /// Not enough CPU or memory.
    #[error("node {node:?} lacks {what}: {free} free, {asked} asked")]
    Insufficient {
        /// Node name.
        node: String,
        /// `"CPU (millicores)"` or `"memory (MiB)"`.
        what: &'static str,
        /// Free amount.
        free: u64,
        /// Asked amount.
        asked: u64,
    },
    /// The GPU set does not match the request, names a GPU the node lacks, or a GPU
    /// lacks the free milli-GPU.
    #[error("node {node:?}: GPUs {gpus:?} cannot hold {req}: {why}")]
    Gpus {
        /// Node name.
        node: String,
        /// The GPU set.
        gpus: GpuSet,
        /// The request.
        req: GpuRequest,
        /// What is wrong.
        why: &'static str,
    },
    /// The pod's GPU model constraint excludes the node.
    #[error("node {node:?} has a GPU model the pod does not allow")]
    Model {
        /// Node name.
        node: String,
    },
}

/// Free resources of every node of a cluster, and cluster-wide totals.
///
/// **Invariant:** no node's free CPU or memory and no GPU's free milli-GPU ever goes
/// below zero or above capacity: [`ClusterState::assume`] checks every placement and
/// refuses, leaving the state unchanged, rather than over-commit.
#[derive(Clone, Debug)]
pub struct ClusterState {
    cluster: std::sync::Arc<Cluster>,
    nodes: Vec<NodeState>,
    gpu_used_milli: u64,
    gpu_pods: u64,
}

impl ClusterState {
    /// An empty cluster.
    pub fn new(cluster: std::sync::Arc<Cluster>) -> Self {
        let nodes = cluster.nodes().iter().map(NodeState::empty).collect();
        ClusterState {
            cluster,
            nodes,
            gpu_used_milli: 0,
            gpu_pods: 0,
        }
    }

    /// The cluster this state belongs to.
    pub fn cluster(&self) -> &Cluster {
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

    /// Allocated milli-GPU over the cluster.
    pub fn gpu_used_milli(&self) -> u64 {
        self.gpu_used_milli
    }

    /// Placed pods that use a GPU.
    pub fn gpu_pods(&self) -> u64 {
        self.gpu_pods
    }

    /// Commits a placement after checking that it fits.
    ///
    /// # Errors
    /// [`AssumeError`] if the node lacks CPU, memory or GPU capacity, the GPU set does
    /// not match the request (a share on exactly one GPU, `n` whole GPUs on `n` distinct
    /// entirely free GPUs), the request is malformed ([`GpuRequest::is_valid`]), or
    /// the model is not allowed. The state is then unchanged.
    pub fn assume(&mut self, pod: &Pod, placement: Placement) -> Result<(), AssumeError> {
        let idx = placement.node.index();
        let node = self
            .cluster
            .nodes()
            .get(idx)
            .ok_or(AssumeError::NoSuchNode(placement.node.0))?;
        let st = &self.nodes[idx];
        let insufficient = |what, free, asked| AssumeError::Insufficient {
            node: node.name.clone(),
            what,
            free,
            asked,
        };
        if st.cpu_free_milli < pod.cpu_milli {
            return Err(insufficient(
                "CPU (millicores)",
                st.cpu_free_milli,
                pod.cpu_milli,
            ));
        }
        if st.memory_free_mib < pod.memory_mib {
            return Err(insufficient(
                "memory (MiB)",
                st.memory_free_mib,
                pod.memory_mib,
            ));
        }
        let gpu_err = |why| AssumeError::Gpus {
            node: node.name.clone(),
            gpus: placement.gpus,
            req: pod.gpu,
            why,
        };
        if !pod.gpu.is_valid() {
            return Err(gpu_err(
                "the request is malformed (whole GPUs must be 1..=8, a share 1..=999 milli)",
            ));
        }
        if placement.gpus.len() != usize::from(pod.gpu.gpu_count()) {
            return Err(gpu_err("the number of GPUs differs from the request"));
        }
        if pod.gpu != GpuRequest::None {
            match node.gpu_model() {
                Some(m) if pod.allows_model(m) => {}
                _ => {
                    return Err(AssumeError::Model {
                        node: node.name.clone(),
                    })
                }
            }
        }
        let m = pod.gpu.milli_per_gpu();
        for i in placement.gpus.iter() {
            if i >= usize::from(st.gpu_count) {
                return Err(gpu_err("names a GPU the node does not have"));
            }
            if u32::from(st.gpu_free_milli[i]) < m {
                return Err(gpu_err("a GPU lacks free milli-GPU"));
            }
        }
        self.nodes[idx].take(pod, placement.gpus);
        self.gpu_used_milli += u64::from(pod.gpu.total_milli());
        if pod.gpu != GpuRequest::None {
            self.gpu_pods += 1;
        }
        Ok(())
    }

    /// Removes a pod placed earlier by [`ClusterState::assume`] (a departure or a
    /// preemption victim).
    ///
    /// # Panics
    /// If the pod was not placed there: that is a bug in the caller, and going on would
    /// break the capacity invariant.
    pub fn forget(&mut self, pod: &Pod, placement: Placement) {
        let node = &self.cluster.nodes()[placement.node.index()];
        let st = &mut self.nodes[placement.node.index()];
        assert!(
            st.cpu_free_milli + pod.cpu_milli <= node.cpu_milli
                && st.memory_free_mib + pod.memory_mib <= node.memory_mib
                && placement.gpus.iter().all(|i| {
                    u32::from(st.gpu_free_milli[i]) + pod.gpu.milli_per_gpu() <= GPU_MILLI
                }),
            "forget() of a pod that is not on node {:?}",
            node.name
        );
        st.give_back(pod, placement.gpus);
        self.gpu_used_milli -= u64::from(pod.gpu.total_milli());
        if pod.gpu != GpuRequest::None {
            self.gpu_pods -= 1;
        }
    }
}

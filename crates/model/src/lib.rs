//! Plain data of the mlplane scheduling core: GPU models, nodes and pods.
//!
//! Every quantity carries its unit in its name:
//! - CPU in **millicores** (`cpu_milli`, 1000 = one core), as Kubernetes' `cpu: 1000m`;
//! - host memory in **MiB** (`memory_mib`), as Kubernetes' `memory: 1024Mi`;
//! - GPU compute in **milli-GPU** (`gpu_milli`, 1000 = one whole physical GPU), the unit
//!   of Alibaba's GPU-sharing trace and of the FGD paper
//!   (<https://www.usenix.org/conference/atc23/presentation/weng>);
//! - GPU memory in **MiB** (`memory_mib` of a [`GpuModel`]).
//!
//! This crate holds no behaviour beyond validation and small accessors: the scheduling
//! framework (`mlplane-sched`) keeps the mutable state, the policies
//! (`mlplane-policies`) decide. It does no I/O and has no dependencies.
//!
//! The types are shaped so that the next features fit without a rewrite: a
//! [`GpuRequest`] is an enum that will gain memory-share and MIG-profile variants,
//! [`NodeGpus`] will gain a sharing configuration (time-slicing replicas, MIG geometry),
//! and [`Pod`] already carries a priority and a tenant.

#![warn(missing_docs)]

use std::fmt;

/// Milli-GPU of one whole physical GPU.
pub const GPU_MILLI: u32 = 1000;

/// The most GPUs a node may have. Bounded so that per-node GPU state fits in a
/// fixed array; the Alibaba v2023 trace has at most 8 GPUs per node.
pub const MAX_GPUS_PER_NODE: usize = 16;

/// The most GPUs a pod may request as whole GPUs. The trace has 0..=8.
pub const MAX_GPUS_PER_POD: u8 = 8;

/// Index of a GPU model in a [`Cluster`]'s model table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GpuModelId(pub u16);

/// A GPU model known to the cluster (for example `V100M16`, `T4`, `A100-80GB`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuModel {
    /// Name as it appears in node labels and pod constraints, e.g. `T4`.
    pub name: String,
    /// Memory of one GPU in MiB, if known. The Alibaba trace hides it for `G1..G3`.
    pub memory_mib: Option<u64>,
}

/// The GPUs of one node: all of one model, as in the NVIDIA device plugin's view of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGpus {
    /// Model of every GPU of the node.
    pub model: GpuModelId,
    /// Number of physical GPUs, `1..=MAX_GPUS_PER_NODE`.
    pub count: u8,
}

/// A node as configured: its allocatable capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node name, unique within the cluster.
    pub name: String,
    /// Allocatable CPU in millicores.
    pub cpu_milli: u64,
    /// Allocatable memory in MiB.
    pub memory_mib: u64,
    /// GPUs, or `None` for a CPU-only node.
    pub gpus: Option<NodeGpus>,
}

impl Node {
    /// Number of physical GPUs (0 for a CPU-only node).
    pub fn gpu_count(&self) -> u8 {
        self.gpus.as_ref().map_or(0, |g| g.count)
    }

    /// GPU capacity in milli-GPU: `gpu_count * 1000`.
    pub fn gpu_milli(&self) -> u64 {
        u64::from(self.gpu_count()) * u64::from(GPU_MILLI)
    }

    /// GPU model, if the node has GPUs.
    pub fn gpu_model(&self) -> Option<GpuModelId> {
        self.gpus.as_ref().map(|g| g.model)
    }
}

/// What a pod asks of GPUs.
///
/// Matches the two request kinds of the Alibaba GPU-sharing trace: whole GPUs
/// (`num_gpu` = 1..8, `gpu_milli` = 1000) and a share of one GPU (`num_gpu` = 1,
/// `gpu_milli` = 1..999).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GpuRequest {
    /// No GPU: a CPU-only pod.
    None,
    /// `n` distinct whole physical GPUs, `1..=MAX_GPUS_PER_POD`.
    Whole(u8),
    /// A share of one GPU in milli-GPU, `1..=999`.
    Shared(u16),
}

impl GpuRequest {
    /// Builds a request from the trace's `(num_gpu, gpu_milli)` pair.
    ///
    /// # Errors
    /// [`ModelError::GpuRequest`] when the pair is not one the trace's format allows:
    /// `num_gpu` > 8, `gpu_milli` > 1000, a share (`gpu_milli` < 1000) of more than one
    /// GPU, or `num_gpu` ≥ 1 with `gpu_milli` = 0.
    pub fn from_trace(num_gpu: u32, gpu_milli: u32) -> Result<Self, ModelError> {
        let bad = |why: &'static str| ModelError::GpuRequest {
            num_gpu,
            gpu_milli,
            why,
        };
        match (num_gpu, gpu_milli) {
            (0, 0) => Ok(GpuRequest::None),
            (0, _) => Err(bad("gpu_milli must be 0 when num_gpu is 0")),
            (n, _) if n > u32::from(MAX_GPUS_PER_POD) => Err(bad("num_gpu must be at most 8")),
            (_, 0) => Err(bad("gpu_milli must be 1..=1000 when num_gpu >= 1")),
            (_, m) if m > GPU_MILLI => Err(bad("gpu_milli must be at most 1000")),
            (n, GPU_MILLI) => Ok(GpuRequest::Whole(n as u8)),
            (1, m) => Ok(GpuRequest::Shared(m as u16)),
            (_, _) => Err(bad("a GPU share (gpu_milli < 1000) needs num_gpu = 1")),
        }
    }

    /// True if the request is well formed: `Whole(n)` with `n` in `1..=MAX_GPUS_PER_POD`,
    /// `Shared(m)` with `m` in `1..=999`. [`GpuRequest::from_trace`] only builds valid
    /// requests; the scheduler refuses invalid ones.
    pub fn is_valid(self) -> bool {
        match self {
            GpuRequest::None => true,
            GpuRequest::Whole(n) => (1..=MAX_GPUS_PER_POD).contains(&n),
            GpuRequest::Shared(m) => m >= 1 && u32::from(m) < GPU_MILLI,
        }
    }

    /// Number of physical GPUs touched: 0, `n` or 1.
    pub fn gpu_count(self) -> u8 {
        match self {
            GpuRequest::None => 0,
            GpuRequest::Whole(n) => n,
            GpuRequest::Shared(_) => 1,
        }
    }

    /// Milli-GPU asked of each touched GPU: 0, 1000 or the share.
    pub fn milli_per_gpu(self) -> u32 {
        match self {
            GpuRequest::None => 0,
            GpuRequest::Whole(_) => GPU_MILLI,
            GpuRequest::Shared(m) => u32::from(m),
        }
    }

    /// Total milli-GPU: `gpu_count * milli_per_gpu`.
    pub fn total_milli(self) -> u32 {
        u32::from(self.gpu_count()) * self.milli_per_gpu()
    }

    /// True for a share of one GPU.
    pub fn is_shared(self) -> bool {
        matches!(self, GpuRequest::Shared(_))
    }
}

impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuRequest::None => write!(f, "no GPU"),
            GpuRequest::Whole(n) => write!(f, "{n} GPU"),
            GpuRequest::Shared(m) => write!(f, "{m}m of 1 GPU"),
        }
    }
}

/// A set of GPU models, as a bit set over [`GpuModelId`] (at most 64 models).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelSet(u64);

impl ModelSet {
    /// The most models a set can name.
    pub const CAPACITY: usize = 64;

    /// The empty set.
    pub fn empty() -> Self {
        ModelSet(0)
    }

    /// Adds a model.
    ///
    /// # Panics
    /// If `id.0 >= 64`; [`Cluster::new`] refuses more than 64 models, so ids that come
    /// from a cluster never panic.
    pub fn insert(&mut self, id: GpuModelId) {
        assert!(
            usize::from(id.0) < Self::CAPACITY,
            "GPU model id out of range"
        );
        self.0 |= 1 << id.0;
    }

    /// True if the set holds `id`.
    pub fn contains(self, id: GpuModelId) -> bool {
        usize::from(id.0) < Self::CAPACITY && self.0 & (1 << id.0) != 0
    }

    /// True if no model is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A pod as submitted: its requests and constraints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// CPU request in millicores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// GPU request.
    pub gpu: GpuRequest,
    /// GPU models the pod may run on; `None` means any model. A pod that names
    /// only models the cluster lacks has `Some(empty)` and fits nowhere.
    pub allowed_models: Option<ModelSet>,
    /// Priority, as a PriorityClass value (higher is more important). 0 by default.
    pub priority: i32,
    /// Tenant (team or namespace) the pod is accounted to, if any.
    pub tenant: Option<String>,
}

impl Pod {
    /// A pod with the given requests, any GPU model, priority 0 and no tenant.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64, gpu: GpuRequest) -> Self {
        Pod {
            name: name.into(),
            cpu_milli,
            memory_mib,
            gpu,
            allowed_models: None,
            priority: 0,
            tenant: None,
        }
    }

    /// True if the pod may run on GPUs of `model`.
    pub fn allows_model(&self, model: GpuModelId) -> bool {
        self.allowed_models.is_none_or(|s| s.contains(model))
    }
}

/// A cluster: its GPU model table and its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    models: Vec<GpuModel>,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Builds a cluster after checking it.
    ///
    /// # Errors
    /// [`ModelError`] if there are no nodes, more than 64 models, a duplicate model name,
    /// a node whose GPU model id is not in `models`, a node with 0 or more than
    /// [`MAX_GPUS_PER_NODE`] GPUs, or a duplicate node name.
    pub fn new(models: Vec<GpuModel>, nodes: Vec<Node>) -> Result<Self, ModelError> {
        if nodes.is_empty() {
            return Err(ModelError::EmptyCluster);
        }
        if models.len() > ModelSet::CAPACITY {
            return Err(ModelError::TooManyModels(models.len()));
        }
        let mut names = std::collections::HashSet::new();
        for m in &models {
            if !names.insert(m.name.as_str()) {
                return Err(ModelError::DuplicateModel(m.name.clone()));
            }
        }
        let mut node_names = std::collections::HashSet::new();
        for n in &nodes {
            if !node_names.insert(n.name.as_str()) {
                return Err(ModelError::DuplicateNode(n.name.clone()));
            }
            if let Some(g) = &n.gpus {
                if usize::from(g.model.0) >= models.len() {
                    return Err(ModelError::UnknownModelId {
                        node: n.name.clone(),
                        id: g.model.0,
                    });
                }
                if g.count == 0 || usize::from(g.count) > MAX_GPUS_PER_NODE {
                    return Err(ModelError::GpuCount {
                        node: n.name.clone(),
                        count: g.count,
                    });
                }
            }
        }
        Ok(Cluster { models, nodes })
    }

    /// The GPU model table.
    pub fn models(&self) -> &[GpuModel] {
        &self.models
    }

    /// The nodes, in the order given.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Looks a model up by name.
    pub fn model_id(&self, name: &str) -> Option<GpuModelId> {
        self.models
            .iter()
            .position(|m| m.name == name)
            .map(|i| GpuModelId(i as u16))
    }

    /// Name of a model.
    ///
    /// # Panics
    /// If `id` is not an id of this cluster.
    pub fn model_name(&self, id: GpuModelId) -> &str {
        &self.models[usize::from(id.0)].name
    }

    /// Total number of physical GPUs.
    pub fn gpu_count(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.gpu_count())).sum()
    }

    /// Total GPU capacity in milli-GPU.
    pub fn gpu_milli(&self) -> u64 {
        self.gpu_count() * u64::from(GPU_MILLI)
    }

    /// Resolves a list of model names into a [`ModelSet`]; names the cluster lacks are
    /// dropped (a pod asking only for them fits nowhere, as in the trace's semantics).
    pub fn model_set<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> ModelSet {
        let mut set = ModelSet::empty();
        for n in names {
            if let Some(id) = self.model_id(n) {
                set.insert(id);
            }
        }
        set
    }
}

/// Errors of building model values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The cluster has no nodes.
    EmptyCluster,
    /// More GPU models than a [`ModelSet`] can hold.
    TooManyModels(usize),
    /// A model name appears twice.
    DuplicateModel(String),
    /// A node name appears twice.
    DuplicateNode(String),
    /// A node refers to a model id outside the model table.
    UnknownModelId {
        /// Node name.
        node: String,
        /// The bad id.
        id: u16,
    },
    /// A node has 0 or too many GPUs.
    GpuCount {
        /// Node name.
        node: String,
        /// The bad count.
        count: u8,
    },
    /// A `(num_gpu, gpu_milli)` pair that is not a valid request.
    GpuRequest {
        /// Requested GPU count.
        num_gpu: u32,
        /// Requested milli-GPU per GPU.
        gpu_milli: u32,
        /// What was expected.
        why: &'static str,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::EmptyCluster => write!(f, "the cluster has no nodes"),
            ModelError::TooManyModels(n) => {
                write!(f, "{n} GPU models; at most {} are supported", ModelSet::CAPACITY)
            }
            ModelError::DuplicateModel(m) => write!(f, "GPU model {m:?} is listed twice"),
            ModelError::DuplicateNode(n) => write!(f, "node {n:?} is listed twice"),
            ModelError::UnknownModelId { node, id } => {
                write!(f, "node {node:?} refers to unknown GPU model id {id}")
            }
            ModelError::GpuCount { node, count } => write!(
                f,
                "node {node:?} has {count} GPUs; expected 1..={MAX_GPUS_PER_NODE} (or no GPU model for a CPU-only node)"
            ),
            ModelError::GpuRequest {
                num_gpu,
                gpu_milli,
                why,
            } => write!(f, "num_gpu={num_gpu}, gpu_milli={gpu_milli}: {why}"),
        }
    }
}

impl std::error::Error for ModelError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_request_from_trace_pairs() {
        assert_eq!(GpuRequest::from_trace(0, 0), Ok(GpuRequest::None));
        assert_eq!(GpuRequest::from_trace(1, 1000), Ok(GpuRequest::Whole(1)));
        assert_eq!(GpuRequest::from_trace(8, 1000), Ok(GpuRequest::Whole(8)));
        assert_eq!(GpuRequest::from_trace(1, 470), Ok(GpuRequest::Shared(470)));
        assert!(GpuRequest::from_trace(2, 500).is_err());
        assert!(GpuRequest::from_trace(9, 1000).is_err());
        assert!(GpuRequest::from_trace(1, 1001).is_err());
        assert!(GpuRequest::from_trace(1, 0).is_err());
        assert!(GpuRequest::from_trace(0, 5).is_err());
        for (n, m) in [(0, 0), (1, 1000), (8, 1000), (1, 1), (1, 999)] {
            assert!(GpuRequest::from_trace(n, m).unwrap().is_valid());
        }
        assert!(!GpuRequest::Whole(0).is_valid());
        assert!(!GpuRequest::Whole(9).is_valid());
        assert!(!GpuRequest::Shared(0).is_valid());
        assert!(!GpuRequest::Shared(1000).is_valid());
    }

    #[test]
    fn gpu_request_totals() {
        assert_eq!(GpuRequest::Whole(4).total_milli(), 4000);
        assert_eq!(GpuRequest::Shared(250).total_milli(), 250);
        assert_eq!(GpuRequest::None.total_milli(), 0);
        assert_eq!(GpuRequest::Shared(250).gpu_count(), 1);
    }

    #[test]
    fn model_set_membership() {
        let mut s = ModelSet::empty();
        assert!(s.is_empty());
        s.insert(GpuModelId(3));
        assert!(s.contains(GpuModelId(3)));
        assert!(!s.contains(GpuModelId(2)));
        assert!(!s.contains(GpuModelId(200)));
    }

    #[test]
    fn cluster_rejects_bad_input() {
        assert_eq!(Cluster::new(vec![], vec![]), Err(ModelError::EmptyCluster));
        let node = |name: &str, model: u16, count: u8| Node {
            name: name.into(),
            cpu_milli: 1000,
            memory_mib: 1024,
            gpus: Some(NodeGpus {
                model: GpuModelId(model),
                count,
            }),
        };
        let t4 = GpuModel {
            name: "T4".into(),
            memory_mib: Some(15109),
        };
        assert!(matches!(
            Cluster::new(vec![t4.clone()], vec![node("a", 1, 1)]),
            Err(ModelError::UnknownModelId { .. })
        ));
        assert!(matches!(
            Cluster::new(vec![t4.clone()], vec![node("a", 0, 0)]),
            Err(ModelError::GpuCount { .. })
        ));
        assert!(matches!(
            Cluster::new(vec![t4.clone()], vec![node("a", 0, 1), node("a", 0, 1)]),
            Err(ModelError::DuplicateNode(_))
        ));
        let c = Cluster::new(vec![t4], vec![node("a", 0, 2), node("b", 0, 4)]).unwrap();
        assert_eq!(c.gpu_count(), 6);
        assert_eq!(c.gpu_milli(), 6000);
        assert_eq!(c.model_id("T4"), Some(GpuModelId(0)));
        assert!(c.model_set(["T4", "A100"]).contains(GpuModelId(0)));
    }
}

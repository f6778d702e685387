//! Plain data of the mlplane scheduling core: GPU models, devices, nodes and pods.
//!
//! Every quantity carries its unit in its name:
//! - CPU in **millicores** (`cpu_milli`, 1000 = one core), as Kubernetes' `cpu: 1000m`;
//! - host memory in **MiB** (`memory_mib`), as Kubernetes' `memory: 1024Mi`;
//! - GPU compute in **milli-GPU** (`compute_milli`, `Milli(m)`, 1000 = one whole
//!   physical GPU), the unit of Alibaba's GPU-sharing trace and of the FGD paper
//!   (<https://www.usenix.org/conference/atc23/presentation/weng>);
//! - GPU memory in **MiB** (`memory_mib` of a [`Device`] or [`GpuModel`]).
//!
//! One vocabulary for every scheduler of the workspace: a [`Node`] has CPU, memory, a
//! pod limit, labels, taints and a list of [`Device`]s (whole GPUs, MIG instances,
//! each [`Sharing::Exclusive`], [`Sharing::Fractional`] as in the FGD paper,
//! time-sliced or MPS); a [`Pod`] has an id, CPU, memory, a [`GpuRequest`], allowed GPU
//! models, priority, tenant, tolerations, a node selector and required node affinity.
//!
//! This crate holds no behaviour beyond validation, Kubernetes' matching rules for
//! taints and selectors, and small accessors: the scheduling framework
//! (`mlplane-sched`) keeps the mutable state, the policies (`mlplane-policies`) decide.
//! It does no I/O, has no dependencies, and its types derive no serialisation: the
//! edges (CSV loader, Kubernetes translation) own their formats.

#![warn(missing_docs)]

pub mod constraints;
pub mod device;
pub mod throttle;

use std::collections::BTreeMap;
use std::fmt;

pub use constraints::{
    RequiredAffinity, SelectorOperator, SelectorRequirement, SelectorTerm, Taint, TaintEffect,
    Toleration, TolerationOperator,
};
pub use device::{
    Device, MigInstance, ResourceId, Sharing, COMPUTE_RESOURCE, GPU_RESOURCE, MAX_REPLICAS,
    MEMORY_RESOURCE,
};

/// Milli-GPU of one whole physical GPU.
pub const GPU_MILLI: u32 = 1000;

/// The most GPUs a node may have. Bounded so that per-node GPU state fits in a
/// fixed array; the Alibaba v2023 trace has at most 8 GPUs per node.
pub const MAX_GPUS_PER_NODE: usize = 16;

/// The most devices a pod may request at once. The trace has 0..=8.
pub const MAX_GPUS_PER_POD: u8 = 8;

/// The pod limit of a node when none is given: kubelet's default `maxPods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

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

/// A node as configured: its allocatable capacity, constraints and devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node name, unique within the cluster.
    pub name: String,
    /// Allocatable CPU in millicores.
    pub cpu_milli: u64,
    /// Allocatable memory in MiB.
    pub memory_mib: u64,
    /// Most pods the node runs (kubelet's `maxPods`).
    pub max_pods: u32,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// Allocatable extended resources that are not devices (`example.com/foo: 4`), as
    /// (resource, amount); each resource at most once.
    pub extended: Vec<(ResourceId, u64)>,
    /// Model of the node's GPUs (one model per node, as the device plugin sees it).
    pub gpu_model: Option<GpuModelId>,
    /// The devices, in device-table order. Physical GPU indices run from 0 to
    /// [`Node::gpu_count`]` - 1`.
    pub devices: Vec<Device>,
}

impl Node {
    /// A CPU-only node with kubelet's default pod limit, no labels, taints or devices.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64) -> Self {
        Node {
            name: name.into(),
            cpu_milli,
            memory_mib,
            max_pods: DEFAULT_MAX_PODS,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            extended: Vec::new(),
            gpu_model: None,
            devices: Vec::new(),
        }
    }

    /// This node with `count` GPUs of `model`, each a [`Sharing::Fractional`] device of
    /// `memory_mib` (the FGD paper's GPUs, shared in milli-GPU).
    pub fn with_gpus(mut self, model: GpuModelId, count: u8, memory_mib: u64) -> Self {
        self.gpu_model = Some(model);
        self.devices = (0..count)
            .map(|i| Device::fractional(i, memory_mib))
            .collect();
        self
    }

    /// This node with the given devices of `model`.
    pub fn with_devices(mut self, model: GpuModelId, devices: Vec<Device>) -> Self {
        self.gpu_model = Some(model);
        self.devices = devices;
        self
    }

    /// This node with a pod limit.
    pub fn with_max_pods(mut self, max_pods: u32) -> Self {
        self.max_pods = max_pods;
        self
    }

    /// Number of physical GPUs: one more than the highest GPU index of a device (0 for
    /// a CPU-only node).
    pub fn gpu_count(&self) -> u8 {
        self.devices.iter().map(|d| d.gpu + 1).max().unwrap_or(0)
    }

    /// GPU capacity in milli-GPU: `gpu_count * 1000`.
    pub fn gpu_milli(&self) -> u64 {
        u64::from(self.gpu_count()) * u64::from(GPU_MILLI)
    }

    /// GPU model, if the node has GPUs.
    pub fn gpu_model(&self) -> Option<GpuModelId> {
        if self.devices.is_empty() {
            None
        } else {
            self.gpu_model
        }
    }

    /// Total GPU memory of the devices, MiB.
    pub fn gpu_memory_mib(&self) -> u64 {
        self.devices.iter().map(|d| d.memory_mib).sum()
    }
}

/// What a pod asks of GPUs.
///
/// The first three are the request kinds of the Alibaba GPU-sharing trace and the FGD
/// paper (`num_gpu` whole GPUs, or a milli-GPU share of one); the last two are what
/// sharing adds: a memory share (`mlplane.io/gpu-memory` in MiB, with an optional
/// `mlplane.io/gpu-compute` in milli-GPU) and a count of a named device resource.
/// What each costs on each [`Sharing`] mode is `mlplane-sched`'s `charge` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GpuRequest {
    /// No GPU: a CPU-only pod.
    None,
    /// `nvidia.com/gpu: n`, `1..=MAX_GPUS_PER_POD`: `n` distinct physical GPUs (one
    /// replica, on a time-sliced node, when `n` is 1).
    Whole(u8),
    /// A share of one GPU in milli-GPU, `1..=999` (the trace's `gpu_milli`).
    Milli(u16),
    /// A memory share of one shared device, MiB (at least 1), with a compute share in
    /// milli-GPU (0 = none asked).
    Memory {
        /// GPU memory in MiB.
        mib: u64,
        /// Compute in milli-GPU, `0..=1000`.
        compute_milli: u32,
    },
    /// `count` units of a named device resource other than `nvidia.com/gpu`
    /// (`nvidia.com/mig-1g.10gb: 1`, a renamed shared resource `nvidia.com/gpu.shared: 1`).
    Devices {
        /// The resource.
        resource: ResourceId,
        /// How many, `1..=MAX_GPUS_PER_POD`.
        count: u8,
    },
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
            (1, m) => Ok(GpuRequest::Milli(m as u16)),
            (_, _) => Err(bad("a GPU share (gpu_milli < 1000) needs num_gpu = 1")),
        }
    }

    /// True if the request is well formed: counts in `1..=MAX_GPUS_PER_POD`, a milli
    /// share in `1..=999`, a memory share of at least 1 MiB with compute `0..=1000`,
    /// and `Devices` not naming `nvidia.com/gpu` (that is `Whole`).
    /// [`GpuRequest::from_trace`] only builds valid requests; the scheduler refuses
    /// invalid ones.
    pub fn is_valid(self) -> bool {
        match self {
            GpuRequest::None => true,
            GpuRequest::Whole(n) => (1..=MAX_GPUS_PER_POD).contains(&n),
            GpuRequest::Milli(m) => m >= 1 && u32::from(m) < GPU_MILLI,
            GpuRequest::Memory { mib, compute_milli } => mib >= 1 && compute_milli <= GPU_MILLI,
            GpuRequest::Devices { resource, count } => {
                resource != ResourceId::GPU && (1..=MAX_GPUS_PER_POD).contains(&count)
            }
        }
    }

    /// Number of devices touched: 0, `n`, or 1 for a share.
    pub fn gpu_count(self) -> u8 {
        match self {
            GpuRequest::None => 0,
            GpuRequest::Whole(n) => n,
            GpuRequest::Milli(_) | GpuRequest::Memory { .. } => 1,
            GpuRequest::Devices { count, .. } => count,
        }
    }

    /// Milli-GPU asked of each touched GPU, as the FGD paper's policies count it: 0,
    /// 1000 for whole devices, the share, or a memory share's compute.
    pub fn milli_per_gpu(self) -> u32 {
        match self {
            GpuRequest::None => 0,
            GpuRequest::Whole(_) | GpuRequest::Devices { .. } => GPU_MILLI,
            GpuRequest::Milli(m) => u32::from(m),
            GpuRequest::Memory { compute_milli, .. } => compute_milli,
        }
    }

    /// Total milli-GPU: `gpu_count * milli_per_gpu`.
    pub fn total_milli(self) -> u32 {
        u32::from(self.gpu_count()) * self.milli_per_gpu()
    }

    /// True for a share of one device (milli or memory).
    pub fn is_shared(self) -> bool {
        matches!(self, GpuRequest::Milli(_) | GpuRequest::Memory { .. })
    }

    /// The device resource a count request asks for: `nvidia.com/gpu` for `Whole`.
    pub fn resource(self) -> Option<ResourceId> {
        match self {
            GpuRequest::Whole(_) => Some(ResourceId::GPU),
            GpuRequest::Devices { resource, .. } => Some(resource),
            _ => None,
        }
    }
}

impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuRequest::None => write!(f, "no GPU"),
            GpuRequest::Whole(n) => write!(f, "{n} GPU"),
            GpuRequest::Milli(m) => write!(f, "{m}m of 1 GPU"),
            GpuRequest::Memory { mib, compute_milli } => {
                write!(f, "{mib} MiB / {compute_milli}m of 1 GPU")
            }
            GpuRequest::Devices { resource, count } => {
                write!(f, "{count} of resource #{}", resource.0)
            }
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

/// A pod's identity in the scheduling core, unique within a process: the key of its
/// grants in the cluster state. The Kubernetes edge maps pod UIDs to ids; the simulator
/// gives every arrival a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodId(pub u64);

static NEXT_POD_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl PodId {
    /// An id no other call of `fresh` in this process returns.
    pub fn fresh() -> Self {
        PodId(NEXT_POD_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// A pod as submitted: its requests and constraints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Identity (see [`PodId`]).
    pub id: PodId,
    /// Pod name.
    pub name: String,
    /// CPU request in millicores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// GPU request.
    pub gpu: GpuRequest,
    /// Extended resources asked that are not devices, as (resource, amount); matched
    /// against [`Node::extended`] by NodeResourcesFit.
    pub extended: Vec<(ResourceId, u64)>,
    /// GPU models the pod may run on; `None` means any model. A pod that names
    /// only models the cluster lacks has `Some(empty)` and fits nowhere.
    pub allowed_models: Option<ModelSet>,
    /// Priority, as a PriorityClass value (higher is more important). 0 by default.
    pub priority: i32,
    /// Whether the pod may preempt lower-priority pods (its PriorityClass's
    /// `preemptionPolicy`).
    pub preemption_policy: PreemptionPolicy,
    /// Tenant (team or namespace) the pod is accounted to, if any.
    pub tenant: Option<String>,
    /// Namespace (`default` unless given).
    pub namespace: String,
    /// Pod labels (throttles select pods by them).
    pub labels: BTreeMap<String, String>,
    /// When the pod was created, seconds from an epoch of the caller's choice (the
    /// queue orders equal priorities by it).
    pub created_s: u64,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// `spec.nodeSelector`: every label must be set to the value.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity, if any.
    pub affinity: Option<RequiredAffinity>,
}

impl Pod {
    /// A pod with a fresh id and the given requests: any GPU model, priority 0, no
    /// tenant, no constraints.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_mib: u64, gpu: GpuRequest) -> Self {
        Pod {
            id: PodId::fresh(),
            name: name.into(),
            cpu_milli,
            memory_mib,
            gpu,
            extended: Vec::new(),
            allowed_models: None,
            priority: 0,
            preemption_policy: PreemptionPolicy::PreemptLowerPriority,
            tenant: None,
            namespace: "default".to_string(),
            labels: BTreeMap::new(),
            created_s: 0,
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
            affinity: None,
        }
    }

    /// The same pod under a fresh id (another arrival of the same request).
    pub fn renewed(&self) -> Self {
        Pod {
            id: PodId::fresh(),
            ..self.clone()
        }
    }

    /// What placing the pod depends on: its requests and constraints, without its
    /// identity, name, tenant, priority or creation time. Two pods of one shape fit
    /// and score alike on every node, so the scheduler keys its per-node caches by it.
    pub fn shape(&self) -> PodShape {
        PodShape {
            cpu_milli: self.cpu_milli,
            memory_mib: self.memory_mib,
            gpu: self.gpu,
            extended: self.extended.clone(),
            allowed_models: self.allowed_models,
            tolerations: self.tolerations.clone(),
            node_selector: self.node_selector.clone(),
            affinity: self.affinity.clone(),
        }
    }

    /// True if the pod may run on GPUs of `model`.
    pub fn allows_model(&self, model: GpuModelId) -> bool {
        self.allowed_models.is_none_or(|s| s.contains(model))
    }
}

/// A PriorityClass's `preemptionPolicy`
/// (<https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/#non-preempting-priority-class>).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PreemptionPolicy {
    /// The pod may preempt pods of lower priority (Kubernetes' default).
    #[default]
    PreemptLowerPriority,
    /// The pod waits; it never preempts (it is still placed ahead of lower priorities
    /// in the queue).
    Never,
}

/// A named priority value, as a Kubernetes `PriorityClass`
/// (<https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/>).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityClass {
    /// Name, e.g. `high`.
    pub name: String,
    /// Value: higher is more important.
    pub value: i32,
    /// Whether pods of the class preempt.
    pub preemption_policy: PreemptionPolicy,
    /// The class of pods that name none (at most one class of a set).
    pub global_default: bool,
}

/// A set of priority classes by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriorityClasses {
    classes: Vec<PriorityClass>,
}

impl PriorityClasses {
    /// The classes, checked.
    ///
    /// # Errors
    /// [`ModelError::PriorityClass`] for an empty or repeated name, or more than one
    /// global default.
    pub fn new(classes: Vec<PriorityClass>) -> Result<Self, ModelError> {
        let bad = |why: String| Err(ModelError::PriorityClass(why));
        for (k, c) in classes.iter().enumerate() {
            if c.name.is_empty() {
                return bad(format!("class {k} has no name"));
            }
            if classes[..k].iter().any(|d| d.name == c.name) {
                return bad(format!("{:?} is listed twice", c.name));
            }
        }
        if classes.iter().filter(|c| c.global_default).count() > 1 {
            return bad("more than one class is globalDefault".into());
        }
        Ok(PriorityClasses { classes })
    }

    /// The class named `name`.
    pub fn get(&self, name: &str) -> Option<&PriorityClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Gives `pod` the priority and preemption policy of class `name` (`None`: the
    /// global default class, or priority 0 and `PreemptLowerPriority` without one, as
    /// Kubernetes' Priority admission plugin does).
    ///
    /// # Errors
    /// [`ModelError::PriorityClass`] naming an unknown class.
    pub fn apply(&self, pod: &mut Pod, name: Option<&str>) -> Result<(), ModelError> {
        let class = match name {
            Some(n) => Some(self.get(n).ok_or_else(|| {
                ModelError::PriorityClass(format!("no priority class named {n:?}"))
            })?),
            None => self.classes.iter().find(|c| c.global_default),
        };
        pod.priority = class.map_or(0, |c| c.value);
        pod.preemption_policy = class.map_or(PreemptionPolicy::default(), |c| c.preemption_policy);
        Ok(())
    }
}

/// The placement-relevant part of a [`Pod`] ([`Pod::shape`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodShape {
    /// CPU request in millicores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// GPU request.
    pub gpu: GpuRequest,
    /// Extended resources.
    pub extended: Vec<(ResourceId, u64)>,
    /// Allowed GPU models.
    pub allowed_models: Option<ModelSet>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Node selector.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity.
    pub affinity: Option<RequiredAffinity>,
}

/// A cluster: its GPU model table, its resource names and its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    models: Vec<GpuModel>,
    resources: Vec<String>,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Builds a cluster after checking it, with `nvidia.com/gpu` as the only resource
    /// name.
    ///
    /// # Errors
    /// As [`Cluster::with_resources`].
    pub fn new(models: Vec<GpuModel>, nodes: Vec<Node>) -> Result<Self, ModelError> {
        Self::with_resources(models, vec![GPU_RESOURCE.to_string()], nodes)
    }

    /// Builds a cluster after checking it; `resources[i]` is the name of
    /// `ResourceId(i)` and `resources[0]` must be `nvidia.com/gpu`.
    ///
    /// # Errors
    /// [`ModelError`] if there are no nodes, more than 64 models, a duplicate model,
    /// node or resource name, a resource table not starting with `nvidia.com/gpu`, a
    /// node whose GPU model id is not in `models`, devices without a model, more than
    /// [`MAX_GPUS_PER_NODE`] GPUs, a device naming an unknown resource, a replica count
    /// outside `2..=MAX_REPLICAS`, or an extended resource listed twice on a node.
    pub fn with_resources(
        models: Vec<GpuModel>,
        resources: Vec<String>,
        nodes: Vec<Node>,
    ) -> Result<Self, ModelError> {
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
        if resources.first().map(String::as_str) != Some(GPU_RESOURCE) {
            return Err(ModelError::Resources(
                "the first resource name must be nvidia.com/gpu".into(),
            ));
        }
        let mut rnames = std::collections::HashSet::new();
        for r in &resources {
            if !rnames.insert(r.as_str()) {
                return Err(ModelError::Resources(format!("{r:?} is listed twice")));
            }
        }
        let mut node_names = std::collections::HashSet::new();
        for n in &nodes {
            let bad = |why: String| ModelError::Node {
                node: n.name.clone(),
                why,
            };
            if !node_names.insert(n.name.as_str()) {
                return Err(ModelError::DuplicateNode(n.name.clone()));
            }
            if let Some(m) = n.gpu_model {
                if usize::from(m.0) >= models.len() {
                    return Err(ModelError::UnknownModelId {
                        node: n.name.clone(),
                        id: m.0,
                    });
                }
            } else if !n.devices.is_empty() {
                return Err(bad("has devices but no GPU model".into()));
            }
            for d in &n.devices {
                if usize::from(d.gpu) >= MAX_GPUS_PER_NODE {
                    return Err(ModelError::GpuCount {
                        node: n.name.clone(),
                        count: d.gpu.saturating_add(1),
                    });
                }
                if usize::from(d.resource.0) >= resources.len() {
                    return Err(bad(format!(
                        "a device names unknown resource #{}",
                        d.resource.0
                    )));
                }
                if let Some(r) = d.sharing.replicas() {
                    if d.sharing.is_replicated() && !(2..=MAX_REPLICAS).contains(&r) {
                        return Err(bad(format!(
                            "a device has {r} replicas; expected 2..={MAX_REPLICAS}"
                        )));
                    }
                }
            }
            for (k, (r, _)) in n.extended.iter().enumerate() {
                if usize::from(r.0) >= resources.len() {
                    return Err(bad(format!("extended resource #{} is unknown", r.0)));
                }
                if n.extended[..k].iter().any(|(q, _)| q == r) {
                    return Err(bad(format!(
                        "extended resource {} is listed twice",
                        resources[usize::from(r.0)]
                    )));
                }
            }
        }
        Ok(Cluster {
            models,
            resources,
            nodes,
        })
    }

    /// The GPU model table.
    pub fn models(&self) -> &[GpuModel] {
        &self.models
    }

    /// The nodes, in the order given.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The resource names, `resources()[id.0]` for each [`ResourceId`].
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The name of a resource.
    ///
    /// # Panics
    /// If `id` is not an id of this cluster.
    pub fn resource_name(&self, id: ResourceId) -> &str {
        &self.resources[usize::from(id.0)]
    }

    /// Looks a resource up by name.
    pub fn resource_id(&self, name: &str) -> Option<ResourceId> {
        self.resources
            .iter()
            .position(|r| r == name)
            .map(|i| ResourceId(i as u16))
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

    /// Total GPU memory of every device, MiB.
    pub fn gpu_memory_mib(&self) -> u64 {
        self.nodes.iter().map(Node::gpu_memory_mib).sum()
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
    /// The resource name table is malformed.
    Resources(String),
    /// A priority class set is malformed, or a pod names an unknown class.
    PriorityClass(String),
    /// A node is malformed.
    Node {
        /// Node name.
        node: String,
        /// What is wrong.
        why: String,
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
            ModelError::Resources(why) => write!(f, "resource names: {why}"),
            ModelError::PriorityClass(why) => write!(f, "priority classes: {why}"),
            ModelError::Node { node, why } => write!(f, "node {node:?} {why}"),
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
    #[test]
    fn priority_classes_set_priority_and_policy() {
        let class = |name: &str, value, policy, global_default| PriorityClass {
            name: name.into(),
            value,
            preemption_policy: policy,
            global_default,
        };
        use PreemptionPolicy::*;
        let pcs = PriorityClasses::new(vec![
            class("high", 1000, PreemptLowerPriority, false),
            class("low", 100, PreemptLowerPriority, true),
            class("low-cpu", 50, Never, false),
        ])
        .unwrap();
        let mut p = Pod::new("p", 1, 1, GpuRequest::None);
        pcs.apply(&mut p, Some("low-cpu")).unwrap();
        assert_eq!((p.priority, p.preemption_policy), (50, Never));
        pcs.apply(&mut p, None).unwrap();
        assert_eq!(
            (p.priority, p.preemption_policy),
            (100, PreemptLowerPriority),
            "the global default"
        );
        assert!(pcs.apply(&mut p, Some("nope")).is_err());
        assert_eq!(PriorityClasses::default().apply(&mut p, None), Ok(()));
        assert_eq!(p.priority, 0, "no classes, no default: priority 0");
        assert!(
            PriorityClasses::new(vec![class("a", 1, Never, true), class("b", 2, Never, true)])
                .is_err()
        );
        assert!(PriorityClasses::new(vec![
            class("a", 1, Never, false),
            class("a", 2, Never, false)
        ])
        .is_err());
    }

    use super::*;

    #[test]
    fn gpu_request_from_trace_pairs() {
        assert_eq!(GpuRequest::from_trace(0, 0), Ok(GpuRequest::None));
        assert_eq!(GpuRequest::from_trace(1, 1000), Ok(GpuRequest::Whole(1)));
        assert_eq!(GpuRequest::from_trace(8, 1000), Ok(GpuRequest::Whole(8)));
        assert_eq!(GpuRequest::from_trace(1, 470), Ok(GpuRequest::Milli(470)));
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
        assert!(!GpuRequest::Milli(0).is_valid());
        assert!(!GpuRequest::Milli(1000).is_valid());
    }

    #[test]
    fn gpu_request_totals() {
        assert_eq!(GpuRequest::Whole(4).total_milli(), 4000);
        assert_eq!(GpuRequest::Milli(250).total_milli(), 250);
        assert_eq!(GpuRequest::None.total_milli(), 0);
        assert_eq!(GpuRequest::Milli(250).gpu_count(), 1);
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
        let node = |name: &str, model: u16, count: u8| {
            Node::new(name, 1000, 1024).with_gpus(GpuModelId(model), count, 15109)
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
            Cluster::new(vec![t4.clone()], vec![node("a", 0, 17)]),
            Err(ModelError::GpuCount { .. })
        ));
        let mut no_model = node("a", 0, 1);
        no_model.gpu_model = None;
        assert!(matches!(
            Cluster::new(vec![t4.clone()], vec![no_model]),
            Err(ModelError::Node { .. })
        ));
        let mut two_replicas_short = node("a", 0, 1);
        two_replicas_short.devices[0].sharing = Sharing::TimeSliced {
            replicas: 1,
            fail_multi: false,
        };
        assert!(matches!(
            Cluster::new(vec![t4.clone()], vec![two_replicas_short]),
            Err(ModelError::Node { .. })
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

//! GPU sharing in the mlplane scheduling core.
//!
//! Kubernetes counts GPUs as integers; sharing makes "one GPU" mean something else per
//! node: a time-slicing replica, an MPS slot, a MIG instance, or a memory share. This
//! crate reasons in real units (MiB of GPU memory, milli-GPU of compute) per physical
//! device:
//!
//! - [`catalog`]: GPU models with their memory and MIG profiles (NVIDIA's MIG user
//!   guide), and the MIG geometry solver;
//! - [`config`]: node sharing in the device plugin's and mig-parted's terms, resolved
//!   to a [`Plan`] (the device table of every node);
//! - [`state`]: per-device accounting ([`state::ShareState::assume`] refuses anything
//!   that would over-commit memory, compute, replicas or an instance);
//! - [`sched`]: placement (node, physical GPU, MIG instance, replica) with the policies
//!   of the simulator issue carried over, FGD among them;
//! - [`advisor`]: proposes a mig-parted geometry for a node pool and a workload.
//!
//! No I/O: the configuration is parsed from text the caller read.

#![warn(missing_docs)]

pub mod advisor;
pub mod catalog;
pub mod config;
pub mod sched;
pub mod state;

use catalog::Catalog;

/// Our own extended resource for a memory share, in MiB: `mlplane.io/gpu-memory: 12288`.
pub const MEMORY_RESOURCE: &str = "mlplane.io/gpu-memory";
/// Our own extended resource for a compute share, in milli-GPU: `mlplane.io/gpu-compute: 300`.
pub const COMPUTE_RESOURCE: &str = "mlplane.io/gpu-compute";

/// An interned extended-resource name (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`,
/// `nvidia.com/gpu.shared`); index into [`Plan::resource_name`]. `ResourceId(0)` is
/// always `nvidia.com/gpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub u16);

/// How a device is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareMode {
    /// One container at a time (a whole GPU or an unshared MIG instance).
    Exclusive,
    /// Time-slicing: `replicas` containers, no memory isolation; mlplane keeps the
    /// memory shares apart by accounting.
    TimeSliced,
    /// MPS: `replicas` containers with equal memory and compute limits.
    Mps,
}

/// One schedulable device of a node: a whole GPU or a MIG instance, possibly shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Physical GPU index on the node.
    pub gpu: u8,
    /// For a MIG instance: (profile index into the model's `mig_profiles`, first
    /// memory slice).
    pub mig: Option<(u16, u8)>,
    /// The extended resource the device plugin advertises it under.
    pub resource: ResourceId,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Compute in milli-GPU (1000 = a whole GPU).
    pub compute_milli: u32,
    /// Replicas advertised (1 if not shared).
    pub replicas: u16,
    /// How it is shared.
    pub mode: ShareMode,
    /// Requests for more than one replica of this resource are refused
    /// (`failRequestsGreaterThanOne`, always for MPS).
    pub fail_multi: bool,
}

impl Device {
    /// True if more than one container may use it.
    pub fn is_shared(&self) -> bool {
        self.replicas > 1
    }

    /// Memory and compute one replica is charged when asked for by count
    /// (`nvidia.com/gpu: 1` on a shared device): the device's divided by the replicas;
    /// the whole device when exclusive.
    pub fn replica_share(&self) -> (u64, u32) {
        let r = u64::from(self.replicas.max(1));
        (
            self.memory_mib / r,
            self.compute_milli / u32::from(self.replicas.max(1)),
        )
    }
}

/// The device table of every node of a cluster, and the resource names.
#[derive(Clone, Debug)]
pub struct Plan {
    catalog: Catalog,
    resources: Vec<String>,
    nodes: Vec<Vec<Device>>,
}

impl Plan {
    /// An empty plan over `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Plan {
            catalog,
            resources: vec!["nvidia.com/gpu".to_string()],
            nodes: Vec::new(),
        }
    }

    /// A plan in which every node's GPUs are whole and unshared.
    ///
    /// # Errors
    /// A GPU model missing from the built-in catalogue.
    pub fn whole(cluster: &mlplane_model::Cluster) -> Result<Self, config::ConfigError> {
        config::SharingConfig::default().resolve(cluster)
    }

    /// The id of resource `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> ResourceId {
        if let Some(i) = self.resources.iter().position(|r| r == name) {
            return ResourceId(i as u16);
        }
        self.resources.push(name.to_string());
        ResourceId((self.resources.len() - 1) as u16)
    }

    /// The id of resource `name`, if any node advertises it.
    pub fn resource(&self, name: &str) -> Option<ResourceId> {
        self.resources
            .iter()
            .position(|r| r == name)
            .map(|i| ResourceId(i as u16))
    }

    /// The name of a resource id.
    ///
    /// # Panics
    /// If the id does not come from this plan.
    pub fn resource_name(&self, id: ResourceId) -> &str {
        &self.resources[usize::from(id.0)]
    }

    /// Appends a node's device table.
    pub fn push_node(&mut self, devices: Vec<Device>) {
        self.nodes.push(devices);
    }

    /// The devices of node `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn devices(&self, i: usize) -> &[Device] {
        &self.nodes[i]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The catalogue the plan was resolved with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The device-plugin-style ID of a device and replica, which a device plugin would
    /// hand out: `gpu3`, `gpu3::1` (time-slicing replica 1, the plugin's `::N`
    /// suffix), `gpu3/mig-1g.10gb@2` (MIG instance starting at memory slice 2),
    /// `gpu3/mig-1g.10gb@2::0`.
    pub fn device_id(&self, model: &str, device: &Device, replica: u16) -> String {
        let mut s = format!("gpu{}", device.gpu);
        if let Some((p, start)) = device.mig {
            let name = self
                .catalog
                .get(model)
                .and_then(|spec| spec.mig_profiles.get(usize::from(p)))
                .map_or("?", |p| p.name.as_str());
            s += &format!("/mig-{name}@{start}");
        }
        if device.is_shared() {
            s += &format!("::{replica}");
        }
        s
    }
}

/// What a pod asks of GPUs, in the resources the scheduler understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShareRequest {
    /// No GPU.
    None,
    /// `count` units of an extended resource the device plugin advertises:
    /// `nvidia.com/gpu: 2` (two whole GPUs, or replicas on a time-sliced node, or
    /// instances under the `single` MIG strategy), `nvidia.com/mig-1g.10gb: 1`.
    Devices {
        /// The resource.
        resource: ResourceId,
        /// How many, `1..=8`.
        count: u8,
    },
    /// A memory share of one shared device (`mlplane.io/gpu-memory`, MiB) with an
    /// optional compute share (`mlplane.io/gpu-compute`, milli-GPU; 0 = none asked).
    Memory {
        /// GPU memory in MiB.
        mib: u64,
        /// Compute in milli-GPU.
        compute_milli: u32,
    },
}

/// A pod for the sharing scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharePod {
    /// Name.
    pub name: String,
    /// CPU request in millicores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// GPU request.
    pub gpu: ShareRequest,
}

/// One device handed to a pod: which device of the node, which replica, and what it is
/// charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Index into the node's device table.
    pub device: u16,
    /// Replica index on the device (0 for an exclusive device).
    pub replica: u16,
    /// GPU memory charged, MiB.
    pub memory_mib: u64,
    /// Compute charged, milli-GPU.
    pub compute_milli: u32,
}

/// Where a pod goes: the node and the devices it gets (empty for a CPU-only pod).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharePlacement {
    /// The node.
    pub node: mlplane_sched::NodeId,
    /// The devices.
    pub grants: Vec<Grant>,
}

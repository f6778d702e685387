//! GPU devices of a node: whole GPUs, milli-GPU shares, time-slicing and MPS replicas,
//! MIG instances.
//!
//! A node's GPUs are a list of [`Device`]s, each one schedulable unit as a device plugin
//! advertises it: a whole physical GPU, or one MIG instance of it. How a device may be
//! shared is its [`Sharing`] mode:
//!
//! | mode | who uses it | what a grant is charged |
//! | --- | --- | --- |
//! | [`Sharing::Exclusive`] | one container | the whole device |
//! | [`Sharing::Fractional`] | any number of shares (the FGD paper's and open-gpu-share's milli-GPU model) | the share asked; a whole-device request needs it idle |
//! | [`Sharing::TimeSliced`] | up to `replicas` containers (NVIDIA device plugin `timeSlicing`) | a replica asked by count: the device divided by `replicas`; a memory share: what it asks |
//! | [`Sharing::Mps`] | up to `replicas` containers with equal limits (NVIDIA device plugin `mps`) | one MPS slot: the device divided by `replicas` |
//!
//! Sources: NVIDIA k8s-device-plugin README (time-slicing and MPS sharing,
//! `failRequestsGreaterThanOne`), <https://github.com/NVIDIA/k8s-device-plugin>; NVIDIA
//! MIG user guide, <https://docs.nvidia.com/datacenter/tesla/mig-user-guide/>.

use std::fmt;

/// The most replicas a time-sliced or MPS device may advertise (replica indices are
/// held in a 128-bit set).
pub const MAX_REPLICAS: u16 = 128;

/// An interned extended-resource name (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`,
/// `nvidia.com/gpu.shared`, `example.com/foo`), an index into the cluster's resource
/// table ([`crate::Cluster::resource_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub u16);

impl ResourceId {
    /// `nvidia.com/gpu`, always id 0.
    pub const GPU: ResourceId = ResourceId(0);
}

/// The name of [`ResourceId::GPU`].
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// Our own extended resource for a memory share, in MiB: `mlplane.io/gpu-memory: 12288`.
pub const MEMORY_RESOURCE: &str = "mlplane.io/gpu-memory";

/// Our own extended resource for a compute share, in milli-GPU: `mlplane.io/gpu-compute: 300`.
pub const COMPUTE_RESOURCE: &str = "mlplane.io/gpu-compute";

/// How a device is shared (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sharing {
    /// One container at a time.
    Exclusive,
    /// Any number of milli-GPU or memory shares, never more than the device's compute
    /// and memory; a whole-device request needs it idle. The FGD paper's model.
    Fractional,
    /// Time-slicing with `replicas` replicas; `fail_multi` is the device plugin's
    /// `failRequestsGreaterThanOne`.
    TimeSliced {
        /// Replicas advertised, `2..=MAX_REPLICAS`.
        replicas: u16,
        /// Requests for more than one replica are refused.
        fail_multi: bool,
    },
    /// MPS with `replicas` equal slots (requests for several always fail, as in the
    /// device plugin).
    Mps {
        /// Slots, `2..=MAX_REPLICAS`.
        replicas: u16,
    },
}

impl Sharing {
    /// Replica indices the device hands out: 1 for an exclusive device, the replicas
    /// of a time-sliced or MPS device, `None` (unbounded, no indices) for a fractional one.
    pub fn replicas(self) -> Option<u16> {
        match self {
            Sharing::Exclusive => Some(1),
            Sharing::Fractional => None,
            Sharing::TimeSliced { replicas, .. } | Sharing::Mps { replicas } => Some(replicas),
        }
    }

    /// True if a request for more than one unit of this device's resource is refused
    /// (`failRequestsGreaterThanOne`; always for MPS).
    pub fn fails_multi(self) -> bool {
        match self {
            Sharing::TimeSliced { fail_multi, .. } => fail_multi,
            Sharing::Mps { .. } => true,
            _ => false,
        }
    }

    /// True if more than one container may use the device at once.
    pub fn is_shared(self) -> bool {
        !matches!(self, Sharing::Exclusive)
    }

    /// True for the replica modes (time-slicing, MPS), where a count request takes one
    /// replica rather than the whole device.
    pub fn is_replicated(self) -> bool {
        matches!(self, Sharing::TimeSliced { .. } | Sharing::Mps { .. })
    }
}

/// A MIG instance: its profile and where it sits on the GPU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MigInstance {
    /// Profile name as NVIDIA spells it, e.g. `1g.10gb`.
    pub profile: String,
    /// First memory slice (0..=7), the placement `nvidia-smi mig -lgipp` lists.
    pub start: u8,
}

/// One schedulable device of a node: a whole GPU or a MIG instance, possibly shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Physical GPU index on the node, `0..MAX_GPUS_PER_NODE`.
    pub gpu: u8,
    /// The MIG instance, for a MIG device.
    pub mig: Option<MigInstance>,
    /// The extended resource the device plugin advertises it under.
    pub resource: ResourceId,
    /// Memory in MiB (0 when unknown, as for the trace's undisclosed models).
    pub memory_mib: u64,
    /// Compute in milli-GPU (1000 = a whole GPU; a `1g` MIG instance of 7 has 142).
    pub compute_milli: u32,
    /// How it is shared.
    pub sharing: Sharing,
}

impl Device {
    /// A whole GPU shared as the FGD paper does ([`Sharing::Fractional`]), advertised
    /// as `nvidia.com/gpu`, with 1000 milli-GPU of compute.
    pub fn fractional(gpu: u8, memory_mib: u64) -> Self {
        Device {
            gpu,
            mig: None,
            resource: ResourceId::GPU,
            memory_mib,
            compute_milli: 1000,
            sharing: Sharing::Fractional,
        }
    }

    /// A whole GPU for one container, advertised as `nvidia.com/gpu`.
    pub fn exclusive(gpu: u8, memory_mib: u64) -> Self {
        Device {
            sharing: Sharing::Exclusive,
            ..Device::fractional(gpu, memory_mib)
        }
    }

    /// What one replica is charged when asked for by count on a replicated device
    /// (memory MiB, compute milli): the device divided by its replicas; the whole
    /// device otherwise.
    pub fn replica_share(&self) -> (u64, u32) {
        match self.sharing {
            Sharing::TimeSliced { replicas, .. } | Sharing::Mps { replicas } => (
                self.memory_mib / u64::from(replicas.max(1)),
                self.compute_milli / u32::from(replicas.max(1)),
            ),
            _ => (self.memory_mib, self.compute_milli),
        }
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sharing::Exclusive => write!(f, "exclusive"),
            Sharing::Fractional => write!(f, "fractional"),
            Sharing::TimeSliced { replicas, .. } => write!(f, "time-sliced x{replicas}"),
            Sharing::Mps { replicas } => write!(f, "MPS x{replicas}"),
        }
    }
}

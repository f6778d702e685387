//! GPU sharing in the mlplane scheduling core: the GPU catalogue, the sharing
//! configuration and the MIG geometry advisor.
//!
//! Kubernetes counts GPUs as integers; sharing makes "one GPU" mean something else per
//! node: a time-slicing replica, an MPS slot, a MIG instance, or a memory share. This
//! crate describes each node's devices in real units (MiB of GPU memory, milli-GPU of
//! compute) so that the one scheduling core (`mlplane-sched`'s `ClusterState` and
//! framework) accounts and places them:
//!
//! - [`catalog`]: GPU models with their memory and MIG profiles (NVIDIA's MIG user
//!   guide), and the MIG geometry solver;
//! - [`config`]: node sharing in the device plugin's and mig-parted's terms, resolved
//!   to a [`Cluster`] whose nodes carry their `mlplane_model::Device`s
//!   ([`config::SharingConfig::resolve`]);
//! - [`advisor`]: proposes a mig-parted geometry for a node pool and a workload;
//! - [`device_id`]: the device-plugin-style ID of a granted device.
//!
//! Accounting (what a grant costs, what may not be over-committed) is the core's
//! `ClusterState`; the sharing policies (GPU-memory BestFit, LeastAllocated, FGD) are
//! `mlplane-policies`' `memory` plugins.
//!
//! No I/O: the configuration is parsed from text the caller read.

#![warn(missing_docs)]

pub mod advisor;
pub mod catalog;
pub mod config;

pub use mlplane_model::{COMPUTE_RESOURCE, MEMORY_RESOURCE};

use mlplane_model::{Cluster, Node};

/// The cluster with every node's GPUs whole and unshared ([`mlplane_model::Sharing::Exclusive`]
/// devices of the catalogue's memory): an empty [`config::SharingConfig`] resolved.
///
/// # Errors
/// A GPU model missing from the built-in catalogue.
pub fn whole(cluster: &Cluster) -> Result<Cluster, config::ConfigError> {
    config::SharingConfig::default().resolve(cluster)
}

/// The device-plugin-style ID of device `device` (an index into [`Node::devices`]) of
/// `node` and its replica `replica`, as a device plugin would hand it out: `gpu3`,
/// `gpu3::1` (time-slicing or MPS replica 1, the plugin's `::N` suffix),
/// `gpu3/mig-1g.10gb@2` (the MIG instance starting at memory slice 2),
/// `gpu3/mig-1g.10gb@2::0` (replica 0 of a time-sliced MIG instance).
///
/// # Panics
/// If `device` is not an index of `node`'s devices.
pub fn device_id(node: &Node, device: u16, replica: u16) -> String {
    let d = &node.devices[usize::from(device)];
    let mut s = format!("gpu{}", d.gpu);
    if let Some(m) = &d.mig {
        s += &format!("/mig-{}@{}", m.profile, m.start);
    }
    if d.sharing.is_replicated() {
        s += &format!("::{replica}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlplane_model::{Device, GpuModelId, MigInstance, ResourceId, Sharing};

    #[test]
    fn device_ids_follow_the_device_plugin() {
        let mig = |start: u8, sharing: Sharing| Device {
            gpu: 3,
            mig: Some(MigInstance {
                profile: "1g.10gb".into(),
                start,
            }),
            resource: ResourceId(1),
            memory_mib: 10_240,
            compute_milli: 142,
            sharing,
        };
        let ts = Sharing::TimeSliced {
            replicas: 2,
            fail_multi: false,
        };
        let node = Node::new("n", 1000, 1024).with_devices(
            GpuModelId(0),
            vec![
                Device::exclusive(3, 81_920),
                Device {
                    sharing: ts,
                    ..Device::exclusive(3, 81_920)
                },
                mig(2, Sharing::Exclusive),
                mig(2, ts),
            ],
        );
        assert_eq!(device_id(&node, 0, 0), "gpu3");
        assert_eq!(device_id(&node, 1, 1), "gpu3::1");
        assert_eq!(device_id(&node, 2, 0), "gpu3/mig-1g.10gb@2");
        assert_eq!(device_id(&node, 3, 0), "gpu3/mig-1g.10gb@2::0");
    }
}

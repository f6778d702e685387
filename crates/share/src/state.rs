//! Per-device accounting: what is used on every device of every node.
//!
//! The rules, each a test in `tests/accounting.rs`:
//! - `nvidia.com/gpu: n` with `n > 1` gets `n` distinct physical GPUs (distinct MIG
//!   instances for MIG resources), never two replicas of one GPU;
//! - GPU memory and compute are never over-committed: each grant is charged memory
//!   and compute, and a device's charges never exceed its memory and compute, however
//!   many replicas it advertises;
//! - a request for more than one replica of a resource whose device plugin sets
//!   `failRequestsGreaterThanOne` (always for MPS) is refused; otherwise it is mapped
//!   to that many distinct physical GPUs, each charged whole (a pod that asks for
//!   several GPUs gets GPUs, not slivers);
//! - a replica index or MIG instance is held by one pod at a time.
//!
//! What a grant is charged ([`charge`]): an exclusive device, all of it; one replica of
//! a time-sliced or MPS device asked for by count, the device divided by its replicas;
//! a memory share on a time-sliced device, the MiB and milli asked; a memory share on
//! an MPS device, the MPS slot (memory and compute divided by replicas), which must
//! hold what was asked.

use std::sync::Arc;

use mlplane_model::Cluster;
use mlplane_sched::NodeId;

use crate::{Device, Plan, ResourceId, ShareMode, SharePlacement, SharePod, ShareRequest};

/// Usage of one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// GPU memory charged, MiB.
    pub memory_used_mib: u64,
    /// Compute charged, milli-GPU.
    pub compute_used_milli: u32,
    /// Replicas held.
    pub replicas_used: u16,
    /// Replica indices held, as a bit set.
    held: Vec<u64>,
}

impl DeviceState {
    /// True if replica `r` is held.
    pub fn holds(&self, r: u16) -> bool {
        self.held
            .get(usize::from(r / 64))
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    /// The lowest free replica index of `d`, if any.
    pub fn free_replica(&self, d: &Device) -> Option<u16> {
        if self.replicas_used >= d.replicas {
            return None;
        }
        (0..d.replicas).find(|&r| !self.holds(r))
    }

    /// Free memory in MiB.
    pub fn memory_free(&self, d: &Device) -> u64 {
        d.memory_mib - self.memory_used_mib
    }

    /// True if nothing is charged.
    pub fn is_idle(&self) -> bool {
        self.replicas_used == 0
    }

    /// True if a grant of `charge` fits: a free replica, memory and compute.
    pub fn can_take(&self, d: &Device, charge: Charge) -> bool {
        self.replicas_used < d.replicas
            && self.memory_used_mib + charge.0 <= d.memory_mib
            && self.compute_used_milli + charge.1 <= d.compute_milli
    }

    fn hold(&mut self, r: u16) {
        let w = usize::from(r / 64);
        if self.held.len() <= w {
            self.held.resize(w + 1, 0);
        }
        self.held[w] |= 1 << (r % 64);
    }

    fn unhold(&mut self, r: u16) {
        if let Some(w) = self.held.get_mut(usize::from(r / 64)) {
            *w &= !(1 << (r % 64));
        }
    }
}

/// What a grant is charged: (GPU memory in MiB, compute in milli-GPU).
pub type Charge = (u64, u32);

/// What one grant of `d` costs for `req` (memory MiB, compute milli), or `None` if
/// `req` cannot use `d` at all (another resource, a memory share on an unshared
/// device, a memory share larger than an MPS slot). `multi` is true for a request of
/// more than one device, which takes each device whole.
pub fn charge(d: &Device, req: ShareRequest, multi: bool) -> Option<Charge> {
    match req {
        ShareRequest::None => None,
        ShareRequest::Devices { resource, .. } => {
            if d.resource != resource {
                None
            } else if d.is_shared() && !multi {
                Some(d.replica_share())
            } else {
                Some((d.memory_mib, d.compute_milli))
            }
        }
        ShareRequest::Memory { mib, compute_milli } => match d.mode {
            _ if !d.is_shared() => None,
            ShareMode::Mps => {
                let slot = d.replica_share();
                (mib <= slot.0 && compute_milli <= slot.1).then_some(slot)
            }
            _ => (mib <= d.memory_mib && compute_milli <= d.compute_milli)
                .then_some((mib, compute_milli)),
        },
    }
}

/// Why a node cannot take a pod ([`Refusal::describe`] words it as kube-scheduler
/// does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Refusal {
    /// Not enough CPU.
    Cpu,
    /// Not enough host memory.
    Memory,
    /// No device of the asked resource.
    NoResource(ResourceId),
    /// More than one replica asked where the device plugin refuses it.
    MultiReplica {
        /// The resource.
        resource: ResourceId,
        /// The count asked.
        count: u8,
    },
    /// Not enough free devices (distinct physical GPUs for several).
    Devices(ResourceId),
    /// No shared device with that much free GPU memory and compute.
    Share {
        /// MiB asked.
        mib: u64,
        /// Milli asked.
        compute_milli: u32,
    },
}

impl Refusal {
    /// The reason in words, with resource names from `plan`.
    pub fn describe(&self, plan: &Plan) -> String {
        match *self {
            Refusal::Cpu => "Insufficient cpu".into(),
            Refusal::Memory => "Insufficient memory".into(),
            Refusal::NoResource(r) => format!("node does not advertise {}", plan.resource_name(r)),
            Refusal::MultiReplica { resource, count } => format!(
                "{}: {count} asks for {count} shared replicas and the device plugin sets failRequestsGreaterThanOne (one replica per container)",
                plan.resource_name(resource)
            ),
            Refusal::Devices(r) => format!("Insufficient {}", plan.resource_name(r)),
            Refusal::Share { mib, compute_milli } => format!(
                "Insufficient GPU memory or compute for a {mib} MiB / {compute_milli}m share"
            ),
        }
    }
}

/// Why [`ShareState::assume`] refused a placement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node {node}: {why}")]
pub struct AssumeError {
    /// Node name (or index when out of range).
    pub node: String,
    /// What is wrong.
    pub why: String,
}

/// What is free on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeShareState {
    /// Free CPU, millicores.
    pub cpu_free_milli: u64,
    /// Free host memory, MiB.
    pub memory_free_mib: u64,
    /// Usage per device (same order as the plan's device table).
    pub devices: Vec<DeviceState>,
    /// Pods on the node.
    pub pods: u32,
    /// Changes whenever the node's usage changes, and is unique across every state of
    /// the process (so caches keyed by it never confuse two states or two clones).
    pub version: u64,
}

/// Source of [`NodeShareState::version`] values.
static VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_version() -> u64 {
    VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The sharing-aware cluster state.
///
/// **Invariant:** no device's charged memory, compute or held replicas ever exceed
/// its capacity, and no node's CPU or memory goes below zero: [`ShareState::assume`]
/// checks every placement and refuses, unchanged, rather than over-commit.
#[derive(Clone, Debug)]
pub struct ShareState {
    cluster: Arc<Cluster>,
    plan: Arc<Plan>,
    nodes: Vec<NodeShareState>,
    memory_used_mib: u64,
    memory_total_mib: u64,
}

impl ShareState {
    /// An empty state.
    ///
    /// # Panics
    /// If the plan does not have one device table per node of the cluster.
    pub fn new(cluster: Arc<Cluster>, plan: Arc<Plan>) -> Self {
        assert_eq!(cluster.nodes().len(), plan.len(), "plan and cluster differ");
        let nodes = cluster
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| NodeShareState {
                cpu_free_milli: n.cpu_milli,
                memory_free_mib: n.memory_mib,
                devices: vec![DeviceState::default(); plan.devices(i).len()],
                pods: 0,
                version: next_version(),
            })
            .collect();
        let memory_total_mib = (0..plan.len())
            .flat_map(|i| plan.devices(i))
            .map(|d| d.memory_mib)
            .sum();
        ShareState {
            cluster,
            plan,
            nodes,
            memory_used_mib: 0,
            memory_total_mib,
        }
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s usage.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn node(&self, i: usize) -> &NodeShareState {
        &self.nodes[i]
    }

    /// GPU memory charged over the cluster, MiB.
    pub fn memory_used_mib(&self) -> u64 {
        self.memory_used_mib
    }

    /// GPU memory of every device of the cluster, MiB.
    pub fn memory_total_mib(&self) -> u64 {
        self.memory_total_mib
    }

    /// Physical GPUs with at least one device in use.
    pub fn occupied_gpus(&self) -> u64 {
        let mut n = 0;
        for (i, ns) in self.nodes.iter().enumerate() {
            let mut seen: u32 = 0;
            for (d, s) in self.plan.devices(i).iter().zip(&ns.devices) {
                if !s.is_idle() {
                    seen |= 1 << d.gpu;
                }
            }
            n += u64::from(seen.count_ones());
        }
        n
    }

    /// Why node `i` cannot take `pod` at all, or the devices that could each serve
    /// one unit of its GPU request (with their charges). For a CPU-only pod the list is
    /// empty.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn candidates(&self, i: usize, pod: &SharePod) -> Result<Vec<(u16, Charge)>, Refusal> {
        let mut out = Vec::new();
        self.candidates_into(i, pod, &mut out).map(|()| out)
    }

    /// [`ShareState::candidates`] into a buffer the caller reuses (cleared first).
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn candidates_into(
        &self,
        i: usize,
        pod: &SharePod,
        out: &mut Vec<(u16, Charge)>,
    ) -> Result<(), Refusal> {
        out.clear();
        let ns = &self.nodes[i];
        if ns.cpu_free_milli < pod.cpu_milli {
            return Err(Refusal::Cpu);
        }
        if ns.memory_free_mib < pod.memory_mib {
            return Err(Refusal::Memory);
        }
        let devices = self.plan.devices(i);
        match pod.gpu {
            ShareRequest::None => Ok(()),
            ShareRequest::Devices { resource, count } => {
                let mut any = false;
                let multi = count > 1;
                for (k, (d, s)) in devices.iter().zip(&ns.devices).enumerate() {
                    if d.resource != resource {
                        continue;
                    }
                    any = true;
                    if multi && d.is_shared() && d.fail_multi {
                        return Err(Refusal::MultiReplica { resource, count });
                    }
                    let c = charge(d, pod.gpu, multi).expect("same resource");
                    // Several devices: each is taken whole, so it must be idle.
                    if s.can_take(d, c) && (!multi || s.is_idle()) {
                        out.push((k as u16, c));
                    }
                }
                if !any {
                    return Err(Refusal::NoResource(resource));
                }
                if distinct_units(devices, out) < usize::from(count) {
                    return Err(Refusal::Devices(resource));
                }
                Ok(())
            }
            ShareRequest::Memory { mib, compute_milli } => {
                for (k, (d, s)) in devices.iter().zip(&ns.devices).enumerate() {
                    if let Some(c) = charge(d, pod.gpu, false) {
                        if s.can_take(d, c) {
                            out.push((k as u16, c));
                        }
                    }
                }
                if out.is_empty() {
                    return Err(Refusal::Share { mib, compute_milli });
                }
                Ok(())
            }
        }
    }

    /// Places `pod` as `placement` says, after checking every rule (see the module
    /// documentation); on error nothing changes.
    ///
    /// # Errors
    /// [`AssumeError`] naming the node and the rule broken.
    pub fn assume(
        &mut self,
        pod: &SharePod,
        placement: &SharePlacement,
    ) -> Result<(), AssumeError> {
        let i = placement.node.index();
        let Some(ns) = self.nodes.get(i) else {
            return Err(AssumeError {
                node: format!("#{i}"),
                why: "no such node".into(),
            });
        };
        let node = &self.cluster.nodes()[i];
        let bad = |why: String| AssumeError {
            node: node.name.clone(),
            why,
        };
        if ns.cpu_free_milli < pod.cpu_milli {
            return Err(bad(format!(
                "cpu: {}m free, {}m asked",
                ns.cpu_free_milli, pod.cpu_milli
            )));
        }
        if ns.memory_free_mib < pod.memory_mib {
            return Err(bad(format!(
                "memory: {} MiB free, {} MiB asked",
                ns.memory_free_mib, pod.memory_mib
            )));
        }
        let devices = self.plan.devices(i);
        let want = match pod.gpu {
            ShareRequest::None => 0,
            ShareRequest::Devices { count, .. } => usize::from(count),
            ShareRequest::Memory { .. } => 1,
        };
        if placement.grants.len() != want {
            return Err(bad(format!(
                "{} device(s) granted, {want} asked",
                placement.grants.len()
            )));
        }
        let multi = want > 1;
        let mut gpus_seen: u32 = 0;
        for (n, g) in placement.grants.iter().enumerate() {
            let Some(d) = devices.get(usize::from(g.device)) else {
                return Err(bad(format!("no device {}", g.device)));
            };
            let s = &ns.devices[usize::from(g.device)];
            if placement.grants[..n].iter().any(|h| h.device == g.device) {
                return Err(bad(format!("device {} granted twice", g.device)));
            }
            if multi && d.mig.is_none() {
                if gpus_seen & (1 << d.gpu) != 0 {
                    return Err(bad(format!(
                        "GPU {} granted twice for {} GPUs",
                        d.gpu, want
                    )));
                }
                gpus_seen |= 1 << d.gpu;
            }
            if multi && d.is_shared() && d.fail_multi {
                return Err(bad(format!(
                    "{} replicas of {} asked; failRequestsGreaterThanOne",
                    want,
                    self.plan.resource_name(d.resource)
                )));
            }
            if multi && !s.is_idle() {
                return Err(bad(format!(
                    "device {} is in use; several devices are taken whole",
                    g.device
                )));
            }
            let Some(c) = charge(d, pod.gpu, multi) else {
                return Err(bad(format!(
                    "device {} cannot serve this request",
                    g.device
                )));
            };
            if (g.memory_mib, g.compute_milli) != c {
                return Err(bad(format!(
                    "device {} charged {:?}, the rule says {c:?}",
                    g.device,
                    (g.memory_mib, g.compute_milli)
                )));
            }
            if !s.can_take(d, c) {
                return Err(bad(format!(
                    "device {}: {} MiB / {}m / {} replicas free, {} MiB / {}m / 1 asked",
                    g.device,
                    s.memory_free(d),
                    d.compute_milli - s.compute_used_milli,
                    d.replicas - s.replicas_used,
                    c.0,
                    c.1
                )));
            }
            if g.replica >= d.replicas || s.holds(g.replica) {
                return Err(bad(format!(
                    "device {} replica {} is not free",
                    g.device, g.replica
                )));
            }
        }
        let ns = &mut self.nodes[i];
        ns.cpu_free_milli -= pod.cpu_milli;
        ns.memory_free_mib -= pod.memory_mib;
        ns.pods += 1;
        ns.version = next_version();
        for g in &placement.grants {
            let s = &mut ns.devices[usize::from(g.device)];
            s.memory_used_mib += g.memory_mib;
            s.compute_used_milli += g.compute_milli;
            s.replicas_used += 1;
            s.hold(g.replica);
            self.memory_used_mib += g.memory_mib;
        }
        Ok(())
    }

    /// Gives back what [`ShareState::assume`] took for `pod` on `placement`.
    ///
    /// # Panics
    /// If the placement was not assumed (usage would go negative).
    pub fn release(&mut self, pod: &SharePod, placement: &SharePlacement) {
        let ns = &mut self.nodes[placement.node.index()];
        ns.cpu_free_milli += pod.cpu_milli;
        ns.memory_free_mib += pod.memory_mib;
        ns.pods -= 1;
        ns.version = next_version();
        for g in &placement.grants {
            let s = &mut ns.devices[usize::from(g.device)];
            assert!(s.holds(g.replica), "releasing a replica that is not held");
            s.memory_used_mib -= g.memory_mib;
            s.compute_used_milli -= g.compute_milli;
            s.replicas_used -= 1;
            s.unhold(g.replica);
            self.memory_used_mib -= g.memory_mib;
        }
    }

    /// The next free replica of device `k` on node `i`.
    pub fn free_replica(&self, i: usize, k: u16) -> Option<u16> {
        let d = &self.plan.devices(i)[usize::from(k)];
        self.nodes[i].devices[usize::from(k)].free_replica(d)
    }

    /// The node id type of the framework, for placements.
    pub fn node_id(i: usize) -> NodeId {
        NodeId(i as u32)
    }
}

/// How many of `cands` can be used together: distinct physical GPUs for whole GPUs,
/// distinct instances for MIG devices.
pub fn distinct_units(devices: &[Device], cands: &[(u16, Charge)]) -> usize {
    let mut gpus: u32 = 0;
    let mut mig = 0;
    for &(k, _) in cands {
        let d = &devices[usize::from(k)];
        if d.mig.is_some() {
            mig += 1;
        } else {
            gpus |= 1 << d.gpu;
        }
    }
    gpus.count_ones() as usize + mig
}

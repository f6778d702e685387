//! Sharing-aware placement: which node, physical GPU, MIG instance and replica.
//!
//! One cycle is kube-scheduler's: filter the nodes ([`ShareState::candidates`]), pick
//! devices on each feasible node and score the node, select the best score with ties
//! broken by the node's rank in a random order per seed (as the FGD paper's
//! simulator does), and return a [`SharePlacement`] that [`ShareState::assume`]
//! accepts.
//!
//! Policies, carried over from the simulator issue to memory shares and MIG:
//! - `Random`: a random feasible node; best-fit devices on it;
//! - `BestFit`: the node with the least free GPU memory after placement (bin-packing
//!   in memory), best-fit devices (least free memory left on the device);
//! - `LeastAllocated`: the node with the most free GPU memory after placement
//!   (kube's spread), best-fit devices;
//! - `Fgd`: Fragmentation Gradient Descent (Weng et al., USENIX ATC 2023,
//!   <https://www.usenix.org/conference/atc23/presentation/weng>) measured in GPU
//!   memory: a node's fragmentation for a typical request is the free GPU memory that
//!   request could not use there (on devices it cannot use, or all of it when the node
//!   cannot host the request at all); the node's fragmentation is the popularity-
//!   weighted sum over the typical requests; the placement (node and device) that
//!   grows it least wins. Typical requests are the most frequent GPU requests of the
//!   workload covering 95% of its pods. The paper measures milli-GPU on whole GPUs
//!   only; here memory is the unit so that shares, replicas and MIG instances of
//!   different sizes compare. CPU is left out of the measure (GPU requests alone key
//!   the typical set).

use rand::{Rng, RngCore};

use crate::state::DeviceState;
use crate::state::{distinct_units, Charge, Refusal, ShareState};
use crate::{Device, Grant, SharePlacement, SharePod, ShareRequest};

/// A placement policy for shared GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SharePolicy {
    /// A random feasible node.
    Random,
    /// Least free GPU memory after placement.
    BestFit,
    /// Most free GPU memory after placement.
    LeastAllocated,
    /// Least growth of expected fragmentation.
    Fgd,
}

impl SharePolicy {
    /// Every policy.
    pub const ALL: [SharePolicy; 4] = [
        SharePolicy::Random,
        SharePolicy::BestFit,
        SharePolicy::LeastAllocated,
        SharePolicy::Fgd,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SharePolicy::Random => "random",
            SharePolicy::BestFit => "bestfit",
            SharePolicy::LeastAllocated => "leastallocated",
            SharePolicy::Fgd => "fgd",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// The typical GPU requests of a workload with their popularity (FGD's "target
/// workload").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Typical {
    /// (request, share of the GPU pods), most frequent first.
    pub classes: Vec<(ShareRequest, f64)>,
}

impl Typical {
    /// The most frequent GPU requests of `pods` that together cover 95% of the GPU pods.
    pub fn from_pods(pods: &[SharePod]) -> Self {
        let mut counts: std::collections::BTreeMap<ShareRequest, u64> = Default::default();
        for p in pods {
            if p.gpu != ShareRequest::None {
                *counts.entry(p.gpu).or_default() += 1;
            }
        }
        let total: u64 = counts.values().sum();
        let mut v: Vec<(ShareRequest, u64)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut classes = Vec::new();
        let mut covered = 0;
        for (r, c) in v {
            if total > 0 && covered as f64 >= 0.95 * total as f64 {
                break;
            }
            covered += c;
            classes.push((r, c as f64 / total as f64));
        }
        Typical { classes }
    }
}

/// Why no node could take a pod: how many nodes gave each reason, as kube-scheduler's
/// "0/N nodes are available" message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("0/{nodes} nodes are available: {}", summary(.reasons))]
pub struct Unschedulable {
    /// Nodes considered.
    pub nodes: usize,
    /// Reason and node count, most frequent first.
    pub reasons: Vec<(Refusal, usize)>,
}

fn summary(r: &[(Refusal, usize)]) -> String {
    r.iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sharing-aware scheduler.
#[derive(Clone, Debug)]
pub struct ShareScheduler {
    policy: SharePolicy,
    typical: Typical,
    rank: Vec<u32>,
}

impl ShareScheduler {
    /// A scheduler with `policy`; `typical` is used by FGD; `rank[i]` is node `i`'s
    /// position in the tie-break order (lower wins).
    pub fn new(policy: SharePolicy, typical: Typical, rank: Vec<u32>) -> Self {
        ShareScheduler {
            policy,
            typical,
            rank,
        }
    }

    /// The policy.
    pub fn policy(&self) -> SharePolicy {
        self.policy
    }

    /// One scheduling cycle for `pod`.
    ///
    /// # Errors
    /// [`Unschedulable`] with the reasons per node.
    pub fn schedule(
        &self,
        state: &ShareState,
        pod: &SharePod,
        rng: &mut dyn RngCore,
    ) -> Result<SharePlacement, Unschedulable> {
        let mut best: Option<(i64, u32, usize, Vec<Grant>)> = None;
        let mut reasons: std::collections::BTreeMap<Refusal, usize> = Default::default();
        for i in 0..state.len() {
            let cands = match state.candidates(i, pod) {
                Ok(c) => c,
                Err(r) => {
                    *reasons.entry(r).or_default() += 1;
                    continue;
                }
            };
            let (score, grants) = self.score_node(state, i, pod, &cands, rng);
            let rank = self.rank.get(i).copied().unwrap_or(i as u32);
            let better = match &best {
                None => true,
                Some((s, r, _, _)) => score > *s || (score == *s && rank < *r),
            };
            if better {
                best = Some((score, rank, i, grants));
            }
        }
        match best {
            Some((_, _, i, grants)) => Ok(SharePlacement {
                node: ShareState::node_id(i),
                grants,
            }),
            None => {
                let mut reasons: Vec<(Refusal, usize)> = reasons.into_iter().collect();
                reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                Err(Unschedulable {
                    nodes: state.len(),
                    reasons,
                })
            }
        }
    }

    /// The score of node `i` (higher is better) and the grants the pod would get.
    fn score_node(
        &self,
        state: &ShareState,
        i: usize,
        pod: &SharePod,
        cands: &[(u16, Charge)],
        rng: &mut dyn RngCore,
    ) -> (i64, Vec<Grant>) {
        let devices = state.plan().devices(i);
        let ns = state.node(i);
        let count = match pod.gpu {
            ShareRequest::None => 0,
            ShareRequest::Devices { count, .. } => usize::from(count),
            ShareRequest::Memory { .. } => 1,
        };
        let free_now: u64 = devices
            .iter()
            .zip(&ns.devices)
            .map(|(d, s)| s.memory_free(d))
            .sum();
        let grants = if self.policy == SharePolicy::Fgd && count == 1 && cands.len() > 1 {
            // Try each distinct device state; keep the one that fragments least.
            let before = fragmentation(&self.typical, devices, &ns.devices, ns);
            let mut best: Option<(f64, u16, Charge)> = None;
            let mut tried: Vec<(u64, u32, u16, u16)> = Vec::new();
            for &(k, c) in cands {
                let d = &devices[usize::from(k)];
                let s = &ns.devices[usize::from(k)];
                let key = (
                    s.memory_used_mib,
                    s.compute_used_milli,
                    s.replicas_used,
                    d.resource.0,
                );
                if d.mig.is_none() && tried.contains(&key) {
                    continue;
                }
                tried.push(key);
                let after = frag_with(&self.typical, devices, &ns.devices, ns, pod, k, c);
                let delta = after - before;
                if best.as_ref().is_none_or(|(b, _, _)| delta < *b - 1e-9) {
                    best = Some((delta, k, c));
                }
            }
            let (_, k, c) = best.expect("candidates");
            vec![grant(state, i, k, c)]
        } else {
            best_fit(state, i, devices, cands, count)
        };
        let taken: u64 = grants.iter().map(|g| g.memory_mib).sum();
        let free_after = free_now - taken;
        let score = match self.policy {
            SharePolicy::Random => i64::from(rng.gen::<u32>()),
            SharePolicy::BestFit => -(free_after as i64),
            SharePolicy::LeastAllocated => free_after as i64,
            SharePolicy::Fgd => {
                if grants.is_empty() {
                    0
                } else {
                    let before = fragmentation(&self.typical, devices, &ns.devices, ns);
                    let mut after_states = ns.devices.clone();
                    for g in &grants {
                        let s = &mut after_states[usize::from(g.device)];
                        s.memory_used_mib += g.memory_mib;
                        s.compute_used_milli += g.compute_milli;
                        s.replicas_used += 1;
                    }
                    let mut ns2 = ns.clone();
                    ns2.cpu_free_milli -= pod.cpu_milli;
                    ns2.memory_free_mib -= pod.memory_mib;
                    let after = fragmentation(&self.typical, devices, &after_states, &ns2);
                    // Integer scores, finer than MiB: fragmentation growth in KiB.
                    -(((after - before) * 1024.0).round() as i64)
                }
            }
        };
        (score, grants)
    }
}

/// A grant of device `k` with charge `c` at its lowest free replica.
fn grant(state: &ShareState, i: usize, k: u16, c: Charge) -> Grant {
    Grant {
        device: k,
        replica: state
            .free_replica(i, k)
            .expect("candidate has a free replica"),
        memory_mib: c.0,
        compute_milli: c.1,
    }
}

/// `count` devices from `cands`, least free memory left first, distinct physical GPUs
/// (distinct instances for MIG) when more than one.
fn best_fit(
    state: &ShareState,
    i: usize,
    devices: &[Device],
    cands: &[(u16, Charge)],
    count: usize,
) -> Vec<Grant> {
    if count == 0 {
        return Vec::new();
    }
    let ns = state.node(i);
    let mut order: Vec<(u64, u8, u16, Charge)> = cands
        .iter()
        .map(|&(k, c)| {
            let d = &devices[usize::from(k)];
            let left = ns.devices[usize::from(k)].memory_free(d) - c.0;
            (left, d.gpu, k, c)
        })
        .collect();
    order.sort();
    let mut out = Vec::with_capacity(count);
    let mut gpus: u32 = 0;
    for (_, gpu, k, c) in order {
        let d = &devices[usize::from(k)];
        if count > 1 && d.mig.is_none() {
            if gpus & (1 << gpu) != 0 {
                continue;
            }
            gpus |= 1 << gpu;
        }
        out.push(grant(state, i, k, c));
        if out.len() == count {
            break;
        }
    }
    out
}

/// Fragmentation after putting `pod` on device `k` with charge `c`.
fn frag_with(
    typical: &Typical,
    devices: &[Device],
    states: &[DeviceState],
    ns: &crate::state::NodeShareState,
    pod: &SharePod,
    k: u16,
    c: Charge,
) -> f64 {
    let mut after = states.to_vec();
    let s = &mut after[usize::from(k)];
    s.memory_used_mib += c.0;
    s.compute_used_milli += c.1;
    s.replicas_used += 1;
    let mut ns2 = ns.clone();
    ns2.cpu_free_milli -= pod.cpu_milli;
    ns2.memory_free_mib -= pod.memory_mib;
    fragmentation(typical, devices, &after, &ns2)
}

/// A node's expected fragmentation in MiB of GPU memory: for each typical request,
/// weighted by its popularity, the free GPU memory it could not use on this node.
pub fn fragmentation(
    typical: &Typical,
    devices: &[Device],
    states: &[DeviceState],
    _ns: &crate::state::NodeShareState,
) -> f64 {
    let free: Vec<u64> = devices
        .iter()
        .zip(states)
        .map(|(d, s)| s.memory_free(d))
        .collect();
    let total: u64 = free.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mut f = 0.0;
    for &(req, p) in &typical.classes {
        let multi = matches!(req, ShareRequest::Devices { count, .. } if count > 1);
        let mut usable: Vec<(u16, Charge)> = Vec::new();
        let mut unusable_free = 0u64;
        for (k, (d, s)) in devices.iter().zip(states).enumerate() {
            let ok = crate::state::charge(d, req, multi)
                .filter(|&c| s.can_take(d, c) && (!multi || s.is_idle()));
            match ok {
                Some(c) => usable.push((k as u16, c)),
                None => unusable_free += free[k],
            }
        }
        let need = match req {
            ShareRequest::Devices { count, .. } => usize::from(count),
            _ => 1,
        };
        let frag = if distinct_units(devices, &usable) < need {
            total
        } else {
            unusable_free
        };
        f += p * frag as f64;
    }
    f
}

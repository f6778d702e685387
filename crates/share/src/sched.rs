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
use crate::state::{Charge, Refusal, ShareState};
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
    /// Reason (in words) and node count, most frequent first.
    pub reasons: Vec<(String, usize)>,
}

fn summary(r: &[(String, usize)]) -> String {
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
    /// FGD: each node's fragmentation breakdown, keyed by the node's version (a cache:
    /// a node's entry is rebuilt whenever its usage changed; results never depend on it).
    frag_cache: std::cell::RefCell<Vec<(u64, NodeFrag)>>,
}

impl ShareScheduler {
    /// A scheduler with `policy`; `typical` is used by FGD; `rank[i]` is node `i`'s
    /// position in the tie-break order (lower wins).
    pub fn new(policy: SharePolicy, typical: Typical, rank: Vec<u32>) -> Self {
        ShareScheduler {
            policy,
            typical,
            rank,
            frag_cache: std::cell::RefCell::new(Vec::new()),
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
        let mut cands = Vec::new();
        let mut views = Vec::new();
        for i in 0..state.len() {
            if let Err(r) = state.candidates_into(i, pod, &mut cands) {
                *reasons.entry(r).or_default() += 1;
                continue;
            }
            let (score, grants) = self.score_node(state, i, pod, &cands, &mut views, rng);
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
                let mut reasons: Vec<(String, usize)> = reasons
                    .into_iter()
                    .map(|(r, n)| (r.describe(state.plan()), n))
                    .collect();
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
        views: &mut Vec<View>,
        rng: &mut dyn RngCore,
    ) -> (i64, Vec<Grant>) {
        let devices = state.plan().devices(i);
        let ns = state.node(i);
        let count = match pod.gpu {
            ShareRequest::None => 0,
            ShareRequest::Devices { count, .. } => usize::from(count),
            ShareRequest::Memory { .. } => 1,
        };
        if self.policy == SharePolicy::Fgd {
            if count == 0 {
                return (0, Vec::new());
            }
            views.clear();
            views.extend(devices.iter().zip(&ns.devices).map(|(d, s)| View::of(d, s)));
            let mut cache = self.frag_cache.borrow_mut();
            if cache.len() != state.len() {
                cache.clear();
                cache.resize_with(state.len(), || (0, NodeFrag::default()));
            }
            if cache[i].0 != ns.version {
                cache[i] = (ns.version, NodeFrag::new(&self.typical, devices, views));
            }
            let frag = &cache[i].1;
            let before = frag.value(&self.typical);
            let (after, grants) = if count == 1 {
                // Each distinct device state once; the one that fragments least.
                let mut best: Option<(f64, u16, Charge)> = None;
                let mut tried: Vec<(View, u16)> = Vec::new();
                for &(k, c) in cands {
                    let d = &devices[usize::from(k)];
                    let v = views[usize::from(k)];
                    if d.mig.is_none() && tried.contains(&(v, d.resource.0)) {
                        continue;
                    }
                    tried.push((v, d.resource.0));
                    let after = frag.with(&self.typical, d, v, v.take(c));
                    if best.as_ref().is_none_or(|(b, _, _)| after < *b - 1e-9) {
                        best = Some((after, k, c));
                    }
                }
                let (after, k, c) = best.expect("candidates");
                (after, vec![grant(state, i, k, c)])
            } else {
                let grants = best_fit(state, i, devices, cands, count);
                for g in &grants {
                    let k = usize::from(g.device);
                    views[k] = views[k].take((g.memory_mib, g.compute_milli));
                }
                (fragmentation(&self.typical, devices, views), grants)
            };
            // Fragmentation growth in KiB first; equal growth goes to the node with the
            // least free GPU memory left (best fit), so that ties pack instead of
            // spreading over idle GPUs; then to the node's rank.
            let free_after: u64 = views.iter().map(|v| v.free_mib).sum::<u64>()
                - if count == 1 { grants[0].memory_mib } else { 0 };
            let growth = ((after - before) * 1024.0).round() as i64;
            return (
                -(growth << 21) - free_after.min((1 << 21) - 1) as i64,
                grants,
            );
        }
        let free_now: u64 = devices
            .iter()
            .zip(&ns.devices)
            .map(|(d, s)| s.memory_free(d))
            .sum();
        let grants = best_fit(state, i, devices, cands, count);
        let taken: u64 = grants.iter().map(|g| g.memory_mib).sum();
        let free_after = free_now - taken;
        let score = match self.policy {
            SharePolicy::Random => i64::from(rng.gen::<u32>()),
            SharePolicy::BestFit => -(free_after as i64),
            _ => free_after as i64,
        };
        (score, grants)
    }
}

/// A node's fragmentation broken down per typical request, so that the effect of
/// changing one device is computed in O(requests) ([`NodeFrag::with`]). Non-MIG
/// devices are whole GPUs, one per physical GPU, so usable units are a plain count.
#[derive(Clone, Debug, Default)]
struct NodeFrag {
    total: u64,
    /// Per typical request: usable devices, free memory on unusable devices.
    per: Vec<(u32, u64)>,
}

impl NodeFrag {
    fn new(typical: &Typical, devices: &[Device], views: &[View]) -> Self {
        let total = views.iter().map(|v| v.free_mib).sum();
        let per = typical
            .classes
            .iter()
            .map(|&(req, _)| {
                let mut usable = 0;
                let mut unusable = 0;
                for (d, v) in devices.iter().zip(views) {
                    if can_use(d, *v, req) {
                        usable += 1;
                    } else {
                        unusable += v.free_mib;
                    }
                }
                (usable, unusable)
            })
            .collect();
        NodeFrag { total, per }
    }

    fn value(&self, typical: &Typical) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        typical
            .classes
            .iter()
            .zip(&self.per)
            .map(|(&(req, p), &(usable, unusable))| {
                p * if usable < need(req) {
                    self.total
                } else {
                    unusable
                } as f64
            })
            .sum()
    }

    /// Fragmentation with device `d` changed from view `old` to `new`.
    fn with(&self, typical: &Typical, d: &Device, old: View, new: View) -> f64 {
        let total = self.total - old.free_mib + new.free_mib;
        if total == 0 {
            return 0.0;
        }
        let mut f = 0.0;
        for (&(req, p), &(usable, unusable)) in typical.classes.iter().zip(&self.per) {
            let (u0, u1) = (can_use(d, old, req), can_use(d, new, req));
            let usable = usable - u32::from(u0) + u32::from(u1);
            let unusable =
                unusable - if u0 { 0 } else { old.free_mib } + if u1 { 0 } else { new.free_mib };
            let frag = if usable < need(req) { total } else { unusable };
            f += p * frag as f64;
        }
        f
    }
}

/// Devices a typical request needs on one node.
fn need(req: ShareRequest) -> u32 {
    match req {
        ShareRequest::Devices { count, .. } => u32::from(count),
        _ => 1,
    }
}

/// True if `req` could take one unit of `d` in view `v`.
fn can_use(d: &Device, v: View, req: ShareRequest) -> bool {
    let multi = need(req) > 1;
    crate::state::charge(d, req, multi).is_some_and(|c| v.can_take(c, multi))
}

/// What fragmentation needs to know of a device's usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Free memory, MiB.
    pub free_mib: u64,
    /// Free compute, milli.
    pub free_milli: u32,
    /// Free replicas.
    pub free_replicas: u16,
    /// Nothing held.
    pub idle: bool,
}

impl View {
    /// The view of device `d` in state `s`.
    pub fn of(d: &Device, s: &DeviceState) -> Self {
        View {
            free_mib: s.memory_free(d),
            free_milli: d.compute_milli - s.compute_used_milli,
            free_replicas: d.replicas - s.replicas_used,
            idle: s.is_idle(),
        }
    }

    /// After one more grant of `c`.
    fn take(self, c: Charge) -> Self {
        View {
            free_mib: self.free_mib - c.0,
            free_milli: self.free_milli - c.1,
            free_replicas: self.free_replicas - 1,
            idle: false,
        }
    }

    fn can_take(self, c: Charge, whole: bool) -> bool {
        self.free_replicas > 0
            && self.free_mib >= c.0
            && self.free_milli >= c.1
            && (!whole || self.idle)
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

/// A node's expected fragmentation in MiB of GPU memory: for each typical request,
/// weighted by its popularity, the free GPU memory it could not use on this node (all
/// of it when the node cannot host the request at all).
pub fn fragmentation(typical: &Typical, devices: &[Device], views: &[View]) -> f64 {
    let total: u64 = views.iter().map(|v| v.free_mib).sum();
    if total == 0 {
        return 0.0;
    }
    let mut f = 0.0;
    for &(req, p) in &typical.classes {
        let (need, multi) = match req {
            ShareRequest::Devices { count, .. } => (u32::from(count), count > 1),
            _ => (1, false),
        };
        let mut gpus: u32 = 0;
        let mut instances = 0u32;
        let mut unusable = 0u64;
        for (d, v) in devices.iter().zip(views) {
            match crate::state::charge(d, req, multi) {
                Some(c) if v.can_take(c, multi) => {
                    if d.mig.is_some() {
                        instances += 1;
                    } else {
                        gpus |= 1 << d.gpu;
                    }
                }
                _ => unusable += v.free_mib,
            }
        }
        let frag = if gpus.count_ones() + instances < need {
            total
        } else {
            unusable
        };
        f += p * frag as f64;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResourceId, ShareMode};
    use proptest::prelude::*;

    fn device(gpu: u8, mig: bool, replicas: u16, mode: ShareMode) -> Device {
        Device {
            gpu,
            mig: mig.then_some((0, gpu)),
            resource: ResourceId(u16::from(mig)),
            memory_mib: if mig { 10_240 } else { 81_920 },
            compute_milli: if mig { 142 } else { 1000 },
            replicas,
            mode,
            fail_multi: false,
        }
    }

    proptest! {
        /// The per-request breakdown gives the same value as the definition, before and
        /// after changing any one device.
        #[test]
        fn incremental_fragmentation_matches_the_definition(
            spec in prop::collection::vec((any::<bool>(), 1u16..5, 0u64..=100, 0u32..=100, 0u16..5), 1..9),
            change in 0usize..8,
            take in (0u64..=100, 0u32..=100),
        ) {
            let devices: Vec<Device> = spec
                .iter()
                .enumerate()
                .map(|(i, &(mig, r, ..))| device(i as u8, mig, r, if r > 1 { ShareMode::TimeSliced } else { ShareMode::Exclusive }))
                .collect();
            let views: Vec<View> = devices
                .iter()
                .zip(&spec)
                .map(|(d, &(_, _, m, c, used))| {
                    let used = used.min(d.replicas);
                    View {
                        free_mib: d.memory_mib * m / 100,
                        free_milli: d.compute_milli * c / 100,
                        free_replicas: d.replicas - used,
                        idle: used == 0,
                    }
                })
                .collect();
            let typical = Typical {
                classes: vec![
                    (ShareRequest::Devices { resource: ResourceId(0), count: 1 }, 0.3),
                    (ShareRequest::Devices { resource: ResourceId(0), count: 2 }, 0.1),
                    (ShareRequest::Devices { resource: ResourceId(1), count: 1 }, 0.2),
                    (ShareRequest::Memory { mib: 8_000, compute_milli: 0 }, 0.25),
                    (ShareRequest::Memory { mib: 30_000, compute_milli: 300 }, 0.15),
                ],
            };
            let frag = NodeFrag::new(&typical, &devices, &views);
            let direct = fragmentation(&typical, &devices, &views);
            prop_assert!((frag.value(&typical) - direct).abs() < 1e-6);
            let k = change % devices.len();
            let old = views[k];
            let new = View {
                free_mib: old.free_mib * take.0 / 100,
                free_milli: old.free_milli * take.1 / 100,
                free_replicas: old.free_replicas.saturating_sub(1),
                idle: false,
            };
            let mut changed = views.clone();
            changed[k] = new;
            let direct = fragmentation(&typical, &devices, &changed);
            prop_assert!((frag.with(&typical, &devices[k], old, new) - direct).abs() < 1e-6);
        }
    }
}

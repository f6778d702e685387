//! Soft quotas at PreFilter with kube-throttler's semantics (the rules are
//! `mlplane_model::throttle`'s): a pod that a `Throttle` or `ClusterThrottle` throttles
//! is rejected for every node as UnschedulableAndUnresolvable, so it waits in the queue
//! and never triggers preemption (kube-throttler#15); Reserve holds the pod's amount
//! until it is assumed into the state, so two pods in flight cannot both take the last
//! of a threshold.
//!
//! Used = the selected pods placed in the [`ClusterState`] (scheduled and not finished)
//! plus the selected pods reserved and not yet placed. Reasons are kube-throttler's:
//! `throttle[active]=ns/name`, `clusterthrottle[insufficient]=name`, one per status,
//! names joined by `,`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlplane_model::throttle::{Amount, Throttle, ThrottleCheck};
use mlplane_model::{Pod, PodId};
use rand::RngCore;

use crate::framework::{CycleState, Permit, PermitPlugin, Plugin, PreFilterPlugin, ReservePlugin};
use crate::state::{ClusterState, NodeId, NodeInfo, Placement};
use crate::status::Status;

/// Arguments of the `Throttles` plugin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThrottleArgs {
    /// The `Throttle`s and `ClusterThrottle`s.
    pub throttles: Vec<Throttle>,
    /// Labels of each namespace, for `namespaceSelector`.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// The throttles of a cluster, checked at PreFilter (see the module documentation).
#[derive(Debug)]
pub struct Throttles {
    throttles: Vec<Throttle>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// The clock for temporary overrides, seconds (the caller sets it).
    clock: Arc<AtomicU64>,
    reserved: Mutex<BTreeMap<PodId, Pod>>,
}

impl Throttles {
    /// `throttles`, with the labels of each namespace (for `namespaceSelector`); a
    /// namespace missing from `namespaces` has no labels.
    pub fn new(
        throttles: Vec<Throttle>,
        namespaces: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Self {
        Throttles {
            throttles,
            namespaces,
            clock: Arc::default(),
            reserved: Mutex::default(),
        }
    }

    /// The clock that temporary overrides are read against: store the current time in
    /// seconds before each cycle.
    pub fn clock(&self) -> Arc<AtomicU64> {
        self.clock.clone()
    }

    fn labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces.get(ns).cloned().unwrap_or_default()
    }

    /// What the pods `throttle` selects use in `state`, plus those reserved and not
    /// yet placed.
    pub fn used(&self, state: &ClusterState, throttle: &Throttle) -> Amount {
        let name = |r| state.cluster().resource_name(r).to_string();
        let labels = |ns: &str| self.labels(ns);
        let mut used = Amount {
            pods: Some(0),
            requests: BTreeMap::new(),
        };
        for i in 0..state.len() {
            for b in state.pods_on(NodeId(i as u32)) {
                if throttle.selects(&b.pod, &labels) {
                    used.add(&Amount::of_pod(&b.pod, &name));
                }
            }
        }
        let reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        for p in reserved.values() {
            if state.bound(p.id).is_none() && throttle.selects(p, &labels) {
                used.add(&Amount::of_pod(p, &name));
            }
        }
        used
    }
}

impl Plugin for Throttles {
    fn name(&self) -> &'static str {
        "Throttles"
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for Throttles {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        state: &ClusterState,
        pod: &Pod,
    ) -> Result<Option<Vec<NodeId>>, Status> {
        let now = self.clock.load(Ordering::Relaxed);
        let name = |r| state.cluster().resource_name(r).to_string();
        let asked = Amount::of_pod(pod, &name);
        let labels = |ns: &str| self.labels(ns);
        // (kind, status) -> names
        let mut found: BTreeMap<(&str, ThrottleCheck), BTreeSet<String>> = BTreeMap::new();
        for t in &self.throttles {
            if !t.selects(pod, &labels) {
                continue;
            }
            let check = t.check(&asked, &self.used(state, t), now);
            if check != ThrottleCheck::NotThrottled {
                let kind = if t.namespace.is_some() {
                    "throttle"
                } else {
                    "clusterthrottle"
                };
                found
                    .entry((kind, check))
                    .or_default()
                    .insert(t.full_name());
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        let reasons: Vec<String> = found
            .into_iter()
            .map(|((kind, check), names)| {
                format!(
                    "{kind}[{}]={}",
                    check.as_str(),
                    names.into_iter().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        let mut status = Status::unresolvable(self.name(), "");
        status.reasons.clear();
        for r in reasons {
            status.reasons.push(r.into());
        }
        Err(status)
    }
}

impl ReservePlugin for Throttles {
    fn reserve(
        &self,
        _: &mut CycleState,
        _: &ClusterState,
        pod: &Pod,
        _: &NodeInfo<'_>,
        _: &mut dyn RngCore,
    ) -> Result<(), Status> {
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pod.id, pod.clone());
        Ok(())
    }

    fn unreserve(&self, _: &mut CycleState, pod: &Pod, _: NodeId) {
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pod.id);
    }
}

impl PermitPlugin for Throttles {
    /// The pod is assumed into the state by now, where `used` counts it: the
    /// reservation is released.
    fn permit(&self, _: &mut CycleState, pod: &Pod, _: &Placement) -> Permit {
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pod.id);
        Permit::Allow
    }
}

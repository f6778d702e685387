//! Soft quotas with kube-throttler's semantics (pfnet/kube-throttler, API group
//! `schedule.k8s.everpeace.github.com/v1alpha1`): a `Throttle` (namespaced) or
//! `ClusterThrottle` selects pods by label selectors and caps how many of them run and
//! how much they request; over the cap, new pods wait instead of failing.
//!
//! Rules, as kube-throttler's `CheckThrottledFor` and `IsThrottled` apply them:
//! - **Selection.** A throttle selects a pod if any of its `selectorTerms` does (OR);
//!   a term needs its `podSelector` to match the pod's labels and, for a
//!   `ClusterThrottle`, its `namespaceSelector` to match the pod's namespace's labels
//!   (AND). A `Throttle` selects only pods of its own namespace.
//! - **Threshold.** The spec's threshold, unless temporary overrides are active (begin
//!   and end inclusive): then the active overrides replace it, merged resource by
//!   resource with the first active override winning. This is what kube-throttler's
//!   code does; its README says overrides "merge" with the spec, which the code does
//!   not: mlplane follows the code (see `docs/scheduling.md`).
//! - **Check of a pod** (in this order): `pod-requests-exceeds-threshold` if the pod
//!   alone is over the threshold (strictly); `active` if what the selected pods use
//!   (running plus reserved) is already at or over it; `insufficient` if used plus the
//!   pod would be over it (strictly); else not throttled. Only resources the pod
//!   requests count, and the pod count always does.

use std::collections::BTreeMap;

use crate::constraints::SelectorRequirement;
use crate::Pod;

/// A label selector: every `match_labels` entry and every expression must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions` (In, NotIn, Exists, DoesNotExist).
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// True if `labels` satisfy the selector (an empty selector matches everything, as
    /// Kubernetes' `LabelSelectorAsSelector` of an empty selector).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// One selector term of a throttle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThrottleTerm {
    /// `podSelector`.
    pub pod_selector: LabelSelector,
    /// `namespaceSelector` (`ClusterThrottle` only; `None` matches every namespace).
    pub namespace_selector: Option<LabelSelector>,
}

/// An amount: a pod count and resource requests by resource name (`cpu` in
/// millicores, `memory` in MiB, `nvidia.com/gpu` in devices, `mlplane.io/gpu-memory` in
/// MiB, any extended resource in its own unit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    /// `resourceCounts.pod`.
    pub pods: Option<u64>,
    /// `resourceRequests`.
    pub requests: BTreeMap<String, u64>,
}

/// A temporary override of a throttle's threshold, active from `begin_s` to `end_s`
/// inclusive (seconds on the caller's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdOverride {
    /// First second it is active.
    pub begin_s: u64,
    /// Last second it is active.
    pub end_s: u64,
    /// The threshold while active.
    pub threshold: Amount,
}

/// A `Throttle` (with a namespace) or `ClusterThrottle` (without).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// Name.
    pub name: String,
    /// The namespace of a `Throttle`; `None` for a `ClusterThrottle`.
    pub namespace: Option<String>,
    /// `selector.selectorTerms`, ORed.
    pub terms: Vec<ThrottleTerm>,
    /// `threshold`.
    pub threshold: Amount,
    /// `temporaryThresholdOverrides`.
    pub overrides: Vec<ThresholdOverride>,
}

/// The outcome of checking a pod against a throttle (kube-throttler's
/// `CheckThrottleStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThrottleCheck {
    /// Not throttled.
    NotThrottled,
    /// The selected pods already use the threshold or more.
    Active,
    /// Used plus the pod would exceed the threshold.
    Insufficient,
    /// The pod alone exceeds the threshold.
    PodRequestsExceedsThreshold,
}

impl ThrottleCheck {
    /// kube-throttler's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleCheck::NotThrottled => "not-throttled",
            ThrottleCheck::Active => "active",
            ThrottleCheck::Insufficient => "insufficient",
            ThrottleCheck::PodRequestsExceedsThreshold => "pod-requests-exceeds-threshold",
        }
    }
}

impl Throttle {
    /// The name as kube-throttler prints it: `namespace/name` or `name`.
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// True if the throttle selects `pod`; `namespace_labels` gives a namespace's labels
    /// (for a `ClusterThrottle`'s `namespaceSelector`).
    pub fn selects(
        &self,
        pod: &Pod,
        namespace_labels: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) -> bool {
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != pod.namespace)
        {
            return false;
        }
        self.terms.iter().any(|t| {
            t.pod_selector.matches(&pod.labels)
                && match (&self.namespace, &t.namespace_selector) {
                    (None, Some(sel)) => sel.matches(&namespace_labels(&pod.namespace)),
                    _ => true,
                }
        })
    }

    /// The threshold in force at `now_s` (see the module documentation).
    pub fn threshold_at(&self, now_s: u64) -> Amount {
        let active: Vec<&ThresholdOverride> = self
            .overrides
            .iter()
            .filter(|o| o.begin_s <= now_s && now_s <= o.end_s)
            .collect();
        if active.is_empty() {
            return self.threshold.clone();
        }
        let mut out = Amount::default();
        for o in active {
            if out.pods.is_none() {
                out.pods = o.threshold.pods;
            }
            for (r, v) in &o.threshold.requests {
                out.requests.entry(r.clone()).or_insert(*v);
            }
        }
        out
    }

    /// Checks `pod` (asking `asked`) against `used` (the selected pods running or
    /// reserved) at `now_s`.
    pub fn check(&self, asked: &Amount, used: &Amount, now_s: u64) -> ThrottleCheck {
        let th = self.threshold_at(now_s);
        // Over the threshold for a resource the pod asks for (or the pod count).
        let over = |amount: &Amount, on_equal: bool| {
            let cmp = |u: u64, t: u64| if on_equal { u >= t } else { u > t };
            let pods = th.pods.is_some_and(|t| cmp(amount.pods.unwrap_or(0), t));
            pods || th.requests.iter().any(|(r, &t)| {
                asked.requests.get(r).is_some_and(|&a| a > 0)
                    && cmp(amount.requests.get(r).copied().unwrap_or(0), t)
            })
        };
        if over(asked, false) {
            return ThrottleCheck::PodRequestsExceedsThreshold;
        }
        if over(used, true) {
            return ThrottleCheck::Active;
        }
        let mut total = used.clone();
        total.add(asked);
        if over(&total, false) {
            return ThrottleCheck::Insufficient;
        }
        ThrottleCheck::NotThrottled
    }
}

impl Amount {
    /// Adds `other` to this amount.
    pub fn add(&mut self, other: &Amount) {
        self.pods = Some(self.pods.unwrap_or(0) + other.pods.unwrap_or(0));
        for (r, v) in &other.requests {
            *self.requests.entry(r.clone()).or_default() += v;
        }
    }

    /// What a pod counts against throttles: one pod, its CPU (`cpu`, millicores) and
    /// memory (`memory`, MiB), its GPU request (`nvidia.com/gpu` devices for whole GPUs
    /// and milli shares, `mlplane.io/gpu-memory` MiB for a memory share, the named
    /// resource's count otherwise) and its extended resources; `resource_name` names a
    /// resource id.
    pub fn of_pod(pod: &Pod, resource_name: &dyn Fn(crate::ResourceId) -> String) -> Amount {
        let mut requests = BTreeMap::new();
        let mut put = |k: String, v: u64| {
            if v > 0 {
                *requests.entry(k).or_insert(0) += v;
            }
        };
        put("cpu".into(), pod.cpu_milli);
        put("memory".into(), pod.memory_mib);
        match pod.gpu {
            crate::GpuRequest::None => {}
            crate::GpuRequest::Whole(n) => put(crate::GPU_RESOURCE.into(), u64::from(n)),
            crate::GpuRequest::Milli(_) => put(crate::GPU_RESOURCE.into(), 1),
            crate::GpuRequest::Memory { mib, .. } => put(crate::MEMORY_RESOURCE.into(), mib),
            crate::GpuRequest::Devices { resource, count } => {
                put(resource_name(resource), u64::from(count))
            }
        }
        for (r, v) in &pod.extended {
            put(resource_name(*r), *v);
        }
        Amount {
            pods: Some(1),
            requests,
        }
    }
}

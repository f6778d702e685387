//! The scheduling queue, as kube-scheduler's `PriorityQueue`
//! (`pkg/scheduler/backend/queue/scheduling_queue.go`): an active queue ordered by the
//! profile's QueueSort, a backoff queue, and a set of unschedulable pods that wait for
//! something to change in the cluster.
//!
//! - [`SchedulingQueue::pop`] takes the first active pod (after moving every pod whose
//!   backoff has expired into the active queue) and starts a scheduling cycle.
//! - A pod that did not fit goes back with [`SchedulingQueue::requeue`]: to the
//!   unschedulable set, or straight to backoff if the cluster changed during its cycle
//!   (kube's `moveRequestCycle`), so a change is never missed.
//! - [`SchedulingQueue::cluster_changed`] (a pod left, a node appeared, a quota changed)
//!   moves every unschedulable pod to backoff, or to the active queue if its backoff has
//!   already expired.
//! - Backoff is 1 s after the first failure, doubling with each further one, at most
//!   10 s (kube's `podInitialBackoffSeconds` and `podMaxBackoffSeconds` defaults).
//! - A pod unschedulable for 5 minutes is moved anyway ([`SchedulingQueue::flush`],
//!   kube's `podMaxInUnschedulablePodsDuration`).
//!
//! A pod is therefore never retried in a busy loop: between two attempts there is a
//! cluster change and its backoff, or 5 minutes. Time is the caller's, in seconds (the
//! simulator's clock, or the wall clock in a server): nothing here sleeps.

use std::collections::BTreeMap;

use mlplane_model::{Pod, PodId};

use crate::framework::Profile;

/// Backoff after the first failure, seconds.
pub const INITIAL_BACKOFF_S: f64 = 1.0;
/// The longest backoff, seconds.
pub const MAX_BACKOFF_S: f64 = 10.0;
/// How long a pod stays unschedulable without a cluster change before it is retried,
/// seconds.
pub const MAX_UNSCHEDULABLE_S: f64 = 300.0;

/// A pod in the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedPod {
    /// The pod.
    pub pod: Pod,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When it last entered the unschedulable set or backoff, seconds.
    pub since_s: f64,
    /// The scheduling cycle of its last attempt.
    pub cycle: u64,
    /// Order of entry into the queue: breaks QueueSort ties, first in first out.
    pub seq: u64,
}

impl QueuedPod {
    /// The backoff after `attempts` failures: 1 s, 2 s, 4 s, ... at most 10 s.
    pub fn backoff_s(&self) -> f64 {
        let n = self.attempts.saturating_sub(1).min(16);
        (INITIAL_BACKOFF_S * f64::from(1u32 << n)).min(MAX_BACKOFF_S)
    }

    fn backoff_until(&self) -> f64 {
        self.since_s + self.backoff_s()
    }
}

/// Seconds as a sortable key (milliseconds).
fn key(t: f64) -> u64 {
    (t.max(0.0) * 1000.0).round() as u64
}

/// The three queues (see the module documentation).
#[derive(Debug)]
pub struct SchedulingQueue {
    /// A binary heap ordered by the profile's QueueSort (`less` = earlier).
    active: Vec<QueuedPod>,
    /// By (backoff expiry in ms, entry order).
    backoff: BTreeMap<(u64, u64), QueuedPod>,
    /// By entry order.
    unschedulable: BTreeMap<u64, QueuedPod>,
    entries: u64,
    scheduling_cycle: u64,
    move_request_cycle: Option<u64>,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new() -> Self {
        SchedulingQueue {
            active: Vec::new(),
            backoff: BTreeMap::new(),
            unschedulable: BTreeMap::new(),
            entries: 0,
            scheduling_cycle: 0,
            move_request_cycle: None,
        }
    }

    /// Pods in all three queues.
    pub fn len(&self) -> usize {
        self.active.len() + self.backoff.len() + self.unschedulable.len()
    }

    /// True if no pod waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pods in the active queue, the backoff queue and the unschedulable set.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.active.len(),
            self.backoff.len(),
            self.unschedulable.len(),
        )
    }

    /// True if `id` waits in any of the queues.
    pub fn contains(&self, id: PodId) -> bool {
        self.active.iter().any(|q| q.pod.id == id)
            || self.backoff.values().any(|q| q.pod.id == id)
            || self.unschedulable.values().any(|q| q.pod.id == id)
    }

    /// When the next backoff expires, seconds (for an event-driven caller).
    pub fn next_backoff_s(&self) -> Option<f64> {
        self.backoff
            .keys()
            .next()
            .map(|&(ms, _)| ms as f64 / 1000.0)
    }

    /// A new pod: into the active queue.
    pub fn add(&mut self, profile: &Profile, pod: Pod, now_s: f64) {
        self.entries += 1;
        let q = QueuedPod {
            pod,
            attempts: 0,
            since_s: now_s,
            cycle: 0,
            seq: self.entries,
        };
        self.push_active(profile, q);
    }

    /// Removes a pod that was deleted while waiting. True if it was there.
    pub fn remove(&mut self, profile: &Profile, id: PodId) -> bool {
        if let Some(i) = self.active.iter().position(|q| q.pod.id == id) {
            let rest: Vec<QueuedPod> = self
                .active
                .drain(..)
                .enumerate()
                .filter(|(k, _)| *k != i)
                .map(|(_, q)| q)
                .collect();
            for q in rest {
                self.push_active(profile, q);
            }
            return true;
        }
        let before = self.backoff.len() + self.unschedulable.len();
        self.backoff.retain(|_, q| q.pod.id != id);
        self.unschedulable.retain(|_, q| q.pod.id != id);
        before != self.backoff.len() + self.unschedulable.len()
    }

    /// The next pod to schedule at time `now_s`, starting its scheduling cycle: expired
    /// backoffs move to the active queue first; then the first active pod by the
    /// profile's QueueSort. `None` if no pod is active now.
    pub fn pop(&mut self, profile: &Profile, now_s: f64) -> Option<QueuedPod> {
        let due: Vec<(u64, u64)> = self
            .backoff
            .range(..=(key(now_s), u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let q = self.backoff.remove(&k).expect("listed");
            self.push_active(profile, q);
        }
        if self.active.is_empty() {
            return None;
        }
        let last = self.active.len() - 1;
        self.active.swap(0, last);
        let mut q = self.active.pop().expect("not empty");
        self.sift_down(profile, 0);
        self.scheduling_cycle += 1;
        q.attempts += 1;
        q.cycle = self.scheduling_cycle;
        Some(q)
    }

    /// A popped pod that did not fit comes back at `now_s`: to backoff if the cluster
    /// changed since its cycle started (a move request), else to the unschedulable set.
    pub fn requeue(&mut self, q: QueuedPod, now_s: f64) {
        let q = QueuedPod {
            since_s: now_s,
            ..q
        };
        self.entries += 1;
        if self.move_request_cycle.is_some_and(|m| m >= q.cycle) {
            self.backoff
                .insert((key(q.backoff_until()), self.entries), q);
        } else {
            self.unschedulable.insert(self.entries, q);
        }
    }

    /// Something changed that unschedulable pods may be waiting for (a pod left, a node
    /// appeared, a quota changed): every unschedulable pod moves to backoff, or to the
    /// active queue if its backoff has expired by `now_s`.
    pub fn cluster_changed(&mut self, profile: &Profile, now_s: f64) {
        self.move_request_cycle = Some(self.scheduling_cycle);
        let all = std::mem::take(&mut self.unschedulable);
        for (_, q) in all {
            self.requeue_after_change(profile, q, now_s);
        }
    }

    /// As [`SchedulingQueue::cluster_changed`], but only the unschedulable pods for
    /// which `hint` says the change may help move (kube's queueing hints,
    /// `QueueingHintFn` returning `Queue` or `QueueSkip`); the others keep waiting. The
    /// change still counts as a move request for pods in flight.
    pub fn cluster_changed_for(
        &mut self,
        profile: &Profile,
        now_s: f64,
        hint: &mut dyn FnMut(&Pod) -> bool,
    ) {
        self.move_request_cycle = Some(self.scheduling_cycle);
        let moved: Vec<u64> = self
            .unschedulable
            .iter()
            .filter(|(_, q)| hint(&q.pod))
            .map(|(k, _)| *k)
            .collect();
        for k in moved {
            let q = self.unschedulable.remove(&k).expect("listed");
            self.requeue_after_change(profile, q, now_s);
        }
    }

    /// The earliest time at which [`SchedulingQueue::flush`] would move a pod, seconds.
    pub fn next_flush_s(&self) -> Option<f64> {
        self.unschedulable
            .values()
            .map(|q| q.since_s + MAX_UNSCHEDULABLE_S)
            .min_by(f64::total_cmp)
    }

    /// Moves the pods that have been unschedulable for [`MAX_UNSCHEDULABLE_S`] or more by
    /// `now_s` (kube's periodic flush).
    pub fn flush(&mut self, profile: &Profile, now_s: f64) {
        let old: Vec<u64> = self
            .unschedulable
            .iter()
            .filter(|(_, q)| now_s - q.since_s >= MAX_UNSCHEDULABLE_S)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            let q = self.unschedulable.remove(&k).expect("listed");
            self.requeue_after_change(profile, q, now_s);
        }
    }

    fn requeue_after_change(&mut self, profile: &Profile, q: QueuedPod, now_s: f64) {
        if q.backoff_until() <= now_s {
            self.push_active(profile, q);
        } else {
            self.entries += 1;
            self.backoff
                .insert((key(q.backoff_until()), self.entries), q);
        }
    }

    fn push_active(&mut self, profile: &Profile, q: QueuedPod) {
        self.active.push(q);
        let mut i = self.active.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if before(profile, &self.active[i], &self.active[parent]) {
                self.active.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, profile: &Profile, mut i: usize) {
        let n = self.active.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut first = i;
            if l < n && before(profile, &self.active[l], &self.active[first]) {
                first = l;
            }
            if r < n && before(profile, &self.active[r], &self.active[first]) {
                first = r;
            }
            if first == i {
                return;
            }
            self.active.swap(i, first);
            i = first;
        }
    }
}

/// QueueSort's order, ties by entry into the queue.
fn before(profile: &Profile, a: &QueuedPod, b: &QueuedPod) -> bool {
    profile.queue_less(&a.pod, &b.pod) || (!profile.queue_less(&b.pod, &a.pod) && a.seq < b.seq)
}

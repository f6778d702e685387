//! The scheduling queue, worked by hand from kube-scheduler's PriorityQueue: order by
//! priority then creation (then entry), failed pods wait for a cluster change and their
//! backoff (1 s doubling to 10 s), a change during a pod's cycle is not missed, and a
//! pod unschedulable for 5 minutes is retried anyway.

use mlplane_model::{GpuRequest, Pod};
use mlplane_sched::queue::SchedulingQueue;
use mlplane_sched::Profile;

fn pod(name: &str, priority: i32, created_s: u64) -> Pod {
    Pod {
        priority,
        created_s,
        ..Pod::new(name, 1, 1, GpuRequest::None)
    }
}

fn names(q: &mut SchedulingQueue, p: &Profile, now: f64) -> Vec<String> {
    std::iter::from_fn(|| q.pop(p, now).map(|x| x.pod.name)).collect()
}

#[test]
fn pops_by_priority_then_creation_then_entry() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    for (n, prio, t) in [
        ("low-old", 100, 1),
        ("high-new", 1000, 9),
        ("low-new", 100, 5),
        ("high-old", 1000, 2),
        ("low-old-2", 100, 1),
    ] {
        q.add(&p, pod(n, prio, t), 0.0);
    }
    assert_eq!(
        names(&mut q, &p, 0.0),
        ["high-old", "high-new", "low-old", "low-old-2", "low-new"]
    );
}

#[test]
fn an_unschedulable_pod_waits_for_a_change_and_its_backoff() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    q.add(&p, pod("a", 0, 0), 0.0);
    let a = q.pop(&p, 0.0).unwrap();
    assert_eq!(a.attempts, 1);
    q.requeue(a, 0.5);
    assert_eq!(q.sizes(), (0, 0, 1));
    // No change in the cluster: never retried, however late.
    assert!(q.pop(&p, 100.0).is_none());
    // A change at 1.0: the backoff after one failure is 1 s from 0.5, so it runs until
    // 1.5 and the pod waits in the backoff queue until then.
    q.cluster_changed(&p, 1.0);
    assert_eq!(q.sizes(), (0, 1, 0));
    assert_eq!(q.next_backoff_s(), Some(1.5));
    assert!(q.pop(&p, 1.4).is_none());
    let a = q.pop(&p, 1.5).unwrap();
    assert_eq!(a.attempts, 2);
    // Second failure at 2.0: backoff 2 s. A change at 10.0 is after it: straight to active.
    q.requeue(a, 2.0);
    q.cluster_changed(&p, 10.0);
    assert_eq!(q.sizes(), (1, 0, 0));
    assert_eq!(q.pop(&p, 10.0).unwrap().attempts, 3);
}

#[test]
fn backoff_doubles_up_to_ten_seconds() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    q.add(&p, pod("a", 0, 0), 0.0);
    let mut seen = Vec::new();
    let mut now = 0.0;
    for _ in 0..6 {
        let a = q.pop(&p, now).unwrap();
        seen.push(a.backoff_s());
        q.requeue(a, now);
        q.cluster_changed(&p, now);
        now = q.next_backoff_s().unwrap();
    }
    assert_eq!(seen, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
}

#[test]
fn a_change_during_the_cycle_sends_the_pod_to_backoff_not_to_wait() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    q.add(&p, pod("a", 0, 0), 0.0);
    let a = q.pop(&p, 0.0).unwrap();
    // While a was being scheduled, a pod left.
    q.cluster_changed(&p, 0.2);
    q.requeue(a, 0.3);
    assert_eq!(q.sizes(), (0, 1, 0), "in backoff, not unschedulable");
    assert_eq!(q.pop(&p, 1.3).unwrap().pod.name, "a");
}

#[test]
fn a_pod_unschedulable_for_five_minutes_is_retried() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    q.add(&p, pod("a", 0, 0), 0.0);
    let a = q.pop(&p, 0.0).unwrap();
    q.requeue(a, 10.0);
    q.flush(&p, 309.9);
    assert_eq!(q.sizes(), (0, 0, 1));
    q.flush(&p, 310.0);
    assert_eq!(q.sizes(), (1, 0, 0));
}

#[test]
fn a_deleted_pod_leaves_the_queue() {
    let p = Profile::new("q");
    let mut q = SchedulingQueue::new();
    let (a, b, c) = (pod("a", 3, 0), pod("b", 2, 0), pod("c", 1, 0));
    let (ida, idc) = (a.id, c.id);
    for x in [a, b, c] {
        q.add(&p, x, 0.0);
    }
    assert!(q.remove(&p, ida));
    assert!(!q.remove(&p, ida));
    let c = {
        let b = q.pop(&p, 0.0).unwrap();
        assert_eq!(b.pod.name, "b");
        q.pop(&p, 0.0).unwrap()
    };
    q.requeue(c, 0.0);
    assert!(q.contains(idc));
    assert!(q.remove(&p, idc));
    assert!(q.is_empty());
}

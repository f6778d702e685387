//! The framework's extension points, each exercised by small recording plugins:
//! PreFilter narrowing and rejecting, PostFilter nominating, Reserve in order with
//! Unreserve in reverse on failure, Permit, Bind, QueueSort, and profiles built by name.

use std::sync::{Arc, Mutex};

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, TaintEffect};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    BindPlugin, ClusterState, Code, CycleState, Diagnosis, FilterRunner, NodeId, NodeInfo,
    Nomination, Permit, PermitPlugin, Placement, Plugin, PostFilterPlugin, PreFilterPlugin,
    Profile, ProfileConfig, Registry, ReservePlugin, ScheduleError, Scheduler, Status,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Log = Arc<Mutex<Vec<String>>>;

fn cluster(n: usize) -> Arc<Cluster> {
    Arc::new(
        Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: Some(15_360),
            }],
            (0..n)
                .map(|i| {
                    Node::new(format!("n{i}"), 8_000, 32_768).with_gpus(GpuModelId(0), 1, 15_360)
                })
                .collect(),
        )
        .unwrap(),
    )
}

fn base(c: &Cluster) -> Profile {
    Profile::new("test")
        .with_all(plugins::default_filters(c))
        .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1)
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(3)
}

/// PreFilter named `name` that keeps only `keep`, or rejects with `reject`.
struct Narrow {
    name: &'static str,
    keep: Option<Vec<NodeId>>,
    reject: Option<Status>,
}

impl Plugin for Narrow {
    fn name(&self) -> &'static str {
        self.name
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for Narrow {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        _: &ClusterState,
        _: &Pod,
    ) -> Result<Option<Vec<NodeId>>, Status> {
        match &self.reject {
            Some(s) => Err(s.clone()),
            None => Ok(self.keep.clone()),
        }
    }
}

#[test]
fn pre_filter_narrows_the_nodes_and_their_intersection_is_kept() {
    let c = cluster(4);
    let mut st = ClusterState::new(c.clone());
    let profile = base(&c)
        .with(
            Arc::new(Narrow {
                name: "NarrowA",
                keep: Some(vec![NodeId(3), NodeId(1), NodeId(2)]),
                reject: None,
            }),
            1,
        )
        .with(
            Arc::new(Narrow {
                name: "NarrowB",
                keep: Some(vec![NodeId(2), NodeId(0)]),
                reject: None,
            }),
            1,
        );
    let mut s = Scheduler::new(profile);
    let p = s
        .schedule(
            &mut st,
            &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(p.node, NodeId(2), "only node 2 is in both answers");
    // Now node 2 is full: the nodes PreFilter left out are unresolvable in the diagnosis.
    let err = s
        .schedule(
            &mut st,
            &Pod::new("q", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap_err();
    let d = err.diagnosis().unwrap();
    assert_eq!(d.statuses.len(), 4);
    let codes: Vec<Code> = d.statuses.iter().map(|(_, s)| s.code).collect();
    assert_eq!(
        codes,
        [
            Code::UnschedulableAndUnresolvable,
            Code::UnschedulableAndUnresolvable,
            Code::Unschedulable,
            Code::UnschedulableAndUnresolvable
        ]
    );
}

/// PostFilter that records the diagnosis it saw and nominates `nominate`.
struct Nominate {
    seen: Arc<Mutex<Option<Diagnosis>>>,
    nominate: Option<NodeId>,
}

impl Plugin for Nominate {
    fn name(&self) -> &'static str {
        "Nominate"
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

impl PostFilterPlugin for Nominate {
    fn post_filter(
        &self,
        _: &CycleState,
        _: &ClusterState,
        _: &Pod,
        d: &Diagnosis,
        _: &FilterRunner<'_>,
    ) -> Result<Option<Nomination>, Status> {
        *self.seen.lock().unwrap() = Some(d.clone());
        match self.nominate {
            Some(n) => Ok(Some(Nomination {
                node: n,
                victims: Vec::new(),
            })),
            None => Err(Status::unschedulable(
                "Nominate",
                "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod",
            )),
        }
    }
}

#[test]
fn pre_filter_rejection_is_a_diagnosis_for_every_node_and_post_filter_sees_it() {
    let c = cluster(2);
    let mut st = ClusterState::new(c.clone());
    let seen = Arc::new(Mutex::new(None));
    let profile = base(&c)
        .with(
            Arc::new(Narrow {
                name: "Narrow",
                keep: None,
                reject: Some(Status::unresolvable("Narrow", "pod is throttled")),
            }),
            1,
        )
        .with(
            Arc::new(Nominate {
                seen: seen.clone(),
                nominate: None,
            }),
            1,
        );
    let err = Scheduler::new(profile)
        .schedule(&mut st, &Pod::new("p", 1, 1, GpuRequest::None), &mut rng())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/2 nodes are available: pod is throttled. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    let d = seen.lock().unwrap().clone().expect("PostFilter ran");
    assert_eq!(d.statuses.len(), 2);
    assert!(!d.preemption_might_help());
    assert_eq!(st.pod_count(), 0);
}

#[test]
fn post_filter_runs_only_when_nothing_fits_and_its_nomination_is_returned() {
    let c = cluster(2);
    let mut st = ClusterState::new(c.clone());
    let seen = Arc::new(Mutex::new(None));
    let mut s = Scheduler::new(base(&c).with(
        Arc::new(Nominate {
            seen: seen.clone(),
            nominate: Some(NodeId(1)),
        }),
        1,
    ));
    for _ in 0..2 {
        s.schedule(
            &mut st,
            &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap();
    }
    assert!(
        seen.lock().unwrap().is_none(),
        "not run while a node was feasible"
    );
    match s.schedule(
        &mut st,
        &Pod::new("q", 1, 1, GpuRequest::Whole(1)),
        &mut rng(),
    ) {
        Err(ScheduleError::Unschedulable {
            nominated,
            diagnosis,
        }) => {
            assert_eq!(nominated.map(|n| n.node), Some(NodeId(1)));
            assert_eq!(
                diagnosis.reason_counts(),
                [("Insufficient nvidia.com/gpu".to_string(), 2)]
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Reserve plugin that logs and fails when told to.
struct Rec {
    name: &'static str,
    fail: bool,
    log: Log,
}

impl Plugin for Rec {
    fn name(&self) -> &'static str {
        self.name
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        self.name.starts_with("permit").then_some(self)
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        self.name.starts_with("bind").then_some(self)
    }
}

impl ReservePlugin for Rec {
    fn reserve(
        &self,
        _: &mut CycleState,
        _: &ClusterState,
        _: &Pod,
        _: &NodeInfo<'_>,
        _: &mut dyn RngCore,
    ) -> Result<(), Status> {
        self.log
            .lock()
            .unwrap()
            .push(format!("reserve {}", self.name));
        if self.fail && !self.name.starts_with("permit") && !self.name.starts_with("bind") {
            Err(Status::unschedulable(self.name, "no room"))
        } else {
            Ok(())
        }
    }
    fn unreserve(&self, _: &mut CycleState, _: &Pod, _: NodeId) {
        self.log
            .lock()
            .unwrap()
            .push(format!("unreserve {}", self.name));
    }
}

impl PermitPlugin for Rec {
    fn permit(&self, _: &mut CycleState, _: &Pod, _: &Placement) -> Permit {
        self.log
            .lock()
            .unwrap()
            .push(format!("permit {}", self.name));
        if self.fail {
            Permit::Reject(Status::unschedulable(self.name, "gang incomplete"))
        } else {
            Permit::Allow
        }
    }
}

impl BindPlugin for Rec {
    fn bind(&self, _: &mut CycleState, _: &Pod, _: &Placement) -> Result<(), Status> {
        self.log.lock().unwrap().push(format!("bind {}", self.name));
        if self.name == "bind-skip" {
            Err(Status::skip(self.name))
        } else if self.fail {
            Err(Status::error(self.name, "API server unreachable"))
        } else {
            Ok(())
        }
    }
}

fn rec(name: &'static str, fail: bool, log: &Log) -> Arc<dyn Plugin> {
    Arc::new(Rec {
        name,
        fail,
        log: log.clone(),
    })
}

#[test]
fn reserve_runs_in_order_and_unreserve_in_reverse_when_one_fails() {
    let c = cluster(1);
    let mut st = ClusterState::new(c.clone());
    let log: Log = Arc::default();
    let profile = base(&c)
        .with(rec("a", false, &log), 1)
        .with(rec("b", true, &log), 1)
        .with(rec("c", false, &log), 1);
    let err = Scheduler::new(profile)
        .schedule(
            &mut st,
            &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        ScheduleError::Failed {
            phase: "Reserve",
            ..
        }
    ));
    // kube runs every reserve plugin's Unreserve, in reverse order, after a failure.
    assert_eq!(
        *log.lock().unwrap(),
        [
            "reserve a",
            "reserve b",
            "unreserve c",
            "unreserve b",
            "unreserve a"
        ]
    );
    assert_eq!(st.pod_count(), 0);
    assert_eq!(st.gpu_used_milli(), 0);
}

#[test]
fn permit_rejection_and_bind_failure_forget_the_assumed_pod() {
    for (plugins, phase) in [
        (vec![("permit-x", true)], "Permit"),
        (vec![("bind-skip", false), ("bind-x", true)], "Bind"),
    ] {
        let c = cluster(1);
        let mut st = ClusterState::new(c.clone());
        let log: Log = Arc::default();
        let mut profile = base(&c);
        for (n, f) in &plugins {
            profile = profile.with(rec(n, *f, &log), 1);
        }
        let err = Scheduler::new(profile)
            .schedule(
                &mut st,
                &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
                &mut rng(),
            )
            .unwrap_err();
        match err {
            ScheduleError::Failed { phase: p, .. } => assert_eq!(p, phase),
            other => panic!("{other:?}"),
        }
        assert_eq!(st.pod_count(), 0, "{phase}: the pod is forgotten");
        assert_eq!(st.gpu_used_milli(), 0);
        let log = log.lock().unwrap();
        assert!(log.last().unwrap().starts_with("unreserve"), "{log:?}");
    }
    // A binder that skips passes to the next, which binds.
    let c = cluster(1);
    let mut st = ClusterState::new(c.clone());
    let log: Log = Arc::default();
    let profile = base(&c)
        .with(rec("bind-skip", false, &log), 1)
        .with(rec("bind-ok", false, &log), 1);
    Scheduler::new(profile)
        .schedule(
            &mut st,
            &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(st.pod_count(), 1);
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("bind"))
            .collect::<Vec<_>>(),
        ["bind bind-skip", "bind bind-ok"]
    );
}

#[test]
fn evaluate_leaves_state_and_reservations_as_they_were() {
    let c = cluster(1);
    let st = ClusterState::new(c.clone());
    let log: Log = Arc::default();
    let mut s = Scheduler::new(base(&c).with(rec("a", false, &log), 1));
    let p = s
        .evaluate(
            &st,
            &Pod::new("p", 1, 1, GpuRequest::Milli(300)),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(p.grants[0].compute_milli, 300);
    assert_eq!(st.pod_count(), 0);
    assert_eq!(*log.lock().unwrap(), ["reserve a", "unreserve a"]);
}

#[test]
fn priority_sort_orders_by_priority_then_creation() {
    let c = cluster(1);
    let p = base(&c);
    let mk = |prio: i32, t: u64| {
        let mut x = Pod::new("p", 1, 1, GpuRequest::None);
        x.priority = prio;
        x.created_s = t;
        x
    };
    assert!(
        p.queue_less(&mk(1000, 50), &mk(100, 10)),
        "higher priority first"
    );
    assert!(p.queue_less(&mk(100, 10), &mk(100, 50)), "then older first");
    assert!(!p.queue_less(&mk(100, 10), &mk(100, 10)));
    let with = Profile::new("x").with(Arc::new(plugins::PrioritySort), 1);
    assert!(with.queue_less(&mk(1000, 50), &mk(100, 10)));
}

#[test]
fn profiles_are_built_by_name_with_checked_fields() {
    let c = cluster(1);
    let r = Registry::builtin();
    let ok = ProfileConfig::new("gpu")
        .with_default_filters()
        .plugin("GpuSelectBestFit", 1);
    let p = r.build(&ok, &c).unwrap();
    assert!(p.describe().contains(
        "filter [NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit, GpuModelFit, DeviceFit]"
    ), "{}", p.describe());
    let err = |cfg: ProfileConfig| r.build(&cfg, &c).err().unwrap().to_string();
    assert_eq!(
        err(ok.clone().plugin("Nope", 1)),
        format!(
            "profile \"gpu\": plugins[7].name: unknown plugin \"Nope\"; known: {}",
            r.names().collect::<Vec<_>>().join(", ")
        )
    );
    assert_eq!(
        err(ProfileConfig::new("gpu").plugin("TaintToleration", 0)),
        "profile \"gpu\": plugins[0].weight: must be at least 1, got 0"
    );
    assert_eq!(
        err(ok.clone().plugin("DeviceFit", 1)),
        "profile \"gpu\": plugins[7].name: DeviceFit is listed twice"
    );
    assert_eq!(
        err(ok.clone().args("GpuSelectRandom", Arc::new(()))),
        "profile \"gpu\": pluginConfig[0].name: GpuSelectRandom has arguments but is not enabled in this profile"
    );
    // A default filter can be disabled: without TaintToleration, a tainted node takes the pod.
    let mut tainted = Node::new("t", 8_000, 32_768).with_gpus(GpuModelId(0), 1, 15_360);
    tainted.taints = vec![mlplane_model::Taint {
        key: "gpu".into(),
        value: "shared".into(),
        effect: TaintEffect::NoSchedule,
    }];
    let tc = Arc::new(
        Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: None,
            }],
            vec![tainted],
        )
        .unwrap(),
    );
    let pod = Pod::new("p", 1, 1, GpuRequest::Whole(1));
    let mut st = ClusterState::new(tc.clone());
    assert!(Scheduler::new(r.build(&ok, &tc).unwrap())
        .schedule(&mut st, &pod, &mut rng())
        .is_err());
    let off = ok.clone().disable("TaintToleration");
    Scheduler::new(r.build(&off, &tc).unwrap())
        .schedule(&mut st, &pod, &mut rng())
        .unwrap();
}

#[test]
fn a_gpu_pod_without_a_device_allocator_fails_at_reserve() {
    let c = cluster(1);
    let mut st = ClusterState::new(c.clone());
    let profile = Profile::new("no-allocator").with_all(plugins::default_filters(&c));
    let err = Scheduler::new(profile)
        .schedule(
            &mut st,
            &Pod::new("p", 1, 1, GpuRequest::Whole(1)),
            &mut rng(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no reserve plugin of profile no-allocator assigned devices"),
        "{err}"
    );
    assert_eq!(st.pod_count(), 0);
}

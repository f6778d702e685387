//! The accounting rules of GPU sharing, each a test, plus bad configuration errors.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, Node};
use mlplane_share::config::SharingConfig;
use mlplane_share::sched::{SharePolicy, ShareScheduler, Typical};
use mlplane_share::state::{Refusal, ShareState};
use mlplane_share::{Grant, Plan, SharePlacement, SharePod, ShareRequest};
use rand::SeedableRng;

/// A cluster of `nodes` (name, model, GPU count), 64 cores and 256 GiB each.
fn cluster(nodes: &[(&str, &str, u8)]) -> Arc<Cluster> {
    let mut models: Vec<String> = nodes.iter().map(|n| n.1.to_string()).collect();
    models.sort();
    models.dedup();
    let ns = nodes
        .iter()
        .map(|(name, model, count)| {
            Node::new(name.to_string(), 64_000, 262_144).with_gpus(
                GpuModelId(models.iter().position(|m| m == model).unwrap() as u16),
                *count,
                0,
            )
        })
        .collect();
    let models = models
        .into_iter()
        .map(|name| GpuModel {
            name,
            memory_mib: None,
        })
        .collect();
    Arc::new(Cluster::new(models, ns).unwrap())
}

fn plan(cfg: &str, c: &Cluster) -> Arc<Plan> {
    Arc::new(
        SharingConfig::parse(cfg, "test.yaml")
            .unwrap()
            .resolve(c)
            .unwrap(),
    )
}

fn pod(name: &str, gpu: ShareRequest) -> SharePod {
    SharePod {
        name: name.into(),
        cpu_milli: 1000,
        memory_mib: 1024,
        gpu,
    }
}

fn gpus(plan: &Plan, resource: &str, count: u8) -> ShareRequest {
    ShareRequest::Devices {
        resource: plan.resource(resource).expect("resource"),
        count,
    }
}

fn mem(mib: u64) -> ShareRequest {
    ShareRequest::Memory {
        mib,
        compute_milli: 0,
    }
}

/// Schedules and assumes `pod`; returns the placement or the refusal text.
fn place(state: &mut ShareState, p: &SharePod) -> Result<SharePlacement, String> {
    let s = ShareScheduler::new(SharePolicy::BestFit, Typical::default(), Vec::new());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let pl = s.schedule(state, p, &mut rng).map_err(|e| e.to_string())?;
    state.assume(p, &pl).map_err(|e| e.to_string())?;
    Ok(pl)
}

const TS_A10: &str = "
nodeGroups:
  - name: ts
    sharing:
      timeSlicing:
        failRequestsGreaterThanOne: true
        resources:
          - name: nvidia.com/gpu
            replicas: 10
";

#[test]
fn two_whole_gpus_are_two_distinct_physical_gpus() {
    let c = cluster(&[("n0", "H100-80GB", 4)]);
    let p = Arc::new(Plan::whole(&c).unwrap());
    let mut st = ShareState::new(c.clone(), p.clone());
    for i in 0..2 {
        let pl = place(
            &mut st,
            &pod(&format!("p{i}"), gpus(&p, "nvidia.com/gpu", 2)),
        )
        .unwrap();
        let devs: Vec<u8> = pl
            .grants
            .iter()
            .map(|g| p.devices(0)[g.device as usize].gpu)
            .collect();
        assert_eq!(devs.len(), 2);
        assert_ne!(devs[0], devs[1]);
    }
    // All four GPUs are taken: a fifth whole GPU is refused.
    let e = place(&mut st, &pod("p9", gpus(&p, "nvidia.com/gpu", 1))).unwrap_err();
    assert!(e.contains("Insufficient nvidia.com/gpu"), "{e}");
    // Even when the scheduler is bypassed, assume refuses one GPU twice.
    let c = cluster(&[("n0", "H100-80GB", 4)]);
    let p = Arc::new(Plan::whole(&c).unwrap());
    let mut st = ShareState::new(c, p.clone());
    let twice = SharePlacement {
        node: ShareState::node_id(0),
        grants: vec![
            Grant {
                device: 1,
                replica: 0,
                memory_mib: 81920,
                compute_milli: 1000,
            },
            Grant {
                device: 1,
                replica: 0,
                memory_mib: 81920,
                compute_milli: 1000,
            },
        ],
    };
    let e = st
        .assume(&pod("x", gpus(&p, "nvidia.com/gpu", 2)), &twice)
        .unwrap_err();
    assert!(e.to_string().contains("granted twice"), "{e}");
    assert_eq!(st.memory_used_mib(), 0, "a refused assume changes nothing");
}

#[test]
fn two_replicas_on_a_time_sliced_node_are_never_one_gpu() {
    // With failRequestsGreaterThanOne (the device plugin's advice), refused with the reason.
    let c = cluster(&[("n0", "A10", 2)]);
    let p = plan(TS_A10, &c);
    let mut st = ShareState::new(c.clone(), p.clone());
    let e = place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).unwrap_err();
    assert!(e.contains("failRequestsGreaterThanOne"), "{e}");
    // Without it: mapped to two distinct physical GPUs, each taken whole.
    let p = plan(
        &TS_A10.replace(
            "failRequestsGreaterThanOne: true",
            "failRequestsGreaterThanOne: false",
        ),
        &c,
    );
    let mut st = ShareState::new(c, p.clone());
    let pl = place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).unwrap();
    let g: Vec<u8> = pl
        .grants
        .iter()
        .map(|g| p.devices(0)[g.device as usize].gpu)
        .collect();
    assert_eq!(g, [0, 1]);
    assert!(pl
        .grants
        .iter()
        .all(|g| g.memory_mib == 24 * 1024 && g.compute_milli == 1000));
    // Both GPUs are now full: one replica more does not fit.
    assert!(place(&mut st, &pod("one", gpus(&p, "nvidia.com/gpu", 1))).is_err());
}

#[test]
fn gpu_two_on_one_gpu_shared_100_ways_is_infeasible() {
    let c = cluster(&[("n0", "A10", 1)]);
    for fail in ["true", "false"] {
        let cfg = TS_A10.replace("replicas: 10", "replicas: 100").replace(
            "failRequestsGreaterThanOne: true",
            &format!("failRequestsGreaterThanOne: {fail}"),
        );
        let p = plan(&cfg, &c);
        let mut st = ShareState::new(c.clone(), p.clone());
        assert!(
            place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).is_err(),
            "fail={fail}"
        );
        // One replica is fine, and its ID carries the plugin's replica suffix.
        let pl = place(&mut st, &pod("one", gpus(&p, "nvidia.com/gpu", 1))).unwrap();
        let d = &p.devices(0)[pl.grants[0].device as usize];
        assert_eq!(p.device_id("A10", d, pl.grants[0].replica), "gpu0::0");
        // The replica is charged 1/100 of the GPU.
        assert_eq!(pl.grants[0].memory_mib, 24 * 1024 / 100);
    }
}

#[test]
fn memory_is_never_over_committed_however_many_replicas() {
    // A 24 GiB GPU advertised 10 ways: two 12 GiB shares fit, a third is refused.
    let c = cluster(&[("n0", "A10", 1)]);
    let p = plan(TS_A10, &c);
    let mut st = ShareState::new(c, p.clone());
    place(&mut st, &pod("a", mem(12 * 1024))).unwrap();
    place(&mut st, &pod("b", mem(12 * 1024))).unwrap();
    let e = place(&mut st, &pod("c", mem(12 * 1024))).unwrap_err();
    assert!(e.contains("Insufficient GPU memory"), "{e}");
    // Not even a single replica by count (its fair share, 2457 MiB) fits now.
    assert!(place(&mut st, &pod("d", gpus(&p, "nvidia.com/gpu", 1))).is_err());
    assert_eq!(st.memory_used_mib(), 24 * 1024);
    // A memory share on an unshared GPU is refused: whole GPUs are not split.
    let c = cluster(&[("n0", "A10", 1)]);
    let p = Arc::new(Plan::whole(&c).unwrap());
    let mut st = ShareState::new(c, p);
    assert!(place(&mut st, &pod("a", mem(1024))).is_err());
}

#[test]
fn replicas_run_out_before_memory_when_shares_are_small() {
    let c = cluster(&[("n0", "A10", 1)]);
    let p = plan(&TS_A10.replace("replicas: 10", "replicas: 3"), &c);
    let mut st = ShareState::new(c, p);
    for i in 0..3 {
        place(&mut st, &pod(&format!("p{i}"), mem(1024))).unwrap();
    }
    assert!(place(&mut st, &pod("p3", mem(1024))).is_err());
}

#[test]
fn mps_splits_memory_and_compute_equally() {
    let cfg = "
nodeGroups:
  - name: mps
    sharing:
      mps:
        resources:
          - name: nvidia.com/gpu
            replicas: 4
";
    let c = cluster(&[("n0", "H100-80GB", 1)]);
    let p = plan(cfg, &c);
    let mut st = ShareState::new(c, p.clone());
    // A 30 GiB share does not fit a 20 GiB MPS slot.
    assert!(place(&mut st, &pod("big", mem(30 * 1024))).is_err());
    // A 10 GiB share takes a whole 20 GiB slot and 250m.
    let pl = place(&mut st, &pod("small", mem(10 * 1024))).unwrap();
    assert_eq!(
        (pl.grants[0].memory_mib, pl.grants[0].compute_milli),
        (20 * 1024, 250)
    );
    // MPS never gives one container two replicas.
    let e = place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).unwrap_err();
    assert!(e.contains("failRequestsGreaterThanOne"), "{e}");
}

const MIG: &str = "
migConfigs:
  mix:
    - devices: [0]
      mig-enabled: true
      mig-devices: { \"3g.40gb\": 1, \"2g.20gb\": 1, \"1g.10gb\": 2 }
    - devices: [1]
      mig-enabled: false
nodeGroups:
  - name: mig
    migStrategy: mixed
    migConfig: mix
";

#[test]
fn mig_requests_land_only_on_free_instances_of_their_profile() {
    let c = cluster(&[("n0", "H100-80GB", 2)]);
    let p = plan(MIG, &c);
    // GPU 0: four instances; GPU 1: a whole GPU.
    assert_eq!(p.devices(0).len(), 5);
    let mut st = ShareState::new(c, p.clone());
    let r = gpus(&p, "nvidia.com/mig-1g.10gb", 1);
    let a = place(&mut st, &pod("a", r)).unwrap();
    let b = place(&mut st, &pod("b", r)).unwrap();
    let ids: Vec<String> = [a, b]
        .iter()
        .map(|pl| {
            let d = &p.devices(0)[pl.grants[0].device as usize];
            p.device_id("H100-80GB", d, pl.grants[0].replica)
        })
        .collect();
    // With the 3g at slice 0 and the 2g at 4, the second 1g would need slice 7, where
    // no 1-slice profile may start; so the geometry is 3g@4, 2g@0, 1g@2, 1g@3.
    assert_eq!(ids, ["gpu0/mig-1g.10gb@2", "gpu0/mig-1g.10gb@3"]);
    // Both 1g instances are used: a third 1g request is refused even though a 2g and
    // a 3g are free and GPU 1 is idle.
    let e = place(&mut st, &pod("c", r)).unwrap_err();
    assert!(e.contains("Insufficient nvidia.com/mig-1g.10gb"), "{e}");
    // The whole GPU is still there for nvidia.com/gpu.
    let w = place(&mut st, &pod("w", gpus(&p, "nvidia.com/gpu", 1))).unwrap();
    assert_eq!(p.devices(0)[w.grants[0].device as usize].gpu, 1);
}

#[test]
fn time_sliced_mig_instances_count_replicas_per_instance() {
    let cfg = "
migConfigs:
  all-3g:
    - devices: all
      mig-enabled: true
      mig-devices: { \"3g.40gb\": 2 }
nodeGroups:
  - name: mig
    migStrategy: mixed
    migConfig: all-3g
    sharing:
      timeSlicing:
        resources:
          - name: nvidia.com/mig-3g.40gb
            replicas: 2
";
    let c = cluster(&[("n0", "H100-80GB", 1)]);
    let p = plan(cfg, &c);
    let mut st = ShareState::new(c, p.clone());
    let r = gpus(&p, "nvidia.com/mig-3g.40gb", 1);
    let mut ids = Vec::new();
    for i in 0..4 {
        let pl = place(&mut st, &pod(&format!("p{i}"), r)).unwrap();
        let d = &p.devices(0)[pl.grants[0].device as usize];
        // Each replica is charged half the instance: 20 GiB, 214m.
        assert_eq!(pl.grants[0].memory_mib, 20480);
        ids.push(p.device_id("H100-80GB", d, pl.grants[0].replica));
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "gpu0/mig-3g.40gb@0::0",
            "gpu0/mig-3g.40gb@0::1",
            "gpu0/mig-3g.40gb@4::0",
            "gpu0/mig-3g.40gb@4::1"
        ]
    );
    assert!(place(&mut st, &pod("p5", r)).is_err());
}

#[test]
fn single_strategy_advertises_instances_as_gpus() {
    let cfg = "
migConfigs:
  all-1g:
    - devices: all
      mig-enabled: true
      mig-devices: { \"1g.10gb\": 7 }
nodeGroups:
  - name: mig
    migStrategy: single
    migConfig: all-1g
";
    let c = cluster(&[("n0", "A100-80GB", 1)]);
    let p = plan(cfg, &c);
    let mut st = ShareState::new(c, p.clone());
    let pl = place(&mut st, &pod("p", gpus(&p, "nvidia.com/gpu", 3))).unwrap();
    assert_eq!(pl.grants.len(), 3);
    assert!(pl.grants.iter().all(|g| g.memory_mib == 10240));
    assert!(p.resource("nvidia.com/mig-1g.10gb").is_none());
}

#[test]
fn refusal_names_the_reasons_per_node_like_kube_scheduler() {
    let c = cluster(&[("n0", "A10", 1), ("n1", "A10", 1), ("n2", "T4", 2)]);
    let p = Arc::new(Plan::whole(&c).unwrap());
    let mut st = ShareState::new(c, p.clone());
    // A CPU-only pod holds all of n2's CPU.
    let hog = SharePod {
        name: "hog".into(),
        cpu_milli: 64_000,
        memory_mib: 0,
        gpu: ShareRequest::None,
    };
    st.assume(
        &hog,
        &SharePlacement {
            node: ShareState::node_id(2),
            grants: vec![],
        },
    )
    .unwrap();
    let e = place(&mut st, &pod("big", gpus(&p, "nvidia.com/gpu", 2))).unwrap_err();
    assert_eq!(
        e,
        "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, 1 Insufficient cpu"
    );
    assert_eq!(
        st.candidates(2, &pod("x", ShareRequest::None)),
        Err(Refusal::Cpu)
    );
}

fn config_error(cfg: &str) -> String {
    let c = cluster(&[("n0", "H100-80GB", 2), ("n1", "T4", 1)]);
    match SharingConfig::parse(cfg, "sharing.yaml").and_then(|s| s.resolve(&c)) {
        Ok(_) => panic!("accepted:\n{cfg}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configuration_names_the_field() {
    let e = config_error("nodeGroups:\n  - name: a\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 1\n");
    assert_eq!(
        e,
        "nodeGroups[0].sharing.timeSlicing.resources[0].replicas: must be at least 2, got 1"
    );
    let e = config_error("migConfigs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices: { \"1g.5gb\": 1 }\nnodeGroups:\n  - name: a\n    models: [H100-80GB]\n    migStrategy: mixed\n    migConfig: x\n");
    assert!(
        e.starts_with(
            "migConfigs.x[0].mig-devices: on node n0: H100-80GB has no MIG profile \"1g.5gb\""
        ),
        "{e}"
    );
    let e = config_error("migConfigs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices: { \"4g.40gb\": 1, \"3g.40gb\": 1, \"1g.10gb\": 1 }\nnodeGroups:\n  - name: a\n    models: [H100-80GB]\n    migStrategy: mixed\n    migConfig: x\n");
    assert!(
        e.starts_with("migConfigs.x[0].mig-devices: on node n0: H100-80GB cannot hold"),
        "{e}"
    );
    let e = config_error("migConfigs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices: { \"1g.10gb\": 7 }\nnodeGroups:\n  - name: a\n    models: [T4]\n    migStrategy: mixed\n    migConfig: x\n");
    assert_eq!(
        e,
        "nodeGroups[0].migConfig: on node n1: T4 does not support MIG"
    );
    let e = config_error("nodeGroups:\n  - name: a\n    migStrategy: mixed\n    migConfig: nope\n");
    assert!(
        e.starts_with("nodeGroups[0].migConfig: no mig config named \"nope\""),
        "{e}"
    );
    let e = config_error("nodeGroups:\n  - name: a\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replica: 4\n");
    assert!(
        e.starts_with("sharing.yaml:7:13: nodeGroups[0].sharing.timeSlicing.resources[0]"),
        "{e}"
    );
    assert!(e.contains("unknown field `replica`"), "{e}");
    let e = config_error("nodeGroups:\n  - name: a\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: many\n");
    assert!(
        e.starts_with(
            "sharing.yaml:7:23: nodeGroups[0].sharing.timeSlicing.resources[0].replicas: "
        ),
        "{e}"
    );
    let c = cluster(&[("n0", "G2", 1)]);
    let e = Plan::whole(&c).unwrap_err().to_string();
    assert!(
        e.starts_with("node n0: GPU model \"G2\" is not in the catalogue"),
        "{e}"
    );
    let e = SharingConfig::parse("models:\n  - name: G2\n    memoryMiB: 16384\n", "m.yaml")
        .unwrap()
        .resolve(&c);
    assert!(e.is_ok(), "a model described in the file is known");
}

//! The accounting rules of GPU sharing, each a test against the one cluster state
//! (`mlplane_sched::ClusterState`) and the default filters, on clusters resolved from
//! sharing configurations; plus bad configuration errors.

use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, Sharing, MAX_REPLICAS};
use mlplane_sched::plugins::{default_filters, GpuSelectMode, GpuSelector, NodeResourcesFit};
use mlplane_sched::{
    ClusterState, CycleState, FilterPlugin, Grant, NodeId, Placement, Profile, Scheduler,
};
use mlplane_share::config::SharingConfig;
use mlplane_share::device_id;
use rand::SeedableRng;

/// A cluster of `nodes` (name, model, GPU count), 64 cores and 256 GiB each, its GPUs
/// not yet resolved.
fn cluster(nodes: &[(&str, &str, u8)]) -> Cluster {
    let mut models: Vec<String> = nodes.iter().map(|n| n.1.to_string()).collect();
    models.sort();
    models.dedup();
    let ns = nodes
        .iter()
        .map(|(name, model, count)| {
            let m = GpuModelId(models.iter().position(|x| x == model).unwrap() as u16);
            Node::new(*name, 64_000, 262_144).with_gpus(m, *count, 0)
        })
        .collect();
    let models = models
        .into_iter()
        .map(|name| GpuModel {
            name,
            memory_mib: None,
        })
        .collect();
    Cluster::new(models, ns).unwrap()
}

/// `c` resolved by the configuration `cfg`.
fn plan(cfg: &str, c: &Cluster) -> Arc<Cluster> {
    Arc::new(
        SharingConfig::parse(cfg, "test.yaml")
            .unwrap()
            .resolve(c)
            .unwrap(),
    )
}

/// `c` with whole, unshared GPUs.
fn whole(c: &Cluster) -> Arc<Cluster> {
    Arc::new(mlplane_share::whole(c).unwrap())
}

fn pod(name: &str, gpu: GpuRequest) -> Pod {
    Pod::new(name, 1000, 1024, gpu)
}

/// `count` of `resource` (`nvidia.com/gpu: n` is `GpuRequest::Whole(n)`).
fn gpus(c: &Cluster, resource: &str, count: u8) -> GpuRequest {
    if resource == "nvidia.com/gpu" {
        return GpuRequest::Whole(count);
    }
    GpuRequest::Devices {
        resource: c.resource_id(resource).expect("resource"),
        count,
    }
}

fn mem(mib: u64) -> GpuRequest {
    GpuRequest::Memory {
        mib,
        compute_milli: 0,
    }
}

/// The physical GPU of each grant of `pl`.
fn gpus_of(st: &ClusterState, pl: &Placement) -> Vec<u8> {
    let node = &st.cluster().nodes()[pl.node.index()];
    pl.grants
        .iter()
        .map(|g| node.devices[usize::from(g.device)].gpu)
        .collect()
}

/// The device-plugin ID of the first grant of `pl`.
fn id_of(st: &ClusterState, pl: &Placement) -> String {
    let node = &st.cluster().nodes()[pl.node.index()];
    device_id(node, pl.grants[0].device, pl.grants[0].replica)
}

/// Schedules and assumes `pod` with the default filters and the BestFit-memory device
/// allocator; returns the placement or the refusal text.
fn place(state: &mut ClusterState, p: &Pod) -> Result<Placement, String> {
    let profile = Profile::new("accounting")
        .with_all(default_filters(state.cluster()))
        .with(Arc::new(GpuSelector(GpuSelectMode::BestFitMemory)), 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    Scheduler::new(profile)
        .schedule(state, p, &mut rng)
        .map_err(|e| e.to_string())
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
    let p = whole(&cluster(&[("n0", "H100-80GB", 4)]));
    let mut st = ClusterState::new(p.clone());
    for i in 0..2 {
        let pl = place(
            &mut st,
            &pod(&format!("p{i}"), gpus(&p, "nvidia.com/gpu", 2)),
        )
        .unwrap();
        let devs = gpus_of(&st, &pl);
        assert_eq!(devs.len(), 2);
        assert_ne!(devs[0], devs[1]);
    }
    // All four GPUs are taken: a fifth whole GPU is refused.
    let e = place(&mut st, &pod("p9", gpus(&p, "nvidia.com/gpu", 1))).unwrap_err();
    assert_eq!(e, "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");
    // Even when the scheduler is bypassed, assume refuses one GPU twice.
    let mut st = ClusterState::new(p.clone());
    let twice = Placement {
        node: NodeId(0),
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
        .assume(&pod("x", gpus(&p, "nvidia.com/gpu", 2)), twice)
        .unwrap_err();
    assert!(e.to_string().contains("granted twice"), "{e}");
    assert_eq!(
        st.gpu_memory_used_mib(),
        0,
        "a refused assume changes nothing"
    );
    assert_eq!(st.pod_count(), 0);
}

#[test]
fn two_replicas_on_a_time_sliced_node_are_never_one_gpu() {
    // With failRequestsGreaterThanOne (the device plugin's advice), refused with the reason.
    let c = cluster(&[("n0", "A10", 2)]);
    let p = plan(TS_A10, &c);
    let mut st = ClusterState::new(p.clone());
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
    let mut st = ClusterState::new(p.clone());
    let pl = place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).unwrap();
    assert_eq!(gpus_of(&st, &pl), [0, 1]);
    assert!(pl
        .grants
        .iter()
        .all(|g| g.memory_mib == 24 * 1024 && g.compute_milli == 1000));
    // Both GPUs are now full: one replica more does not fit.
    assert!(place(&mut st, &pod("one", gpus(&p, "nvidia.com/gpu", 1))).is_err());
}

#[test]
fn the_configuration_resolves_to_the_cores_devices() {
    let c = cluster(&[("n0", "A10", 2), ("n1", "H100-80GB", 1)]);
    let cfg = format!(
        "{TS_A10}    models: [A10]\n  - name: mps\n    models: [H100-80GB]\n    sharing:\n      mps:\n        renameByDefault: true\n        resources:\n          - name: nvidia.com/gpu\n            replicas: {MAX_REPLICAS}\n"
    );
    let p = plan(&cfg, &c);
    let a10 = &p.nodes()[0].devices;
    assert_eq!(a10.len(), 2);
    for (i, d) in a10.iter().enumerate() {
        assert_eq!(
            (
                d.gpu as usize,
                d.resource,
                d.memory_mib,
                d.compute_milli,
                d.sharing
            ),
            (
                i,
                mlplane_model::ResourceId::GPU,
                24 * 1024,
                1000,
                Sharing::TimeSliced {
                    replicas: 10,
                    fail_multi: true
                }
            )
        );
    }
    let h100 = &p.nodes()[1].devices[0];
    assert_eq!(
        h100.sharing,
        Sharing::Mps {
            replicas: MAX_REPLICAS
        }
    );
    assert_eq!(p.resource_name(h100.resource), "nvidia.com/gpu.shared");
    assert_eq!(p.resources(), ["nvidia.com/gpu", "nvidia.com/gpu.shared"]);
    // The models learn their memory from the catalogue; nodes keep everything else.
    assert_eq!(p.models()[0].memory_mib, Some(24 * 1024));
    assert_eq!(p.nodes()[1].cpu_milli, c.nodes()[1].cpu_milli);
    // Unshared: exclusive whole GPUs.
    let w = whole(&c);
    assert!(w
        .nodes()
        .iter()
        .flat_map(|n| &n.devices)
        .all(|d| d.sharing == Sharing::Exclusive && d.mig.is_none()));
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
        let mut st = ClusterState::new(p.clone());
        let e = place(&mut st, &pod("two", gpus(&p, "nvidia.com/gpu", 2))).unwrap_err();
        let why = if fail == "true" {
            "failRequestsGreaterThanOne"
        } else {
            "Insufficient nvidia.com/gpu"
        };
        assert!(e.contains(why), "fail={fail}: {e}");
        // One replica is fine, and its ID carries the plugin's replica suffix.
        let pl = place(&mut st, &pod("one", gpus(&p, "nvidia.com/gpu", 1))).unwrap();
        assert_eq!(id_of(&st, &pl), "gpu0::0");
        // The replica is charged 1/100 of the GPU.
        assert_eq!(pl.grants[0].memory_mib, 24 * 1024 / 100);
    }
}

#[test]
fn memory_is_never_over_committed_however_many_replicas() {
    // A 24 GiB GPU advertised 10 ways: two 12 GiB shares fit, a third is refused.
    let c = cluster(&[("n0", "A10", 1)]);
    let p = plan(TS_A10, &c);
    let mut st = ClusterState::new(p.clone());
    place(&mut st, &pod("a", mem(12 * 1024))).unwrap();
    place(&mut st, &pod("b", mem(12 * 1024))).unwrap();
    let e = place(&mut st, &pod("c", mem(12 * 1024))).unwrap_err();
    assert_eq!(
        e,
        "0/1 nodes are available: 1 Insufficient mlplane.io/gpu-memory."
    );
    // Not even a single replica by count (its fair share, 2457 MiB) fits now.
    let e = place(&mut st, &pod("d", gpus(&p, "nvidia.com/gpu", 1))).unwrap_err();
    assert!(e.contains("Insufficient nvidia.com/gpu"), "{e}");
    assert_eq!(st.gpu_memory_used_mib(), 24 * 1024);
    // A memory share on an unshared GPU is refused: whole GPUs are not split.
    let mut st = ClusterState::new(whole(&c));
    let e = place(&mut st, &pod("a", mem(1024))).unwrap_err();
    assert!(e.contains("Insufficient mlplane.io/gpu-memory"), "{e}");
}

#[test]
fn replicas_run_out_before_memory_when_shares_are_small() {
    let c = cluster(&[("n0", "A10", 1)]);
    let p = plan(&TS_A10.replace("replicas: 10", "replicas: 3"), &c);
    let mut st = ClusterState::new(p);
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
    let mut st = ClusterState::new(p.clone());
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
    assert_eq!(p.nodes()[0].devices.len(), 5);
    let mut st = ClusterState::new(p.clone());
    let r = gpus(&p, "nvidia.com/mig-1g.10gb", 1);
    let a = place(&mut st, &pod("a", r)).unwrap();
    let b = place(&mut st, &pod("b", r)).unwrap();
    let ids: Vec<String> = [a, b].iter().map(|pl| id_of(&st, pl)).collect();
    // With the 3g at slice 0 and the 2g at 4, the second 1g would need slice 7, where
    // no 1-slice profile may start; so the geometry is 3g@4, 2g@0, 1g@2, 1g@3.
    assert_eq!(ids, ["gpu0/mig-1g.10gb@2", "gpu0/mig-1g.10gb@3"]);
    // Both 1g instances are used: a third 1g request is refused even though a 2g and
    // a 3g are free and GPU 1 is idle.
    let e = place(&mut st, &pod("c", r)).unwrap_err();
    assert_eq!(
        e,
        "0/1 nodes are available: 1 Insufficient nvidia.com/mig-1g.10gb."
    );
    // The whole GPU is still there for nvidia.com/gpu.
    let w = place(&mut st, &pod("w", gpus(&p, "nvidia.com/gpu", 1))).unwrap();
    assert_eq!(gpus_of(&st, &w), [1]);
    assert_eq!(id_of(&st, &w), "gpu1");
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
    let mut st = ClusterState::new(p.clone());
    let r = gpus(&p, "nvidia.com/mig-3g.40gb", 1);
    let mut ids = Vec::new();
    for i in 0..4 {
        let pl = place(&mut st, &pod(&format!("p{i}"), r)).unwrap();
        // Each replica is charged half the instance: 20 GiB, 214m (428m / 2).
        assert_eq!(
            (pl.grants[0].memory_mib, pl.grants[0].compute_milli),
            (20480, 214)
        );
        ids.push(id_of(&st, &pl));
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
    let mut st = ClusterState::new(p.clone());
    let pl = place(&mut st, &pod("p", gpus(&p, "nvidia.com/gpu", 3))).unwrap();
    assert_eq!(pl.grants.len(), 3);
    assert!(pl.grants.iter().all(|g| g.memory_mib == 10240));
    assert!(p.resource_id("nvidia.com/mig-1g.10gb").is_none());
}

#[test]
fn refusal_names_the_reasons_per_node_like_kube_scheduler() {
    let c = cluster(&[("n0", "A10", 1), ("n1", "A10", 1), ("n2", "T4", 2)]);
    let p = whole(&c);
    let mut st = ClusterState::new(p.clone());
    // A CPU-only pod holds all of n2's CPU.
    let hog = Pod::new("hog", 64_000, 0, GpuRequest::None);
    st.assume(
        &hog,
        Placement {
            node: NodeId(2),
            grants: vec![],
        },
    )
    .unwrap();
    // kube's histogram, sorted by its text "<count> <reason>".
    let e = place(&mut st, &pod("big", gpus(&p, "nvidia.com/gpu", 2))).unwrap_err();
    assert_eq!(
        e,
        "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu."
    );
    let fit = NodeResourcesFit::new(&p);
    let why = fit
        .filter(
            &CycleState::default(),
            &pod("x", GpuRequest::None),
            &st.node(NodeId(2)),
        )
        .unwrap_err();
    assert_eq!(why.message(), "Insufficient cpu");
    // Once the hog leaves, by its id, n2 takes the pod on two distinct GPUs.
    assert!(st.forget(hog.id).is_some());
    let pl = place(&mut st, &pod("big", gpus(&p, "nvidia.com/gpu", 2))).unwrap();
    assert_eq!((pl.node, gpus_of(&st, &pl)), (NodeId(2), vec![0, 1]));
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
    // Replica indices are held in a 128-bit set: at most MAX_REPLICAS (128).
    let e = config_error("nodeGroups:\n  - name: a\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 129\n");
    assert_eq!(
        e,
        format!("nodeGroups[0].sharing.timeSlicing.resources[0].replicas: must be at most {MAX_REPLICAS}, got 129")
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
    let e = mlplane_share::whole(&c).unwrap_err().to_string();
    assert!(
        e.starts_with("node n0: GPU model \"G2\" is not in the catalogue"),
        "{e}"
    );
    let r = SharingConfig::parse("models:\n  - name: G2\n    memoryMiB: 16384\n", "m.yaml")
        .unwrap()
        .resolve(&c)
        .expect("a model described in the file is known");
    assert_eq!(r.nodes()[0].devices[0].memory_mib, 16384);
    assert_eq!(r.models()[0].memory_mib, Some(16384));
}

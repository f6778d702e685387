//! Property tests on the one cluster state: random clusters with every sharing mode,
//! random requests of every kind, every sharing policy (`mlplane_policies::memory`),
//! random departures by pod id. Usage is recounted independently of the state's
//! bookkeeping after every step: no device's memory, compute or replica table (and so
//! no MIG instance) is ever over-committed, every placed pod names its physical
//! device, and a pod is refused only when a brute-force search finds no node that
//! could take it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, Sharing};
use mlplane_policies::memory::{share_profile, SharePolicy, TYPICAL_COVERAGE};
use mlplane_policies::TypicalPods;
use mlplane_sched::{ClusterState, NodeId, Placement, ScheduleError, Scheduler, TieBreak};
use mlplane_share::config::SharingConfig;
use mlplane_share::device_id;
use proptest::prelude::*;
use rand::SeedableRng;

const MODELS: [&str; 3] = ["H100-80GB", "A10", "A100-40GB"];

const CONFIG: &str = "
migConfigs:
  mix:
    - devices: [0, 1]
      mig-enabled: true
      mig-devices: { \"3g.40gb\": 1, \"2g.20gb\": 1, \"1g.10gb\": 2 }
    - devices: [2]
      mig-enabled: true
      mig-devices: { \"1g.10gb\": 7 }
  a100:
    - devices: all
      mig-enabled: true
      mig-devices: { \"1g.5gb\": 3, \"2g.10gb\": 2 }
nodeGroups:
  - name: mig
    nodes: [n0, n3, n6]
    models: [H100-80GB]
    migStrategy: mixed
    migConfig: mix
    sharing:
      timeSlicing:
        resources:
          - name: nvidia.com/mig-1g.10gb
            replicas: 3
  - name: mig-a100
    models: [A100-40GB]
    nodes: [n2, n5]
    migStrategy: mixed
    migConfig: a100
  - name: ts
    nodes: [n1, n4, n7]
    sharing:
      timeSlicing:
        failRequestsGreaterThanOne: false
        resources:
          - name: nvidia.com/gpu
            replicas: 4
  - name: mps
    nodes: [n8]
    sharing:
      mps:
        resources:
          - name: nvidia.com/gpu
            replicas: 2
";

fn cluster(shapes: &[(usize, u8, u64)]) -> Cluster {
    let models = MODELS
        .iter()
        .map(|m| GpuModel {
            name: m.to_string(),
            memory_mib: None,
        })
        .collect();
    let nodes = shapes
        .iter()
        .enumerate()
        .map(|(i, &(m, count, cpu))| {
            Node::new(format!("n{i}"), cpu, 65_536).with_gpus(GpuModelId(m as u16), count, 0)
        })
        .collect();
    Cluster::new(models, nodes).unwrap()
}

/// A request drawn from every kind the core understands.
fn request(c: &Cluster, kind: u8, n: u8, mib: u64) -> GpuRequest {
    let res = |name: &str| c.resource_id(name);
    match kind % 7 {
        0 => GpuRequest::None,
        1 => GpuRequest::Whole(1 + n % 4),
        2 => match res("nvidia.com/mig-1g.10gb") {
            Some(r) => GpuRequest::Devices {
                resource: r,
                count: 1 + n % 2,
            },
            None => GpuRequest::None,
        },
        3 => match res("nvidia.com/mig-2g.10gb") {
            Some(r) => GpuRequest::Devices {
                resource: r,
                count: 1,
            },
            None => GpuRequest::None,
        },
        4 => GpuRequest::Memory {
            mib,
            compute_milli: 0,
        },
        5 => GpuRequest::Memory {
            mib,
            compute_milli: u32::from(n) * 37 % 600,
        },
        // The FGD paper's milli share, which shared devices also take.
        _ => GpuRequest::Milli(1 + (mib % 999) as u16),
    }
}

/// Independent recount: per (node, device) the memory, compute and replicas granted.
fn check_usage(state: &ClusterState, placed: &[(Pod, Placement)]) {
    let c = state.cluster();
    // (memory, compute, grants, replica indices) per (node, device).
    type Usage = (u64, u64, u32, Vec<u16>);
    let mut used: HashMap<(usize, u16), Usage> = HashMap::new();
    let mut cpu: HashMap<usize, u64> = HashMap::new();
    assert_eq!(state.pod_count(), placed.len());
    for (pod, pl) in placed {
        let i = pl.node.index();
        *cpu.entry(i).or_default() += pod.cpu_milli;
        let node = &c.nodes()[i];
        let bound = state.bound(pod.id).expect("placed pods are bound");
        assert_eq!(&bound.placement, pl, "{}: placement recorded", pod.name);
        let want = usize::from(pod.gpu.gpu_count());
        assert_eq!(pl.grants.len(), want, "{}: grant count", pod.name);
        let mut gpus = Vec::new();
        for g in &pl.grants {
            let d = &node.devices[usize::from(g.device)];
            // Every grant names a physical device (and instance, and replica).
            let id = device_id(node, g.device, g.replica);
            assert!(id.starts_with(&format!("gpu{}", d.gpu)), "{id}");
            match pod.gpu {
                GpuRequest::Devices { resource, .. } => {
                    assert_eq!(d.resource, resource, "{}: wrong resource", pod.name)
                }
                GpuRequest::Whole(_) => {
                    assert_eq!(d.resource.0, 0, "{}: wrong resource", pod.name)
                }
                _ => assert!(
                    d.sharing.is_shared(),
                    "{}: a share on an unshared device",
                    pod.name
                ),
            }
            if want > 1 && d.mig.is_none() {
                assert!(!gpus.contains(&d.gpu), "{}: GPU {} twice", pod.name, d.gpu);
                gpus.push(d.gpu);
            }
            let e = used.entry((i, g.device)).or_default();
            e.0 += g.memory_mib;
            e.1 += u64::from(g.compute_milli);
            e.2 += 1;
            if d.sharing.is_replicated() {
                assert!(
                    !e.3.contains(&g.replica),
                    "replica {} held twice",
                    g.replica
                );
                e.3.push(g.replica);
            }
            // Exclusive devices and multi-device grants charge the whole device; an MPS
            // grant is a slot.
            if d.sharing == Sharing::Exclusive || want > 1 {
                assert_eq!(
                    (g.memory_mib, g.compute_milli),
                    (d.memory_mib, d.compute_milli)
                );
            }
            if let Sharing::Mps { replicas } = d.sharing {
                assert_eq!(g.memory_mib, d.memory_mib / u64::from(replicas));
            }
        }
    }
    for (i, node) in c.nodes().iter().enumerate() {
        let ns = state.node(NodeId(i as u32)).state;
        for (k, d) in node.devices.iter().enumerate() {
            let (m, cm, r, held) = used.remove(&(i, k as u16)).unwrap_or_default();
            assert!(
                m <= d.memory_mib,
                "node {i} device {k}: memory {m} > {}",
                d.memory_mib
            );
            assert!(
                cm <= u64::from(d.compute_milli),
                "node {i} device {k}: compute"
            );
            if let Some(cap) = d.sharing.replicas() {
                assert!(r <= u32::from(cap), "node {i} device {k}: replicas");
            }
            let s = &ns.devices[k];
            assert_eq!(
                (
                    s.memory_used_mib,
                    u64::from(s.compute_used_milli),
                    u32::from(s.grants)
                ),
                (m, cm, r),
                "node {i} device {k}"
            );
            for rep in held {
                assert!(s.holds(rep));
            }
        }
        let c_used = cpu.get(&i).copied().unwrap_or(0);
        assert!(c_used <= node.cpu_milli);
        assert_eq!(ns.cpu_free_milli, node.cpu_milli - c_used, "node {i}: cpu");
    }
    assert!(used.is_empty(), "grants on devices that do not exist");
}

/// Brute force: could any node take `pod` now? Checked from capacities and the usage
/// in the state, without the core's candidate logic.
fn fits_somewhere(state: &ClusterState, pod: &Pod) -> bool {
    let c = state.cluster();
    c.nodes().iter().enumerate().any(|(i, node)| {
        let ns = state.node(NodeId(i as u32)).state;
        if ns.pods >= node.max_pods
            || ns.cpu_free_milli < pod.cpu_milli
            || ns.memory_free_mib < pod.memory_mib
        {
            return false;
        }
        let devs = &node.devices;
        // (free memory, free compute, free replicas or u16::MAX, idle)
        let free = |k: usize| {
            let (d, s) = (&devs[k], &ns.devices[k]);
            (
                d.memory_mib - s.memory_used_mib,
                d.compute_milli - s.compute_used_milli,
                d.sharing.replicas().map_or(u16::MAX, |r| r - s.grants),
                s.grants == 0,
            )
        };
        let share = |mib: u64, milli: u32| {
            (0..devs.len()).any(|k| {
                let d = &devs[k];
                let (fm, fc, fr, _) = free(k);
                fr > 0
                    && match d.sharing {
                        Sharing::Exclusive => false,
                        Sharing::Mps { replicas } => {
                            let slot = (
                                d.memory_mib / u64::from(replicas),
                                d.compute_milli / u32::from(replicas),
                            );
                            mib <= slot.0 && milli <= slot.1 && fm >= slot.0 && fc >= slot.1
                        }
                        _ => fm >= mib && fc >= milli,
                    }
            })
        };
        let count_of = |resource: u16, count: u8| {
            let mine: Vec<usize> = (0..devs.len())
                .filter(|&k| devs[k].resource.0 == resource)
                .collect();
            if count == 1 {
                return mine.iter().any(|&k| {
                    let d = &devs[k];
                    let (fm, fc, fr, idle) = free(k);
                    match d.sharing.replicas() {
                        Some(r) if d.sharing.is_replicated() => {
                            fr > 0
                                && fm >= d.memory_mib / u64::from(r)
                                && fc >= d.compute_milli / u32::from(r)
                        }
                        _ => idle,
                    }
                });
            }
            if mine.iter().any(|&k| devs[k].sharing.fails_multi()) {
                return false;
            }
            // Idle devices, distinct GPUs for whole GPUs.
            let mut gpus = BTreeSet::new();
            let mut inst = 0;
            for &k in &mine {
                if free(k).3 {
                    if devs[k].mig.is_some() {
                        inst += 1;
                    } else {
                        gpus.insert(devs[k].gpu);
                    }
                }
            }
            gpus.len() + inst >= usize::from(count)
        };
        match pod.gpu {
            GpuRequest::None => true,
            GpuRequest::Memory { mib, compute_milli } => share(mib, compute_milli),
            GpuRequest::Milli(m) => (0..devs.len()).any(|k| {
                let d = &devs[k];
                let need = (d.memory_mib * u64::from(m) / 1000, u32::from(m));
                let (fm, fc, fr, _) = free(k);
                fr > 0
                    && match d.sharing {
                        Sharing::Exclusive => false,
                        Sharing::Mps { replicas } => {
                            let slot = (
                                d.memory_mib / u64::from(replicas),
                                d.compute_milli / u32::from(replicas),
                            );
                            need.0 <= slot.0 && need.1 <= slot.1 && fm >= slot.0 && fc >= slot.1
                        }
                        _ => fm >= need.0 && fc >= need.1,
                    }
            }),
            GpuRequest::Whole(n) => count_of(0, n),
            GpuRequest::Devices { resource, count } => count_of(resource.0, count),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn never_over_committed(
        shapes in prop::collection::vec((0usize..3, 1u8..=4, 2_000u64..16_000), 9..12),
        reqs in prop::collection::vec((0u8..7, 0u8..8, 1u64..30_000, 0u64..3_000, any::<bool>()), 1..120),
        policy in 0usize..4,
        seed in any::<u64>(),
    ) {
        // The config's filters pick nodes by name and model, so nodes of other models
        // simply stay whole or time-sliced.
        let c = Arc::new(
            SharingConfig::parse(CONFIG, "props.yaml").unwrap().resolve(&cluster(&shapes)).unwrap(),
        );
        let mut state = ClusterState::new(c.clone());
        let pods: Vec<Pod> = reqs
            .iter()
            .enumerate()
            .map(|(i, &(kind, n, mib, cpu, _))| {
                Pod::new(format!("p{i}"), cpu, 512, request(&c, kind, n, mib))
            })
            .collect();
        let policy = SharePolicy::ALL[policy];
        let typical = Arc::new(TypicalPods::by_gpu_request(&pods, TYPICAL_COVERAGE));
        let rank: Arc<[u32]> = (0..c.nodes().len() as u32).rev().collect();
        let mut sched = Scheduler::new(share_profile(policy, typical, &c))
            .with_tie_break(TieBreak::Rank(rank));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut placed: Vec<(Pod, Placement)> = Vec::new();
        for (pod, &(_, _, _, _, release)) in pods.iter().zip(&reqs) {
            // The brute force agrees both ways: a placed pod fitted somewhere too.
            let fits = fits_somewhere(&state, pod);
            match sched.schedule(&mut state, pod, &mut rng) {
                Ok(pl) => {
                    prop_assert!(fits, "{} ({}) placed by {policy} but fits nowhere", pod.name, pod.gpu);
                    placed.push((pod.clone(), pl));
                }
                Err(ScheduleError::Unschedulable { diagnosis, .. }) => prop_assert!(
                    !fits,
                    "{} ({}) refused by {policy} ({diagnosis}) but fits",
                    pod.name,
                    pod.gpu
                ),
                Err(e) => prop_assert!(false, "{}: {policy} failed: {e}", pod.name),
            }
            // Now and then a pod finishes: it leaves by its id.
            if release && placed.len() > 3 {
                let (p, pl) = placed.remove(placed.len() / 2);
                let gone = state.forget(p.id).expect("placed");
                prop_assert_eq!(gone.placement, pl);
                prop_assert!(state.forget(p.id).is_none(), "forgotten twice");
            }
            check_usage(&state, &placed);
        }
    }
}

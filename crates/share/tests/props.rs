//! Property tests: random clusters with every sharing mode, random requests, every
//! policy. Usage is recounted independently of the crate's bookkeeping: no device's
//! memory, compute or replica table (and so no MIG instance) is ever over-committed,
//! every placed pod names its physical device, and a pod is refused only when a
//! brute-force search finds no node that could take it.

use std::collections::HashMap;
use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, Node};
use mlplane_share::config::SharingConfig;
use mlplane_share::sched::{SharePolicy, ShareScheduler, Typical};
use mlplane_share::state::ShareState;
use mlplane_share::{Plan, ShareMode, SharePlacement, SharePod, ShareRequest};
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

fn cluster(shapes: &[(usize, u8, u64)]) -> Arc<Cluster> {
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
    Arc::new(Cluster::new(models, nodes).unwrap())
}

/// A request drawn from every kind the scheduler understands.
fn request(plan: &Plan, kind: u8, n: u8, mib: u64) -> ShareRequest {
    let res = |name: &str| plan.resource(name);
    match kind % 6 {
        0 => ShareRequest::None,
        1 => ShareRequest::Devices {
            resource: res("nvidia.com/gpu").unwrap(),
            count: 1 + n % 4,
        },
        2 => match res("nvidia.com/mig-1g.10gb") {
            Some(r) => ShareRequest::Devices {
                resource: r,
                count: 1 + n % 2,
            },
            None => ShareRequest::None,
        },
        3 => match res("nvidia.com/mig-2g.10gb") {
            Some(r) => ShareRequest::Devices {
                resource: r,
                count: 1,
            },
            None => ShareRequest::None,
        },
        4 => ShareRequest::Memory {
            mib,
            compute_milli: 0,
        },
        _ => ShareRequest::Memory {
            mib,
            compute_milli: u32::from(n) * 37 % 600,
        },
    }
}

/// Independent recount: per (node, device) the memory, compute and replicas granted.
fn check_usage(state: &ShareState, placed: &[(SharePod, SharePlacement)]) {
    let plan = state.plan();
    // (memory, compute, replicas, replica indices) per (node, device).
    type Usage = (u64, u64, u32, Vec<u16>);
    let mut used: HashMap<(usize, u16), Usage> = HashMap::new();
    let mut cpu: HashMap<usize, u64> = HashMap::new();
    for (pod, pl) in placed {
        let i = pl.node.index();
        *cpu.entry(i).or_default() += pod.cpu_milli;
        let devices = plan.devices(i);
        let want = match pod.gpu {
            ShareRequest::None => 0,
            ShareRequest::Devices { count, .. } => usize::from(count),
            ShareRequest::Memory { .. } => 1,
        };
        assert_eq!(pl.grants.len(), want, "{}: grant count", pod.name);
        let mut gpus = Vec::new();
        for g in &pl.grants {
            let d = &devices[usize::from(g.device)];
            // Every grant names a physical device (and instance, and replica).
            let model = state
                .cluster()
                .model_name(state.cluster().nodes()[i].gpu_model().unwrap());
            let id = plan.device_id(model, d, g.replica);
            assert!(id.starts_with(&format!("gpu{}", d.gpu)), "{id}");
            if let ShareRequest::Devices { resource, .. } = pod.gpu {
                assert_eq!(d.resource, resource, "{}: wrong resource", pod.name);
            } else {
                assert!(
                    d.replicas > 1,
                    "{}: a memory share on an unshared device",
                    pod.name
                );
            }
            if want > 1 && d.mig.is_none() {
                assert!(!gpus.contains(&d.gpu), "{}: GPU {} twice", pod.name, d.gpu);
                gpus.push(d.gpu);
            }
            let e = used.entry((i, g.device)).or_default();
            e.0 += g.memory_mib;
            e.1 += u64::from(g.compute_milli);
            e.2 += 1;
            assert!(
                !e.3.contains(&g.replica),
                "replica {} held twice",
                g.replica
            );
            e.3.push(g.replica);
            // Shared devices taken by count charge at least the fair share; exclusive
            // devices and multi-device grants charge the whole device.
            if d.replicas == 1 || want > 1 {
                assert_eq!(
                    (g.memory_mib, g.compute_milli),
                    (d.memory_mib, d.compute_milli)
                );
            }
            if d.mode == ShareMode::Mps {
                assert_eq!(g.memory_mib, d.memory_mib / u64::from(d.replicas));
            }
        }
    }
    for ((i, k), (m, c, r, _)) in used {
        let d = &plan.devices(i)[usize::from(k)];
        assert!(
            m <= d.memory_mib,
            "node {i} device {k}: memory {m} > {}",
            d.memory_mib
        );
        assert!(
            c <= u64::from(d.compute_milli),
            "node {i} device {k}: compute"
        );
        assert!(r <= u32::from(d.replicas), "node {i} device {k}: replicas");
        let s = &state.node(i).devices[usize::from(k)];
        assert_eq!(
            (
                s.memory_used_mib,
                u64::from(s.compute_used_milli),
                u32::from(s.replicas_used)
            ),
            (m, c, r)
        );
    }
    for (i, c) in cpu {
        assert!(c <= state.cluster().nodes()[i].cpu_milli);
    }
}

/// Brute force: could any node take `pod` now? Checked from capacities and the
/// recounted usage in the state, without the crate's candidate logic.
fn fits_somewhere(state: &ShareState, pod: &SharePod) -> bool {
    let plan = state.plan();
    (0..state.len()).any(|i| {
        let ns = state.node(i);
        if ns.cpu_free_milli < pod.cpu_milli || ns.memory_free_mib < pod.memory_mib {
            return false;
        }
        let devs = plan.devices(i);
        let free = |k: usize| {
            let (d, s) = (&devs[k], &ns.devices[k]);
            (
                d.memory_mib - s.memory_used_mib,
                d.compute_milli - s.compute_used_milli,
                d.replicas - s.replicas_used,
            )
        };
        match pod.gpu {
            ShareRequest::None => true,
            ShareRequest::Memory { mib, compute_milli } => (0..devs.len()).any(|k| {
                let d = &devs[k];
                let (fm, fc, fr) = free(k);
                d.replicas > 1
                    && fr > 0
                    && match d.mode {
                        ShareMode::Mps => {
                            let slot = (
                                d.memory_mib / u64::from(d.replicas),
                                d.compute_milli / u32::from(d.replicas),
                            );
                            mib <= slot.0 && compute_milli <= slot.1 && fm >= slot.0 && fc >= slot.1
                        }
                        _ => fm >= mib && fc >= compute_milli,
                    }
            }),
            ShareRequest::Devices { resource, count } => {
                let mine: Vec<usize> = (0..devs.len())
                    .filter(|&k| devs[k].resource == resource)
                    .collect();
                if count == 1 {
                    return mine.iter().any(|&k| {
                        let d = &devs[k];
                        let (fm, fc, fr) = free(k);
                        let r = u64::from(d.replicas);
                        fr > 0
                            && fm >= d.memory_mib / r
                            && fc >= d.compute_milli / d.replicas as u32
                    });
                }
                if mine
                    .iter()
                    .any(|&k| devs[k].replicas > 1 && devs[k].fail_multi)
                {
                    return false;
                }
                // Idle devices, distinct GPUs for whole GPUs.
                let mut gpus = std::collections::BTreeSet::new();
                let mut inst = 0;
                for &k in &mine {
                    if ns.devices[k].replicas_used == 0 {
                        if devs[k].mig.is_some() {
                            inst += 1;
                        } else {
                            gpus.insert(devs[k].gpu);
                        }
                    }
                }
                gpus.len() + inst >= usize::from(count)
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn never_over_committed(
        shapes in prop::collection::vec((0usize..3, 1u8..=4, 2_000u64..16_000), 9..12),
        reqs in prop::collection::vec((0u8..6, 0u8..8, 1u64..30_000, 0u64..3_000, any::<bool>()), 1..120),
        policy in 0usize..4,
        seed in any::<u64>(),
    ) {
        let c = cluster(&shapes);
        // Nodes named in the MIG groups must have a MIG model; the filters in the
        // config pick by name and model, so others simply stay whole or time-sliced.
        let plan = Arc::new(SharingConfig::parse(CONFIG, "props.yaml").unwrap().resolve(&c).unwrap());
        let mut state = ShareState::new(c.clone(), plan.clone());
        let pods: Vec<SharePod> = reqs
            .iter()
            .enumerate()
            .map(|(i, &(kind, n, mib, cpu, _))| SharePod {
                name: format!("p{i}"),
                cpu_milli: cpu,
                memory_mib: 512,
                gpu: request(&plan, kind, n, mib),
            })
            .collect();
        let sched = ShareScheduler::new(SharePolicy::ALL[policy], Typical::from_pods(&pods), Vec::new());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut placed: Vec<(SharePod, SharePlacement)> = Vec::new();
        for (pod, &(_, _, _, _, release)) in pods.iter().zip(&reqs) {
            match sched.schedule(&state, pod, &mut rng) {
                Ok(pl) => {
                    state.assume(pod, &pl).unwrap();
                    placed.push((pod.clone(), pl));
                }
                Err(e) => prop_assert!(!fits_somewhere(&state, pod), "{} refused ({e}) but fits", pod.name),
            }
            // Now and then a pod finishes.
            if release && placed.len() > 3 {
                let (p, pl) = placed.remove(placed.len() / 2);
                state.release(&p, &pl);
            }
            check_usage(&state, &placed);
        }
    }
}

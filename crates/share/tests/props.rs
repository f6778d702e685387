//! Property tests of the sharing policies on clusters resolved from a sharing
//! configuration (the catalogue's MIG geometries, time-slicing of GPUs and of MIG
//! instances, MPS), with random requests of every kind and random departures by pod
//! id, checked against the one independent shadow model of the property suites
//! (`crates/sched/tests/common/shadow.rs`): usage recounted after every step, every
//! refusal checked by brute force. The device IDs of every grant are checked here too.

use std::collections::BTreeSet;
use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
use mlplane_policies::memory::{share_profile, SharePolicy, TYPICAL_COVERAGE};
use mlplane_policies::TypicalPods;
use mlplane_sched::{ClusterState, Placement, ScheduleError, Scheduler, TieBreak};
use mlplane_share::config::SharingConfig;
use mlplane_share::device_id;
use proptest::prelude::*;
use rand::SeedableRng;

#[path = "../../sched/tests/common/shadow.rs"]
mod shadow;
use shadow::{check_state, fits_anywhere, usage};

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
            let fits = fits_anywhere(&c, &usage(&c, &placed), pod);
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
            check_state(&state, &placed);
            // Every grant names its physical device (and instance, and replica) by a
            // device-plugin ID, and no two grants share one.
            let mut ids = BTreeSet::new();
            for (_, pl) in &placed {
                let node = &c.nodes()[pl.node.index()];
                for g in &pl.grants {
                    let d = &node.devices[usize::from(g.device)];
                    let id = device_id(node, g.device, g.replica);
                    prop_assert!(id.starts_with(&format!("gpu{}", d.gpu)), "{}", id);
                    if d.sharing != mlplane_model::Sharing::Fractional {
                        prop_assert!(ids.insert((pl.node, id.clone())), "{} granted twice", id);
                    }
                }
            }
        }
    }
}

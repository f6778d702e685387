//! The sharing study on a cluster small enough to work out by hand.
//!
//! Two nodes with one H100-80GB each (81920 MiB). Pods: one whole-GPU pod and four
//! GPU-sharing pods of 250 milli (a 20480 MiB memory share each). Total GPU memory
//! 163840 MiB; the pods need 81920 + 4 x 20480 = 163840 MiB, all of it.
//!
//! - whole: the first two pods to arrive take a GPU each (a sharing pod a whole GPU
//!   for its 20 GiB): 2 placed, 3 refused, reserved 100%; used (81920 + 20480) /
//!   163840 = 62.5% if the whole pod is one of them (3 sharing pods refused), else
//!   2 x 20480 / 163840 = 25%.
//! - timeslicing: the whole pod is a full memory share of one GPU; the four 20 GiB
//!   shares fill the other: all placed, used 100%.
//! - mig / mixed: the whole-GPU pool is n0 (one GPU covers the demand of one GPU).
//!   mig: the advisor maps 20480 MiB to 1g.20gb and proposes four of them on n1's
//!   GPU: all placed, 100%. mixed: n1 time-sliced: all placed, 100%.
//! - mig-1g: n1 becomes seven 1g.10gb instances, too small for 20 GiB: 4 refused;
//!   used 50%.
//! - mig-disabled: n1 stays whole: like whole, 62.5%.
//!
//! On twice the nodes (n0, n1, n0-b, n1-b) the workload needs 2 GPUs in every mode
//! that fits a share on a shared GPU, and 5 in whole (one GPU per pod, 4 GPUs exist:
//! one pod is refused even then).

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
use mlplane_sim::sharing::{SharingMode, Study, StudyOptions};

fn study() -> Study {
    let node = |name: &str| Node::new(name, 64_000, 262_144).with_gpus(GpuModelId(0), 1, 0);
    let cluster = Cluster::new(
        vec![GpuModel {
            name: "A10".into(),
            memory_mib: None,
        }],
        vec![node("n0"), node("n1")],
    )
    .unwrap();
    let mut pods = vec![Pod::new("whole", 4000, 8192, GpuRequest::Whole(1))];
    for i in 0..4 {
        pods.push(Pod::new(
            format!("share{i}"),
            1000,
            4096,
            GpuRequest::Milli(250),
        ));
    }
    Study::new(&cluster, pods, StudyOptions::default()).unwrap()
}

#[test]
fn every_mode_matches_the_hand_worked_numbers() {
    let s = study();
    assert_eq!(s.whole_pool(), ["n0"]);
    let advice = s.advice().unwrap();
    assert_eq!(advice.per_index.len(), 1);
    assert_eq!(advice.per_index[0], [("1g.20gb".to_string(), 4)].into());
    // (mode, placed, refused, used %, reserved %); whole GPUs: see below.
    let expect = [
        (SharingMode::TimeSlicing, 5, 0, 100.0, 100.0),
        (SharingMode::Mig, 5, 0, 100.0, 100.0),
        (SharingMode::Mixed, 5, 0, 100.0, 100.0),
        (SharingMode::MigAll1g, 1, 4, 50.0, 50.0),
    ];
    for (mode, placed, refused, used, reserved) in expect {
        for seed in [1, 2, 3] {
            let r = s.run(mode, seed, &mut || {}).unwrap();
            assert_eq!(
                (r.placed, r.refused),
                (placed, refused),
                "{mode:?} seed {seed}"
            );
            assert_eq!(r.used_pct, used, "{mode:?}");
            assert_eq!(r.reserved_pct, reserved, "{mode:?}");
            assert_eq!(r.total_gpus, 2);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for mode in [SharingMode::Whole, SharingMode::MigDisabled] {
        for seed in 0..12 {
            let r = s.run(mode, seed, &mut || {}).unwrap();
            assert_eq!((r.placed, r.refused, r.reserved_pct), (2, 3, 100.0));
            let used = if r.refused_sharing == 3 { 62.5 } else { 25.0 };
            assert_eq!(r.used_pct, used, "{mode:?} seed {seed}");
            seen.insert(r.refused_sharing);
        }
    }
    assert_eq!(seen.len(), 2, "both orders happen over 12 seeds");
}

#[test]
fn gpus_needed_on_twice_the_nodes() {
    let big = study().doubled().unwrap();
    for (mode, occupied, refused) in [
        (SharingMode::Whole, 4, 1),
        (SharingMode::TimeSlicing, 2, 0),
        (SharingMode::Mixed, 2, 0),
        (SharingMode::Mig, 2, 0),
    ] {
        let r = big.run(mode, 7, &mut || {}).unwrap();
        assert_eq!(
            (r.occupied_gpus, r.refused),
            (occupied, refused),
            "{mode:?}"
        );
    }
}

#[test]
fn the_advice_is_a_mig_parted_file_the_config_reader_accepts() {
    let s = study();
    let yaml = s.advice().unwrap().to_mig_parted("advised");
    assert_eq!(
        yaml,
        "version: v1\nmig-configs:\n  advised:\n    - devices: [0]\n      mig-enabled: true\n      mig-devices:\n        \"1g.20gb\": 4\n"
    );
    // Indented under migConfigs, it resolves on an H100 node.
    let body: String = yaml.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let cfg = format!("migConfigs:\n{body}nodeGroups:\n  - name: g\n    migStrategy: mixed\n    migConfig: advised\n");
    let parsed = mlplane_share::config::SharingConfig::parse(&cfg, "advice.yaml").unwrap();
    let c = Cluster::new(
        vec![GpuModel {
            name: "H100-80GB".into(),
            memory_mib: None,
        }],
        vec![Node::new("x", 1000, 1024).with_gpus(GpuModelId(0), 1, 0)],
    )
    .unwrap();
    let resolved = parsed.resolve(&c).unwrap();
    assert_eq!(resolved.nodes()[0].devices.len(), 4);
    assert!(resolved.resource_id("nvidia.com/mig-1g.20gb").is_some());
}

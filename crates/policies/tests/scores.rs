//! Every policy's score on small clusters, worked out by hand from the formula in the
//! policy's module doc. Each assertion carries its arithmetic.
//!
//! Conventions: C = the largest node's CPU, G = the largest node's GPU milli
//! (`PolicyContext::new`). `⌊x⌋` is truncation towards zero, as `as i64` does.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use mlplane_model::{GpuRequest, Pod};
use mlplane_policies::best_fit::{min_max_normalize, BestFitScore};
use mlplane_policies::dot_prod::DotProdScore;
use mlplane_policies::fgd::{fgd_score, FgdScore, TypicalPod, TypicalPods};
use mlplane_policies::gpu_clustering::GpuClusteringScore;
use mlplane_policies::gpu_packing::{packing_score, GpuPackingScore};
use mlplane_policies::kube::NodeResourcesScore;
use mlplane_policies::random::RandomScore;
use mlplane_policies::{profile, Policy, PolicyContext};
use mlplane_sched::plugins::{self, GpuSelectMode, GpuSelector};
use mlplane_sched::{
    ClusterState, CycleState, GpuSet, NodeId, NodeInfo, NodeScore, Plugin, PreScorePlugin, Profile,
    Scheduler, ScorePlugin, Status,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use GpuRequest::{Milli, None as NoGpu, Whole};

const MEM: u64 = 262_144;

// ---------------------------------------------------------------------------------------
// DotProd: ⌊100 · (1 − (f·r)/2)⌋, f = (cpu_free/C, gpu_free_total/G), r = (cpu/C, gpu/G).

fn check_dot_prod(state: &ClusterState, pod: &Pod, want: &[(usize, i64)]) {
    check_raw("DotProd", &DotProdScore::new(&ctx(state)), state, pod, want);
}

/// n0: 128 cores, 8 GPUs; n1: 64 cores, 2 GPUs; n2: 128 cores, no GPU. C=128000, G=8000.
fn dot_prod_cluster() -> ClusterState {
    state(vec![
        node("n0", 128_000, MEM, 8),
        node("n1", 64_000, MEM, 2),
        node("n2", 128_000, MEM, 0),
    ])
}

#[test]
fn dot_prod_idle_nodes() {
    let st = dot_prod_cluster();
    check_dot_prod(
        &st,
        &pod(32_000, Whole(2)),
        &[
            // f=(1, 1), r=(0.25, 0.25): dot=(0.25+0.25)/2=0.25, 100*0.75=75
            (0, 75),
            // f=(0.5, 0.25), r=(0.25, 0.25): dot=(0.125+0.0625)/2=0.09375, 90.625 -> 90
            (1, 90),
        ],
    );
    check_dot_prod(
        &st,
        &pod(64_000, NoGpu),
        &[
            // f=(1, 1), r=(0.5, 0): dot=0.5/2=0.25 -> 75
            (0, 75),
            // f=(0.5, 0.25), r=(0.5, 0): dot=0.25/2=0.125, 87.5 -> 87
            (1, 87),
            // f=(1, 0), r=(0.5, 0): dot=0.25 -> 75
            (2, 75),
        ],
    );
}

#[test]
fn dot_prod_used_node_and_smallest_product_wins() {
    let mut st = dot_prod_cluster();
    place(&mut st, &pod(64_000, Whole(4)), 0, &[0, 1, 2, 3]);
    check_dot_prod(
        &st,
        &pod(16_000, Milli(500)),
        &[
            // f=(64000/128000, 4000/8000)=(0.5, 0.5), r=(0.125, 0.0625):
            // dot=(0.0625+0.03125)/2=0.046875, 95.3125 -> 95
            (0, 95),
            // f=(0.5, 0.25): dot=(0.0625+0.015625)/2=0.0390625, 96.09375 -> 96
            (1, 96),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// GpuClustering: tier + u, u = ⌊25·(G − gpu_free_total)/G⌋; tiers 75 (only its class),
// 50 (its class among others), 25 (no GPU pods), 0 (only other classes).

fn check_clustering(state: &ClusterState, pod: &Pod, want: &[(usize, i64)]) {
    check_raw(
        "GpuClustering",
        &GpuClusteringScore::new(&ctx(state)),
        state,
        pod,
        want,
    );
}

/// G = 8000.
/// - n0 (8 GPUs): one share pod. free 7500, u=⌊25*500/8000⌋=⌊1.5625⌋=1
/// - n1 (8 GPUs): a share pod and a 1-GPU pod. free 6500, u=⌊25*1500/8000⌋=⌊4.6875⌋=4
/// - n2 (2 GPUs): a CPU-only pod only. free 2000, u=⌊25*6000/8000⌋=⌊18.75⌋=18
/// - n3 (8 GPUs): one 2-GPU pod. free 6000, u=⌊25*2000/8000⌋=⌊6.25⌋=6
fn clustering_cluster() -> ClusterState {
    let mut st = state(vec![
        node("n0", 64_000, MEM, 8),
        node("n1", 64_000, MEM, 8),
        node("n2", 64_000, MEM, 2),
        node("n3", 64_000, MEM, 8),
    ]);
    place(&mut st, &pod(1000, Milli(500)), 0, &[0]);
    place(&mut st, &pod(1000, Milli(500)), 1, &[0]);
    place(&mut st, &pod(1000, Whole(1)), 1, &[1]);
    place(&mut st, &pod(1000, NoGpu), 2, &[]);
    place(&mut st, &pod(1000, Whole(2)), 3, &[0, 1]);
    st
}

#[test]
fn gpu_clustering_tiers_for_a_share() {
    check_clustering(
        &clustering_cluster(),
        &pod(1000, Milli(250)),
        &[
            (0, 76), // only shares there: 75 + 1
            (1, 54), // shares among 1-GPU pods: 50 + 4
            (2, 43), // no GPU pod (a CPU-only pod does not count): 25 + 18
            (3, 6),  // only 2-GPU pods: 0 + 6
        ],
    );
}

#[test]
fn gpu_clustering_tiers_for_whole_gpus() {
    let st = clustering_cluster();
    check_clustering(
        &st,
        &pod(1000, Whole(1)),
        &[
            (0, 1),  // only shares: 0 + 1
            (1, 54), // 1-GPU class among others: 50 + 4
            (2, 43), // 25 + 18
            (3, 6),  // only 2-GPU pods: 0 + 6
        ],
    );
    check_clustering(
        &st,
        &pod(1000, Whole(2)),
        &[
            (0, 1),  // 0 + 1
            (1, 4),  // 0 + 4
            (2, 43), // 25 + 18
            (3, 81), // only 2-GPU pods: 75 + 6
        ],
    );
}

#[test]
fn gpu_clustering_cpu_only_pod_scores_zero() {
    check_clustering(
        &clustering_cluster(),
        &pod(1000, NoGpu),
        &[(0, 0), (1, 0), (2, 0), (3, 0)],
    );
}

// ---------------------------------------------------------------------------------------
// GpuPacking: 1. partly used GPUs only: max(100 − Σ⌊100·free/1000⌋/10, 50);
// 2. k fully free GPUs of a partly used node: max(50 − k, 33); 3. idle node of n GPUs:
// max(33 − n, n). CPU-only: 0.

fn check_packing(state: &ClusterState, pod: &Pod, want: &[(usize, i64)]) {
    check_raw("GpuPacking", &GpuPackingScore, state, pod, want);
}

/// - n0: 8 idle GPUs; n1: 2 idle GPUs
/// - n2: 8 GPUs, free [300, 800, 1000 x 6]
/// - n3: 4 GPUs, free [999, 5, 0, 1000]
fn packing_cluster() -> ClusterState {
    let mut st = state(vec![
        node("n0", 64_000, MEM, 8),
        node("n1", 64_000, MEM, 2),
        node("n2", 64_000, MEM, 8),
        node("n3", 64_000, MEM, 4),
    ]);
    use_gpu(&mut st, 2, 0, 700);
    use_gpu(&mut st, 2, 1, 200);
    use_gpu(&mut st, 3, 0, 1);
    use_gpu(&mut st, 3, 1, 995);
    place(&mut st, &pod(0, Whole(1)), 3, &[2]);
    st
}

#[test]
fn gpu_packing_idle_nodes() {
    let st = packing_cluster();
    for p in [pod(1000, Milli(250)), pod(1000, Whole(1))] {
        check_packing(
            &st,
            &p,
            &[
                (0, 25), // case 3, n=8: max(33-8, 8)=25
                (1, 31), // case 3, n=2: max(33-2, 2)=31
            ],
        );
    }
}

#[test]
fn gpu_packing_partly_used_gpus() {
    let st = packing_cluster();
    check_packing(
        &st,
        &pod(1000, Milli(250)),
        &[
            // case 1, tightest fit GPU0 (300): ⌊100*300/1000⌋=30, 100-30/10=97
            (2, 97),
            // free sorted 0,5,999,1000: tightest fit GPU0 (999): 99, 100-99/10=100-9=91
            (3, 91),
        ],
    );
    check_packing(
        &st,
        &pod(1000, Milli(5)),
        &[
            (2, 97), // GPU0 (300) again: 97
            // GPU1 (5) fits exactly: ⌊100*5/1000⌋=0, 100-0=100
            (3, 100),
        ],
    );
    check_packing(
        &st,
        &pod(1000, Milli(500)),
        &[
            (2, 92), // GPU0 (300) too small, GPU1 (800): 80, 100-8=92
            (3, 91), // GPU0 (999): 91
        ],
    );
}

#[test]
fn gpu_packing_free_gpus_of_used_nodes() {
    let st = packing_cluster();
    check_packing(
        &st,
        &pod(1000, Milli(900)),
        &[
            (2, 49), // 300 and 800 too small: 1 fully free GPU, case 2: max(50-1, 33)=49
            (3, 91), // GPU0 (999) holds 900: case 1, 91
        ],
    );
    check_packing(
        &st,
        &pod(1000, Whole(1)),
        &[
            (2, 49), // max(50-1, 33)=49
            (3, 49), // GPU3 is the only free one: 49
        ],
    );
    check_packing(&st, &pod(1000, Whole(3)), &[(0, 25), (2, 47)]); // max(50-3,33)=47
    check_packing(&st, &pod(1000, Whole(6)), &[(0, 25), (2, 44)]); // max(50-6,33)=44
}

#[test]
fn gpu_packing_cpu_only_pod_scores_zero() {
    check_packing(
        &packing_cluster(),
        &pod(1000, NoGpu),
        &[(0, 0), (1, 0), (2, 0), (3, 0)],
    );
}

#[test]
fn gpu_packing_caps() {
    // Case 1's floor of 50, reachable through `packing_score` with a multi-GPU share
    // request: 8 GPUs with 999 free each.
    let mut st = state(vec![node("n0", 64_000, MEM, 8)]);
    for g in 0..8 {
        use_gpu(&mut st, 0, g, 1);
    }
    let ns = st.node(NodeId(0)).state;
    // 2 GPUs: Σ=99+99=198, 100-198/10=100-19=81
    assert_eq!(packing_score(ns, 2, 1), 81);
    // 5 GPUs: Σ=495, 100-49=51
    assert_eq!(packing_score(ns, 5, 1), 51);
    // 6 GPUs: Σ=594, 100-59=41 -> max(41, 50)=50
    assert_eq!(packing_score(ns, 6, 1), 50);
    // 8 GPUs: Σ=792, 100-79=21 -> 50
    assert_eq!(packing_score(ns, 8, 1), 50);

    // The largest node (16 GPUs) gets closest to the other two caps, which no node can
    // reach (case 2 needs k ≥ 18, case 3 needs n ≥ 17).
    let mut st = state(vec![node("n0", 64_000, MEM, 16)]);
    // idle, case 3: max(33-16, 16)=17
    assert_eq!(packing_score(st.node(NodeId(0)).state, 1, 1000), 17);
    assert_eq!(packing_score(st.node(NodeId(0)).state, 16, 1000), 17);
    use_gpu(&mut st, 0, 0, 1);
    // 15 fully free GPUs of a used node, case 2: max(50-15, 33)=35
    assert_eq!(packing_score(st.node(NodeId(0)).state, 15, 1000), 35);
    // a request the node cannot hold: 0
    assert_eq!(packing_score(st.node(NodeId(0)).state, 16, 1000), 0);
}

// ---------------------------------------------------------------------------------------
// BestFit: raw ⌊100·(1 − (0.5·(cpu_free−cpu)/C + 0.5·(gpu_free−gpu)/G))⌋, then min-max
// normalised onto 0..=100 (all 0 when equal).

/// Raw and normalised BestFit scores of `pod` on every node (node `i` is `want[i]`).
fn check_best_fit(state: &ClusterState, pod: &Pod, raw: &[i64], normalized: &[i64]) {
    let plugin = BestFitScore::new(&ctx(state));
    let nodes: Vec<usize> = (0..state.len()).collect();
    let got = raw_scores(&plugin, state, pod, &nodes);
    assert_eq!(got, raw, "BestFit raw scores of {pod:?}");
    let mut scores: Vec<NodeScore> = got
        .iter()
        .enumerate()
        .map(|(i, &score)| NodeScore {
            node: NodeId(i as u32),
            score,
        })
        .collect();
    plugin.normalize(&CycleState::default(), pod, &mut scores);
    let got: Vec<i64> = scores.iter().map(|s| s.score).collect();
    assert_eq!(got, normalized, "BestFit normalised scores of {pod:?}");
}

#[test]
fn best_fit_raw_and_normalized() {
    // C=128000, G=8000
    let st = state(vec![
        node("n0", 128_000, MEM, 8),
        node("n1", 64_000, MEM, 2),
        node("n2", 96_000, MEM, 4),
    ]);
    check_best_fit(
        &st,
        &pod(8000, Milli(500)),
        &[
            // cpu=120000/128000*0.5=0.46875, gpu=7500/8000*0.5=0.46875, (1-0.9375)*100=6.25 -> 6
            6,
            // cpu=56000/128000*0.5=0.21875, gpu=1500/8000*0.5=0.09375, (1-0.3125)*100=68.75 -> 68
            68,
            // cpu=88000/128000*0.5=0.34375, gpu=3500/8000*0.5=0.21875, (1-0.5625)*100=43.75 -> 43
            43,
        ],
        // lo=6, hi=68, range=62: 0, 100, (43-6)*100/62=3700/62=59.67 -> 59
        &[0, 100, 59],
    );
    check_best_fit(
        &st,
        // fills n1 exactly
        &pod(64_000, Whole(2)),
        &[
            // cpu=64000/128000*0.5=0.25, gpu=6000/8000*0.5=0.375, (1-0.625)*100=37.5 -> 37
            37,  // cpu=0, gpu=0: 100
            100, // cpu=32000/128000*0.5=0.125, gpu=2000/8000*0.5=0.125, (1-0.25)*100=75
            75,
        ],
        // lo=37, range=63: 0, 100, (75-37)*100/63=3800/63=60.3 -> 60
        &[0, 100, 60],
    );
}

#[test]
fn best_fit_all_equal_normalizes_to_zero() {
    let st = state(vec![node("a", 64_000, MEM, 4), node("b", 64_000, MEM, 4)]);
    check_best_fit(
        &st,
        &pod(16_000, Whole(1)),
        // cpu=48000/64000*0.5=0.375, gpu=3000/4000*0.5=0.375, (1-0.75)*100=25
        &[25, 25],
        &[0, 0],
    );
}

#[test]
fn min_max_normalize_cases() {
    fn norm(raw: &[i64]) -> Vec<i64> {
        let mut s: Vec<NodeScore> = raw
            .iter()
            .enumerate()
            .map(|(i, &score)| NodeScore {
                node: NodeId(i as u32),
                score,
            })
            .collect();
        min_max_normalize(&mut s);
        // node order is kept
        assert!(s
            .iter()
            .enumerate()
            .all(|(i, n)| n.node == NodeId(i as u32)));
        s.into_iter().map(|n| n.score).collect()
    }
    assert_eq!(norm(&[10, 20, 30]), [0, 50, 100]);
    // range 3: (2-1)*100/3=33
    assert_eq!(norm(&[1, 2, 4]), [0, 33, 100]);
    assert_eq!(norm(&[4, 1, 2]), [100, 0, 33]);
    assert_eq!(norm(&[5, 5, 5]), [0, 0, 0]);
    assert_eq!(norm(&[42]), [0]);
    assert_eq!(norm(&[]), Vec::<i64>::new());
    assert_eq!(norm(&[0, 100]), [0, 100]);
}

// ---------------------------------------------------------------------------------------
// LeastAllocated ⌊(c−q)·100/c⌋ / MostAllocated ⌊q·100/c⌋ per resource (CPU, memory,
// GPU when the node has GPUs), mean by integer division.

/// `want` is `(node, least_allocated, most_allocated)`.
fn check_kube(state: &ClusterState, pod: &Pod, want: &[(usize, i64, i64)]) {
    let least: Vec<(usize, i64)> = want.iter().map(|&(n, l, _)| (n, l)).collect();
    let most: Vec<(usize, i64)> = want.iter().map(|&(n, _, m)| (n, m)).collect();
    check_raw(
        "LeastAllocated",
        &NodeResourcesScore::least_allocated(),
        state,
        pod,
        &least,
    );
    check_raw(
        "MostAllocated",
        &NodeResourcesScore::most_allocated(),
        state,
        pod,
        &most,
    );
}

/// n0: 10 cores, 30000 MiB, 4 GPUs, running (2000m, 6000 MiB, 1 GPU);
/// n1: CPU-only, 8 cores, 16000 MiB; n2: 4 cores, 4000 MiB, 1 GPU.
fn kube_cluster() -> ClusterState {
    let mut st = state(vec![
        node("n0", 10_000, 30_000, 4),
        node("n1", 8000, 16_000, 0),
        node("n2", 4000, 4000, 1),
    ]);
    place(&mut st, &Pod::new("u", 2000, 6000, Whole(1)), 0, &[0]);
    st
}

#[test]
fn kube_allocated_gpu_pod() {
    check_kube(
        &kube_cluster(),
        &Pod::new("p", 1000, 4500, Milli(500)),
        &[(
            0,
            // cpu q=3000: 7000*100/10000=70; mem q=10500: 19500*100/30000=65;
            // gpu q=1500: 2500*100/4000=62; (70+65+62)/3=197/3=65
            65,
            // cpu 3000*100/10000=30; mem 10500*100/30000=35; gpu 1500*100/4000=37;
            // (30+35+37)/3=102/3=34
            34,
        )],
    );
}

#[test]
fn kube_allocated_truncates_each_resource() {
    check_kube(
        &kube_cluster(),
        &Pod::new("p", 1000, 2000, Milli(1)),
        &[(
            2,
            // cpu q=1000: 3000*100/4000=75; mem q=2000: 2000*100/4000=50;
            // gpu q=1: 999*100/1000=99.9 -> 99; (75+50+99)/3=224/3=74
            74, // 25; 50; 1*100/1000=0.1 -> 0; (25+50+0)/3=75/3=25
            25,
        )],
    );
}

#[test]
fn kube_allocated_cpu_only_pod() {
    check_kube(
        &kube_cluster(),
        &Pod::new("p", 1000, 3000, NoGpu),
        &[
            (
                0,
                // cpu q=3000: 70; mem q=9000: 21000*100/30000=70; gpu q=1000: 3000*100/4000=75;
                // (70+70+75)/3=215/3=71
                71, // 30, 30, 25: 85/3=28
                28,
            ),
            (
                1,
                // GPU left out. cpu q=1000: 7000*100/8000=87; mem q=3000: 13000*100/16000=81;
                // (87+81)/2=84
                84, // 1000*100/8000=12; 3000*100/16000=18; (12+18)/2=15
                15,
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// FGD.

fn typ(
    cpu_milli: u64,
    gpu: GpuRequest,
    models: &[mlplane_model::GpuModelId],
    w: f64,
) -> TypicalPod {
    let allowed_models = (!models.is_empty()).then(|| {
        let mut s = mlplane_model::ModelSet::empty();
        for &m in models {
            s.insert(m);
        }
        s
    });
    TypicalPod {
        cpu_milli,
        gpu,
        allowed_models,
        weight: w,
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

fn workload() -> Vec<Pod> {
    let mut pods = Vec::new();
    let mut add = |n: usize, cpu: u64, gpu: GpuRequest| {
        for i in 0..n {
            // memory differs within a shape: it is not part of the shape
            pods.push(Pod::new(
                format!("w{}", pods.len()),
                cpu,
                1024 * (i as u64 + 1),
                gpu,
            ));
        }
    };
    add(2, 1000, Milli(250)); // D: 2 pods
    add(4, 4000, Milli(500)); // A: 4 pods
    add(1, 16_000, Whole(2)); // E: 1 pod
    add(3, 8000, Whole(1)); // B: 3 pods
    add(2, 2000, NoGpu); // C: 2 pods
    pods
}

fn shapes(t: &TypicalPods) -> Vec<(u64, GpuRequest, f64)> {
    t.pods()
        .iter()
        .map(|p| (p.cpu_milli, p.gpu, p.weight))
        .collect()
}

fn check_typical(t: &TypicalPods, want: &[(u64, GpuRequest, f64)]) {
    let got = shapes(t);
    assert_eq!(got.len(), want.len(), "typical pods {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.0, g.1),
            (w.0, w.1),
            "typical pods {got:?}, want {want:?}"
        );
        assert_close(g.2, w.2, "weight");
    }
    assert!(t.pods().iter().all(|p| p.allowed_models.is_none()));
}

#[test]
fn typical_pods_order_cut_and_renormalisation() {
    let pods = workload();
    // 12 pods. Counts: A=4, B=3, then C and D with 2 each (C first: 2000m > 1000m), E=1.
    // popularity 0.75: want 9 pods; A (4) + B (7) + C (9) reach 9, D and E are cut.
    // Weights renormalised over the 9 covered pods.
    check_typical(
        &TypicalPods::from_workload(&pods, 0.75),
        &[
            (4000, Milli(500), 4.0 / 9.0),
            (8000, Whole(1), 3.0 / 9.0),
            (2000, NoGpu, 2.0 / 9.0),
        ],
    );
    // popularity 0.7: want 8.4; A, B (7 < 8.4), C (9) -> same cut
    assert_eq!(
        TypicalPods::from_workload(&pods, 0.7),
        TypicalPods::from_workload(&pods, 0.75)
    );
    // popularity 0.5: want 6; A (4 < 6), B (7 ≥ 6): weights 4/7, 3/7
    check_typical(
        &TypicalPods::from_workload(&pods, 0.5),
        &[(4000, Milli(500), 4.0 / 7.0), (8000, Whole(1), 3.0 / 7.0)],
    );
    // popularity 1: every shape, weights over 12
    check_typical(
        &TypicalPods::from_workload(&pods, 1.0),
        &[
            (4000, Milli(500), 4.0 / 12.0),
            (8000, Whole(1), 3.0 / 12.0),
            (2000, NoGpu, 2.0 / 12.0),
            (1000, Milli(250), 2.0 / 12.0),
            (16_000, Whole(2), 1.0 / 12.0),
        ],
    );
    // popularity 0: still the most popular shape, weight 1
    check_typical(
        &TypicalPods::from_workload(&pods, 0.0),
        &[(4000, Milli(500), 1.0)],
    );
    // no pods: no typical pods
    assert!(TypicalPods::from_workload(&[], 0.95).pods().is_empty());
}

#[test]
fn typical_pods_model_constraint_is_part_of_the_shape() {
    let pods = vec![
        pod(1000, Milli(500)),
        pod_on(1000, Milli(500), &[A100]),
        pod_on(1000, Milli(500), &[A100]),
    ];
    let t = TypicalPods::from_workload(&pods, 1.0);
    assert_eq!(t.pods().len(), 2);
    assert_eq!(t.pods()[0].allowed_models, pods[1].allowed_models);
    assert_close(t.pods()[0].weight, 2.0 / 3.0, "constrained shape");
    assert_eq!(t.pods()[1].allowed_models, None);
    assert_close(t.pods()[1].weight, 1.0 / 3.0, "unconstrained shape");
}

/// Fragmentation of a T4 node with 8000m free CPU and GPUs free [1000, 600, 300, 0]
/// (total 1900) for one typical pod of weight 1.
fn frag_one(p: TypicalPod) -> f64 {
    TypicalPods::from_pods(vec![p]).fragmentation(Some(T4), 8000, &[1000, 600, 300, 0])
}

#[test]
fn fragmentation_per_typical_pod() {
    // share 500: GPUs 1000 and 600 hold it; fragments 300+0=300
    assert_close(
        frag_one(typ(4000, Milli(500), &[], 1.0)),
        300.0,
        "share 500",
    );
    // share 700: only GPU0 holds it; fragments 600+300+0=900
    assert_close(
        frag_one(typ(4000, Milli(700), &[], 1.0)),
        900.0,
        "share 700",
    );
    // 1 whole GPU: GPU0 holds it; fragments 600+300+0=900
    assert_close(frag_one(typ(1000, Whole(1), &[], 1.0)), 900.0, "1 GPU");
    // 2 whole GPUs: only one fully free GPU, cannot run: all 1900 free milli
    assert_close(frag_one(typ(1000, Whole(2), &[], 1.0)), 1900.0, "2 GPUs");
    // CPU-only: every free milli-GPU is a fragment
    assert_close(frag_one(typ(1000, NoGpu, &[], 1.0)), 1900.0, "CPU-only");
    // model mismatch (A100 only): 1900
    assert_close(
        frag_one(typ(1000, Milli(500), &[A100], 1.0)),
        1900.0,
        "A100 only",
    );
    // model allowed explicitly: as unconstrained, 300
    assert_close(
        frag_one(typ(1000, Milli(500), &[T4, A100], 1.0)),
        300.0,
        "T4 ok",
    );
    // too little CPU (16000m > 8000m): 1900
    assert_close(frag_one(typ(16_000, Milli(500), &[], 1.0)), 1900.0, "CPU");
    // CPU exactly enough: 300
    assert_close(
        frag_one(typ(8000, Milli(500), &[], 1.0)),
        300.0,
        "CPU exact",
    );
}

#[test]
fn fragmentation_is_the_weighted_expectation() {
    let t = TypicalPods::from_pods(vec![
        typ(4000, Milli(500), &[], 0.5),
        typ(1000, Whole(1), &[], 0.25),
        typ(1000, NoGpu, &[], 0.25),
    ]);
    // 0.5*300 + 0.25*900 + 0.25*1900 = 150+225+475 = 850
    assert_close(
        t.fragmentation(Some(T4), 8000, &[1000, 600, 300, 0]),
        850.0,
        "mix",
    );
    // nothing free: 0
    assert_close(t.fragmentation(Some(T4), 8000, &[0, 0]), 0.0, "full");
    // CPU-only node: 0
    assert_close(t.fragmentation(None, 8000, &[]), 0.0, "no GPU");
    // no typical pods: 0
    assert_close(
        TypicalPods::default().fragmentation(Some(T4), 8000, &[1000, 600]),
        0.0,
        "empty",
    );
}

#[test]
fn fgd_score_values() {
    for (delta, want) in [
        (0.0, 50),     // sigmoid(0)=0.5
        (-1000.0, 26), // sigmoid(-1)=0.2689
        (1000.0, 73),  // sigmoid(1)=0.7311
        (500.0, 62),   // sigmoid(0.5)=0.6225
        (-300.0, 42),  // sigmoid(-0.3)=0.4256
        (3000.0, 95),  // sigmoid(3)=0.9526
        (-5000.0, 0),  // sigmoid(-5)=0.0067
        (1.0e6, 100),  // sigmoid(1000)=1.0
        (-1.0e6, 0),   // sigmoid(-1000)=0.0
    ] {
        assert_eq!(fgd_score(delta), want, "fgd_score({delta})");
    }
}

/// A one-node state (4-GPU T4 node, 32 cores) whose GPUs have `free` milli free.
fn fgd_node(free: &[u16]) -> ClusterState {
    let mut st = state(vec![node("n0", 32_000, MEM, free.len() as u8)]);
    for (g, &f) in free.iter().enumerate() {
        if f < 1000 {
            use_gpu(&mut st, 0, g, 1000 - f);
        }
    }
    st
}

fn check_fgd(typical: Vec<TypicalPod>, state: &ClusterState, pod: &Pod, want: (i64, &[usize])) {
    let fgd = FgdScore::new(Arc::new(TypicalPods::from_pods(typical)));
    let info = state.node(NodeId(0));
    assert_eq!(
        fgd.evaluate(pod, &info),
        Some((want.0, gpus(want.1))),
        "FGD evaluate of {pod:?}"
    );
    assert_eq!(fgd.score(&CycleState::default(), pod, &info), want.0);
}

#[test]
fn fgd_evaluate_share_avoids_the_tight_gpu() {
    // typical share 500. Free [1000, 700, 1000, 1000]; before: all hold 500, F=0.
    // GPU0 -> [700,700,1000,1000]: F=0, Δ=0 -> 50
    // GPU1 -> [1000,400,1000,1000]: F=400, Δ=-400 -> sigmoid(-0.4)=0.401 -> 40
    // GPU2, GPU3 equal GPU0. Best: GPU0 (a best-fit selector would take GPU1).
    check_fgd(
        vec![typ(1000, Milli(500), &[], 1.0)],
        &fgd_node(&[1000, 700, 1000, 1000]),
        &pod(1000, Milli(300)),
        (50, &[0]),
    );
}

#[test]
fn fgd_evaluate_share_packs_a_used_gpu() {
    // typical 1 whole GPU. Free [1000, 1000, 600]; before: F=600.
    // GPU0 -> [800,1000,600]: F=1400, Δ=-800 -> sigmoid(-0.8)=0.310 -> 31 (GPU1 same)
    // GPU2 -> [1000,1000,400]: F=400, Δ=+200 -> sigmoid(0.2)=0.550 -> 54
    check_fgd(
        vec![typ(0, Whole(1), &[], 1.0)],
        &fgd_node(&[1000, 1000, 600]),
        &pod(1000, Milli(200)),
        (54, &[2]),
    );
}

#[test]
fn fgd_evaluate_share_tie_keeps_lowest_index() {
    // typical share 500. Free [1000, 800]; before F=0.
    // GPU0 -> [700, 800]: F=0 -> 50; GPU1 -> [1000, 500]: F=0 -> 50. Tie: GPU0.
    check_fgd(
        vec![typ(0, Milli(500), &[], 1.0)],
        &fgd_node(&[1000, 800]),
        &pod(1000, Milli(300)),
        (50, &[0]),
    );
}

#[test]
fn fgd_evaluate_whole_and_cpu_only() {
    // typical 1 whole GPU. Free [1000, 600, 1000, 1000]; before: F=600.
    // 2 GPUs take the lowest free ones, 0 and 2: [0,600,0,1000] F=600, Δ=0 -> 50
    check_fgd(
        vec![typ(0, Whole(1), &[], 1.0)],
        &fgd_node(&[1000, 600, 1000, 1000]),
        &pod(1000, Whole(2)),
        (50, &[0, 2]),
    );
    // typical (8000m, 1 GPU); node has 32000m. A CPU-only pod of 28000m leaves 4000m:
    // before F=0 (fits, nothing small); after the typical pod lacks CPU: F=2000 (all free),
    // Δ=-2000 -> sigmoid(-2)=0.119 -> 11
    check_fgd(
        vec![typ(8000, Whole(1), &[], 1.0)],
        &fgd_node(&[1000, 1000]),
        &pod(28_000, NoGpu),
        (11, &[]),
    );
    // the same pod when the typical pods are CPU-only: F=2000 before and after, Δ=0 -> 50
    check_fgd(
        vec![typ(8000, NoGpu, &[], 1.0)],
        &fgd_node(&[1000, 1000]),
        &pod(28_000, NoGpu),
        (50, &[]),
    );
}

#[test]
fn fgd_evaluate_cannot_hold() {
    let st = fgd_node(&[300, 1000]);
    let fgd = FgdScore::new(Arc::new(TypicalPods::default()));
    let info = st.node(NodeId(0));
    assert_eq!(fgd.evaluate(&pod(0, Whole(2)), &info), None);
    // only GPU1 holds 500; no typical pods: Δ=0 -> 50
    assert_eq!(
        fgd.evaluate(&pod(0, Milli(500)), &info),
        Some((50, GpuSet::single(1)))
    );
    let st = fgd_node(&[300, 400]);
    assert_eq!(fgd.evaluate(&pod(0, Milli(500)), &st.node(NodeId(0))), None);
    assert_eq!(
        fgd.score(
            &CycleState::default(),
            &pod(0, Milli(500)),
            &st.node(NodeId(0))
        ),
        0
    );
}

// ---------------------------------------------------------------------------------------
// Random: the node drawn at PreScore ends with 100, every other node 0.

/// Wraps RandomScore (its PreScore draw and its Score) and logs the scores it gives.
struct Recording {
    inner: RandomScore,
    log: Arc<Mutex<Vec<(NodeId, i64)>>>,
}

impl Plugin for Recording {
    fn name(&self) -> &'static str {
        "Recording"
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for Recording {
    fn pre_score(
        &self,
        cycle: &mut CycleState,
        pod: &Pod,
        feasible: &[NodeInfo<'_>],
        rng: &mut dyn RngCore,
    ) -> Result<(), Status> {
        self.inner.pre_score(cycle, pod, feasible, rng)
    }
}

impl ScorePlugin for Recording {
    fn score(&self, cycle: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> i64 {
        self.inner.score(cycle, pod, node)
    }
    /// Logs the scores as they end, after RandomScore's NormalizeScore.
    fn normalize(&self, cycle: &CycleState, pod: &Pod, scores: &mut [NodeScore]) {
        self.inner.normalize(cycle, pod, scores);
        self.log
            .lock()
            .unwrap()
            .extend(scores.iter().map(|s| (s.node, s.score)));
    }
}

#[test]
fn random_scores_the_drawn_node_100_and_others_0() {
    let mut st = state(vec![
        node("n0", 64_000, MEM, 4),
        node("n1", 64_000, MEM, 4),
        node("n2", 64_000, MEM, 4),
        node("full", 64_000, MEM, 1),
    ]);
    place(&mut st, &pod(0, Whole(1)), 3, &[0]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let prof = Profile::new("rec")
        .with_all(plugins::default_filters(st.cluster()))
        .with(
            Arc::new(Recording {
                inner: RandomScore,
                log: log.clone(),
            }),
            1,
        )
        .with(Arc::new(GpuSelector(GpuSelectMode::Random)), 1);
    let mut sched = Scheduler::new(prof);
    let mut chosen = [0usize; 4];
    for seed in 0..60 {
        log.lock().unwrap().clear();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = sched
            .evaluate(&st, &pod(1000, Milli(500)), &mut rng)
            .unwrap();
        chosen[p.node.index()] += 1;
        let scores = log.lock().unwrap().clone();
        // the infeasible node "full" is never scored
        let want: Vec<(NodeId, i64)> = (0..3)
            .map(|i| (NodeId(i), if NodeId(i) == p.node { 100 } else { 0 }))
            .collect();
        assert_eq!(scores, want, "seed {seed}");
    }
    assert_eq!(chosen[3], 0, "an infeasible node was chosen");
    assert!(
        chosen[..3].iter().all(|&c| c > 0),
        "not uniform: {chosen:?}"
    );

    // The policy's own profile draws the same way.
    let mut pol = Scheduler::new(profile(Policy::Random, &ctx(&st), st.cluster()));
    let mut seen = [false; 4];
    for seed in 0..60 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = pol.evaluate(&st, &pod(1000, Milli(500)), &mut rng).unwrap();
        seen[p.node.index()] = true;
    }
    assert_eq!(seen, [true, true, true, false]);
}

#[test]
fn policy_context_takes_the_largest_node() {
    let st = state(vec![
        node("a", 96_000, MEM, 2),
        node("b", 64_000, MEM, 8),
        node("c", 128_000, MEM, 0),
    ]);
    let c = PolicyContext::new(st.cluster(), Arc::new(TypicalPods::default()));
    assert_eq!(c.max_node_cpu_milli, 128_000);
    assert_eq!(c.max_node_gpu_milli, 8000);
    let cpu_only = state(vec![node("a", 4000, MEM, 0)]);
    // no GPUs: 1, so that divisions stay defined
    assert_eq!(ctx(&cpu_only).max_node_gpu_milli, 1);
}

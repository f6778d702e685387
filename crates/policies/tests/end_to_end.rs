//! Whole scheduling cycles through `Scheduler` + `profile(policy, ctx, cluster)` on clusters where
//! the scores force one node (no ties), so the placement is exact whatever the RNG.

mod common;

use std::sync::Arc;

use common::*;
use mlplane_model::{GpuRequest, Pod};
use mlplane_policies::fgd::{TypicalPod, TypicalPods};
use mlplane_policies::{profile, Policy, PolicyContext};
use mlplane_sched::{ClusterState, ScheduleError, Scheduler};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use GpuRequest::{Milli, None as NoGpu, Whole};

const MEM: u64 = 262_144;

/// Evaluates `pod` with `policy` under several seeds; each must give `(node, gpus)`
/// (charged as the paper's milli-GPU model charges), and a whole cycle on a copy of the
/// state must place and assume it there.
fn check_choice(
    policy: Policy,
    ctx: &PolicyContext,
    state: &ClusterState,
    pod: &Pod,
    node: u32,
    idx: &[usize],
) {
    let want = placement(state, pod.gpu, node, idx);
    let mut sched = Scheduler::new(profile(policy, ctx, state.cluster()));
    for seed in 0..8 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let got = sched
            .evaluate(state, pod, &mut rng)
            .unwrap_or_else(|e| panic!("{policy}: {pod:?} unschedulable: {e}"));
        assert_eq!(got, want, "{policy}, seed {seed}, pod {pod:?}");
    }
    let mut st = state.clone();
    let got = sched
        .schedule(&mut st, pod, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_or_else(|e| panic!("{policy}: schedule of {pod:?} failed: {e}"));
    assert_eq!(got, want, "{policy}: schedule of {pod:?}");
    assert_eq!(
        st.bound(pod.id).map(|b| &b.placement),
        Some(&want),
        "{policy}: {pod:?} not assumed"
    );
}

fn fgd_ctx(state: &ClusterState, typical: Vec<TypicalPod>) -> PolicyContext {
    PolicyContext::new(state.cluster(), Arc::new(TypicalPods::from_pods(typical)))
}

fn typical(cpu_milli: u64, gpu: GpuRequest) -> TypicalPod {
    TypicalPod {
        cpu_milli,
        gpu,
        allowed_models: None,
        weight: 1.0,
    }
}

/// n0: 128 cores, 8 GPUs; n1: 64 cores, 2 GPUs, GPU0 400m used; n2: 96 cores, 4 GPUs.
fn three_nodes() -> ClusterState {
    let mut st = state(vec![
        node("n0", 128_000, MEM, 8),
        node("n1", 64_000, MEM, 2),
        node("n2", 96_000, MEM, 4),
    ]);
    use_gpu(&mut st, 1, 0, 400);
    st
}

#[test]
fn best_fit_takes_the_fullest_node_and_the_tightest_gpu() {
    let st = three_nodes();
    // C=128000, G=8000, pod (8000m, 500m):
    // n0: 1-(120000/128000*0.5 + 7500/8000*0.5) = 1-0.9375 -> 6
    // n1: 1-(56000/128000*0.5 + 1100/8000*0.5) = 1-(0.21875+0.06875)=0.7125 -> 71
    // n2: 1-(88000/128000*0.5 + 3500/8000*0.5) = 1-0.5625 -> 43
    // n1 wins; best-fit GPU: GPU0 (600 free) before GPU1 (1000).
    check_choice(
        Policy::BestFit,
        &ctx(&st),
        &st,
        &pod(8000, Milli(500)),
        1,
        &[0],
    );
}

#[test]
fn dot_prod_takes_the_smallest_product() {
    let st = three_nodes();
    // r=(8000/128000, 500/8000)=(0.0625, 0.0625)
    // n0: f=(1, 1): dot=0.0625 -> 93.75 -> 93
    // n1: f=(0.5, 1600/8000=0.2): dot=(0.03125+0.0125)/2=0.021875 -> 97.8 -> 97
    // n2: f=(0.75, 0.5): dot=(0.046875+0.03125)/2=0.0390625 -> 96.09 -> 96
    check_choice(
        Policy::DotProd,
        &ctx(&st),
        &st,
        &pod(8000, Milli(500)),
        1,
        &[0],
    );
}

#[test]
fn gpu_packing_prefers_used_gpus_then_used_nodes() {
    let mut st = state(vec![node("n0", 64_000, MEM, 8), node("n1", 64_000, MEM, 8)]);
    use_gpu(&mut st, 1, 3, 600);
    let c = ctx(&st);
    // n0 idle: max(33-8, 8)=25; n1 GPU3 (400 free): 100-40/10=96; best-fit GPU 3
    check_choice(Policy::GpuPacking, &c, &st, &pod(1000, Milli(300)), 1, &[3]);
    // 2 GPUs: n0 25; n1 needs 2 fully free GPUs: max(50-2, 33)=48; lowest free: 0, 1
    check_choice(
        Policy::GpuPacking,
        &c,
        &st,
        &pod(1000, Whole(2)),
        1,
        &[0, 1],
    );
    // 8 GPUs fit only on n0 (the single feasible node)
    check_choice(
        Policy::GpuPacking,
        &c,
        &st,
        &pod(1000, Whole(8)),
        0,
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );
}

#[test]
fn gpu_clustering_joins_its_class() {
    let mut st = state(vec![node("n0", 64_000, MEM, 8), node("n1", 64_000, MEM, 8)]);
    use_gpu(&mut st, 0, 0, 500);
    place(&mut st, &pod(0, Whole(1)), 1, &[0]);
    let c = ctx(&st);
    // share: n0 75+⌊25*500/8000⌋=76, n1 0+⌊25*1000/8000⌋=3; best-fit GPU on n0: GPU0 (500)
    check_choice(
        Policy::GpuClustering,
        &c,
        &st,
        &pod(1000, Milli(250)),
        0,
        &[0],
    );
    // 1 GPU: n0 0+1=1, n1 75+3=78; first free GPU on n1: 1
    check_choice(
        Policy::GpuClustering,
        &c,
        &st,
        &pod(1000, Whole(1)),
        1,
        &[1],
    );
}

#[test]
fn fgd_reserves_the_gpu_it_scored() {
    // typical: share 500. n0: one GPU with 700 free; n1: GPUs free [1000, 700].
    let mut st = state(vec![node("n0", 64_000, MEM, 1), node("n1", 64_000, MEM, 2)]);
    use_gpu(&mut st, 0, 0, 300);
    use_gpu(&mut st, 1, 1, 300);
    let c = fgd_ctx(&st, vec![typical(0, Milli(500))]);
    // pod share 300:
    // n0: before F=0; GPU0 -> 400 < 500: F=400, Δ=-400 -> 40
    // n1: before F=0; GPU0 -> [700,700]: F=0 -> 50; GPU1 -> [1000,400]: F=400 -> 40
    // n1 wins with GPU0, which is not the best-fitting GPU (GPU1)
    check_choice(Policy::Fgd, &c, &st, &pod(1000, Milli(300)), 1, &[0]);
}

#[test]
fn fgd_packs_a_share_where_whole_gpus_stay_free() {
    // typical: 1 whole GPU. n0: GPUs free [1000, 1000]; n1: [1000, 600].
    let mut st = state(vec![node("n0", 64_000, MEM, 2), node("n1", 64_000, MEM, 2)]);
    use_gpu(&mut st, 1, 1, 400);
    let c = fgd_ctx(&st, vec![typical(0, Whole(1))]);
    // pod share 300:
    // n0: F=0; GPU0 -> [700,1000]: F=700, Δ=-700 -> sigmoid(-0.7)=0.332 -> 33
    // n1: F=600; GPU0 -> [700,600]: no whole GPU left, F=1300, Δ=-700 -> 33;
    //     GPU1 -> [1000,300]: F=300, Δ=+300 -> sigmoid(0.3)=0.574 -> 57
    check_choice(Policy::Fgd, &c, &st, &pod(1000, Milli(300)), 1, &[1]);
}

#[test]
fn most_and_least_allocated_pack_and_spread() {
    // two nodes (8 cores, 16000 MiB, 2 GPUs); n0 runs (4000m, 8000 MiB, 1 GPU)
    let mut st = state(vec![
        node("n0", 8000, 16_000, 2),
        node("n1", 8000, 16_000, 2),
    ]);
    place(&mut st, &Pod::new("u", 4000, 8000, Whole(1)), 0, &[0]);
    let c = ctx(&st);
    let p = Pod::new("p", 1000, 2000, Whole(1));
    // MostAllocated: n0 cpu 5000*100/8000=62, mem 10000*100/16000=62, gpu 100: 224/3=74;
    //                n1 12, 12, 50: 74/3=24 -> n0, its free GPU 1
    check_choice(Policy::MostAllocated, &c, &st, &p, 0, &[1]);
    // LeastAllocated: n0 37, 37, 0: 74/3=24; n1 87, 87, 50: 224/3=74 -> n1, GPU 0
    check_choice(Policy::LeastAllocated, &c, &st, &p, 1, &[0]);
}

#[test]
fn every_policy_places_a_cpu_only_pod_on_the_only_feasible_node() {
    let st = state(vec![
        node("small", 1000, MEM, 2),
        node("big", 64_000, MEM, 0),
    ]);
    let c = ctx(&st);
    for policy in Policy::ALL {
        check_choice(policy, &c, &st, &pod(8000, NoGpu), 1, &[]);
    }
}

/// Reason texts are kube's since the one-core rewrite: "Insufficient nvidia.com/gpu"
/// (was "Insufficient GPU"), and a GPU pod on a CPU-only node is "Insufficient
/// nvidia.com/gpu" too (was "node has no GPU"), as kube-scheduler says of a node
/// without the extended resource.
#[test]
fn unschedulable_reports_the_reasons() {
    let mut st = state(vec![
        node("cpu", 64_000, MEM, 0),
        node("small", 1000, MEM, 2),
        node("full", 64_000, MEM, 1),
    ]);
    place(&mut st, &pod(0, Whole(1)), 2, &[0]);
    let c = ctx(&st);
    for policy in Policy::ALL {
        let mut sched = Scheduler::new(profile(policy, &c, st.cluster()));
        let p = pod(8000, Whole(1));
        let before = st.pod_count();
        let err = sched
            .schedule(&mut st, &p, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap_err();
        assert_eq!(
            st.pod_count(),
            before,
            "{policy}: a refused pod was assumed"
        );
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu.",
            "{policy}"
        );
        match err {
            ScheduleError::Unschedulable {
                diagnosis,
                nominated,
            } => {
                assert_eq!(diagnosis.nodes, 3);
                assert_eq!(nominated, None);
                // in kube's order: by the text "<count> <reason>"
                assert_eq!(
                    diagnosis.reason_counts(),
                    [
                        ("Insufficient cpu".to_string(), 1),
                        ("Insufficient nvidia.com/gpu".to_string(), 2),
                    ],
                    "{policy}"
                );
            }
            other => panic!("{policy}: {other:?}"),
        }
    }
}

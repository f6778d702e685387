//! Scheduling decisions per second of the sharing study's policies on the one core
//! (`mlplane_sched::Scheduler` with `mlplane_policies::memory`'s profiles), whole GPUs
//! against sharing, on the same cluster: the trace's 1213 nodes (`$MLPLANE_TRACE_DIR` or
//! `../shared/data/alibaba-gpu-v2023` when present, else the synthetic cluster of the
//! same size), every GPU node an H100-80GB, in the sharing study's modes
//! ([`mlplane_sim::sharing`]).
//!
//! Each state is first filled with the first 60% of the workload (seed-42 order,
//! placed by the policy); then one decision = one `Scheduler::evaluate` call (the
//! whole cycle, PreFilter through Reserve, then Unreserve) for the next pod, without
//! committing it, so FGD's per-node fragmentation cache is warm, as in a simulation,
//! where one node changes per decision. The target: sharing within 2x of whole GPUs.
//!
//! Run: `cargo bench -p mlplane-sim --bench sharing`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;

use mlplane_model::{Cluster, Pod};
use mlplane_policies::memory::{share_profile, TYPICAL_COVERAGE};
use mlplane_policies::TypicalPods;
use mlplane_sched::{ClusterState, Scheduler, TieBreak};
use mlplane_sim::sharing::{SharePolicy, SharingMode, Study, StudyOptions};
use mlplane_sim::{synth, trace};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn input() -> (Cluster, Vec<Pod>) {
    let fallback =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/alibaba-gpu-v2023");
    if let Some(d) = trace::find_trace_dir(&fallback) {
        let c = trace::load_nodes(&d.join("openb_node_list_gpu_node.csv")).expect("node trace");
        let p = trace::load_pods(&d.join("openb_pod_list_default.csv"), &c).expect("pod trace");
        (c, p)
    } else {
        (synth::cluster(1213, 1), synth::workload(8152, 1))
    }
}

fn bench(c: &mut Criterion) {
    let (cluster, pods) = input();
    let study = Study::new(&cluster, pods, StudyOptions::default()).expect("study");
    let mut group = c.benchmark_group("share_decisions");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for policy in [SharePolicy::BestFit, SharePolicy::Fgd] {
        for mode in [
            SharingMode::Whole,
            SharingMode::TimeSlicing,
            SharingMode::Mig,
            SharingMode::Mixed,
        ] {
            let (cluster, reqs) = study.prepare(mode).expect("mode");
            let mut order: Vec<usize> = (0..reqs.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            order.shuffle(&mut rng);
            let rank: Arc<[u32]> = (0..cluster.nodes().len() as u32).collect();
            let typical = Arc::new(TypicalPods::by_gpu_request(&reqs, TYPICAL_COVERAGE));
            let mut sched = Scheduler::new(share_profile(policy, typical, &cluster))
                .with_tie_break(TieBreak::Rank(rank));
            let mut state = ClusterState::new(cluster);
            let fill = order.len() * 6 / 10;
            for &i in &order[..fill] {
                let _ = sched.schedule(&mut state, &reqs[i], &mut rng);
            }
            let next: Vec<usize> = order[fill..].iter().copied().take(512).collect();
            let mut k = 0;
            group.bench_with_input(
                BenchmarkId::new(policy.name(), mode.name()),
                &mode,
                |b, _| {
                    b.iter(|| {
                        let pod = &reqs[next[k % next.len()]];
                        k += 1;
                        let _ = std::hint::black_box(sched.evaluate(&state, pod, &mut rng));
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

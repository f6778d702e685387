//! Sharing-aware scheduling decisions per second, whole GPUs against sharing, on the
//! same cluster: the trace's 1213 nodes (`$MLPLANE_TRACE_DIR` or
//! `../shared/data/alibaba-gpu-v2023` when present, else the synthetic cluster of the
//! same size), every GPU node an H100-80GB, in the sharing study's modes
//! ([`mlplane_sim::sharing`]).
//!
//! Each state is first filled with the first 60% of the workload (seed-42 order,
//! placed by the policy); then one decision = one `ShareScheduler::schedule` call for
//! the next pod, without committing it, so FGD's per-node fragmentation cache is warm,
//! as in a simulation, where one node changes per decision. The target: sharing
//! within 2x of whole GPUs.
//!
//! Run: `cargo bench -p mlplane-sim --bench sharing`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mlplane_model::{Cluster, Pod};
use mlplane_share::sched::{SharePolicy, ShareScheduler, Typical};
use mlplane_share::state::ShareState;
use mlplane_sim::sharing::{SharingMode, Study, StudyOptions};
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
            let (plan, reqs) = study.prepare(mode).expect("mode");
            let mut order: Vec<usize> = (0..reqs.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            order.shuffle(&mut rng);
            let sched = ShareScheduler::new(policy, Typical::from_pods(&reqs), Vec::new());
            let mut state = ShareState::new(study.cluster(), plan);
            let fill = order.len() * 6 / 10;
            for &i in &order[..fill] {
                if let Ok(p) = sched.schedule(&state, &reqs[i], &mut rng) {
                    state.assume(&reqs[i], &p).expect("valid placement");
                }
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
                        let _ = std::hint::black_box(sched.schedule(&state, pod, &mut rng));
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

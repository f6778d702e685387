//! Scheduling decisions per second for each policy, on the trace's 1213-node cluster
//! (`$MLPLANE_TRACE_DIR` or `../shared/data/alibaba-gpu-v2023` when present, else the
//! synthetic cluster of the same size) and on that cluster replicated 10 times.
//!
//! Each cluster is first filled to 60% of its GPUs (pods in the seed-42 arrival order,
//! placed by BestFit), so that nodes are in varied states; then one decision = one
//! `Scheduler::evaluate` call (the whole cycle through Reserve, then Unreserve) for the
//! next pod of the workload, without committing it.
//!
//! A second group, `full-scan/...`, runs the same decisions with the scheduler's
//! per-shape cache off (every node filtered and scored every cycle: the old cost).
//! A third group, `committed/...`, makes each decision real: the pod is assumed into
//! the state (one node changes) and forgotten again.
//!
//! Run: `cargo bench -p mlplane-sim --bench decisions`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mlplane_model::{Cluster, Pod};
use mlplane_policies::{profile, Policy};
use mlplane_sched::{ClusterState, Scheduler, TieBreak};
use mlplane_sim::{synth, trace, Experiment, ExperimentConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn input() -> (Cluster, Vec<Pod>, &'static str) {
    let fallback =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/alibaba-gpu-v2023");
    if let Some(d) = trace::find_trace_dir(&fallback) {
        let c = trace::load_nodes(&d.join("openb_node_list_gpu_node.csv")).expect("node trace");
        let p = trace::load_pods(&d.join("openb_pod_list_default.csv"), &c).expect("pod trace");
        (c, p, "trace")
    } else {
        (
            synth::cluster(1213, 1),
            synth::workload(8152, 1),
            "synthetic",
        )
    }
}

/// A state filled to `pct`% of GPUs by BestFit, and the pods to schedule next.
fn filled(exp: &Experiment, pct: u64) -> (ClusterState, Vec<Pod>) {
    let mut state = ClusterState::new(Arc::new(exp.cluster().clone()));
    let mut sched = Scheduler::new(profile(Policy::BestFit, exp.context(), exp.cluster()))
        .with_tie_break(TieBreak::Rank(exp.node_order(42)));
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let target = exp.cluster().gpu_milli() * pct / 100;
    let arrivals = exp.arrivals(42);
    let mut k = 0;
    while state.gpu_used_milli() < target && k < arrivals.len() {
        let pod = exp.workload()[arrivals[k]].renewed();
        let _ = sched.schedule(&mut state, &pod, &mut rng);
        k += 1;
    }
    let next = arrivals[k..]
        .iter()
        .take(512)
        .map(|&i| exp.workload()[i].clone())
        .collect();
    (state, next)
}

fn bench(c: &mut Criterion) {
    let (cluster, pods, source) = input();
    for (label, times) in [("1x", 1usize), ("10x", 10)] {
        let cl = if times == 1 {
            cluster.clone()
        } else {
            synth::replicate(&cluster, times)
        };
        let workload: Vec<Pod> = (0..times).flat_map(|_| pods.iter().cloned()).collect();
        let nodes = cl.nodes().len();
        let exp = Experiment::new(cl, workload, ExperimentConfig::default()).expect("experiment");
        let (state, next) = filled(&exp, 60);
        // `decisions`: evaluate with the shape cache; `full-scan`: the same without it
        // (every node filtered and scored every cycle); `committed`: each pod is
        // assumed, then forgotten, so every decision changes one node twice and the
        // next one evaluates that node again.
        for group in ["decisions", "full-scan", "committed"] {
            let mut g = c.benchmark_group(format!("{group}/{source}-{label}-{nodes}-nodes"));
            g.throughput(Throughput::Elements(1));
            g.sample_size(if times == 1 { 30 } else { 10 });
            for policy in Policy::ALL {
                let mut sched = Scheduler::new(profile(policy, exp.context(), exp.cluster()))
                    .with_tie_break(TieBreak::Rank(exp.node_order(42)));
                if group == "full-scan" {
                    sched = sched.full_scan();
                }
                let mut rng = ChaCha8Rng::seed_from_u64(7);
                let mut st = state.clone();
                let mut i = 0;
                g.bench_function(BenchmarkId::from_parameter(policy.name()), |b| {
                    b.iter(|| {
                        let pod = &next[i % next.len()];
                        i += 1;
                        if group == "committed" {
                            let pod = pod.renewed();
                            if sched.schedule(&mut st, &pod, &mut rng).is_ok() {
                                st.forget(pod.id);
                            }
                        } else {
                            let _ = std::hint::black_box(sched.evaluate(&st, pod, &mut rng));
                        }
                    })
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

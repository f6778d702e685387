//! The FGD paper's experiment (Weng et al., USENIX ATC 2023, §6.1, and its simulator's
//! `workloadTuningConfig`): pods arrive one by one in a random order and never leave;
//! the workload is inflated by resampling until the requested GPUs reach a target
//! percentage of the cluster's capacity; the GPU allocation ratio is recorded as
//! arrivals pass each percentage.
//!
//! Arrival order for a seed:
//! 1. the workload's pods in a uniformly random order (seeded);
//! 2. then pods drawn uniformly with replacement from the workload, until the next one
//!    would push the requested GPUs past the target (if the workload alone exceeds the
//!    target, it is cut at the first pod that would).
//!
//! The workload order depends only on the seed, so every policy sees the same arrivals.
//!
//! Ties between best nodes go, as in the paper's simulator, to the first node of a
//! random node order drawn per seed ([`TieBreak::Rank`]); the Random policy and random
//! GPU selection draw from another stream of the same seed.
//!
//! **Allocation ratio at arrival P%** (the paper's analysis script): the mean, over all
//! arrivals whose cumulative requested GPU milli rounds to P% of capacity, of the
//! allocated GPU milli as a percentage of capacity. If no arrival rounds to P, arrivals
//! within P ± 1 are used; if none either, the last earlier arrival.

use std::sync::Arc;

use mlplane_model::{Cluster, Pod};
use mlplane_policies::{profile, Policy, PolicyContext, TypicalPods};
use mlplane_sched::{ClusterState, ScheduleError, Scheduler, TieBreak};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The RNG streams of a seed, shared by every run of the simulator so that every
/// policy sees the same arrivals and node order: stream 0 orders the arrivals, stream 1
/// feeds the policy's own draws (Random, random GPU selection), stream 2 draws the node
/// rank that breaks ties ([`TieBreak::Rank`]).
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The random node order of `seed` over `nodes` nodes: `rank[node index]`, a
/// permutation of `0..nodes` drawn from [`stream`] 2 (the FGD paper's simulator
/// prefixes node names with a random permutation per run and breaks ties by name).
pub fn node_rank(nodes: usize, seed: u64) -> Arc<[u32]> {
    let mut rank: Vec<u32> = (0..nodes as u32).collect();
    rank.shuffle(&mut stream(seed, 2));
    rank.into()
}

/// Settings of the experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct ExperimentConfig {
    /// Arrivals stop when requested GPUs reach this percentage of capacity (the paper: 130).
    pub max_arrival_pct: u32,
    /// Share of the workload FGD's typical pods cover (the paper: 0.95).
    pub popularity: f64,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            max_arrival_pct: 130,
            popularity: mlplane_policies::fgd::DEFAULT_POPULARITY,
        }
    }
}

/// One point of a run's curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Requested GPUs of the pods arrived so far, percent of capacity (an integer step).
    pub arrival_pct: u32,
    /// Allocated GPUs, percent of capacity.
    pub allocation_pct: f64,
    /// GPUs not allocated: capacity minus allocated, in GPUs (fractional: milli / 1000).
    pub unallocated_gpus: f64,
}

/// The result of one policy on one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The policy.
    pub policy: Policy,
    /// The seed.
    pub seed: u64,
    /// One point per integer arrival percentage `1..=max_arrival_pct`.
    pub points: Vec<Point>,
    /// Pods that arrived.
    pub pods_arrived: usize,
    /// Pods that could not be placed.
    pub pods_failed: usize,
    /// Allocated GPU milli at the end.
    pub gpu_used_milli: u64,
}

impl Run {
    /// The point at `arrival_pct`, if recorded.
    pub fn at(&self, arrival_pct: u32) -> Option<&Point> {
        self.points.iter().find(|p| p.arrival_pct == arrival_pct)
    }
}

/// A cluster and workload ready to run policies on.
#[derive(Clone, Debug)]
pub struct Experiment {
    cluster: Arc<Cluster>,
    workload: Arc<Vec<Pod>>,
    ctx: PolicyContext,
    config: ExperimentConfig,
}

/// An error that makes the experiment meaningless.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// The cluster has no GPUs, so no allocation ratio exists.
    #[error("the cluster has no GPUs; the experiment measures GPU allocation")]
    NoGpus,
    /// The workload has no pods that ask for GPUs.
    #[error("the workload has no GPU pods; the experiment measures GPU allocation")]
    NoGpuPods,
    /// The maximum arrival percentage is 0.
    #[error("the maximum arrival percentage must be at least 1")]
    ZeroArrival,
    /// A placement failed its capacity check (a bug in a policy).
    #[error("policy {policy} produced an invalid placement: {message}")]
    Invalid {
        /// The policy.
        policy: Policy,
        /// What was wrong.
        message: String,
    },
}

impl Experiment {
    /// Prepares an experiment; FGD's typical pods come from `workload`.
    ///
    /// # Errors
    /// [`ExperimentError`] if the cluster has no GPUs, the workload asks for none, or
    /// `max_arrival_pct` is 0.
    pub fn new(
        cluster: Cluster,
        workload: Vec<Pod>,
        config: ExperimentConfig,
    ) -> Result<Self, ExperimentError> {
        if cluster.gpu_count() == 0 {
            return Err(ExperimentError::NoGpus);
        }
        if workload.iter().all(|p| p.gpu.total_milli() == 0) {
            return Err(ExperimentError::NoGpuPods);
        }
        if config.max_arrival_pct == 0 {
            return Err(ExperimentError::ZeroArrival);
        }
        let typical = Arc::new(TypicalPods::from_workload(&workload, config.popularity));
        let ctx = PolicyContext::new(&cluster, typical);
        Ok(Experiment {
            cluster: Arc::new(cluster),
            workload: Arc::new(workload),
            ctx,
            config,
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The workload.
    pub fn workload(&self) -> &[Pod] {
        &self.workload
    }

    /// The settings.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The policy context (FGD's typical pods, normalisation constants).
    pub fn context(&self) -> &PolicyContext {
        &self.ctx
    }

    /// Indices into the workload, in arrival order, for `seed` (see the module docs).
    pub fn arrivals(&self, seed: u64) -> Vec<usize> {
        let mut rng = stream(seed, 0);
        let target = self.cluster.gpu_milli() * u64::from(self.config.max_arrival_pct) / 100;
        let n = self.workload.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let mut total = 0u64;
        let mut out = Vec::with_capacity(n * 2);
        for i in order {
            let m = u64::from(self.workload[i].gpu.total_milli());
            if total + m > target {
                return out;
            }
            total += m;
            out.push(i);
        }
        loop {
            let i = rng.gen_range(0..n);
            let m = u64::from(self.workload[i].gpu.total_milli());
            if total + m > target {
                return out;
            }
            total += m;
            out.push(i);
        }
    }

    /// The random node order of `seed`: `rank[node index]`, a permutation of `0..nodes`
    /// ([`node_rank`]).
    pub fn node_order(&self, seed: u64) -> Arc<[u32]> {
        node_rank(self.cluster.nodes().len(), seed)
    }

    /// Runs `policy` on the arrivals of `seed`; calls `on_pod` after each pod.
    ///
    /// # Errors
    /// [`ExperimentError::Invalid`] if the policy returns a placement that does not fit
    /// (never for the built-in policies; the cluster state refuses it either way).
    pub fn run(
        &self,
        policy: Policy,
        seed: u64,
        on_pod: &mut dyn FnMut(),
    ) -> Result<Run, ExperimentError> {
        let arrivals = self.arrivals(seed);
        let mut rng = stream(seed, 1);
        let mut scheduler = Scheduler::new(profile(policy, &self.ctx, &self.cluster))
            .with_tie_break(TieBreak::Rank(self.node_order(seed)));
        let mut state = ClusterState::new(self.cluster.clone());
        let cap = self.cluster.gpu_milli();
        let max = self.config.max_arrival_pct;
        let mut buckets = vec![(0.0f64, 0.0f64, 0u32); max as usize + 2];
        let mut events: Vec<(u32, f64, f64)> = Vec::new();
        let mut arrived = 0u64;
        let mut failed = 0usize;
        for &i in &arrivals {
            let pod = &self.workload[i];
            arrived += u64::from(pod.gpu.total_milli());
            // Each arrival is a pod of its own (resampled pods arrive more than once).
            let pod = pod.renewed();
            match scheduler.schedule(&mut state, &pod, &mut rng) {
                Ok(_) => {}
                Err(ScheduleError::Unschedulable { .. }) => failed += 1,
                Err(e) => {
                    return Err(ExperimentError::Invalid {
                        policy,
                        message: e.to_string(),
                    })
                }
            }
            let arr_pct = arrived as f64 * 100.0 / cap as f64;
            let used = state.gpu_used_milli();
            let alloc_pct = used as f64 * 100.0 / cap as f64;
            let unalloc = (cap - used) as f64 / 1000.0;
            let b = round_half_even(arr_pct) as usize;
            if b < buckets.len() {
                buckets[b].0 += alloc_pct;
                buckets[b].1 += unalloc;
                buckets[b].2 += 1;
            }
            events.push((b as u32, alloc_pct, unalloc));
            on_pod();
        }
        let mean = |lo: usize, hi: usize| {
            let (mut a, mut u, mut n) = (0.0, 0.0, 0u32);
            for b in &buckets[lo..=hi.min(buckets.len() - 1)] {
                a += b.0;
                u += b.1;
                n += b.2;
            }
            (n > 0).then(|| (a / f64::from(n), u / f64::from(n)))
        };
        let points = (1..=max)
            .map(|p| {
                let p_us = p as usize;
                let (a, u) = mean(p_us, p_us)
                    .or_else(|| mean(p_us - 1, p_us + 1))
                    .or_else(|| events.iter().rev().find(|e| e.0 <= p).map(|e| (e.1, e.2)))
                    .unwrap_or((0.0, cap as f64 / 1000.0));
                Point {
                    arrival_pct: p,
                    allocation_pct: a,
                    unallocated_gpus: u,
                }
            })
            .collect();
        Ok(Run {
            policy,
            seed,
            points,
            pods_arrived: arrivals.len(),
            pods_failed: failed,
            gpu_used_milli: state.gpu_used_milli(),
        })
    }
}

/// Rounds half to even, as the paper's analysis (pandas) does.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlplane_model::{GpuModel, GpuModelId, GpuRequest, Node};

    fn tiny() -> (Cluster, Vec<Pod>) {
        let c = Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: None,
            }],
            (0..2)
                .map(|i| Node::new(format!("n{i}"), 64000, 262144).with_gpus(GpuModelId(0), 2, 0))
                .collect(),
        )
        .unwrap();
        let pods = vec![
            Pod::new("a", 1000, 1024, GpuRequest::Whole(1)),
            Pod::new("b", 1000, 1024, GpuRequest::Milli(500)),
            Pod::new("c", 1000, 1024, GpuRequest::None),
        ];
        (c, pods)
    }

    #[test]
    fn arrivals_stop_at_the_target() {
        let (c, pods) = tiny();
        let e = Experiment::new(c, pods, ExperimentConfig::default()).unwrap();
        for seed in 0..20 {
            let a = e.arrivals(seed);
            let total: u64 = a
                .iter()
                .map(|&i| u64::from(e.workload()[i].gpu.total_milli()))
                .sum();
            // capacity 4000 milli; 130% = 5200; the next pod (<= 1000 milli) would exceed
            assert!(total <= 5200, "{total}");
            // all three originals come first, in some order
            let mut first: Vec<_> = a[..3].to_vec();
            first.sort();
            assert_eq!(first, vec![0, 1, 2]);
        }
        assert_eq!(e.arrivals(3), e.arrivals(3));
    }

    #[test]
    fn every_policy_fills_a_tiny_cluster() {
        let (c, pods) = tiny();
        let e = Experiment::new(c, pods, ExperimentConfig::default()).unwrap();
        for p in Policy::ALL {
            let r = e.run(p, 1, &mut || {}).unwrap();
            assert_eq!(r.points.len(), 130);
            // 4 GPUs = 4000 milli; arrivals stop within 1000 milli of 5200, so more
            // than 4000 milli arrive and at least one pod must fail.
            assert!(r.gpu_used_milli <= 4000, "{p}");
            assert!(r.pods_failed >= 1, "{p}");
            let last = r.at(130).unwrap();
            assert_eq!(
                last.unallocated_gpus,
                (4000 - r.gpu_used_milli) as f64 / 1000.0
            );
            assert_eq!(last.allocation_pct, r.gpu_used_milli as f64 / 40.0);
        }
    }

    #[test]
    fn rounding_is_half_to_even() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(3.4), 3.0);
        assert_eq!(round_half_even(129.6), 130.0);
    }

    #[test]
    fn refuses_meaningless_input() {
        let (c, _) = tiny();
        let cpu_only = vec![Pod::new("c", 1, 1, GpuRequest::None)];
        assert_eq!(
            Experiment::new(c, cpu_only, ExperimentConfig::default()).unwrap_err(),
            ExperimentError::NoGpuPods
        );
    }
}

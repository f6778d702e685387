//! Running many (policy, seed) pairs in parallel, and averaging them.

use mlplane_policies::Policy;
use rayon::prelude::*;

use crate::experiment::{Experiment, ExperimentError, Run};

/// The runs of a sweep, in the order of the policies and seeds given.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// One run per (policy, seed).
    pub runs: Vec<Run>,
    /// Maximum arrival percentage of the runs.
    pub max_arrival_pct: u32,
}

/// Mean and sample standard deviation of a policy's runs at one arrival percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// Arrival percentage.
    pub arrival_pct: u32,
    /// Mean allocation percentage over seeds.
    pub allocation_mean: f64,
    /// Sample standard deviation of the allocation percentage (0 for one seed).
    pub allocation_std: f64,
    /// Mean unallocated GPUs over seeds.
    pub unallocated_mean: f64,
}

impl Sweep {
    /// The policies of the sweep, in order, without repeats.
    pub fn policies(&self) -> Vec<Policy> {
        let mut out: Vec<Policy> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.policy) {
                out.push(r.policy);
            }
        }
        out
    }

    /// The seeds of the sweep, in order, without repeats.
    pub fn seeds(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.seed) {
                out.push(r.seed);
            }
        }
        out
    }

    /// Mean over seeds of `policy`'s runs at every arrival percentage `1..=max`.
    pub fn stats(&self, policy: Policy) -> Vec<Stat> {
        let runs: Vec<&Run> = self.runs.iter().filter(|r| r.policy == policy).collect();
        (1..=self.max_arrival_pct)
            .map(|p| {
                let pts: Vec<_> = runs.iter().filter_map(|r| r.at(p)).collect();
                let n = pts.len().max(1) as f64;
                let mean = pts.iter().map(|x| x.allocation_pct).sum::<f64>() / n;
                let var = if pts.len() > 1 {
                    pts.iter()
                        .map(|x| (x.allocation_pct - mean).powi(2))
                        .sum::<f64>()
                        / (n - 1.0)
                } else {
                    0.0
                };
                Stat {
                    arrival_pct: p,
                    allocation_mean: mean,
                    allocation_std: var.sqrt(),
                    unallocated_mean: pts.iter().map(|x| x.unallocated_gpus).sum::<f64>() / n,
                }
            })
            .collect()
    }

    /// Mean over seeds of `policy`'s failed pods.
    pub fn failed_mean(&self, policy: Policy) -> f64 {
        let runs: Vec<&Run> = self.runs.iter().filter(|r| r.policy == policy).collect();
        runs.iter().map(|r| r.pods_failed as f64).sum::<f64>() / runs.len().max(1) as f64
    }
}

/// Pods [`sweep`] schedules for `policies` × `seeds` on `exp` (every run's arrivals),
/// for a progress bar.
pub fn sweep_len(exp: &Experiment, policies: &[Policy], seeds: &[u64]) -> u64 {
    seeds
        .iter()
        .map(|&s| exp.arrivals(s).len() as u64)
        .sum::<u64>()
        * policies.len() as u64
}

/// Runs every policy on every seed, in parallel on rayon's thread pool. `on_pod` is
/// called after each scheduled pod of any run (from several threads).
///
/// # Errors
/// The first [`ExperimentError`] of any run.
pub fn sweep(
    exp: &Experiment,
    policies: &[Policy],
    seeds: &[u64],
    on_pod: &(dyn Fn() + Sync),
) -> Result<Sweep, ExperimentError> {
    let jobs: Vec<(Policy, u64)> = policies
        .iter()
        .flat_map(|&p| seeds.iter().map(move |&s| (p, s)))
        .collect();
    let runs = jobs
        .par_iter()
        .map(|&(p, s)| exp.run(p, s, &mut || on_pod()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sweep {
        runs,
        max_arrival_pct: exp.config().max_arrival_pct,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::{synth, ExperimentConfig};

    #[test]
    fn sweep_len_counts_every_pod_the_sweep_schedules() {
        let exp = Experiment::new(
            synth::cluster(20, 1),
            synth::workload(60, 1),
            ExperimentConfig::default(),
        )
        .unwrap();
        let policies = [Policy::Fgd, Policy::Random];
        let seeds = [42, 43, 44];
        let count = AtomicU64::new(0);
        let s = sweep(&exp, &policies, &seeds, &|| {
            count.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(s.runs.len(), 6);
        let n = sweep_len(&exp, &policies, &seeds);
        assert_eq!(count.into_inner(), n);
        let per_seed: u64 = seeds.iter().map(|&s| exp.arrivals(s).len() as u64).sum();
        assert_eq!(n, 2 * per_seed);
        assert!(n > 2 * 3 * 60, "inflated past the workload: {n}");
    }
}

//! Every mode and seed of a study, in parallel, each also on twice the nodes.

use rayon::prelude::*;

use super::{SharingMode, Study, StudyError, StudyRow};

impl Study {
    /// Pods [`Study::sweep`] schedules for `modes` × `seeds` runs (each run on the
    /// study's nodes and on twice them), for a progress bar.
    pub fn sweep_len(&self, modes: usize, seeds: usize) -> u64 {
        2 * self.pods.len() as u64 * (modes * seeds) as u64
    }

    /// Runs every mode with every seed on rayon's thread pool, and each again on twice
    /// the nodes ([`Study::doubled`]) to fill [`StudyRow::gpus_needed`] and
    /// [`StudyRow::refused_at_double`]. Every mode's configuration is resolved on both
    /// clusters before any run starts. `on_pod` is called after each scheduled pod of
    /// any run (from several threads). Rows come in the order of `modes`, then seeds.
    ///
    /// # Errors
    /// The first [`StudyError`]: a mode whose configuration does not resolve (before
    /// anything runs), or one of a run.
    pub fn sweep(
        &self,
        modes: &[SharingMode],
        seeds: &[u64],
        on_pod: &(dyn Fn() + Sync),
    ) -> Result<Vec<StudyRow>, StudyError> {
        let double = self.doubled()?;
        for &m in modes {
            self.prepare(m)?;
            double.prepare(m)?;
        }
        let jobs: Vec<(SharingMode, u64)> = modes
            .iter()
            .flat_map(|&m| seeds.iter().map(move |&s| (m, s)))
            .collect();
        let mut rows = jobs
            .par_iter()
            .map(|&(m, s)| -> Result<StudyRow, StudyError> {
                let mut row = self.run(m, s, &mut || on_pod())?;
                let big = double.run(m, s, &mut || on_pod())?;
                row.gpus_needed = Some(big.occupied_gpus);
                row.refused_at_double = Some(big.refused);
                Ok(row)
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|r| (modes.iter().position(|m| m.name() == r.mode), r.seed));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};

    use super::*;
    use crate::sharing::StudyOptions;

    /// The CLI test's small input: 6 GPUs; a (1 GPU), b (a 500-milli share), c (CPU
    /// only), d (2 GPUs).
    fn small() -> (Cluster, Vec<Pod>) {
        let node =
            |name: &str, gpus: u8| Node::new(name, 64000, 262144).with_gpus(GpuModelId(0), gpus, 0);
        let c = Cluster::new(
            vec![GpuModel {
                name: "T4".into(),
                memory_mib: None,
            }],
            vec![node("n0", 2), node("n1", 4)],
        )
        .unwrap();
        let pods = vec![
            Pod::new("a", 8000, 16384, GpuRequest::Whole(1)),
            Pod::new("b", 4000, 8192, GpuRequest::Milli(500)),
            Pod::new("c", 4000, 8192, GpuRequest::None),
            Pod::new("d", 16000, 32768, GpuRequest::Whole(2)),
        ];
        (c, pods)
    }

    #[test]
    fn sweep_runs_every_mode_and_seed_in_order_and_counts_every_pod() {
        let (c, pods) = small();
        let study = Study::new(&c, pods, StudyOptions::default()).unwrap();
        let modes = [SharingMode::TimeSlicing, SharingMode::Whole];
        let count = AtomicU64::new(0);
        let rows = study
            .sweep(&modes, &[2, 1], &|| {
                count.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        assert_eq!(count.into_inner(), study.sweep_len(2, 2));
        assert_eq!(study.sweep_len(2, 2), 2 * 4 * 4);
        let order: Vec<(&str, u64)> = rows.iter().map(|r| (r.mode.as_str(), r.seed)).collect();
        assert_eq!(
            order,
            [
                ("timeslicing", 1),
                ("timeslicing", 2),
                ("whole", 1),
                ("whole", 2)
            ]
        );
        // By hand (see the CLI test): everything fits; whole reserves a, b and d's
        // 4 GPUs, 66.67% of 6; on twice the nodes the same 4 GPUs.
        let w = &rows[2];
        assert_eq!((w.placed, w.refused), (4, 0));
        assert_eq!(w.reserved_pct, 66.67);
        assert_eq!((w.gpus_needed, w.refused_at_double), (Some(4), Some(0)));
        assert_eq!(rows[0].reserved_pct, 58.33);
    }

    #[test]
    fn a_mode_that_does_not_resolve_fails_before_any_run() {
        let (c, pods) = small();
        let study = Study::new(&c, pods, StudyOptions::default()).unwrap();
        let count = AtomicU64::new(0);
        let e = study
            .sweep(&[SharingMode::Whole, SharingMode::Custom], &[1], &|| {
                count.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap_err();
        assert!(e.0.starts_with("mode config needs"), "{e}");
        assert_eq!(count.into_inner(), 0, "nothing ran");
    }
}

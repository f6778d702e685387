//! The trace-driven simulator: loads cluster traces, generates the built-in default
//! input, runs the FGD paper's experiment on the `mlplane-sched` core with the
//! `mlplane-policies` policies, and writes reports (CSV, JSON, SVG plot).
//!
//! **Invariants.** The library never prints or exits; long runs report progress
//! through a callback. A run is deterministic for its seed, whatever the number of
//! threads. Report files are written to a temporary file and renamed into place.

#![warn(missing_docs)]

pub mod experiment;
pub mod input;
pub mod replay;
pub mod report;
pub mod select;
pub mod sharing;
pub mod sweep;
pub mod synth;
pub mod trace;

pub use experiment::{Experiment, ExperimentConfig, ExperimentError, Point, Run};
pub use sweep::{sweep, sweep_len, Sweep};

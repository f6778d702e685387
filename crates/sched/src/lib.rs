//! The mlplane scheduling framework: cluster state, plugin traits shaped like
//! kube-scheduler's, and one scheduling cycle.
//!
//! **Invariants.** This crate does no I/O and never sees Kubernetes API types. A
//! scheduling cycle is deterministic for a given RNG state. [`ClusterState`] never
//! over-commits a node's CPU or memory or a GPU's 1000 milli-GPU.
//!
//! Policies live in `mlplane-policies` and depend on the traits here, never the
//! reverse.
//!
//! ```
//! use std::sync::Arc;
//! use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, NodeGpus, Pod};
//! use mlplane_sched::{ClusterState, Profile, Scheduler, plugins::{GpuSelector, GpuSelectMode}};
//! use rand::SeedableRng;
//!
//! let cluster = Arc::new(Cluster::new(
//!     vec![GpuModel { name: "T4".into(), memory_mib: Some(15109) }],
//!     vec![Node { name: "n0".into(), cpu_milli: 8000, memory_mib: 32768,
//!                 gpus: Some(NodeGpus { model: GpuModelId(0), count: 2 }) }],
//! )?);
//! let mut state = ClusterState::new(cluster);
//! let profile = Profile::new("demo", Box::new(GpuSelector(GpuSelectMode::BestFit)));
//! let mut scheduler = Scheduler::new(profile);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let pod = Pod::new("p", 1000, 1024, GpuRequest::Shared(500));
//! let placement = scheduler.schedule(&state, &pod, &mut rng)?;
//! state.assume(&pod, placement)?;
//! assert_eq!(state.gpu_used_milli(), 500);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod framework;
pub mod plugins;
pub mod state;

pub use framework::{
    CycleState, FilterPlugin, NodeScore, Plugin, PreScorePlugin, Profile, Rejection, ReservePlugin,
    ScheduleError, Scheduler, ScorePlugin, TieBreak, MAX_NODE_SCORE, MIN_NODE_SCORE,
};
pub use state::{AssumeError, ClusterState, GpuSet, NodeId, NodeInfo, NodeState, Placement};

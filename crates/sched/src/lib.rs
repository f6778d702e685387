//! The mlplane scheduling core: one cluster state and one framework shaped like
//! kube-scheduler's, that the FGD paper experiment, the sharing study, the replay
//! simulator and the Kubernetes scheduler all run.
//!
//! - [`state`]: the pod-keyed, device-based [`ClusterState`] (`assume`, `forget`,
//!   `pods_on`) and the charge rules of every device mode;
//! - [`framework`]: the extension points (QueueSort, PreFilter, Filter, PostFilter,
//!   PreScore, Score + NormalizeScore, Reserve/Unreserve, Permit, Bind), [`Profile`],
//!   [`Scheduler`] (one cycle), [`TieBreak`];
//! - [`status`]: kube's status codes and reasons, and the diagnosis of a failed cycle;
//! - [`plugins`]: kube's filters over the model, the GPU filters, PrioritySort and the
//!   device allocators;
//! - [`preemption`]: kube's DefaultPreemption at PostFilter (victims, node choice);
//! - [`queue`]: the scheduling queue (active, backoff, unschedulable), as kube's;
//! - [`registry`]: profiles by plugin name with typed arguments;
//! - [`throttle`]: soft quotas at PreFilter (kube-throttler's `Throttle` and `ClusterThrottle`).
//!
//! **Invariants.** This crate does no I/O and never sees Kubernetes API types. A
//! scheduling cycle is deterministic for a given RNG state. [`ClusterState`] never
//! over-commits a node or a device. Policies live in `mlplane-policies` and depend on
//! the traits here, never the reverse.
//!
//! ```
//! use std::sync::Arc;
//! use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
//! use mlplane_sched::{plugins, ClusterState, Profile, Scheduler};
//! use mlplane_sched::plugins::{GpuSelectMode, GpuSelector};
//! use rand::SeedableRng;
//!
//! let cluster = Arc::new(Cluster::new(
//!     vec![GpuModel { name: "T4".into(), memory_mib: Some(15109) }],
//!     vec![Node::new("n0", 8000, 32768).with_gpus(GpuModelId(0), 2, 15109)],
//! )?);
//! let mut state = ClusterState::new(cluster.clone());
//! let profile = Profile::new("demo")
//!     .with_all(plugins::default_filters(&cluster))
//!     .with(Arc::new(GpuSelector(GpuSelectMode::BestFit)), 1);
//! let mut scheduler = Scheduler::new(profile);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let pod = Pod::new("p", 1000, 1024, GpuRequest::Milli(500));
//! let placement = scheduler.schedule(&mut state, &pod, &mut rng)?;
//! assert_eq!(placement.grants[0].compute_milli, 500);
//! assert_eq!(state.gpu_used_milli(), 500);
//! assert!(state.forget(pod.id).is_some());
//! assert_eq!(state.gpu_used_milli(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod registry;
pub mod state;
pub mod status;
pub mod throttle;

pub use framework::{
    BindPlugin, CycleState, Diagnosis, FilterPlugin, FilterRunner, NodeScore, Nomination, Permit,
    PermitPlugin, Plugin, PostFilterPlugin, PreFilterPlugin, PreScorePlugin, Profile,
    QueueSortPlugin, ReservePlugin, ScheduleError, Scheduler, ScorePlugin, TieBreak,
    MAX_NODE_SCORE, MIN_NODE_SCORE,
};
pub use registry::{FactoryInput, PluginArgs, PluginRef, ProfileConfig, ProfileError, Registry};
pub use state::{
    charge, AssumeError, Bound, Charge, ClusterState, DeviceState, GpuSet, Grant, NodeId, NodeInfo,
    NodeState, Placement,
};
pub use status::{Code, Reason, Status};

//! GPU placement policies as `mlplane-sched` plugins: the six policies of the FGD paper
//! (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
//! Fragmentation Gradient Descent", USENIX ATC 2023,
//! <https://www.usenix.org/conference/atc23/presentation/weng>) and kube-scheduler's
//! two `NodeResourcesFit` scoring strategies for reference.
//!
//! Each policy is a scoring plugin plus the reserve plugin that picks GPUs, as the
//! paper's public simulator (hkust-adsl/kubernetes-scheduler-simulator) configures it.
//! Every score is an integer in `0..=100`, truncated the way kube-scheduler plugins
//! truncate, so that ties (broken at random by the framework) happen as they do there.
//!
//! Policies depend on the framework's traits; the framework never depends on them.

#![warn(missing_docs)]

pub mod best_fit;
pub mod dot_prod;
pub mod fgd;
pub mod gpu_clustering;
pub mod gpu_packing;
pub mod kube;
pub mod memory;
pub mod random;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use mlplane_model::Cluster;
use mlplane_sched::{Profile, ProfileConfig, Registry};

pub use fgd::TypicalPods;

/// A named placement policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// A uniformly random feasible node.
    Random,
    /// Tetris-style dot product of free resources and request (smallest wins).
    DotProd,
    /// Pack pods with the same GPU request class together.
    GpuClustering,
    /// Prefer partly used GPUs, then free GPUs on used nodes, then idle nodes.
    GpuPacking,
    /// The node with the least free CPU and GPU after placement.
    BestFit,
    /// Fragmentation Gradient Descent: the placement that grows expected GPU
    /// fragmentation least.
    Fgd,
    /// kube-scheduler's `LeastAllocated` scoring strategy (spread).
    LeastAllocated,
    /// kube-scheduler's `MostAllocated` scoring strategy (bin-pack).
    MostAllocated,
}

impl Policy {
    /// Every policy, paper policies first, in the paper's order.
    pub const ALL: [Policy; 8] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
        Policy::LeastAllocated,
        Policy::MostAllocated,
    ];

    /// The six policies compared in the FGD paper.
    pub const PAPER: [Policy; 6] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
    ];

    /// The policy's name as the CLI and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Random => "Random",
            Policy::DotProd => "DotProd",
            Policy::GpuClustering => "GpuClustering",
            Policy::GpuPacking => "GpuPacking",
            Policy::BestFit => "BestFit",
            Policy::Fgd => "FGD",
            Policy::LeastAllocated => "LeastAllocated",
            Policy::MostAllocated => "MostAllocated",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// An unknown policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {name:?}; expected one of: {}, or all", Policy::ALL.map(|p| p.name()).join(", "))]
pub struct UnknownPolicy {
    /// The name given.
    pub name: String,
}

impl FromStr for Policy {
    type Err = UnknownPolicy;
    /// Parses a policy name, ignoring case, `-` and `_` (`fgd`, `best-fit`, `BestFit`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        Policy::ALL
            .into_iter()
            .find(|p| p.name().to_lowercase() == key)
            .ok_or_else(|| UnknownPolicy {
                name: s.to_string(),
            })
    }
}

/// Cluster-wide facts some policies need, computed once per cluster and workload.
#[derive(Clone, Debug)]
pub struct PolicyContext {
    /// CPU of the largest node in millicores (normalises CPU in DotProd and BestFit;
    /// the paper's simulator hard-codes 128000, the largest node of its trace).
    pub max_node_cpu_milli: u64,
    /// GPU capacity of the largest node in milli-GPU (the simulator hard-codes 8000).
    pub max_node_gpu_milli: u64,
    /// The workload's typical pods, against which FGD measures fragmentation.
    pub typical_pods: Arc<TypicalPods>,
}

impl PolicyContext {
    /// Context for `cluster` with FGD's typical pods taken from `typical_pods`.
    pub fn new(cluster: &Cluster, typical_pods: Arc<TypicalPods>) -> Self {
        PolicyContext {
            max_node_cpu_milli: cluster
                .nodes()
                .iter()
                .map(|n| n.cpu_milli)
                .max()
                .unwrap_or(1)
                .max(1),
            max_node_gpu_milli: cluster
                .nodes()
                .iter()
                .map(|n| n.gpu_milli())
                .max()
                .unwrap_or(1)
                .max(1),
            typical_pods,
        }
    }
}

/// Arguments of the `FGDScore` plugin: the typical pods it measures fragmentation
/// against (required).
#[derive(Clone, Debug)]
pub struct FgdArgs {
    /// The workload's typical pods.
    pub typical: Arc<TypicalPods>,
}

/// Every built-in plugin: [`Registry::builtin`]'s filters, queue sort and device
/// allocators, and the policies' score plugins: `RandomScore`, `DotProdScore`,
/// `GpuClusteringScore`, `GpuPackingScore`, `BestFitScore`, `FGDScore` (args
/// [`FgdArgs`]; also the device allocator), `NodeResourcesLeastAllocated`,
/// `NodeResourcesMostAllocated`, and the GPU-memory policies of [`memory`]
/// (`BestFitMemoryScore`, `LeastAllocatedMemoryScore`, `FGDMemoryScore`).
/// Normalisation constants come from the cluster.
pub fn registry() -> Registry {
    let mut r = Registry::builtin();
    let ctx = |c: &Cluster| PolicyContext::new(c, Arc::default());
    r.register("RandomScore", |_| Ok(Arc::new(random::RandomScore)));
    r.register("DotProdScore", move |i| {
        Ok(Arc::new(dot_prod::DotProdScore::new(&ctx(i.cluster))))
    });
    r.register("GpuClusteringScore", move |i| {
        Ok(Arc::new(gpu_clustering::GpuClusteringScore::new(&ctx(
            i.cluster
        ))))
    });
    r.register("GpuPackingScore", |_| {
        Ok(Arc::new(gpu_packing::GpuPackingScore))
    });
    r.register("BestFitScore", move |i| {
        Ok(Arc::new(best_fit::BestFitScore::new(&ctx(i.cluster))))
    });
    r.register("FGDScore", |i| {
        let args = i
            .args::<FgdArgs>()?
            .ok_or("needs pluginConfig args FgdArgs (the typical pods)")?;
        Ok(Arc::new(fgd::FgdScore::new(args.typical.clone())))
    });
    r.register("NodeResourcesLeastAllocated", |_| {
        Ok(Arc::new(kube::NodeResourcesScore::least_allocated()))
    });
    r.register("NodeResourcesMostAllocated", |_| {
        Ok(Arc::new(kube::NodeResourcesScore::most_allocated()))
    });
    memory::register_memory(&mut r);
    r
}

/// The profile of a policy by plugin name: the default filters, the policy's score
/// plugin, and its device allocator at Reserve (as the paper's experiment scripts
/// configure them: Random picks a random GPU for a share, FGD the GPU that grows
/// fragmentation least, every other policy the best-fitting GPU).
pub fn profile_config(policy: Policy, ctx: &PolicyContext) -> ProfileConfig {
    let base = ProfileConfig::new(policy.name()).with_default_filters();
    let (score, reserve) = match policy {
        Policy::Random => ("RandomScore", Some("GpuSelectRandom")),
        Policy::DotProd => ("DotProdScore", Some("GpuSelectBestFit")),
        Policy::GpuClustering => ("GpuClusteringScore", Some("GpuSelectBestFit")),
        Policy::GpuPacking => ("GpuPackingScore", Some("GpuSelectBestFit")),
        Policy::BestFit => ("BestFitScore", Some("GpuSelectBestFit")),
        Policy::Fgd => ("FGDScore", None),
        Policy::LeastAllocated => ("NodeResourcesLeastAllocated", Some("GpuSelectBestFit")),
        Policy::MostAllocated => ("NodeResourcesMostAllocated", Some("GpuSelectBestFit")),
    };
    let mut c = base.plugin(score, 1);
    if let Some(r) = reserve {
        c = c.plugin(r, 1);
    }
    if policy == Policy::Fgd {
        c = c.args(
            "FGDScore",
            Arc::new(FgdArgs {
                typical: ctx.typical_pods.clone(),
            }),
        );
    }
    c
}

/// The built profile of a policy for `cluster` ([`profile_config`] through
/// [`registry`]).
///
/// # Panics
/// Never for the built-in policies (their profiles are valid by construction; a test
/// builds every one).
pub fn profile(policy: Policy, ctx: &PolicyContext, cluster: &Cluster) -> Profile {
    registry()
        .build(&profile_config(policy, ctx), cluster)
        .expect("built-in profiles are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert_eq!("best-fit".parse::<Policy>(), Ok(Policy::BestFit));
        assert_eq!("fgd".parse::<Policy>(), Ok(Policy::Fgd));
        let err = "tetris".parse::<Policy>().unwrap_err();
        assert!(err.to_string().contains("unknown policy \"tetris\""));
        assert!(err.to_string().contains("FGD"));
    }
}

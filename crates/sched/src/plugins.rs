//! Built-in plugins: the filters every profile runs, and the generic GPU selectors.

use mlplane_model::{GpuRequest, Pod, GPU_MILLI};
use rand::{Rng, RngCore};

use crate::framework::{CycleState, FilterPlugin, Plugin, Rejection, ReservePlugin};
use crate::state::{GpuSet, NodeInfo, NodeState};

/// The filters of every profile: [`NodeResourcesFit`], [`GpuModelFit`], [`GpuFit`].
pub fn default_filters() -> Vec<Box<dyn FilterPlugin>> {
    vec![
        Box::new(NodeResourcesFit),
        Box::new(GpuModelFit),
        Box::new(GpuFit),
    ]
}

/// Rejects nodes without enough free CPU or memory (kube-scheduler's
/// `NodeResourcesFit` filter, for `cpu` and `memory`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Rejection> {
        if node.state.cpu_free_milli < pod.cpu_milli {
            return Err(Rejection {
                plugin: self.name(),
                reason: "Insufficient cpu",
            });
        }
        if node.state.memory_free_mib < pod.memory_mib {
            return Err(Rejection {
                plugin: self.name(),
                reason: "Insufficient memory",
            });
        }
        Ok(())
    }
}

/// Rejects, for a pod that asks for GPUs, nodes without GPUs or with a GPU model the
/// pod does not allow (the trace's `gpu_spec`).
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuModelFit;

impl Plugin for GpuModelFit {
    fn name(&self) -> &'static str {
        "GpuModelFit"
    }
}

impl FilterPlugin for GpuModelFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Rejection> {
        if pod.gpu == GpuRequest::None {
            return Ok(());
        }
        match node.node.gpu_model() {
            None => Err(Rejection {
                plugin: self.name(),
                reason: "node has no GPU",
            }),
            Some(m) if !pod.allows_model(m) => Err(Rejection {
                plugin: self.name(),
                reason: "GPU model not allowed",
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Rejects nodes whose GPUs cannot hold the request: a share needs one GPU with
/// enough free milli-GPU; `n` whole GPUs need `n` entirely free GPUs (the
/// open-gpu-share filter the FGD simulator uses). A malformed request
/// ([`GpuRequest::is_valid`]) fits nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuFit;

impl Plugin for GpuFit {
    fn name(&self) -> &'static str {
        "GpuFit"
    }
}

impl FilterPlugin for GpuFit {
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo<'_>) -> Result<(), Rejection> {
        if !pod.gpu.is_valid() {
            return Err(Rejection {
                plugin: self.name(),
                reason: "invalid GPU request",
            });
        }
        if node.state.gpu_fits(pod.gpu) {
            Ok(())
        } else {
            Err(Rejection {
                plugin: self.name(),
                reason: "Insufficient GPU",
            })
        }
    }
}

/// The first `n` entirely free GPUs by index, or `None` if there are fewer.
pub fn first_free_gpus(state: &NodeState, n: u8) -> Option<GpuSet> {
    let mut set = GpuSet::empty();
    for (i, &g) in state.gpus().iter().enumerate() {
        if set.len() == usize::from(n) {
            break;
        }
        if u32::from(g) == GPU_MILLI {
            set.insert(i);
        }
    }
    (set.len() == usize::from(n)).then_some(set)
}

/// How [`GpuSelector`] picks the GPU for a share (the FGD simulator's `gpuSelMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuSelectMode {
    /// The GPU with the least free milli-GPU that still fits (lowest index on ties).
    BestFit,
    /// The GPU with the most free milli-GPU (lowest index on ties).
    WorstFit,
    /// A uniformly random GPU among those that fit.
    Random,
}

/// Reserve plugin that picks GPUs without looking ahead: whole GPUs are the first
/// entirely free ones by index; a share goes where [`GpuSelectMode`] says.
#[derive(Debug, Clone, Copy)]
pub struct GpuSelector(pub GpuSelectMode);

impl Plugin for GpuSelector {
    fn name(&self) -> &'static str {
        match self.0 {
            GpuSelectMode::BestFit => "GpuSelectBestFit",
            GpuSelectMode::WorstFit => "GpuSelectWorstFit",
            GpuSelectMode::Random => "GpuSelectRandom",
        }
    }
}

impl ReservePlugin for GpuSelector {
    fn reserve(
        &self,
        _: &CycleState,
        pod: &Pod,
        node: &NodeInfo<'_>,
        rng: &mut dyn RngCore,
    ) -> Option<GpuSet> {
        match pod.gpu {
            GpuRequest::None => Some(GpuSet::empty()),
            GpuRequest::Whole(n) => first_free_gpus(node.state, n),
            GpuRequest::Shared(m) => {
                let fits = node
                    .state
                    .gpus()
                    .iter()
                    .enumerate()
                    .filter(|(_, &g)| g >= m);
                let pick = match self.0 {
                    GpuSelectMode::BestFit => fits.min_by_key(|&(i, &g)| (g, i)),
                    GpuSelectMode::WorstFit => {
                        fits.min_by_key(|&(i, &g)| (std::cmp::Reverse(g), i))
                    }
                    GpuSelectMode::Random => {
                        let all: Vec<_> = fits.collect();
                        if all.is_empty() {
                            None
                        } else {
                            Some(all[rng.gen_range(0..all.len())])
                        }
                    }
                };
                pick.map(|(i, _)| GpuSet::single(i))
            }
        }
    }
}

//! The sharing study: the same workload on the same nodes under each GPU sharing mode.
//!
//! Every GPU node is given one GPU model (by default `H100-80GB`) and keeps its GPU
//! count, CPU and memory. The trace's requests become requests in each mode's terms,
//! with `G` the model's memory:
//!
//! | mode | whole-GPU pod (`n` GPUs) | GPU-sharing pod (`m` milli) |
//! | --- | --- | --- |
//! | `whole` | `nvidia.com/gpu: n` | `nvidia.com/gpu: 1` (Kubernetes without sharing) |
//! | `timeslicing` | `n = 1`: a memory share of `G`; `n > 1`: `nvidia.com/gpu: n` mapped to `n` distinct GPUs | memory share `m/1000 × G`, compute `m` |
//! | `mig` | `nvidia.com/gpu: n` on the whole-GPU pool | `nvidia.com/mig-<p>: 1`, `p` the smallest profile of the pool's geometry holding `m/1000 × G` |
//! | `mixed` | `nvidia.com/gpu: n` on the whole-GPU pool | memory share on the time-sliced pool |
//!
//! Every node is time-sliced in `timeslicing` (`failRequestsGreaterThanOne: false`).
//! In `mig` and `mixed` the nodes are split into two pools: a whole-GPU pool sized to
//! the whole-GPU pods' demand (largest nodes first, so 8-GPU pods have 8-GPU nodes),
//! and a pool that serves the GPU-sharing pods: MIG with the advisor's geometry
//! ([`mlplane_share::advisor`]) or time-slicing. `mig-1g` and `mig-disabled` run the
//! `mig` layout with the all-`1g` geometry and with MIG off (sharing pods then take a
//! whole GPU each), the baselines the advisor is measured against.
//!
//! Placement is the one scheduling core's: `mlplane_sched::Scheduler` with the
//! sharing policy's profile ([`mlplane_policies::memory`]: the default filters, the
//! policy's GPU-memory score, its device allocator) on the cluster
//! [`SharingConfig::resolve`] gives, every node carrying its devices, accounted by
//! `mlplane_sched::ClusterState`. Three ChaCha8 streams of the seed: 0 orders the
//! arrivals, 1 feeds the policy's draws (Random), 2 draws the node rank that breaks
//! ties between best nodes (as the FGD paper's simulator; see
//! `mlplane_sim::experiment`).
//!
//! Each pod arrives once, in a random order per seed; nothing departs. Reported per
//! mode: pods placed and refused, physical GPUs occupied (with at least one grant),
//! GPU memory reserved and GPU memory the placed pods need (a whole-GPU pod needs its
//! GPUs, a sharing pod its share: in `whole` a sharing pod reserves a GPU but needs
//! only its share), as percentages of the cluster's and of the occupied GPUs' memory;
//! and the GPUs the mode needs for the workload, measured on twice the nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod, ResourceId};
pub use mlplane_policies::memory::SharePolicy;
use mlplane_policies::memory::{share_profile, TYPICAL_COVERAGE};
use mlplane_policies::TypicalPods;
use mlplane_sched::{ClusterState, ScheduleError, Scheduler, TieBreak};

use crate::experiment::{node_rank, stream};
use mlplane_share::advisor::{candidates, smallest_profile, Advice};
use mlplane_share::catalog::{Catalog, GpuSpec};
use mlplane_share::config::{
    DeviceSelector, MigPartedEntry, MigStrategy, NodeGroup, Replicated, ReplicatedResource,
    Sharing, SharingConfig,
};
use rand::seq::SliceRandom;
use serde::Serialize;

/// A sharing mode of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SharingMode {
    /// Whole GPUs only.
    Whole,
    /// Every GPU time-sliced, pods as memory shares.
    TimeSlicing,
    /// Whole-GPU pool plus a MIG pool with the advisor's geometry.
    Mig,
    /// The `mig` layout with seven `1g` instances per GPU.
    MigAll1g,
    /// The `mig` layout with MIG disabled.
    MigDisabled,
    /// Whole-GPU pool plus a time-sliced pool.
    Mixed,
    /// The sharing configuration file given in [`StudyOptions::custom`].
    Custom,
}

impl SharingMode {
    /// The four modes of the study, then the advisor's two baselines.
    pub const ALL: [SharingMode; 6] = [
        SharingMode::Whole,
        SharingMode::TimeSlicing,
        SharingMode::Mig,
        SharingMode::Mixed,
        SharingMode::MigAll1g,
        SharingMode::MigDisabled,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SharingMode::Whole => "whole",
            SharingMode::TimeSlicing => "timeslicing",
            SharingMode::Mig => "mig",
            SharingMode::MigAll1g => "mig-1g",
            SharingMode::MigDisabled => "mig-disabled",
            SharingMode::Mixed => "mixed",
            SharingMode::Custom => "config",
        }
    }

    /// Parses a name (`config` for [`SharingMode::Custom`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([SharingMode::Custom])
            .find(|m| m.name().eq_ignore_ascii_case(s))
    }
}

/// Options of the study.
#[derive(Clone, Debug)]
pub struct StudyOptions {
    /// GPU model every GPU node gets.
    pub model: String,
    /// Time-slicing replicas per GPU.
    pub replicas: u32,
    /// Placement policy.
    pub policy: SharePolicy,
    /// The whole-GPU pool of `mig` and `mixed` holds this many times the whole-GPU
    /// pods' demand (1 = exactly; [`Study::doubled`] uses 2).
    pub pool_headroom: u64,
    /// A sharing configuration of one's own, run as mode `config`. Every GPU node has
    /// `model`, so its `models:` filters should name that model (or use `nodes:`).
    pub custom: Option<SharingConfig>,
}

impl Default for StudyOptions {
    fn default() -> Self {
        StudyOptions {
            model: "H100-80GB".into(),
            replicas: 8,
            policy: SharePolicy::Fgd,
            pool_headroom: 1,
            custom: None,
        }
    }
}

/// An error setting up the study.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StudyError(pub String);

/// One mode and seed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StudyRow {
    /// Mode name.
    pub mode: String,
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Pods in the workload.
    pub pods: usize,
    /// Pods placed.
    pub placed: usize,
    /// Pods refused.
    pub refused: usize,
    /// GPU-sharing pods refused.
    pub refused_sharing: usize,
    /// Physical GPUs with at least one grant.
    pub occupied_gpus: u64,
    /// Physical GPUs of the cluster.
    pub total_gpus: u64,
    /// GPU memory reserved (charged to placed pods), percent of the cluster's GPUs'
    /// physical memory.
    pub reserved_pct: f64,
    /// GPU memory the placed pods need (a whole GPU's for each whole GPU, the share
    /// for a GPU-sharing pod), percent of the cluster's.
    pub used_pct: f64,
    /// GPU memory the placed pods need, percent of the occupied GPUs' memory.
    pub used_of_occupied_pct: f64,
    /// GPUs occupied when the same workload runs on twice the nodes (capacity no
    /// longer binds): the GPUs this mode needs for the workload. Filled by
    /// [`Study::sweep`].
    pub gpus_needed: Option<u64>,
    /// Pods refused even on twice the nodes (they fit no device of this mode).
    pub refused_at_double: Option<usize>,
}

/// The cluster with every GPU node given `model`.
///
/// # Errors
/// None in practice (the cluster was valid and keeps its node names).
pub fn retarget(cluster: &Cluster, model: &str) -> Result<Cluster, StudyError> {
    let nodes: Vec<Node> = cluster
        .nodes()
        .iter()
        .map(|n| {
            let mut m = n.clone();
            if n.gpu_count() > 0 {
                m = m.with_gpus(GpuModelId(0), n.gpu_count(), 0);
            }
            m
        })
        .collect();
    Cluster::new(
        vec![GpuModel {
            name: model.to_string(),
            memory_mib: None,
        }],
        nodes,
    )
    .map_err(|e| StudyError(e.to_string()))
}

/// The study: builds each mode's plan once and runs seeds.
pub struct Study {
    cluster: Arc<Cluster>,
    pods: Vec<Pod>,
    spec: GpuSpec,
    options: StudyOptions,
    whole_pool: Vec<String>,
    advice: Option<Advice>,
    trials: Vec<(Advice, f64, usize)>,
}

impl Study {
    /// Prepares the study of `pods` on `cluster` (GPU models replaced by
    /// `options.model`).
    ///
    /// # Errors
    /// [`StudyError`] for a model the catalogue lacks or `replicas` below 2.
    pub fn new(
        cluster: &Cluster,
        pods: Vec<Pod>,
        options: StudyOptions,
    ) -> Result<Self, StudyError> {
        let catalog = Catalog::builtin();
        let spec = catalog
            .get(&options.model)
            .ok_or_else(|| {
                StudyError(format!(
                    "--gpu-model {}: not in the catalogue (known: {})",
                    options.model,
                    catalog.names().collect::<Vec<_>>().join(", ")
                ))
            })?
            .clone();
        if options.replicas < 2 {
            return Err(StudyError(format!(
                "--replicas must be at least 2, got {}",
                options.replicas
            )));
        }
        if let Some(p) = pods.iter().find(|p| {
            matches!(
                p.gpu,
                GpuRequest::Memory { .. } | GpuRequest::Devices { .. }
            )
        }) {
            return Err(StudyError(format!(
                "pod {:?}: the study takes the trace's requests (whole GPUs and milli shares), not {}",
                p.name, p.gpu
            )));
        }
        let cluster = Arc::new(retarget(cluster, &options.model)?);
        let whole_pool = whole_pool(&cluster, &pods, options.pool_headroom);
        let candidates = if spec.mig_capable() {
            let sharing_nodes: Vec<u8> = cluster
                .nodes()
                .iter()
                .filter(|n| n.gpu_count() > 0 && !whole_pool.contains(&n.name))
                .map(|n| n.gpu_count())
                .collect();
            let shares: Vec<u64> = pods
                .iter()
                .filter_map(|p| match p.gpu {
                    GpuRequest::Milli(m) => Some(share_mib(&spec, m)),
                    _ => None,
                })
                .collect();
            candidates(&spec, &sharing_nodes, &shares)
        } else {
            Vec::new()
        };
        let mut study = Study {
            cluster,
            pods,
            spec,
            options,
            whole_pool,
            advice: None,
            trials: Vec::new(),
        };
        // The advisor's candidates, measured: each runs the `mig` layout once (BestFit,
        // seed 0); the one whose placed pods use the most GPU memory wins (then the
        // most pods placed, then the advisor's order).
        let mut best: Option<(f64, usize, usize)> = None;
        for (k, a) in candidates.iter().enumerate() {
            study.advice = Some(a.clone());
            let row = study.run_policy(SharingMode::Mig, 0, SharePolicy::BestFit, &mut || {})?;
            study.trials.push((a.clone(), row.used_pct, row.placed));
            if best.is_none_or(|(u, p, _)| (row.used_pct, row.placed) > (u, p)) {
                best = Some((row.used_pct, row.placed, k));
            }
        }
        study.advice = best.map(|(_, _, k)| candidates[k].clone());
        Ok(study)
    }

    /// The advisor's candidates and what each gave when measured: (advice, GPU memory
    /// used %, pods placed).
    pub fn trials(&self) -> &[(Advice, f64, usize)] {
        &self.trials
    }

    /// The advisor's proposal for the sharing pool (for a MIG-capable model).
    pub fn advice(&self) -> Option<&Advice> {
        self.advice.as_ref()
    }

    /// Nodes of the whole-GPU pool of `mig` and `mixed`.
    pub fn whole_pool(&self) -> &[String] {
        &self.whole_pool
    }

    /// The sharing configuration of `mode`, as an admin would write it.
    ///
    /// # Errors
    /// [`StudyError`] for a MIG mode on a model without MIG.
    pub fn config(&self, mode: SharingMode) -> Result<SharingConfig, StudyError> {
        // In `mixed` the time-sliced pool advertises `nvidia.com/gpu.shared`
        // (renameByDefault), so whole-GPU pods stay on the whole-GPU pool.
        let ts = |nodes: Option<Vec<String>>, pool: bool| NodeGroup {
            name: "time-sliced".into(),
            nodes,
            sharing: Some(Sharing {
                time_slicing: Some(Replicated {
                    rename_by_default: pool,
                    fail_requests_greater_than_one: pool,
                    resources: vec![ReplicatedResource {
                        name: "nvidia.com/gpu".into(),
                        replicas: self.options.replicas,
                        rename: None,
                        devices: None,
                    }],
                }),
                mps: None,
            }),
            ..NodeGroup::default()
        };
        let whole = NodeGroup {
            name: "whole".into(),
            nodes: Some(self.whole_pool.clone()),
            ..NodeGroup::default()
        };
        let mig = |geometry: Vec<BTreeMap<String, u32>>| -> Result<SharingConfig, StudyError> {
            if !self.spec.mig_capable() {
                return Err(StudyError(format!(
                    "--sharing mig: {} does not support MIG",
                    self.spec.name
                )));
            }
            let entries = geometry
                .into_iter()
                .enumerate()
                .map(|(i, g)| MigPartedEntry {
                    devices: DeviceSelector::List(vec![i as u8]),
                    mig_enabled: !g.is_empty(),
                    mig_devices: g,
                    device_filter: None,
                })
                .collect();
            Ok(SharingConfig {
                mig_configs: [("study".to_string(), entries)].into(),
                node_groups: vec![
                    whole.clone(),
                    NodeGroup {
                        name: "mig".into(),
                        mig_strategy: Some(MigStrategy::Mixed),
                        mig_config: Some("study".into()),
                        ..NodeGroup::default()
                    },
                ],
                ..SharingConfig::default()
            })
        };
        let max_gpus = self
            .cluster
            .nodes()
            .iter()
            .map(Node::gpu_count)
            .max()
            .unwrap_or(0);
        match mode {
            SharingMode::Whole => Ok(SharingConfig::default()),
            SharingMode::TimeSlicing => Ok(SharingConfig {
                node_groups: vec![ts(None, false)],
                ..SharingConfig::default()
            }),
            SharingMode::Mixed => Ok(SharingConfig {
                node_groups: vec![whole.clone(), ts(None, true)],
                ..SharingConfig::default()
            }),
            SharingMode::Mig => mig(self
                .advice
                .as_ref()
                .map(|a| a.per_index.clone())
                .unwrap_or_default()),
            SharingMode::MigAll1g => {
                let one = self
                    .spec
                    .mig_profiles
                    .iter()
                    .find(|p| p.memory_slices == 1 && !p.name.ends_with("+me"))
                    .map(|p| (p.name.clone(), u32::from(p.max_count)));
                mig(vec![one.into_iter().collect(); usize::from(max_gpus)])
            }
            SharingMode::MigDisabled => mig(vec![BTreeMap::new(); usize::from(max_gpus)]),
            SharingMode::Custom => self.options.custom.clone().ok_or_else(|| {
                StudyError(
                    "mode config needs a sharing configuration file (--sharing-config)".into(),
                )
            }),
        }
    }

    /// The workload in `mode`'s requests on the resolved `cluster` (see the module
    /// table): a cluster with the MIG resources the pods name interned (a pod may ask
    /// for a profile no node advertises: it is then refused), and the pods.
    fn requests(
        &self,
        mode: SharingMode,
        cluster: Cluster,
    ) -> Result<(Cluster, Vec<Pod>), StudyError> {
        let g = self.spec.memory_mib;
        let mut names = cluster.resources().to_vec();
        let mut intern = |name: String| -> ResourceId {
            let i = names.iter().position(|r| *r == name).unwrap_or_else(|| {
                names.push(name);
                names.len() - 1
            });
            ResourceId(i as u16)
        };
        // MIG profiles the cluster advertises, for the smallest-fit mapping.
        let mig_resources: Vec<(u64, String)> = self
            .spec
            .mig_profiles
            .iter()
            .filter(|p| cluster.resource_id(&p.resource()).is_some())
            .map(|p| (p.memory_mib, p.name.clone()))
            .collect();
        let any_shared = cluster
            .nodes()
            .iter()
            .any(|n| n.devices.iter().any(|d| d.sharing.is_replicated()));
        // The smallest MIG instance of the cluster that holds `need` MiB.
        let smallest_fit = |need: u64| {
            mig_resources
                .iter()
                .filter(|(mem, _)| *mem >= need)
                .min_by_key(|(mem, _)| *mem)
                .map(|(_, name)| name.clone())
        };
        let pods = self
            .pods
            .iter()
            .map(|p| {
                let req = match (mode, p.gpu) {
                    // One's own configuration: pods ask as they would on such a
                    // cluster: whole GPUs by count (below; a replica, on a time-sliced
                    // node); a share as memory where devices are shared, else as the
                    // smallest MIG instance there is, else as a whole GPU.
                    (SharingMode::Custom, GpuRequest::Milli(m)) => {
                        let need = share_mib(&self.spec, m);
                        match smallest_fit(need) {
                            _ if any_shared => GpuRequest::Memory {
                                mib: need,
                                compute_milli: u32::from(m),
                            },
                            Some(name) => GpuRequest::Devices {
                                resource: intern(format!("nvidia.com/mig-{name}")),
                                count: 1,
                            },
                            None => GpuRequest::Whole(1),
                        }
                    }
                    // Study::new refuses pods that are not in the trace's terms.
                    (
                        _,
                        GpuRequest::None | GpuRequest::Memory { .. } | GpuRequest::Devices { .. },
                    ) => GpuRequest::None,
                    (SharingMode::TimeSlicing, GpuRequest::Whole(1)) => GpuRequest::Memory {
                        mib: g,
                        compute_milli: 1000,
                    },
                    (_, GpuRequest::Whole(n)) => GpuRequest::Whole(n),
                    (SharingMode::Whole | SharingMode::MigDisabled, GpuRequest::Milli(_)) => {
                        GpuRequest::Whole(1)
                    }
                    (SharingMode::TimeSlicing | SharingMode::Mixed, GpuRequest::Milli(m)) => {
                        GpuRequest::Memory {
                            mib: share_mib(&self.spec, m),
                            compute_milli: u32::from(m),
                        }
                    }
                    (SharingMode::Mig | SharingMode::MigAll1g, GpuRequest::Milli(m)) => {
                        let need = share_mib(&self.spec, m);
                        // The smallest instance the geometry has, else the smallest
                        // profile that would hold it (which no node advertises: refused).
                        let name = smallest_fit(need).unwrap_or_else(|| {
                            smallest_profile(&self.spec, need)
                                .map_or_else(|| "none".to_string(), |p| p.name.clone())
                        });
                        GpuRequest::Devices {
                            resource: intern(format!("nvidia.com/mig-{name}")),
                            count: 1,
                        }
                    }
                };
                // The trace's GPU model constraints name the trace's models; every GPU
                // node of the study has one model, so they are dropped.
                Pod::new(p.name.clone(), p.cpu_milli, p.memory_mib, req)
            })
            .collect();
        let cluster = if names.len() == cluster.resources().len() {
            cluster
        } else {
            Cluster::with_resources(cluster.models().to_vec(), names, cluster.nodes().to_vec())
                .map_err(|e| StudyError(format!("{}: {e}", mode.name())))?
        };
        Ok((cluster, pods))
    }

    /// The resolved cluster of `mode` (every node with its devices, see
    /// [`SharingConfig::resolve`]) and the workload in its requests.
    ///
    /// # Errors
    /// [`StudyError`] if the mode's configuration does not resolve.
    pub fn prepare(&self, mode: SharingMode) -> Result<(Arc<Cluster>, Vec<Pod>), StudyError> {
        let cfg = self.config(mode)?;
        let resolved = cfg
            .resolve(&self.cluster)
            .map_err(|e| StudyError(format!("{}: {e}", mode.name())))?;
        let (cluster, pods) = self.requests(mode, resolved)?;
        Ok((Arc::new(cluster), pods))
    }

    /// Checks the sharing configuration of mode `config` ([`StudyOptions::custom`])
    /// against the study's cluster before any run: it must resolve, and every node
    /// group must select at least one GPU node (a group that selects none configures
    /// nothing, and the mode would silently equal `whole`). `file` names the
    /// configuration in the errors. Without a configuration, nothing to check.
    ///
    /// # Errors
    /// [`StudyError`] naming the file, the group and why.
    pub fn check_config(&self, file: &str) -> Result<(), StudyError> {
        let Some(cfg) = &self.options.custom else {
            return Ok(());
        };
        for (k, n) in cfg.group_node_counts(&self.cluster).into_iter().enumerate() {
            if n == 0 {
                let g = &cfg.node_groups[k];
                return Err(StudyError(format!(
                    "{file}: nodeGroups[{k}] ({:?}) selects no node of the cluster (models: {}, nodes: {}; every GPU node of the study is a {})",
                    g.name,
                    g.models.as_ref().map_or("any".to_string(), |m| m.join(", ")),
                    g.nodes
                        .as_ref()
                        .map_or("any".to_string(), |n| format!("{} named", n.len())),
                    self.options.model
                )));
            }
        }
        cfg.resolve(&self.cluster)
            .map(|_| ())
            .map_err(|e| StudyError(format!("{file}: {e}")))
    }

    /// The study's cluster (GPU models replaced, GPUs not yet resolved to devices).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Runs `mode` with `seed`; `on_pod` is called after every pod.
    ///
    /// # Errors
    /// [`StudyError`] if the mode's configuration does not resolve, or (a bug) if a
    /// scheduling cycle fails after choosing a node.
    pub fn run(
        &self,
        mode: SharingMode,
        seed: u64,
        on_pod: &mut dyn FnMut(),
    ) -> Result<StudyRow, StudyError> {
        self.run_policy(mode, seed, self.options.policy, on_pod)
    }

    /// [`Study::run`] with another policy.
    ///
    /// Three streams of ChaCha8 seeded with `seed`: stream 0 shuffles the arrival
    /// order, stream 1 feeds the policy (Random's draws), stream 2 draws the node rank
    /// that breaks ties between best nodes ([`TieBreak::Rank`], as the FGD paper's
    /// simulator), so every policy sees the same arrivals and the same rank.
    ///
    /// # Errors
    /// As [`Study::run`].
    pub fn run_policy(
        &self,
        mode: SharingMode,
        seed: u64,
        policy: SharePolicy,
        on_pod: &mut dyn FnMut(),
    ) -> Result<StudyRow, StudyError> {
        let (cluster, pods) = self.prepare(mode)?;
        let mut order: Vec<usize> = (0..pods.len()).collect();
        order.shuffle(&mut stream(seed, 0));
        let mut rng = stream(seed, 1);
        let typical = Arc::new(TypicalPods::by_gpu_request(&pods, TYPICAL_COVERAGE));
        let mut sched = Scheduler::new(share_profile(policy, typical, &cluster))
            .with_tie_break(TieBreak::Rank(node_rank(cluster.nodes().len(), seed)));
        let mut state = ClusterState::new(cluster.clone());
        let (mut placed, mut refused, mut refused_sharing) = (0, 0, 0);
        let mut need_mib = 0u64;
        for i in order {
            let pod = &pods[i];
            match sched.schedule(&mut state, pod, &mut rng) {
                Ok(_) => {
                    placed += 1;
                    need_mib += match self.pods[i].gpu {
                        GpuRequest::None
                        | GpuRequest::Memory { .. }
                        | GpuRequest::Devices { .. } => 0,
                        GpuRequest::Whole(n) => u64::from(n) * self.spec.memory_mib,
                        GpuRequest::Milli(m) => share_mib(&self.spec, m),
                    };
                }
                Err(ScheduleError::Unschedulable { .. }) => {
                    refused += 1;
                    if self.pods[i].gpu.is_shared() {
                        refused_sharing += 1;
                    }
                }
                Err(e) => {
                    return Err(StudyError(format!("{}: scheduler bug: {e}", pod.name)));
                }
            }
            on_pod();
        }
        let occupied = state.occupied_gpus();
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                round2(100.0 * a as f64 / b as f64)
            }
        };
        // Percentages of the GPUs' physical memory: memory a MIG geometry leaves
        // unassigned (a slice no instance covers) counts as not used.
        let physical = self.cluster.gpu_count() * self.spec.memory_mib;
        Ok(StudyRow {
            mode: mode.name().into(),
            policy: policy.name().into(),
            seed,
            pods: pods.len(),
            placed,
            refused,
            refused_sharing,
            occupied_gpus: occupied,
            total_gpus: self.cluster.gpu_count(),
            reserved_pct: pct(state.gpu_memory_used_mib(), physical),
            used_pct: pct(need_mib, physical),
            used_of_occupied_pct: pct(need_mib, occupied * self.spec.memory_mib),
            gpus_needed: None,
            refused_at_double: None,
        })
    }

    /// This study's workload on twice the nodes (every node repeated), to measure the
    /// GPUs each mode needs ([`StudyRow::gpus_needed`]).
    ///
    /// # Errors
    /// As [`Study::new`].
    pub fn doubled(&self) -> Result<Study, StudyError> {
        let mut nodes = self.cluster.nodes().to_vec();
        for n in self.cluster.nodes() {
            nodes.push(Node {
                name: format!("{}-b", n.name),
                ..n.clone()
            });
        }
        let big = Cluster::new(self.cluster.models().to_vec(), nodes)
            .map_err(|e| StudyError(e.to_string()))?;
        Study::new(
            &big,
            self.pods.clone(),
            StudyOptions {
                pool_headroom: 2 * self.options.pool_headroom,
                ..self.options.clone()
            },
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// GPU memory of a share of `milli` of one GPU of `spec`, MiB (rounded up).
pub fn share_mib(spec: &GpuSpec, milli: u16) -> u64 {
    (spec.memory_mib * u64::from(milli)).div_ceil(1000)
}

/// Nodes of the whole-GPU pool: GPU nodes, most GPUs first (then by name), until their
/// GPUs cover `headroom` times the whole-GPU pods' demand.
fn whole_pool(cluster: &Cluster, pods: &[Pod], headroom: u64) -> Vec<String> {
    let demand: u64 = pods
        .iter()
        .map(|p| match p.gpu {
            GpuRequest::Whole(n) => u64::from(n),
            _ => 0,
        })
        .sum::<u64>()
        * headroom;
    let mut nodes: Vec<&Node> = cluster
        .nodes()
        .iter()
        .filter(|n| n.gpu_count() > 0)
        .collect();
    nodes.sort_by(|a, b| b.gpu_count().cmp(&a.gpu_count()).then(a.name.cmp(&b.name)));
    let mut have = 0u64;
    let mut out = Vec::new();
    for n in nodes {
        if have >= demand {
            break;
        }
        have += u64::from(n.gpu_count());
        out.push(n.name.clone());
    }
    out
}

/// Mean of each mode's rows over seeds, in the order modes first appear.
pub fn mean_by_mode(rows: &[StudyRow]) -> Vec<StudyRow> {
    let mut order: Vec<String> = Vec::new();
    for r in rows {
        if !order.contains(&r.mode) {
            order.push(r.mode.clone());
        }
    }
    order
        .into_iter()
        .map(|m| {
            let rs: Vec<&StudyRow> = rows.iter().filter(|r| r.mode == m).collect();
            let n = rs.len() as f64;
            let mean =
                |f: &dyn Fn(&StudyRow) -> f64| round2(rs.iter().map(|r| f(r)).sum::<f64>() / n);
            StudyRow {
                mode: m,
                policy: rs[0].policy.clone(),
                seed: 0,
                pods: rs[0].pods,
                placed: mean(&|r| r.placed as f64).round() as usize,
                refused: mean(&|r| r.refused as f64).round() as usize,
                refused_sharing: mean(&|r| r.refused_sharing as f64).round() as usize,
                occupied_gpus: mean(&|r| r.occupied_gpus as f64).round() as u64,
                total_gpus: rs[0].total_gpus,
                reserved_pct: mean(&|r| r.reserved_pct),
                used_pct: mean(&|r| r.used_pct),
                used_of_occupied_pct: mean(&|r| r.used_of_occupied_pct),
                gpus_needed: rs
                    .iter()
                    .map(|r| r.gpus_needed)
                    .sum::<Option<u64>>()
                    .map(|t| (t as f64 / n).round() as u64),
                refused_at_double: rs
                    .iter()
                    .map(|r| r.refused_at_double)
                    .sum::<Option<usize>>()
                    .map(|t| (t as f64 / n).round() as usize),
            }
        })
        .collect()
}

mod options;
mod sweep;

pub use options::{check_modes, gpu_spec, load_config, parse_config, parse_modes};

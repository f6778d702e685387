//! The sharing configuration: which nodes share their GPUs and how, in the terms of
//! the NVIDIA device plugin and nvidia-mig-parted, resolved to a cluster whose nodes carry
//! their devices (`mlplane_model::Device`).
//!
//! The file is YAML:
//!
//! ```yaml
//! version: v1
//! models:                      # GPU models the built-in catalogue lacks
//!   - name: G2
//!     memoryMiB: 16384
//! migConfigs:                  # nvidia-mig-parted's `mig-configs:` map, unchanged
//!   all-1g.10gb:
//!     - devices: all
//!       mig-enabled: true
//!       mig-devices: { "1g.10gb": 7 }
//! nodeGroups:                  # first matching group wins; other nodes: whole GPUs
//!   - name: shared-t4
//!     models: [T4]             # match by GPU model (any if absent) ...
//!     nodes: [node-1, node-2]  # ... and/or by node name (any if absent)
//!     sharing:                 # the device plugin's `sharing:` block, unchanged
//!       timeSlicing:
//!         failRequestsGreaterThanOne: true
//!         resources:
//!           - name: nvidia.com/gpu
//!             replicas: 4
//!   - name: mig
//!     models: [H100-80GB]
//!     migStrategy: mixed       # the device plugin's MIG_STRATEGY: single | mixed
//!     migConfig: all-1g.10gb   # the node's nvidia.com/mig.config label
//! ```
//!
//! Sources: the device plugin's configuration file and its `sharing.timeSlicing` /
//! `sharing.mps` blocks (<https://github.com/NVIDIA/k8s-device-plugin#configuration-option-details>,
//! "Shared Access to GPUs"); mig-parted's config format
//! (<https://github.com/NVIDIA/mig-parted#the-config-file>); MIG strategies
//! (<https://docs.nvidia.com/datacenter/cloud-native/kubernetes/latest/index.html>, "MIG
//! support in Kubernetes").
//!
//! Semantics carried over: a time-sliced or MPS resource is advertised `replicas`
//! times per device; `renameByDefault` advertises `<name>.shared`, `rename` a chosen
//! name; MPS splits memory and compute equally between its replicas and, like the
//! device plugin, never gives one container more than one replica. Under the `single`
//! strategy every MIG instance of a node is advertised as `nvidia.com/gpu` (so a node's
//! instances must all have one profile); under `mixed` as `nvidia.com/mig-<profile>`.
//! GPUs that no mig-parted entry names, or that an entry sets `mig-enabled: false`,
//! stay whole GPUs. `device-filter` entries are accepted and ignored (a node here has
//! one GPU model).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::catalog::{place_geometry, Catalog, GpuSpec};
use mlplane_model::{
    Cluster, Device, GpuModel, MigInstance, ResourceId, Sharing as ModelSharing, GPU_RESOURCE,
    MAX_REPLICAS,
};

/// A configuration error: the field path (`nodeGroups[1].sharing.timeSlicing.resources[0].replicas`)
/// and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Where: the field's path (`nodeGroups[0].name`); from [`SharingConfig::parse`],
    /// the file, line and column in front (`sharing.yaml:3:5: nodeGroups[0].name`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// The file, as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SharingConfig {
    /// Format version; `v1`.
    #[serde(default)]
    pub version: Option<String>,
    /// Extra GPU models.
    #[serde(default)]
    pub models: Vec<ModelEntry>,
    /// mig-parted's `mig-configs` map: config name → entries.
    #[serde(default)]
    pub mig_configs: BTreeMap<String, Vec<MigPartedEntry>>,
    /// Node groups, first match wins.
    #[serde(default)]
    pub node_groups: Vec<NodeGroup>,
}

/// A GPU model the catalogue lacks.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelEntry {
    /// Model name as nodes carry it.
    pub name: String,
    /// Memory of one GPU in MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u64,
}

/// One entry of a mig-parted config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigPartedEntry {
    /// `all` or a list of GPU indices.
    pub devices: DeviceSelector,
    /// Whether MIG is enabled on those GPUs.
    #[serde(rename = "mig-enabled")]
    pub mig_enabled: bool,
    /// Profile name → instances per GPU.
    #[serde(rename = "mig-devices", default)]
    pub mig_devices: BTreeMap<String, u32>,
    /// mig-parted's device filter (accepted, ignored).
    #[serde(rename = "device-filter", default)]
    pub device_filter: Option<serde_yaml_ng::Value>,
}

/// `devices: all` or `devices: [0, 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSelector {
    /// Every GPU of the node.
    All,
    /// These GPU indices.
    List(Vec<u8>),
}

impl<'de> Deserialize<'de> for DeviceSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<u8>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(DeviceSelector::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expected `all` or a list of GPU indices, got {w:?}"
            ))),
            Raw::List(l) => Ok(DeviceSelector::List(l)),
        }
    }
}

impl DeviceSelector {
    fn contains(&self, gpu: u8) -> bool {
        match self {
            DeviceSelector::All => true,
            DeviceSelector::List(l) => l.contains(&gpu),
        }
    }
}

/// A group of nodes that share GPUs the same way.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeGroup {
    /// Name, for messages.
    pub name: String,
    /// GPU models the group covers (any if absent).
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Node names the group covers (any if absent).
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// The device plugin's `sharing:` block.
    #[serde(default)]
    pub sharing: Option<Sharing>,
    /// The device plugin's MIG strategy.
    #[serde(default)]
    pub mig_strategy: Option<MigStrategy>,
    /// Name of the mig-parted config applied to the group's nodes.
    #[serde(default)]
    pub mig_config: Option<String>,
}

/// The device plugin's MIG strategy.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MigStrategy {
    /// MIG devices are ignored.
    None,
    /// Every instance advertised as `nvidia.com/gpu`.
    Single,
    /// Instances advertised as `nvidia.com/mig-<profile>`.
    Mixed,
}

/// The device plugin's `sharing:` block.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sharing {
    /// Time-slicing.
    #[serde(default)]
    pub time_slicing: Option<Replicated>,
    /// MPS.
    #[serde(default)]
    pub mps: Option<Replicated>,
}

/// `timeSlicing:` or `mps:`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replicated {
    /// Advertise `<name>.shared` instead of `<name>`.
    #[serde(default)]
    pub rename_by_default: bool,
    /// Refuse requests for more than one replica (time-slicing only; MPS always does).
    #[serde(default)]
    pub fail_requests_greater_than_one: bool,
    /// Resources to replicate.
    pub resources: Vec<ReplicatedResource>,
}

/// One replicated resource.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplicatedResource {
    /// `nvidia.com/gpu` or `nvidia.com/mig-<profile>`.
    pub name: String,
    /// Replicas per device, at least 2.
    pub replicas: u32,
    /// Advertise under this name instead.
    #[serde(default)]
    pub rename: Option<String>,
    /// Which devices (only `all` is supported).
    #[serde(default)]
    pub devices: Option<serde_yaml_ng::Value>,
}

impl SharingConfig {
    /// Parses the YAML text of a configuration file; `file` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] with the field path and, for syntax errors, the line and column.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: SharingConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = inner.location().map(|l| (l.line(), l.column()));
            // The place goes in front (`file:line:column`), as compilers write it; the
            // YAML library's own message ends its first clause with it, and may start
            // with its own, shorter, field path.
            let mut message = inner.to_string();
            if let Some((line, column)) = at {
                message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
            }
            if let Some((head, rest)) = message.split_once(": ") {
                if !head.is_empty() && !head.contains(' ') && path.starts_with(head) {
                    message = rest.to_string();
                }
            }
            let place = match at {
                Some((line, column)) => format!("{file}:{line}:{column}"),
                None => file.to_string(),
            };
            let field = if path == "." || path.is_empty() {
                place
            } else {
                format!("{place}: {path}")
            };
            err(field, message)
        })?;
        if let Some(v) = &cfg.version {
            if v != "v1" {
                return Err(err(
                    format!("{file}: version"),
                    format!("expected v1, got {v:?}"),
                ));
            }
        }
        Ok(cfg)
    }

    /// The catalogue with this file's models added.
    ///
    /// # Errors
    /// A model with zero memory.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        let mut c = Catalog::builtin();
        for (i, m) in self.models.iter().enumerate() {
            if m.memory_mib == 0 {
                return Err(err(format!("models[{i}].memoryMiB"), "must be more than 0"));
            }
            c.insert(GpuSpec {
                name: m.name.clone(),
                memory_mib: m.memory_mib,
                mig_profiles: Vec::new(),
            });
        }
        Ok(c)
    }

    /// How many GPU nodes of `cluster` each node group takes (a node goes to the first
    /// group whose `models` and `nodes` both select it, as in
    /// [`SharingConfig::resolve`]), in `node_groups` order. A 0 is a group that
    /// configures nothing on this cluster.
    pub fn group_node_counts(&self, cluster: &Cluster) -> Vec<usize> {
        let mut counts = vec![0; self.node_groups.len()];
        for node in cluster.nodes() {
            let Some(model_id) = node.gpu_model() else {
                continue;
            };
            let model = cluster.model_name(model_id);
            if let Some(k) = self.node_groups.iter().position(|grp| {
                grp.models
                    .as_ref()
                    .is_none_or(|m| m.iter().any(|x| x == model))
                    && grp.nodes.as_ref().is_none_or(|n| n.contains(&node.name))
            }) {
                counts[k] += 1;
            }
        }
        counts
    }

    /// Resolves the configuration against a cluster: the same cluster (models, node
    /// names, CPU, memory, constraints) with every GPU node's devices as the device
    /// plugin would advertise them, each a [`Device`] of the catalogue's memory and
    /// compute: whole GPUs ([`ModelSharing::Exclusive`]), MIG instances (with their
    /// [`MigInstance`] profile and first memory slice), time-sliced or MPS devices
    /// ([`ModelSharing::TimeSliced`] with `failRequestsGreaterThanOne`,
    /// [`ModelSharing::Mps`]).
    /// Resource names (`nvidia.com/mig-1g.10gb`, `nvidia.com/gpu.shared`) are interned
    /// in the new cluster's resource table after the input's own. A GPU model whose
    /// memory the input does not know gets the catalogue's.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: a GPU model missing from the catalogue,
    /// `replicas` outside `2..=MAX_REPLICAS`, an unknown MIG config or profile, a
    /// geometry that does not fit a GPU, MIG on a model without it, a `single` strategy
    /// over mixed profiles, MPS on MIG instances, a replicated resource name that is
    /// not a GPU resource.
    pub fn resolve(&self, cluster: &Cluster) -> Result<Cluster, ConfigError> {
        let catalog = self.catalog()?;
        self.check_groups()?;
        let mut names = Names(cluster.resources().to_vec());
        let mut nodes = Vec::with_capacity(cluster.nodes().len());
        for node in cluster.nodes() {
            let (Some(model_id), count) = (node.gpu_model(), node.gpu_count()) else {
                nodes.push(node.clone());
                continue;
            };
            let model = cluster.model_name(model_id);
            let spec = catalog.get(model).ok_or_else(|| {
                err(
                    format!("node {}", node.name),
                    format!(
                        "GPU model {model:?} is not in the catalogue (known: {}); describe it under `models:` with its memoryMiB",
                        catalog.names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let group = self.node_groups.iter().enumerate().find(|(_, grp)| {
                grp.models
                    .as_ref()
                    .is_none_or(|m| m.iter().any(|x| x == model))
                    && grp.nodes.as_ref().is_none_or(|n| n.contains(&node.name))
            });
            let devices = match group {
                None => whole_gpus(spec, count),
                Some((gi, grp)) => {
                    self.group_devices(gi, grp, spec, count, &node.name, &mut names)?
                }
            };
            nodes.push(node.clone().with_devices(model_id, devices));
        }
        let models = cluster
            .models()
            .iter()
            .map(|m| GpuModel {
                name: m.name.clone(),
                memory_mib: m
                    .memory_mib
                    .or_else(|| catalog.get(&m.name).map(|s| s.memory_mib)),
            })
            .collect();
        Cluster::with_resources(models, names.0, nodes)
            .map_err(|e| err("(resolved cluster)", e.to_string()))
    }

    fn check_groups(&self) -> Result<(), ConfigError> {
        for (gi, grp) in self.node_groups.iter().enumerate() {
            let base = format!("nodeGroups[{gi}]");
            if let Some(c) = &grp.mig_config {
                if !self.mig_configs.contains_key(c) {
                    return Err(err(
                        format!("{base}.migConfig"),
                        format!(
                            "no mig config named {c:?} under migConfigs (have: {})",
                            self.mig_configs
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if grp.mig_strategy.is_none_or(|s| s == MigStrategy::None) {
                    return Err(err(
                        format!("{base}.migStrategy"),
                        "a group with a migConfig needs migStrategy single or mixed",
                    ));
                }
            }
            let Some(sh) = &grp.sharing else { continue };
            if sh.time_slicing.is_some() && sh.mps.is_some() {
                return Err(err(
                    format!("{base}.sharing"),
                    "choose timeSlicing or mps, not both (the device plugin allows one)",
                ));
            }
            for (kind, r) in [("timeSlicing", &sh.time_slicing), ("mps", &sh.mps)] {
                let Some(r) = r else { continue };
                for (ri, res) in r.resources.iter().enumerate() {
                    let f = format!("{base}.sharing.{kind}.resources[{ri}]");
                    if res.replicas < 2 {
                        return Err(err(
                            format!("{f}.replicas"),
                            format!("must be at least 2, got {}", res.replicas),
                        ));
                    }
                    if res.replicas > u32::from(MAX_REPLICAS) {
                        return Err(err(
                            format!("{f}.replicas"),
                            format!("must be at most {MAX_REPLICAS}, got {}", res.replicas),
                        ));
                    }
                    if res.name != "nvidia.com/gpu" && !res.name.starts_with("nvidia.com/mig-") {
                        return Err(err(
                            format!("{f}.name"),
                            format!(
                                "expected nvidia.com/gpu or nvidia.com/mig-<profile>, got {:?}",
                                res.name
                            ),
                        ));
                    }
                    if kind == "mps" && res.name != "nvidia.com/gpu" {
                        return Err(err(
                            format!("{f}.name"),
                            "MPS shares whole GPUs only (nvidia.com/gpu)",
                        ));
                    }
                    if let Some(d) = &res.devices {
                        if d.as_str() != Some("all") {
                            return Err(err(format!("{f}.devices"), "only `all` is supported"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn group_devices(
        &self,
        gi: usize,
        grp: &NodeGroup,
        spec: &GpuSpec,
        count: u8,
        node: &str,
        names: &mut Names,
    ) -> Result<Vec<Device>, ConfigError> {
        let base = format!("nodeGroups[{gi}]");
        let mut devices = Vec::new();
        let entries = grp.mig_config.as_ref().map(|c| (c, &self.mig_configs[c]));
        let mut single_profile: Option<String> = None;
        for gpu in 0..count {
            let entry = entries.and_then(|(c, es)| {
                es.iter()
                    .enumerate()
                    .find(|(_, e)| e.devices.contains(gpu))
                    .map(|(i, e)| (c, i, e))
            });
            match entry {
                Some((c, ei, e)) if e.mig_enabled => {
                    let field = format!("migConfigs.{c}[{ei}].mig-devices");
                    let placed = place_geometry(spec, &e.mig_devices).map_err(|ge| {
                        err(
                            if spec.mig_capable() {
                                field.clone()
                            } else {
                                format!("{base}.migConfig")
                            },
                            format!("on node {node}: {ge}"),
                        )
                    })?;
                    for inst in placed {
                        let p = &spec.mig_profiles[inst.profile];
                        let resource = match grp.mig_strategy {
                            Some(MigStrategy::Single) => {
                                if let Some(s) = &single_profile {
                                    if *s != p.name {
                                        return Err(err(
                                            format!("{base}.migStrategy"),
                                            format!("single needs one MIG profile per node; node {node} has {s} and {}", p.name),
                                        ));
                                    }
                                }
                                single_profile = Some(p.name.clone());
                                GPU_RESOURCE.to_string()
                            }
                            _ => p.resource(),
                        };
                        devices.push(Device {
                            gpu,
                            mig: Some(MigInstance {
                                profile: p.name.clone(),
                                start: inst.start,
                            }),
                            resource: names.intern(&resource),
                            memory_mib: p.memory_mib,
                            compute_milli: p.compute_milli(),
                            sharing: ModelSharing::Exclusive,
                        });
                    }
                }
                _ => devices.push(Device::exclusive(gpu, spec.memory_mib)),
            }
        }
        // Replicate what the sharing block names.
        if let Some(sh) = &grp.sharing {
            let (r, mps) = match (&sh.time_slicing, &sh.mps) {
                (Some(r), _) => (r, false),
                (None, Some(r)) => (r, true),
                (None, None) => return Ok(devices),
            };
            for d in &mut devices {
                let name = names.name(d.resource).to_string();
                let Some(res) = r.resources.iter().find(|x| x.name == name) else {
                    continue;
                };
                let advertised = match (&res.rename, r.rename_by_default) {
                    (Some(n), _) => n.clone(),
                    (None, true) => format!("{name}.shared"),
                    (None, false) => name,
                };
                d.resource = names.intern(&advertised);
                // check_groups keeps replicas in 2..=MAX_REPLICAS.
                let replicas = res.replicas as u16;
                d.sharing = if mps {
                    ModelSharing::Mps { replicas }
                } else {
                    ModelSharing::TimeSliced {
                        replicas,
                        fail_multi: r.fail_requests_greater_than_one,
                    }
                };
            }
        }
        Ok(devices)
    }
}

/// The resource name table of the cluster being resolved.
struct Names(Vec<String>);

impl Names {
    /// The id of `name`, adding it if new.
    fn intern(&mut self, name: &str) -> ResourceId {
        if let Some(i) = self.0.iter().position(|r| r == name) {
            return ResourceId(i as u16);
        }
        self.0.push(name.to_string());
        ResourceId((self.0.len() - 1) as u16)
    }

    fn name(&self, id: ResourceId) -> &str {
        &self.0[usize::from(id.0)]
    }
}

/// `count` whole, unshared GPUs of `spec` (a node in no group).
fn whole_gpus(spec: &GpuSpec, count: u8) -> Vec<Device> {
    (0..count)
        .map(|gpu| Device::exclusive(gpu, spec.memory_mib))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_node_counts_follow_first_match() {
        use mlplane_model::{Cluster, GpuModel, GpuModelId, Node};
        let models = ["H100-80GB", "T4"]
            .map(|m| GpuModel {
                name: m.into(),
                memory_mib: None,
            })
            .to_vec();
        let nodes = vec![
            Node::new("a", 1000, 1024).with_gpus(GpuModelId(0), 1, 0),
            Node::new("b", 1000, 1024).with_gpus(GpuModelId(0), 1, 0),
            Node::new("c", 1000, 1024).with_gpus(GpuModelId(1), 1, 0),
            Node::new("cpu", 1000, 1024),
        ];
        let cluster = Cluster::new(models, nodes).unwrap();
        let cfg = SharingConfig::parse(
            "nodeGroups:\n  - name: named\n    nodes: [a]\n  - name: h100\n    models: [H100-80GB]\n  - name: a10\n    models: [A10]\n  - name: rest\n",
            "t.yaml",
        )
        .unwrap();
        // a goes to the first group that selects it; b to h100; c (T4) to rest; the
        // CPU-only node to none; nothing is an A10.
        assert_eq!(cfg.group_node_counts(&cluster), [1, 1, 0, 1]);
    }

    use super::*;

    fn parse_err(text: &str) -> String {
        SharingConfig::parse(text, "s.yaml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_yaml_syntax_error_names_file_line_and_column() {
        // `sharing:` indented one space less than `name:` ends the list item badly.
        let e = parse_err("nodeGroups:\n  - name: all\n   sharing:\n      timeSlicing: {}\n");
        assert_eq!(
            e,
            "s.yaml:3:4: nodeGroups: did not find expected '-' indicator, while parsing a block collection at line 2 column 3"
        );
        let e = parse_err("nodeGroups: [\n");
        assert!(e.starts_with("s.yaml:2:1: "), "{e}");
        let e = parse_err("version: v1\n\tmodels: []\n");
        assert!(e.starts_with("s.yaml:2:1: "), "{e}");
    }

    #[test]
    fn a_field_error_names_the_place_and_the_path_once() {
        let e = parse_err("nodeGroups:\n  - name: all\n    sharing: [\n    ]\n");
        assert_eq!(
            e,
            "s.yaml:3:14: nodeGroups[0].sharing: invalid type: sequence, expected struct Sharing"
        );
        let e = parse_err("nodeGroups:\n  - name: all\n    sharingx: 1\n");
        assert!(
            e.starts_with("s.yaml:3:5: nodeGroups[0].sharingx: unknown field `sharingx`, expected one of `name`"),
            "{e}"
        );
        let e = parse_err("version: v2\n");
        assert_eq!(e, "s.yaml: version: expected v1, got \"v2\"");
    }

    #[test]
    fn a_valid_file_parses() {
        let c = SharingConfig::parse(
            "version: v1\nnodeGroups:\n  - name: a\n    models: [T4]\n",
            "s.yaml",
        )
        .unwrap();
        assert_eq!(c.node_groups.len(), 1);
        assert_eq!(
            c.node_groups[0].models.as_deref(),
            Some(&["T4".to_string()][..])
        );
    }
}

//! Loading Alibaba's GPU-sharing cluster trace, v2023 (public repository
//! alibaba/clusterdata, folder `cluster-trace-gpu-v2023/csv`).
//!
//! Node files (`openb_node_list_*.csv`) have the columns `sn,cpu_milli,memory_mib,gpu,model`;
//! pod files (`openb_pod_list_*.csv`) have
//! `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time`,
//! of which the first five are required. Columns may come in any order; an unknown
//! column is an error (it usually means the wrong file was given).
//!
//! Every error names the file, the line (1-based, the header is line 1) and the field.

use std::fmt;
use std::path::{Path, PathBuf};

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, ModelError, Node, Pod};

/// The pod limit of a trace node: the FGD paper's simulator lets a node hold 1001
/// pods, which never binds on the trace.
pub const TRACE_MAX_PODS: u32 = 1001;

/// Memory of the trace's disclosed GPU models in MiB (as the FGD paper's simulator lists
/// them); `G1`..`G3` are undisclosed.
pub const KNOWN_GPU_MEMORY_MIB: &[(&str, u64)] = &[
    ("P100", 16280),
    ("T4", 15109),
    ("V100M16", 16160),
    ("V100M32", 32510),
    ("A10", 22731),
];

/// An error reading a trace file.
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A malformed CSV record (e.g. a wrong number of fields).
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line, if known.
        line: Option<u64>,
        /// The CSV parser's message.
        message: String,
    },
    /// A header column that this file kind does not have.
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The columns this kind of file may have.
        expected: &'static [&'static str],
    },
    /// A required column is missing.
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A field with a bad value.
    Field {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Column name.
        field: &'static str,
        /// The value found.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// The node file lists no nodes.
    EmptyCluster {
        /// The file.
        path: PathBuf,
    },
    /// The pod file lists no pods.
    EmptyWorkload {
        /// The file.
        path: PathBuf,
    },
    /// The nodes do not form a valid cluster (e.g. a duplicate node name).
    Cluster {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: ModelError,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TraceError::Csv {
                path,
                line,
                message,
            } => match line {
                Some(l) => write!(f, "{}:{l}: malformed CSV: {message}", path.display()),
                None => write!(f, "{}: malformed CSV: {message}", path.display()),
            },
            TraceError::UnknownColumn {
                path,
                column,
                expected,
            } => write!(
                f,
                "{}:1: unknown column {column:?}; expected columns: {}",
                path.display(),
                expected.join(",")
            ),
            TraceError::MissingColumn { path, column } => {
                write!(
                    f,
                    "{}:1: missing required column {column:?}",
                    path.display()
                )
            }
            TraceError::Field {
                path,
                line,
                field,
                value,
                expected,
            } => write!(
                f,
                "{}:{line}: field {field}: {value:?} is not valid; expected {expected}",
                path.display()
            ),
            TraceError::EmptyCluster { path } => {
                write!(f, "{}: no nodes: the cluster is empty", path.display())
            }
            TraceError::EmptyWorkload { path } => write!(f, "{}: no pods", path.display()),
            TraceError::Cluster { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

/// The message already includes the cause, so `source()` is `None` and error chains
/// (`{:#}`) do not repeat it.
impl std::error::Error for TraceError {}

const NODE_COLUMNS: &[&str] = &["sn", "cpu_milli", "memory_mib", "gpu", "model"];
const NODE_REQUIRED: &[&str] = &["sn", "cpu_milli", "memory_mib", "gpu", "model"];
const POD_COLUMNS: &[&str] = &[
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
];
const POD_REQUIRED: &[&str] = &["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"];

/// A parsed CSV table: header positions plus records, with error context.
struct Table {
    path: PathBuf,
    columns: Vec<Option<usize>>,
    records: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn read(
        path: &Path,
        text: &str,
        known: &'static [&'static str],
        required: &'static [&'static str],
    ) -> Result<Self, TraceError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let csv_err = |e: csv::Error| TraceError::Csv {
            path: path.to_path_buf(),
            line: e.position().map(|p| p.line()),
            message: match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!(
                    "{len} field{} where the header has {expected_len}",
                    if *len == 1 { "" } else { "s" }
                ),
                _ => e.to_string(),
            },
        };
        let header = rdr.headers().map_err(csv_err)?.clone();
        for h in header.iter() {
            if !known.contains(&h) {
                return Err(TraceError::UnknownColumn {
                    path: path.to_path_buf(),
                    column: h.to_string(),
                    expected: known,
                });
            }
        }
        let columns: Vec<Option<usize>> = known
            .iter()
            .map(|k| header.iter().position(|h| h == *k))
            .collect();
        for r in required {
            let i = known
                .iter()
                .position(|k| k == r)
                .expect("required is known");
            if columns[i].is_none() {
                return Err(TraceError::MissingColumn {
                    path: path.to_path_buf(),
                    column: r,
                });
            }
        }
        let mut records = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(csv_err)?;
            let line = rec.position().map_or(0, |p| p.line());
            records.push((line, rec));
        }
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            records,
        })
    }

    fn get<'r>(
        &self,
        known: &'static [&'static str],
        rec: &'r csv::StringRecord,
        col: &str,
    ) -> Option<&'r str> {
        let i = known.iter().position(|k| *k == col)?;
        self.columns[i].and_then(|c| rec.get(c))
    }

    fn field_err(
        &self,
        line: u64,
        field: &'static str,
        value: &str,
        expected: impl Into<String>,
    ) -> TraceError {
        TraceError::Field {
            path: self.path.clone(),
            line,
            field,
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    fn uint(&self, line: u64, field: &'static str, value: &str) -> Result<u64, TraceError> {
        value
            .parse::<u64>()
            .map_err(|_| self.field_err(line, field, value, "a non-negative integer"))
    }
}

fn read_text(path: &Path) -> Result<String, TraceError> {
    std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a node file into a [`Cluster`]. GPU models are taken from the `model` column in
/// order of first appearance; a node with `gpu` = 0 must have an empty model.
///
/// # Errors
/// [`TraceError`] naming the file, line and field for unreadable files, malformed rows,
/// unknown or missing columns, non-numeric or negative values, a GPU count above 16, a
/// GPU node without a model, duplicate node names, or no nodes at all.
pub fn load_nodes(path: &Path) -> Result<Cluster, TraceError> {
    parse_nodes(path, &read_text(path)?)
}

/// [`load_nodes`] on text already read; `path` is used in messages only.
pub fn parse_nodes(path: &Path, text: &str) -> Result<Cluster, TraceError> {
    let t = Table::read(path, text, NODE_COLUMNS, NODE_REQUIRED)?;
    let mut models: Vec<GpuModel> = Vec::new();
    let mut nodes = Vec::with_capacity(t.records.len());
    for (line, rec) in &t.records {
        let line = *line;
        let get = |c| t.get(NODE_COLUMNS, rec, c).unwrap_or("");
        let name = get("sn");
        if name.is_empty() {
            return Err(t.field_err(line, "sn", name, "a node name"));
        }
        let cpu_milli = t.uint(line, "cpu_milli", get("cpu_milli"))?;
        let memory_mib = t.uint(line, "memory_mib", get("memory_mib"))?;
        let gpu_s = get("gpu");
        let gpu = t.uint(line, "gpu", gpu_s)?;
        if gpu > mlplane_model::MAX_GPUS_PER_NODE as u64 {
            return Err(t.field_err(
                line,
                "gpu",
                gpu_s,
                format!("0..={}", mlplane_model::MAX_GPUS_PER_NODE),
            ));
        }
        let model = get("model");
        let gpus = match (gpu, model.is_empty()) {
            (0, true) => None,
            (0, false) => {
                return Err(t.field_err(
                    line,
                    "model",
                    model,
                    "an empty model for a node with gpu = 0",
                ))
            }
            (_, true) => {
                return Err(t.field_err(
                    line,
                    "model",
                    model,
                    "a GPU model name for a node with gpu > 0",
                ))
            }
            (n, false) => {
                let id = match models.iter().position(|m| m.name == model) {
                    Some(i) => i,
                    None => {
                        if models.len() >= mlplane_model::ModelSet::CAPACITY {
                            return Err(t.field_err(
                                line,
                                "model",
                                model,
                                "at most 64 distinct GPU models",
                            ));
                        }
                        models.push(GpuModel {
                            name: model.to_string(),
                            memory_mib: KNOWN_GPU_MEMORY_MIB
                                .iter()
                                .find(|(n, _)| *n == model)
                                .map(|(_, m)| *m),
                        });
                        models.len() - 1
                    }
                };
                Some((
                    GpuModelId(id as u16),
                    n as u8,
                    models[id].memory_mib.unwrap_or(0),
                ))
            }
        };
        let mut node = Node::new(name, cpu_milli, memory_mib).with_max_pods(TRACE_MAX_PODS);
        if let Some((model, count, mem)) = gpus {
            node = node.with_gpus(model, count, mem);
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(TraceError::EmptyCluster {
            path: path.to_path_buf(),
        });
    }
    Cluster::new(models, nodes).map_err(|source| TraceError::Cluster {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a pod file. `gpu_spec` (a `|`-separated list of GPU models) is resolved against
/// `cluster`; models the cluster lacks are dropped, so a pod naming only those fits
/// nowhere. Pod phase and times are ignored: the experiment submits every pod.
///
/// # Errors
/// [`TraceError`] naming the file, line and field for unreadable files, malformed rows,
/// unknown or missing columns, non-numeric or negative values, an invalid
/// `(num_gpu, gpu_milli)` pair, or no pods at all.
pub fn load_pods(path: &Path, cluster: &Cluster) -> Result<Vec<Pod>, TraceError> {
    parse_pods(path, &read_text(path)?, cluster)
}

/// [`load_pods`] on text already read; `path` is used in messages only.
pub fn parse_pods(path: &Path, text: &str, cluster: &Cluster) -> Result<Vec<Pod>, TraceError> {
    Ok(parse_rows(path, text, cluster, false)?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// A pod's life in the trace: its QoS class and times, seconds from the trace's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTimes {
    /// The 1-based line of the pod in its file (for messages).
    pub line: u64,
    /// `qos`: `LS`, `BE`, `Burstable`, `Guaranteed` (empty if the column is absent).
    pub qos: String,
    /// `pod_phase` at the end of the trace (empty if absent).
    pub phase: String,
    /// `creation_time` (0 if the column is absent or empty).
    pub creation_s: u64,
    /// `scheduled_time`, if the pod was ever scheduled.
    pub scheduled_s: Option<u64>,
    /// `deletion_time`, if recorded.
    pub deletion_s: Option<u64>,
}

/// [`load_pods`] keeping each pod's [`PodTimes`] (for the replay).
///
/// # Errors
/// As [`load_pods`], and a field error for a non-numeric time or a `deletion_time`
/// before the `scheduled_time` (or before the `creation_time`).
pub fn load_timed_pods(path: &Path, cluster: &Cluster) -> Result<Vec<(Pod, PodTimes)>, TraceError> {
    parse_timed_pods(path, &read_text(path)?, cluster)
}

/// [`load_timed_pods`] on text already read; `path` is used in messages only.
pub fn parse_timed_pods(
    path: &Path,
    text: &str,
    cluster: &Cluster,
) -> Result<Vec<(Pod, PodTimes)>, TraceError> {
    parse_rows(path, text, cluster, true)
}

fn parse_rows(
    path: &Path,
    text: &str,
    cluster: &Cluster,
    with_times: bool,
) -> Result<Vec<(Pod, PodTimes)>, TraceError> {
    let t = Table::read(path, text, POD_COLUMNS, POD_REQUIRED)?;
    let mut pods = Vec::with_capacity(t.records.len());
    for (line, rec) in &t.records {
        let line = *line;
        let get = |c| t.get(POD_COLUMNS, rec, c).unwrap_or("");
        let name = get("name");
        if name.is_empty() {
            return Err(t.field_err(line, "name", name, "a pod name"));
        }
        let cpu_milli = t.uint(line, "cpu_milli", get("cpu_milli"))?;
        let memory_mib = t.uint(line, "memory_mib", get("memory_mib"))?;
        let num_s = get("num_gpu");
        let num_gpu = t.uint(line, "num_gpu", num_s)?;
        let milli_s = get("gpu_milli");
        let gpu_milli = t.uint(line, "gpu_milli", milli_s)?;
        let gpu = GpuRequest::from_trace(
            u32::try_from(num_gpu).unwrap_or(u32::MAX),
            u32::try_from(gpu_milli).unwrap_or(u32::MAX),
        )
        .map_err(|e| match e {
            ModelError::GpuRequest { why, .. } => {
                let field = if why.starts_with("num_gpu") {
                    "num_gpu"
                } else {
                    "gpu_milli"
                };
                let value = if field == "num_gpu" { num_s } else { milli_s };
                t.field_err(line, field, value, format!("a valid GPU request ({why})"))
            }
            other => t.field_err(line, "gpu_milli", milli_s, other.to_string()),
        })?;
        let spec = get("gpu_spec");
        let allowed_models = if spec.is_empty() {
            None
        } else {
            Some(cluster.model_set(spec.split('|').filter(|s| !s.is_empty())))
        };
        let mut pod = Pod::new(name, cpu_milli, memory_mib, gpu);
        pod.allowed_models = allowed_models;
        let time = |field: &'static str| -> Result<Option<u64>, TraceError> {
            let v = get(field);
            if v.is_empty() || !with_times {
                Ok(None)
            } else {
                t.uint(line, field, v).map(Some)
            }
        };
        let creation_s = time("creation_time")?.unwrap_or(0);
        let scheduled_s = time("scheduled_time")?;
        let deletion_s = time("deletion_time")?;
        if let Some(d) = deletion_s {
            let start = scheduled_s.unwrap_or(creation_s);
            if d < start {
                let what = if scheduled_s.is_some() {
                    "scheduled_time"
                } else {
                    "creation_time"
                };
                return Err(t.field_err(
                    line,
                    "deletion_time",
                    get("deletion_time"),
                    format!("a time at or after the {what} ({start})"),
                ));
            }
        }
        pod.created_s = creation_s;
        let times = PodTimes {
            line,
            qos: get("qos").to_string(),
            phase: get("pod_phase").to_string(),
            creation_s,
            scheduled_s,
            deletion_s,
        };
        pods.push((pod, times));
    }
    if pods.is_empty() {
        return Err(TraceError::EmptyWorkload {
            path: path.to_path_buf(),
        });
    }
    Ok(pods)
}

/// Environment variable naming a folder that holds the Alibaba v2023 CSVs.
pub const TRACE_DIR_ENV: &str = "MLPLANE_TRACE_DIR";

/// The folder of the Alibaba v2023 trace for tests and benchmarks: `$MLPLANE_TRACE_DIR`
/// if set, else `fallback`; `None` if that folder lacks `openb_pod_list_default.csv`.
pub fn find_trace_dir(fallback: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os(TRACE_DIR_ENV).map_or_else(|| fallback.to_path_buf(), PathBuf::from);
    dir.join("openb_pod_list_default.csv")
        .is_file()
        .then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.csv")
    }

    const NODES: &str = "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,96000,393216,8,G2\nn2,32000,131072,0,\n";

    #[test]
    fn parses_nodes() {
        let c = parse_nodes(p(), NODES).unwrap();
        assert_eq!(c.nodes().len(), 3);
        assert_eq!(c.gpu_count(), 10);
        assert_eq!(c.model_name(GpuModelId(1)), "G2");
        assert_eq!(c.models()[0].memory_mib, Some(16280));
        assert_eq!(c.models()[1].memory_mib, None);
        assert_eq!(c.nodes()[2].gpu_model(), None);
        assert!(c.nodes()[2].devices.is_empty());
    }

    #[test]
    fn parses_pods_in_any_column_order() {
        let c = parse_nodes(p(), NODES).unwrap();
        let text = "gpu_milli,name,num_gpu,cpu_milli,memory_mib,gpu_spec\n470,a,1,8000,30517,\n1000,b,8,88000,327680,G2|V100M32\n0,c,0,12500,57344,\n";
        let pods = parse_pods(p(), text, &c).unwrap();
        assert_eq!(pods[0].gpu, GpuRequest::Milli(470));
        assert_eq!(pods[1].gpu, GpuRequest::Whole(8));
        assert!(pods[1].allows_model(GpuModelId(1)));
        assert!(!pods[1].allows_model(GpuModelId(0)));
        assert_eq!(pods[2].gpu, GpuRequest::None);
        assert_eq!(pods[2].cpu_milli, 12500);
    }

    fn err(r: Result<impl std::fmt::Debug, TraceError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn bad_input_names_file_line_and_field() {
        assert_eq!(
            err(parse_nodes(
                p(),
                "sn,cpu_milli,memory_mib,gpu,model\nn0,-5,1,1,T4\n"
            )),
            "t.csv:2: field cpu_milli: \"-5\" is not valid; expected a non-negative integer"
        );
        assert_eq!(
            err(parse_nodes(
                p(),
                "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,1,T4\nn1,1,lots,1,T4\n"
            )),
            "t.csv:3: field memory_mib: \"lots\" is not valid; expected a non-negative integer"
        );
        assert!(
            err(parse_nodes(p(), "sn,cpu_milli,memory_mib,gpus,model\n"))
                .starts_with("t.csv:1: unknown column \"gpus\"")
        );
        assert_eq!(
            err(parse_nodes(p(), "sn,cpu_milli,gpu,model\nn0,1,1,T4\n")),
            "t.csv:1: missing required column \"memory_mib\""
        );
        assert_eq!(
            err(parse_nodes(p(), "sn,cpu_milli,memory_mib,gpu,model\n")),
            "t.csv: no nodes: the cluster is empty"
        );
        assert_eq!(
            err(parse_nodes(
                p(),
                "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,1\n"
            )),
            "t.csv:2: malformed CSV: 4 fields where the header has 5"
        );
        assert_eq!(
            err(parse_nodes(p(), "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,\n")),
            "t.csv:2: field model: \"\" is not valid; expected a GPU model name for a node with gpu > 0"
        );
        let c = parse_nodes(p(), NODES).unwrap();
        let head = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n";
        assert_eq!(
            err(parse_pods(p(), &format!("{head}a,1,1,2,500\n"), &c)),
            "t.csv:2: field gpu_milli: \"500\" is not valid; expected a valid GPU request (a GPU share (gpu_milli < 1000) needs num_gpu = 1)"
        );
        assert_eq!(
            err(parse_pods(p(), &format!("{head}a,1,1,9,1000\n"), &c)),
            "t.csv:2: field num_gpu: \"9\" is not valid; expected a valid GPU request (num_gpu must be at most 8)"
        );
        assert_eq!(
            err(parse_pods(p(), &format!("{head}a,1.5,1,0,0\n"), &c)),
            "t.csv:2: field cpu_milli: \"1.5\" is not valid; expected a non-negative integer"
        );
        assert_eq!(err(parse_pods(p(), head, &c)), "t.csv: no pods");
    }

    #[test]
    fn missing_file_is_an_error_not_a_panic() {
        let e = load_nodes(Path::new("/nonexistent/nodes.csv")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/nodes.csv: "));
    }
}

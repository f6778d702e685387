//! The input of a run: a cluster and a workload, from a node and a pod file of the
//! trace ([`crate::trace`]) or, without files, the built-in default
//! ([`crate::synth::default_input`]), with the words that describe where they came from.

use std::path::Path;

use mlplane_model::{Cluster, Pod};

use crate::report::InputInfo;
use crate::synth;
use crate::trace::{self, TraceError};

/// Generator seed of the built-in default input.
pub const DEFAULT_INPUT_SEED: u64 = 1;

/// A loaded cluster and workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The cluster.
    pub cluster: Cluster,
    /// The workload.
    pub pods: Vec<Pod>,
    /// Where the cluster came from: the node file's path, or the built-in default's
    /// description.
    pub nodes_source: String,
    /// Where the workload came from.
    pub pods_source: String,
    /// A short label for titles: `NODES.csv + PODS.csv` (file names only), or the
    /// built-in default's description.
    pub label: String,
}

impl Input {
    /// The description of the input for the JSON summary.
    pub fn info(&self) -> InputInfo {
        InputInfo {
            nodes_source: self.nodes_source.clone(),
            pods_source: self.pods_source.clone(),
            nodes: self.cluster.nodes().len(),
            gpus: self.cluster.gpu_count(),
            pods: self.pods.len(),
        }
    }
}

/// An error loading the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A trace file could not be read or is malformed (the error names file and line).
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Only one of the node and pod files was given.
    #[error("a node file and a pod file go together: {given} was given without {missing}")]
    Half {
        /// The file kind given (`nodes` or `pods`).
        given: &'static str,
        /// The file kind missing.
        missing: &'static str,
    },
}

/// The description of the built-in default input.
pub fn builtin_description() -> String {
    format!(
        "built-in synthetic ({} nodes; generator seed {DEFAULT_INPUT_SEED})",
        synth::DEFAULT_NODES
    )
}

/// Loads the cluster of `nodes` and the workload of `pods` (the trace's CSV format);
/// with neither, the built-in default.
///
/// # Errors
/// [`InputError::Trace`] naming the file, line and field of the first problem;
/// [`InputError::Half`] if only one of the two files is given.
pub fn load(nodes: Option<&Path>, pods: Option<&Path>) -> Result<Input, InputError> {
    match (nodes, pods) {
        (Some(n), Some(p)) => {
            let cluster = trace::load_nodes(n)?;
            let pods = trace::load_pods(p, &cluster)?;
            Ok(Input {
                cluster,
                pods,
                nodes_source: n.display().to_string(),
                pods_source: p.display().to_string(),
                label: format!("{} + {}", file_name(n), file_name(p)),
            })
        }
        (None, None) => {
            let (cluster, pods) = synth::default_input(DEFAULT_INPUT_SEED);
            let src = builtin_description();
            Ok(Input {
                cluster,
                pods,
                nodes_source: src.clone(),
                pods_source: src.clone(),
                label: src,
            })
        }
        (Some(_), None) => Err(InputError::Half {
            given: "nodes",
            missing: "pods",
        }),
        (None, Some(_)) => Err(InputError::Half {
            given: "pods",
            missing: "nodes",
        }),
    }
}

/// The last component of `p` (the whole path if it has none, e.g. `..`).
fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("mlplane-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_give_their_cluster_pods_and_a_label_of_file_names() {
        let d = tmp("files");
        let n = d.join("nodes.csv");
        let p = d.join("pods.csv");
        std::fs::write(
            &n,
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,T4\nn1,32000,131072,0,\n",
        )
        .unwrap();
        std::fs::write(
            &p,
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1000,1024,1,1000\nb,1000,1024,1,250\nc,500,512,0,0\n",
        )
        .unwrap();
        let input = load(Some(&n), Some(&p)).unwrap();
        assert_eq!(input.cluster.nodes().len(), 2);
        assert_eq!(input.cluster.gpu_count(), 2);
        assert_eq!(input.pods.len(), 3);
        assert_eq!(input.label, "nodes.csv + pods.csv");
        assert_eq!(input.nodes_source, n.display().to_string());
        let info = input.info();
        assert_eq!((info.nodes, info.gpus, info.pods), (2, 2, 3));
        assert_eq!(info.pods_source, p.display().to_string());
    }

    #[test]
    fn no_files_is_the_builtin_default() {
        let input = load(None, None).unwrap();
        assert_eq!(input.cluster.nodes().len(), synth::DEFAULT_NODES);
        assert_eq!(
            input.label,
            "built-in synthetic (400 nodes; generator seed 1)"
        );
        assert_eq!(input.nodes_source, input.label);
        // Pod ids are fresh per pod; the rest is the generator's output for the seed.
        let (cluster, pods) = synth::default_input(DEFAULT_INPUT_SEED);
        assert_eq!(input.cluster, cluster);
        let no_id = |p: &Pod| Pod {
            id: mlplane_model::PodId(0),
            ..p.clone()
        };
        assert_eq!(
            input.pods.iter().map(no_id).collect::<Vec<_>>(),
            pods.iter().map(no_id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_file_alone_and_a_missing_file_are_errors() {
        let e = load(Some(Path::new("n.csv")), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a node file and a pod file go together: nodes was given without pods"
        );
        let e = load(None, Some(Path::new("p.csv"))).unwrap_err();
        assert!(
            e.to_string().contains("pods was given without nodes"),
            "{e}"
        );
        let e = load(
            Some(Path::new("/nonexistent/n.csv")),
            Some(Path::new("p.csv")),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/n.csv: No such file"),
            "{e}"
        );
    }
}

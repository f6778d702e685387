//! The built-in default input: a synthetic cluster and workload generated
//! deterministically from a seed.
//!
//! The distributions are summary numbers derived from Alibaba's GPU-sharing trace v2023
//! (`openb_node_list_gpu_node.csv`, `openb_pod_list_default.csv`); the trace itself is
//! not embedded. Node shapes are the trace's 15 node shapes with their frequencies.
//! Pods are drawn in two steps: a request class (CPU-only 13.3%, GPU share 37.8%,
//! 1 GPU 48.0%, 2 GPUs 0.20%, 4 GPUs 0.18%, 8 GPUs 0.54%), then a shape within the
//! class from the class's most frequent `(cpu, memory, gpu_milli)` shapes, weighted by
//! their counts in the trace.

use mlplane_model::{Cluster, GpuModel, GpuModelId, GpuRequest, Node, Pod};
use rand::distributions::{Distribution, WeightedIndex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::trace::KNOWN_GPU_MEMORY_MIB;

/// Node shapes of the trace: `(count, cpu_milli, memory_mib, gpus, model)`; 1213 nodes.
pub const NODE_SHAPES: &[(u32, u64, u64, u8, &str)] = &[
    (549, 96000, 393216, 8, "G2"),
    (387, 104000, 524288, 2, "T4"),
    (107, 16000, 122880, 2, "P100"),
    (39, 128000, 786432, 8, "G3"),
    (28, 32000, 131072, 4, "V100M16"),
    (22, 64000, 262144, 2, "P100"),
    (21, 96000, 786432, 8, "V100M32"),
    (19, 8000, 32768, 1, "V100M16"),
    (17, 96000, 393216, 4, "T4"),
    (9, 48000, 376832, 4, "V100M32"),
    (7, 64000, 262144, 8, "V100M16"),
    (3, 8000, 61440, 1, "P100"),
    (2, 8000, 61440, 2, "P100"),
    (2, 128000, 1048576, 1, "A10"),
    (1, 82000, 344064, 8, "V100M16"),
];

/// Pod count per request class in the trace: `(num_gpu, is_share, count)`; 8152 pods.
pub const POD_CLASSES: &[(u8, bool, u32)] = &[
    (0, false, 1088),
    (1, true, 3078),
    (1, false, 3911),
    (2, false, 16),
    (4, false, 15),
    (8, false, 44),
];

/// The most frequent shapes per class: `(num_gpu, is_share, count, cpu_milli, memory_mib,
/// gpu_milli)`, covering 71-86% of each class's pods.
pub const POD_SHAPES: &[(u8, bool, u32, u64, u64, u16)] = &[
    (0, false, 364, 12500, 57344, 0),
    (0, false, 284, 32000, 49152, 0),
    (0, false, 163, 8000, 30517, 0),
    (0, false, 120, 15400, 51200, 0),
    (1, true, 1047, 3152, 5600, 810),
    (1, true, 388, 11908, 47104, 470),
    (1, true, 360, 8000, 30517, 470),
    (1, true, 237, 11908, 47104, 650),
    (1, true, 111, 4000, 22888, 320),
    (1, true, 84, 4000, 30517, 230),
    (1, true, 78, 4000, 15258, 320),
    (1, true, 75, 3152, 5600, 590),
    (1, false, 857, 11300, 49152, 1000),
    (1, false, 534, 11400, 48128, 1000),
    (1, false, 470, 3152, 5600, 1000),
    (1, false, 255, 18708, 64512, 1000),
    (1, false, 195, 9810, 41560, 1000),
    (1, false, 158, 12000, 24576, 1000),
    (1, false, 158, 15700, 58368, 1000),
    (1, false, 153, 11908, 47104, 1000),
    (2, false, 7, 16200, 66560, 1000),
    (2, false, 3, 6000, 65536, 1000),
    (2, false, 3, 30200, 160768, 1000),
    (4, false, 9, 32200, 132096, 1000),
    (4, false, 3, 32000, 131072, 1000),
    (8, false, 18, 88000, 327680, 1000),
    (8, false, 18, 64200, 263168, 1000),
];

/// Pods per node in the trace (8152 / 1213).
pub const PODS_PER_NODE: f64 = 8152.0 / 1213.0;

/// Nodes of the built-in default cluster.
pub const DEFAULT_NODES: usize = 400;

/// A synthetic cluster of `nodes` nodes whose shapes follow [`NODE_SHAPES`].
///
/// # Panics
/// If `nodes` is 0.
pub fn cluster(nodes: usize, seed: u64) -> Cluster {
    assert!(nodes > 0, "a synthetic cluster needs at least one node");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut models: Vec<GpuModel> = Vec::new();
    let mut ids = Vec::new();
    for (_, _, _, _, name) in NODE_SHAPES {
        let id = match models.iter().position(|m| m.name == *name) {
            Some(i) => i,
            None => {
                models.push(GpuModel {
                    name: name.to_string(),
                    memory_mib: KNOWN_GPU_MEMORY_MIB
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, m)| *m),
                });
                models.len() - 1
            }
        };
        ids.push(GpuModelId(id as u16));
    }
    let dist = WeightedIndex::new(NODE_SHAPES.iter().map(|s| s.0)).expect("positive weights");
    let nodes = (0..nodes)
        .map(|i| {
            let k = dist.sample(&mut rng);
            let (_, cpu, mem, gpus, _) = NODE_SHAPES[k];
            let gpu_mem = models[usize::from(ids[k].0)].memory_mib.unwrap_or(0);
            Node::new(format!("synth-node-{i:04}"), cpu, mem)
                .with_max_pods(crate::trace::TRACE_MAX_PODS)
                .with_gpus(ids[k], gpus, gpu_mem)
        })
        .collect();
    Cluster::new(models, nodes).expect("synthetic cluster is valid")
}

/// A synthetic workload of `pods` pods following [`POD_CLASSES`] and [`POD_SHAPES`].
pub fn workload(pods: usize, seed: u64) -> Vec<Pod> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_9075);
    let classes = WeightedIndex::new(POD_CLASSES.iter().map(|c| c.2)).expect("positive weights");
    let per_class: Vec<(Vec<usize>, WeightedIndex<u32>)> = POD_CLASSES
        .iter()
        .map(|&(n, share, _)| {
            let idx: Vec<usize> = (0..POD_SHAPES.len())
                .filter(|&i| POD_SHAPES[i].0 == n && POD_SHAPES[i].1 == share)
                .collect();
            let w = WeightedIndex::new(idx.iter().map(|&i| POD_SHAPES[i].2))
                .expect("each class has shapes");
            (idx, w)
        })
        .collect();
    (0..pods)
        .map(|i| {
            let c = classes.sample(&mut rng);
            let (idx, w) = &per_class[c];
            let (n, share, _, cpu, mem, milli) = POD_SHAPES[idx[w.sample(&mut rng)]];
            let gpu = match (n, share) {
                (0, _) => GpuRequest::None,
                (_, true) => GpuRequest::Milli(milli),
                (n, false) => GpuRequest::Whole(n),
            };
            Pod::new(format!("synth-pod-{i:05}"), cpu, mem, gpu)
        })
        .collect()
}

/// The built-in default: [`DEFAULT_NODES`] nodes and as many pods per node as the trace.
pub fn default_input(seed: u64) -> (Cluster, Vec<Pod>) {
    let c = cluster(DEFAULT_NODES, seed);
    let pods = (DEFAULT_NODES as f64 * PODS_PER_NODE).round() as usize;
    (c, workload(pods, seed))
}

/// `times` copies of `cluster`'s nodes (names suffixed `-rN`), for scaling studies.
///
/// # Panics
/// If `times` is 0.
pub fn replicate(cluster: &Cluster, times: usize) -> Cluster {
    assert!(times > 0, "replicate needs at least one copy");
    let nodes = (0..times)
        .flat_map(|r| {
            cluster.nodes().iter().map(move |n| Node {
                name: format!("{}-r{r}", n.name),
                ..n.clone()
            })
        })
        .collect();
    Cluster::new(cluster.models().to_vec(), nodes).expect("copies of a valid cluster are valid")
}

/// A `fraction` of `cluster`'s nodes, stratified by node shape (CPU, memory, GPU count
/// and model): from each shape, `round(fraction x count)` nodes drawn by `seed`, and at
/// least one node of each GPU model (of its most common shape), so that no pod loses
/// every model it may run on. Node names and order are kept.
///
/// # Panics
/// If `fraction` is not in `(0, 1]`.
pub fn subsample(cluster: &Cluster, fraction: f64, seed: u64) -> Cluster {
    use rand::seq::SliceRandom;
    use std::collections::BTreeMap;
    assert!(
        fraction > 0.0 && fraction <= 1.0,
        "fraction {fraction} outside (0, 1]"
    );
    let mut shapes: BTreeMap<(u64, u64, u8, Option<u16>), Vec<usize>> = BTreeMap::new();
    for (i, n) in cluster.nodes().iter().enumerate() {
        let key = (
            n.cpu_milli,
            n.memory_mib,
            n.gpu_count(),
            n.gpu_model().map(|m| m.0),
        );
        shapes.entry(key).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ab5_a3b1e);
    let mut keep = vec![false; cluster.nodes().len()];
    let mut models: BTreeMap<u16, (usize, usize)> = BTreeMap::new(); // model -> (kept, best shape size)
    let mut best: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (key, mut idx) in shapes {
        idx.shuffle(&mut rng);
        let k = (fraction * idx.len() as f64).round() as usize;
        for &i in &idx[..k] {
            keep[i] = true;
        }
        if let Some(m) = key.3 {
            let e = models.entry(m).or_insert((0, 0));
            e.0 += k;
            if idx.len() > e.1 {
                e.1 = idx.len();
                best.insert(m, idx.clone());
            }
        }
    }
    for (m, (kept, _)) in models {
        if kept == 0 {
            keep[best[&m][0]] = true;
        }
    }
    let nodes = cluster
        .nodes()
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(n, _)| n.clone())
        .collect();
    Cluster::new(cluster.models().to_vec(), nodes).expect("a subset of a valid cluster is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_keeps_shapes_in_proportion_and_every_model() {
        // 30 G2 nodes of one shape, 10 of another, 2 A10: a tenth keeps 3, 1 and 1
        // (0.2 rounds to 0, but the model must stay).
        let models = vec![
            GpuModel {
                name: "G2".into(),
                memory_mib: None,
            },
            GpuModel {
                name: "A10".into(),
                memory_mib: Some(22731),
            },
        ];
        let mut nodes = Vec::new();
        for i in 0..30 {
            nodes.push(Node::new(format!("a{i}"), 96000, 393216).with_gpus(
                GpuModelId(0),
                8,
                16384,
            ));
        }
        for i in 0..10 {
            nodes.push(Node::new(format!("b{i}"), 64000, 262144).with_gpus(
                GpuModelId(0),
                4,
                16384,
            ));
        }
        for i in 0..2 {
            nodes.push(Node::new(format!("c{i}"), 128000, 1048576).with_gpus(
                GpuModelId(1),
                1,
                22731,
            ));
        }
        let c = Cluster::new(models, nodes).unwrap();
        let s = subsample(&c, 0.1, 1);
        let count = |prefix: &str| {
            s.nodes()
                .iter()
                .filter(|n| n.name.starts_with(prefix))
                .count()
        };
        assert_eq!((count("a"), count("b"), count("c")), (3, 1, 1));
        assert_eq!(subsample(&c, 1.0, 1).nodes().len(), c.nodes().len());
        assert_eq!(subsample(&c, 0.1, 1), subsample(&c, 0.1, 1));
    }

    #[test]
    fn tables_match_the_trace_totals() {
        assert_eq!(NODE_SHAPES.iter().map(|s| s.0).sum::<u32>(), 1213);
        assert_eq!(
            NODE_SHAPES
                .iter()
                .map(|s| s.0 * u32::from(s.3))
                .sum::<u32>(),
            6212
        );
        assert_eq!(POD_CLASSES.iter().map(|c| c.2).sum::<u32>(), 8152);
    }

    #[test]
    fn replicate_multiplies_nodes_and_gpus() {
        let c = cluster(10, 3);
        let r = replicate(&c, 10);
        assert_eq!(r.nodes().len(), 100);
        assert_eq!(r.gpu_count(), 10 * c.gpu_count());
        assert_eq!(r.nodes()[10].name, format!("{}-r1", c.nodes()[0].name));
    }

    #[test]
    fn deterministic_for_a_seed() {
        // Pod ids are fresh per pod; everything else is a function of the seed.
        let input = |seed| {
            let (c, mut pods) = default_input(seed);
            pods.iter_mut().for_each(|p| p.id = mlplane_model::PodId(0));
            (c, pods)
        };
        assert_eq!(input(7), input(7));
        assert_ne!(input(7).1, input(8).1);
    }

    #[test]
    fn mix_is_close_to_the_trace() {
        let pods = workload(20_000, 1);
        let share = pods.iter().filter(|p| p.gpu.is_shared()).count() as f64 / 20_000.0;
        let cpu = pods.iter().filter(|p| p.gpu == GpuRequest::None).count() as f64 / 20_000.0;
        // 3078/8152 = 0.3776, 1088/8152 = 0.1335; 20k draws: std error ~0.0035.
        assert!((share - 0.3776).abs() < 0.015, "share {share}");
        assert!((cpu - 0.1335).abs() < 0.015, "cpu {cpu}");
    }
}

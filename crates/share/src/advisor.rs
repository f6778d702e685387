//! The MIG geometry advisor: given a node pool and a workload mix, proposes a
//! nvidia-mig-parted config that maximises the GPU memory the workload can be given.
//!
//! The anchors only apply a geometry an admin chose; choosing it is left to guesswork.
//! The advisor works from demand:
//! 1. each shared-GPU pod needs the smallest profile whose memory holds its memory
//!    share ([`smallest_profile`]), so the workload becomes a demand in instances per
//!    profile;
//! 2. GPU index by GPU index (index 0 exists on every node of the pool, index 7 only on
//!    8-GPU nodes), it picks the maximal geometry ([`crate::catalog::maximal_geometries`])
//!    that covers the most still-unmet demand in MiB, given how many nodes have that
//!    index (on a tie, the one that covers most on a single GPU, so that the pods need
//!    fewer GPUs, then the one that suits the workload's mix best); once demand is met,
//!    later indices repeat the geometry that suits the mix best.
//!
//! The estimate ignores CPU and node boundaries; the simulator then measures the
//! proposal against the all-disabled and all-`1g` geometries on the same workload
//! (`mlplane simulate --sharing`), which is where its value is shown.

use std::collections::BTreeMap;

use crate::catalog::{maximal_geometries, GpuSpec, MigProfile};

/// The smallest profile of `spec` (without media extensions) whose memory holds
/// `mib`, by memory and then compute slices; `None` if none does (only for more than
/// a whole GPU's memory).
pub fn smallest_profile(spec: &GpuSpec, mib: u64) -> Option<&MigProfile> {
    spec.mig_profiles
        .iter()
        .filter(|p| !p.name.ends_with("+me") && p.memory_mib >= mib)
        .min_by_key(|p| (p.memory_mib, p.compute_slices))
}

/// A proposed geometry: one mig-parted entry per GPU index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    /// Geometry (profile → instances) of GPU index `i` on every node of the pool.
    pub per_index: Vec<BTreeMap<String, u32>>,
    /// Memory the estimate expects to hand out, MiB.
    pub expected_mib: u64,
    /// Memory demanded, MiB (each pod counted at its profile's size).
    pub demanded_mib: u64,
}

impl Advice {
    /// The proposal as a nvidia-mig-parted config file (`version: v1`, one config
    /// named `name`, consecutive GPU indices with the same geometry merged).
    pub fn to_mig_parted(&self, name: &str) -> String {
        let mut out = format!("version: v1\nmig-configs:\n  {name}:\n");
        let mut i = 0;
        while i < self.per_index.len() {
            let mut j = i + 1;
            while j < self.per_index.len() && self.per_index[j] == self.per_index[i] {
                j += 1;
            }
            let devices: Vec<String> = (i..j).map(|k| k.to_string()).collect();
            out += &format!(
                "    - devices: [{}]\n      mig-enabled: true\n      mig-devices:\n",
                devices.join(", ")
            );
            for (p, c) in &self.per_index[i] {
                out += &format!("        \"{p}\": {c}\n");
            }
            i = j;
        }
        out
    }
}

/// A per-index choice: (nodes with that index, unmet demand per profile) → geometry.
type Chooser<'a> = dyn Fn(u64, &BTreeMap<String, u64>) -> BTreeMap<String, u32> + 'a;

/// Proposes a geometry for a pool whose nodes have `gpus_per_node` GPUs of `spec`,
/// for pods that each need `share_mib` of GPU memory (the shared-GPU pods; pods that
/// need whole GPUs belong in a pool with MIG disabled): the first of [`candidates`].
///
/// # Panics
/// If `spec` is not MIG-capable.
pub fn advise(spec: &GpuSpec, gpus_per_node: &[u8], share_mib: &[u64]) -> Advice {
    candidates(spec, gpus_per_node, share_mib)
        .into_iter()
        .next()
        .expect("at least one candidate")
}

/// Proposals, best estimate first: the greedy index-by-index choice with two
/// tie-breaks (first geometry in order; best fit to the workload's mix), and the three
/// maximal geometries that cover the most demand when every GPU gets the same one.
/// The estimate ignores node boundaries and the order pods arrive in, so callers with
/// a simulator should measure the candidates (`mlplane-sim`'s sharing study does).
///
/// # Panics
/// If `spec` is not MIG-capable.
pub fn candidates(spec: &GpuSpec, gpus_per_node: &[u8], share_mib: &[u64]) -> Vec<Advice> {
    assert!(spec.mig_capable(), "{} does not support MIG", spec.name);
    let geometries = maximal_geometries(spec);
    let mem = |name: &str| spec.profile(name).map_or(0, |p| p.memory_mib);
    let mut demand: BTreeMap<String, u64> = BTreeMap::new();
    for &m in share_mib {
        if let Some(p) = smallest_profile(spec, m) {
            *demand.entry(p.name.clone()).or_default() += 1;
        }
    }
    let demanded_mib = demand.iter().map(|(p, n)| n * mem(p)).sum();
    let covered = |g: &BTreeMap<String, u32>, left: &BTreeMap<String, u64>, w: u64| -> u64 {
        g.iter()
            .map(|(p, &n)| left.get(p).copied().unwrap_or(0).min(w * u64::from(n)) * mem(p))
            .sum()
    };
    // How well a geometry suits the mix as a whole: its instances weighted by the
    // demand's shares.
    let total: u64 = demand.values().sum::<u64>().max(1);
    let mix_score = |g: &BTreeMap<String, u32>| -> u64 {
        g.iter()
            .map(|(p, &n)| {
                let share = demand.get(p).copied().unwrap_or(0) * 1000 / total;
                share.min(1000) * u64::from(n) * mem(p)
            })
            .sum()
    };
    let mix_best = geometries
        .iter()
        .max_by_key(|g| (mix_score(g), std::cmp::Reverse((*g).clone())))
        .cloned()
        .unwrap_or_default();
    let max_gpus = gpus_per_node.iter().copied().max().unwrap_or(0);
    let weight = |i: u8| gpus_per_node.iter().filter(|&&c| c > i).count() as u64;
    // Applies a per-index choice rule; returns the advice and its estimate.
    let build = |choose: &Chooser| {
        let mut left = demand.clone();
        let mut per_index = Vec::new();
        let mut expected_mib = 0;
        for i in 0..max_gpus {
            let w = weight(i);
            let g = choose(w, &left);
            for (p, &n) in &g {
                if let Some(l) = left.get_mut(p) {
                    let used = (*l).min(w * u64::from(n));
                    expected_mib += used * mem(p);
                    *l -= used;
                }
            }
            per_index.push(g);
        }
        Advice {
            per_index,
            expected_mib,
            demanded_mib,
        }
    };
    let greedy = |prefer_mix: bool| {
        build(&|w, left| {
            // Most demand covered over the pool; on a tie, most covered on one GPU (so
            // the pods need fewer GPUs), then (if asked) the best fit to the mix, then
            // the first geometry in order.
            let best = geometries
                .iter()
                .map(|g| {
                    let mix = if prefer_mix { mix_score(g) } else { 0 };
                    ((covered(g, left, w), covered(g, left, 1), mix), g)
                })
                .max_by_key(|(c, g)| (*c, std::cmp::Reverse((*g).clone())));
            match best {
                Some(((c, _, _), g)) if c > 0 => g.clone(),
                _ => mix_best.clone(),
            }
        })
    };
    let mut out = vec![greedy(false), greedy(true)];
    let mut uniform: Vec<Advice> = geometries
        .iter()
        .map(|g| build(&|_, _| g.clone()))
        .collect();
    uniform.sort_by_key(|a| std::cmp::Reverse(a.expected_mib));
    out.extend(uniform.into_iter().take(3));
    // Best estimate first (stable: the greedy ones win ties), without repeats.
    out.sort_by_key(|a| std::cmp::Reverse(a.expected_mib));
    let mut unique: Vec<Advice> = Vec::new();
    for a in out {
        if !unique.iter().any(|u| u.per_index == a.per_index) {
            unique.push(a);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn smallest_profile_holds_the_share() {
        let c = Catalog::builtin();
        let h = c.get("H100-80GB").unwrap();
        // 0.47 of 80 GiB = 38502 MiB: 3g.40gb (40960), not 2g.20gb.
        assert_eq!(smallest_profile(h, 38_502).unwrap().name, "3g.40gb");
        assert_eq!(smallest_profile(h, 10_240).unwrap().name, "1g.10gb");
        assert_eq!(smallest_profile(h, 10_241).unwrap().name, "1g.20gb");
        assert_eq!(smallest_profile(h, 66_355).unwrap().name, "7g.80gb");
        assert!(smallest_profile(h, 90_000).is_none());
    }

    #[test]
    fn advice_follows_demand() {
        let c = Catalog::builtin();
        let h = c.get("H100-80GB").unwrap();
        // Ten 2-GPU nodes; 40 pods of 30 GiB (3g.40gb) and 20 of 8 GiB (1g.10gb).
        let mut shares = vec![30 * 1024; 40];
        shares.extend(vec![8 * 1024; 20]);
        let a = advise(h, &[2; 10], &shares);
        // GPU 0 on ten nodes: 3g.40gb x2 covers 20 of the 40 3g pods (800 GiB);
        // GPU 1: the other 20 the same way. The 1g pods are left out: 3g pods bring
        // more memory per GPU.
        assert_eq!(a.per_index.len(), 2);
        let two_3g: BTreeMap<String, u32> = [("3g.40gb".to_string(), 2)].into();
        assert_eq!(a.per_index[0], two_3g);
        assert_eq!(a.per_index[1], two_3g);
        assert_eq!(a.expected_mib, 40 * 40_960);
        assert_eq!(a.demanded_mib, 40 * 40_960 + 20 * 10_240);
        let yaml = a.to_mig_parted("advised");
        assert_eq!(
            yaml,
            "version: v1\nmig-configs:\n  advised:\n    - devices: [0, 1]\n      mig-enabled: true\n      mig-devices:\n        \"3g.40gb\": 2\n"
        );
        // Enough GPUs: the 1g pods get room on a later index.
        let a = advise(h, &[4; 10], &shares);
        assert_eq!(a.expected_mib, a.demanded_mib);
    }
}

//! The GPU catalogue: memory per model and, for MIG-capable models, the MIG profiles.
//!
//! Sources:
//! - MIG profiles, fractions of memory and compute, and the number of instances of each
//!   profile per GPU: NVIDIA's MIG user guide, "Supported MIG Profiles"
//!   (<https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html>).
//! - Allowed placements (the first memory slice an instance of a profile may start at,
//!   and how many slices it spans), as `nvidia-smi mig -lgipp` prints them: on A100,
//!   H100 and H200 a GPU has 8 memory slices and 7 compute slices; `1g` profiles with
//!   one memory slice start at 0..=6, profiles with two slices at 0, 2, 4 (and 6 for
//!   `1g`), four-slice profiles (`3g`, `4g`) at 0 and 4 (`4g` only at 0), `7g` at 0.
//!
//! Memory is the product's nominal capacity in MiB (GiB × 1024; `nvidia-smi` reports
//! a little less, for example 81559 MiB on an H100 80GB). A MIG instance's memory is
//! its fraction of the GPU's (1/8 per memory slice), and its compute in milli-GPU is
//! `1000 × compute slices / 7`, rounded down (7 slices = 1000).

use std::collections::BTreeMap;

/// Compute slices of a MIG-capable GPU (A100, H100, H200).
pub const COMPUTE_SLICES: u8 = 7;
/// Memory slices of a MIG-capable GPU (A100, H100, H200).
pub const MEMORY_SLICES: u8 = 8;

/// One MIG GPU-instance profile of a model, e.g. `1g.10gb` on an H100 80GB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigProfile {
    /// Profile name without the `MIG ` prefix, as mig-parted and the device plugin's
    /// resource names use it: `1g.10gb`, `1g.10gb+me`.
    pub name: String,
    /// Compute slices (the `Ng` of the name), out of [`COMPUTE_SLICES`].
    pub compute_slices: u8,
    /// Memory slices, out of [`MEMORY_SLICES`].
    pub memory_slices: u8,
    /// Memory of one instance in MiB.
    pub memory_mib: u64,
    /// Most instances of this profile on one GPU.
    pub max_count: u8,
    /// Memory slices an instance may start at.
    pub placements: Vec<u8>,
}

impl MigProfile {
    /// Compute of one instance in milli-GPU (`1000 × compute_slices / 7`, rounded down).
    pub fn compute_milli(&self) -> u32 {
        if self.compute_slices >= COMPUTE_SLICES {
            1000
        } else {
            1000 * u32::from(self.compute_slices) / u32::from(COMPUTE_SLICES)
        }
    }

    /// The extended resource the device plugin advertises for it under the `mixed`
    /// strategy: `nvidia.com/mig-1g.10gb`.
    pub fn resource(&self) -> String {
        format!("nvidia.com/mig-{}", self.name)
    }
}

/// A GPU model's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuSpec {
    /// Model name as node labels and the trace use it: `H100-80GB`, `T4`.
    pub name: String,
    /// Memory of one GPU in MiB.
    pub memory_mib: u64,
    /// MIG profiles; empty if the model is not MIG-capable.
    pub mig_profiles: Vec<MigProfile>,
}

impl GpuSpec {
    /// True if the model supports MIG.
    pub fn mig_capable(&self) -> bool {
        !self.mig_profiles.is_empty()
    }

    /// The profile named `name` (`1g.10gb`; a leading `MIG ` or `mig-` is accepted).
    pub fn profile(&self, name: &str) -> Option<&MigProfile> {
        let name = name
            .strip_prefix("MIG ")
            .or_else(|| name.strip_prefix("mig-"))
            .unwrap_or(name);
        self.mig_profiles.iter().find(|p| p.name == name)
    }
}

/// A set of GPU specs by name: the built-in facts plus any a configuration file adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    specs: BTreeMap<String, GpuSpec>,
}

/// Memory labels of a MIG-capable model's profiles, by memory slices (1, 2, 4, 8).
fn mig_profiles(gpu_memory_mib: u64, labels: [&str; 4]) -> Vec<MigProfile> {
    let label = |slices: u8| match slices {
        1 => labels[0],
        2 => labels[1],
        4 => labels[2],
        _ => labels[3],
    };
    // (compute slices, memory slices, max count, placements, media extensions)
    let table: [(u8, u8, u8, &[u8], bool); 7] = [
        (1, 1, 7, &[0, 1, 2, 3, 4, 5, 6], false),
        (1, 1, 1, &[0, 1, 2, 3, 4, 5, 6], true),
        (1, 2, 4, &[0, 2, 4, 6], false),
        (2, 2, 3, &[0, 2, 4], false),
        (3, 4, 2, &[0, 4], false),
        (4, 4, 1, &[0], false),
        (7, 8, 1, &[0], false),
    ];
    table
        .iter()
        .map(|&(g, m, max, placements, me)| MigProfile {
            name: format!("{g}g.{}{}", label(m), if me { "+me" } else { "" }),
            compute_slices: g,
            memory_slices: m,
            memory_mib: gpu_memory_mib * u64::from(m) / u64::from(MEMORY_SLICES),
            max_count: max,
            placements: placements.to_vec(),
        })
        .collect()
}

impl Catalog {
    /// The built-in catalogue:
    ///
    /// | model | memory | MIG |
    /// | --- | --- | --- |
    /// | `A100-40GB` | 40960 MiB | `1g.5gb`, `1g.5gb+me`, `1g.10gb`, `2g.10gb`, `3g.20gb`, `4g.20gb`, `7g.40gb` |
    /// | `A100-80GB` | 81920 MiB | `1g.10gb`, `1g.10gb+me`, `1g.20gb`, `2g.20gb`, `3g.40gb`, `4g.40gb`, `7g.80gb` |
    /// | `H100-80GB` | 81920 MiB | as A100-80GB |
    /// | `H200-141GB` | 144384 MiB | `1g.18gb`, `1g.18gb+me`, `1g.35gb`, `2g.35gb`, `3g.71gb`, `4g.71gb`, `7g.141gb` |
    /// | `A10` | 24576 MiB | no |
    /// | `T4` | 16384 MiB | no |
    /// | `P100` | 16384 MiB | no |
    /// | `V100M16` | 16384 MiB | no |
    /// | `V100M32` | 32768 MiB | no |
    ///
    /// The last five are the named models of Alibaba's GPU trace; its `G2` and `G3`
    /// are anonymised and must be described in a configuration file.
    pub fn builtin() -> Self {
        let mut specs = BTreeMap::new();
        let mut add = |name: &str, memory_mib: u64, mig: Option<[&str; 4]>| {
            specs.insert(
                name.to_string(),
                GpuSpec {
                    name: name.to_string(),
                    memory_mib,
                    mig_profiles: mig.map_or_else(Vec::new, |l| mig_profiles(memory_mib, l)),
                },
            );
        };
        add(
            "A100-40GB",
            40 * 1024,
            Some(["5gb", "10gb", "20gb", "40gb"]),
        );
        add(
            "A100-80GB",
            80 * 1024,
            Some(["10gb", "20gb", "40gb", "80gb"]),
        );
        add(
            "H100-80GB",
            80 * 1024,
            Some(["10gb", "20gb", "40gb", "80gb"]),
        );
        add(
            "H200-141GB",
            141 * 1024,
            Some(["18gb", "35gb", "71gb", "141gb"]),
        );
        add("A10", 24 * 1024, None);
        add("T4", 16 * 1024, None);
        add("P100", 16 * 1024, None);
        add("V100M16", 16 * 1024, None);
        add("V100M32", 32 * 1024, None);
        Catalog { specs }
    }

    /// The spec of `model`, if known.
    pub fn get(&self, model: &str) -> Option<&GpuSpec> {
        self.specs.get(model)
    }

    /// Adds or replaces a model (a configuration file's `models:` entry).
    pub fn insert(&mut self, spec: GpuSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// Model names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }
}

/// One placed MIG instance of a geometry: its profile (index into the model's
/// `mig_profiles`) and the first memory slice it occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MigInstance {
    /// Index of the profile in [`GpuSpec::mig_profiles`].
    pub profile: usize,
    /// First memory slice.
    pub start: u8,
}

/// Why a MIG geometry does not fit a GPU.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// The model has no MIG.
    #[error("{model} does not support MIG")]
    NotMigCapable {
        /// The model.
        model: String,
    },
    /// A profile the model lacks.
    #[error("{model} has no MIG profile {profile:?} (it has {known})")]
    UnknownProfile {
        /// The model.
        model: String,
        /// The name asked for.
        profile: String,
        /// The model's profiles, comma-separated.
        known: String,
    },
    /// More instances of a profile than one GPU allows.
    #[error("{model} allows at most {max} instance(s) of {profile}, {asked} asked")]
    TooMany {
        /// The model.
        model: String,
        /// The profile.
        profile: String,
        /// The limit.
        max: u8,
        /// The count asked.
        asked: u32,
    },
    /// The instances do not fit the GPU's memory slices and compute slices together.
    #[error("{model} cannot hold {geometry} on one GPU: the instances' placements overlap or need more than 7 compute slices")]
    DoesNotFit {
        /// The model.
        model: String,
        /// The geometry asked for, e.g. `3g.40gb x2, 2g.20gb x1`.
        geometry: String,
    },
}

/// Places a geometry (profile name → count, as mig-parted's `mig-devices` lists it)
/// on one GPU of `spec`: finds a start slice for every instance so that no two share
/// a memory slice and the compute slices add up to at most 7. Larger instances are
/// placed first; the search is exhaustive (a GPU holds at most 7 instances).
///
/// # Errors
/// [`GeometryError`] naming the model and what is wrong.
pub fn place_geometry(
    spec: &GpuSpec,
    devices: &BTreeMap<String, u32>,
) -> Result<Vec<MigInstance>, GeometryError> {
    if !spec.mig_capable() {
        return Err(GeometryError::NotMigCapable {
            model: spec.name.clone(),
        });
    }
    let mut wanted: Vec<usize> = Vec::new();
    for (name, &count) in devices {
        let Some(idx) = spec.mig_profiles.iter().position(|p| p.name == *name) else {
            return Err(GeometryError::UnknownProfile {
                model: spec.name.clone(),
                profile: name.clone(),
                known: spec
                    .mig_profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let p = &spec.mig_profiles[idx];
        if count > u32::from(p.max_count) {
            return Err(GeometryError::TooMany {
                model: spec.name.clone(),
                profile: name.clone(),
                max: p.max_count,
                asked: count,
            });
        }
        wanted.extend(std::iter::repeat_n(idx, count as usize));
    }
    let profiles = &spec.mig_profiles;
    wanted.sort_by_key(|&i| {
        (
            std::cmp::Reverse(profiles[i].memory_slices),
            std::cmp::Reverse(profiles[i].compute_slices),
            i,
        )
    });
    let compute: u32 = wanted
        .iter()
        .map(|&i| u32::from(profiles[i].compute_slices))
        .sum();
    // At most one instance with media extensions per GPU (the guide's "+me" rows).
    let media = wanted
        .iter()
        .filter(|&&i| profiles[i].name.ends_with("+me"))
        .count();
    let mut out = Vec::with_capacity(wanted.len());
    if compute <= u32::from(COMPUTE_SLICES) && media <= 1 && place(profiles, &wanted, 0, &mut out) {
        return Ok(out);
    }
    Err(GeometryError::DoesNotFit {
        model: spec.name.clone(),
        geometry: devices
            .iter()
            .map(|(n, c)| format!("{n} x{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Backtracking over start slices; `used` is the memory-slice bit set so far.
fn place(profiles: &[MigProfile], wanted: &[usize], used: u8, out: &mut Vec<MigInstance>) -> bool {
    let Some((&first, rest)) = wanted.split_first() else {
        return true;
    };
    let p = &profiles[first];
    for &start in &p.placements {
        let mask = (((1u16 << p.memory_slices) - 1) << start) as u8;
        if u16::from(start) + u16::from(p.memory_slices) > u16::from(MEMORY_SLICES)
            || used & mask != 0
        {
            continue;
        }
        out.push(MigInstance {
            profile: first,
            start,
        });
        if place(profiles, rest, used | mask, out) {
            return true;
        }
        out.pop();
    }
    false
}

/// Every geometry of `spec` that fills the GPU as far as it can go: sets of profiles
/// (without media extensions) that [`place_geometry`] accepts and to which no further
/// instance can be added. Used by the advisor; sorted for determinism.
pub fn maximal_geometries(spec: &GpuSpec) -> Vec<BTreeMap<String, u32>> {
    let plain: Vec<&MigProfile> = spec
        .mig_profiles
        .iter()
        .filter(|p| !p.name.ends_with("+me"))
        .collect();
    let mut found: Vec<BTreeMap<String, u32>> = Vec::new();
    let mut current: BTreeMap<String, u32> = BTreeMap::new();
    fn fits(spec: &GpuSpec, g: &BTreeMap<String, u32>) -> bool {
        place_geometry(spec, g).is_ok()
    }
    fn grow(
        spec: &GpuSpec,
        plain: &[&MigProfile],
        from: usize,
        current: &mut BTreeMap<String, u32>,
        found: &mut Vec<BTreeMap<String, u32>>,
    ) {
        for (i, p) in plain.iter().enumerate().skip(from) {
            *current.entry(p.name.clone()).or_default() += 1;
            if fits(spec, current) {
                grow(spec, plain, i, current, found);
            }
            let c = current.get_mut(&p.name).expect("just added");
            *c -= 1;
            if *c == 0 {
                current.remove(&p.name);
            }
        }
        let maximal = !current.is_empty()
            && plain.iter().all(|p| {
                let mut g = current.clone();
                *g.entry(p.name.clone()).or_default() += 1;
                !fits(spec, &g)
            });
        if maximal && !found.contains(current) {
            found.push(current.clone());
        }
    }
    grow(spec, &plain, 0, &mut current, &mut found);
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(items: &[(&str, u32)]) -> BTreeMap<String, u32> {
        items.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn profiles_follow_the_mig_user_guide() {
        let c = Catalog::builtin();
        let h100 = c.get("H100-80GB").unwrap();
        let names: Vec<&str> = h100.mig_profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "1g.10gb",
                "1g.10gb+me",
                "1g.20gb",
                "2g.20gb",
                "3g.40gb",
                "4g.40gb",
                "7g.80gb"
            ]
        );
        let p = h100.profile("3g.40gb").unwrap();
        // 4 of 8 memory slices of 81920 MiB; 3 of 7 compute slices.
        assert_eq!(
            (p.memory_mib, p.compute_milli(), p.max_count),
            (40960, 428, 2)
        );
        assert_eq!(p.placements, [0, 4]);
        assert_eq!(p.resource(), "nvidia.com/mig-3g.40gb");
        let a40 = c.get("A100-40GB").unwrap();
        assert_eq!(a40.profile("MIG 1g.5gb").unwrap().memory_mib, 5120);
        assert_eq!(a40.profile("mig-7g.40gb").unwrap().compute_milli(), 1000);
        let h200 = c.get("H200-141GB").unwrap();
        assert_eq!(h200.profile("1g.18gb").unwrap().max_count, 7);
        assert_eq!(h200.profile("1g.35gb").unwrap().memory_mib, 144384 / 4);
        assert!(!c.get("T4").unwrap().mig_capable());
        assert!(c.get("G2").is_none());
    }

    #[test]
    fn geometries_place_as_nvidia_smi_would() {
        let c = Catalog::builtin();
        let h = c.get("H100-80GB").unwrap();
        // 7 x 1g.10gb: slices 0..=6.
        let g = place_geometry(h, &geo(&[("1g.10gb", 7)])).unwrap();
        let starts: Vec<u8> = g.iter().map(|i| i.start).collect();
        assert_eq!(starts, [0, 1, 2, 3, 4, 5, 6]);
        // 4g.40gb at 0 and 3g.40gb at 4: 7 compute slices.
        let g = place_geometry(h, &geo(&[("3g.40gb", 1), ("4g.40gb", 1)])).unwrap();
        assert_eq!(g.len(), 2);
        // 3g + 2g + 1g.10gb x2 (the guide's "balanced"-like mix): 4 + 2 + 1 + 1 slices.
        assert!(place_geometry(h, &geo(&[("3g.40gb", 1), ("2g.20gb", 1), ("1g.10gb", 2)])).is_ok());
        // Two 4g need 8 compute slices and both want slice 0.
        assert!(matches!(
            place_geometry(h, &geo(&[("4g.40gb", 2)])),
            Err(GeometryError::TooMany {
                max: 1,
                asked: 2,
                ..
            })
        ));
        // 3g.40gb x2 fills all 8 memory slices: no room for a 1g.
        assert!(matches!(
            place_geometry(h, &geo(&[("3g.40gb", 2), ("1g.10gb", 1)])),
            Err(GeometryError::DoesNotFit { .. })
        ));
        // 1g.20gb x4 uses all memory slices with 4 compute slices.
        assert!(place_geometry(h, &geo(&[("1g.20gb", 4)])).is_ok());
        assert!(place_geometry(h, &geo(&[("1g.20gb", 4), ("1g.10gb", 1)])).is_err());
        assert!(matches!(
            place_geometry(h, &geo(&[("1g.5gb", 1)])),
            Err(GeometryError::UnknownProfile { .. })
        ));
        assert!(matches!(
            place_geometry(c.get("T4").unwrap(), &geo(&[("1g.5gb", 1)])),
            Err(GeometryError::NotMigCapable { .. })
        ));
    }

    #[test]
    fn maximal_geometries_are_full() {
        let c = Catalog::builtin();
        let h = c.get("H100-80GB").unwrap();
        let all = maximal_geometries(h);
        assert!(all.contains(&geo(&[("1g.10gb", 7)])));
        assert!(all.contains(&geo(&[("7g.80gb", 1)])));
        assert!(all.contains(&geo(&[("3g.40gb", 2)])));
        assert!(all.contains(&geo(&[("3g.40gb", 1), ("4g.40gb", 1)])));
        // Not maximal: one 3g.40gb leaves room for another.
        assert!(!all.contains(&geo(&[("3g.40gb", 1)])));
        for g in &all {
            assert!(place_geometry(h, g).is_ok(), "{g:?}");
        }
    }
}

//! What a sharing study runs, checked before it runs: the list of modes, the GPU
//! model against the modes (MIG), and one's own sharing configuration file.

use std::path::Path;

use mlplane_share::catalog::{Catalog, GpuSpec};
use mlplane_share::config::SharingConfig;

use super::{SharingMode, StudyError, StudyOptions};
use crate::select::split_list;

impl SharingMode {
    /// Whether the mode needs a GPU model with MIG (`mig`, `mig-1g`, `mig-disabled`:
    /// the MIG layout, whatever its geometry).
    pub fn needs_mig(self) -> bool {
        matches!(
            self,
            SharingMode::Mig | SharingMode::MigAll1g | SharingMode::MigDisabled
        )
    }
}

/// The modes' names joined by `sep`.
fn names(modes: &[SharingMode], sep: &str) -> String {
    modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(sep)
}

/// Parses `all` or a comma-separated list of mode names; repeats are dropped, the
/// order is kept. `all` is [`SharingMode::ALL`], then `config` when `custom` (a
/// sharing configuration was given).
///
/// # Errors
/// [`StudyError`] for an unknown name, an empty item, or `config` without `custom`.
pub fn parse_modes(list: &str, custom: bool) -> Result<Vec<SharingMode>, StudyError> {
    let mut modes = Vec::new();
    if list.trim().eq_ignore_ascii_case("all") {
        modes.extend(SharingMode::ALL);
        if custom {
            modes.push(SharingMode::Custom);
        }
        return Ok(modes);
    }
    for name in split_list(list).map_err(|e| StudyError(e.0))? {
        let m = SharingMode::parse(name).ok_or_else(|| {
            StudyError(format!(
                "unknown mode {name:?} (known: {}, config)",
                SharingMode::ALL.map(SharingMode::name).join(", ")
            ))
        })?;
        if m == SharingMode::Custom && !custom {
            return Err(StudyError(
                "mode config needs a sharing configuration file (--sharing-config FILE)".into(),
            ));
        }
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    Ok(modes)
}

/// The built-in catalogue's entry for `model`.
///
/// # Errors
/// [`StudyError`] naming `--gpu-model` and the known models.
pub fn gpu_spec(model: &str) -> Result<GpuSpec, StudyError> {
    let catalog = Catalog::builtin();
    catalog.get(model).cloned().ok_or_else(|| {
        StudyError(format!(
            "--gpu-model {model}: not in the catalogue (known: {})",
            catalog.names().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Checks, before anything runs, what [`super::Study::new`] and the runs would refuse:
/// a GPU model the catalogue lacks, `replicas` below 2, a MIG mode on a model without
/// MIG, mode `config` without a configuration.
///
/// # Errors
/// [`StudyError`] saying what to change.
pub fn check_modes(modes: &[SharingMode], options: &StudyOptions) -> Result<(), StudyError> {
    let spec = gpu_spec(&options.model)?;
    if options.replicas < 2 {
        return Err(StudyError(format!(
            "--replicas must be at least 2, got {}",
            options.replicas
        )));
    }
    let mig: Vec<SharingMode> = modes.iter().copied().filter(|m| m.needs_mig()).collect();
    if !mig.is_empty() && !spec.mig_capable() {
        let rest: Vec<SharingMode> = modes.iter().copied().filter(|m| !m.needs_mig()).collect();
        let rest = if rest.is_empty() {
            names(
                &SharingMode::ALL
                    .into_iter()
                    .filter(|m| !m.needs_mig())
                    .collect::<Vec<_>>(),
                ",",
            )
        } else {
            names(&rest, ",")
        };
        let catalog = Catalog::builtin();
        let capable: Vec<&str> = catalog
            .names()
            .filter(|n| catalog.get(n).is_some_and(GpuSpec::mig_capable))
            .collect();
        return Err(StudyError(format!(
            "--gpu-model {} does not support MIG, which mode{} {} need{}: list the modes without {} (--sharing {rest}) or choose a model with MIG ({})",
            spec.name,
            if mig.len() == 1 { "" } else { "s" },
            names(&mig, ", "),
            if mig.len() == 1 { "s" } else { "" },
            if mig.len() == 1 { "it" } else { "them" },
            capable.join(", ")
        )));
    }
    if modes.contains(&SharingMode::Custom) && options.custom.is_none() {
        return Err(StudyError(
            "mode config needs a sharing configuration file (--sharing-config FILE)".into(),
        ));
    }
    Ok(())
}

/// Reads and parses a sharing configuration file (see
/// [`mlplane_share::config`]). A file that configures nothing (empty, only comments,
/// or without `nodeGroups`) is refused: every node would keep whole GPUs, which is
/// mode `whole`.
///
/// # Errors
/// [`StudyError`] naming the file (and, for a YAML error, the line and column).
pub fn load_config(path: &Path) -> Result<SharingConfig, StudyError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| StudyError(format!("reading {file}: {e}")))?;
    parse_config(&text, &file)
}

/// [`load_config`] of a text already read; `file` names it in errors.
///
/// # Errors
/// As [`load_config`].
pub fn parse_config(text: &str, file: &str) -> Result<SharingConfig, StudyError> {
    let blank = text
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---");
    if blank {
        return Err(StudyError(format!(
            "{file}: the sharing configuration is empty; it needs at least one entry under nodeGroups (see docs/sharing.md)"
        )));
    }
    let cfg = SharingConfig::parse(text, file).map_err(|e| StudyError(e.to_string()))?;
    if cfg.node_groups.is_empty() {
        return Err(StudyError(format!(
            "{file}: no nodeGroups: the configuration shares no GPU (every node keeps whole GPUs, as mode whole); add at least one node group"
        )));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_name_or_all() {
        assert_eq!(
            parse_modes("all", false).unwrap(),
            SharingMode::ALL.to_vec()
        );
        let mut with = SharingMode::ALL.to_vec();
        with.push(SharingMode::Custom);
        assert_eq!(parse_modes("ALL", true).unwrap(), with);
        assert_eq!(
            parse_modes(" mig , Whole,mig", false).unwrap(),
            [SharingMode::Mig, SharingMode::Whole]
        );
        assert_eq!(
            parse_modes("whole,config", true).unwrap(),
            [SharingMode::Whole, SharingMode::Custom]
        );
        assert_eq!(
            parse_modes("whole,bogus", false).unwrap_err().0,
            "unknown mode \"bogus\" (known: whole, timeslicing, mig, mixed, mig-1g, mig-disabled, config)"
        );
        assert_eq!(
            parse_modes("whole,config", false).unwrap_err().0,
            "mode config needs a sharing configuration file (--sharing-config FILE)"
        );
        assert_eq!(
            parse_modes("whole,,mig", false).unwrap_err().0,
            "item 2 of \"whole,,mig\" is empty (a stray comma?)"
        );
        assert!(parse_modes(",", false).is_err());
    }

    #[test]
    fn mig_modes_on_a_model_without_mig_fail_naming_them_and_the_rest() {
        let t4 = StudyOptions {
            model: "T4".into(),
            ..StudyOptions::default()
        };
        let e = check_modes(&SharingMode::ALL, &t4).unwrap_err().0;
        assert_eq!(
            e,
            "--gpu-model T4 does not support MIG, which modes mig, mig-1g, mig-disabled need: list the modes without them (--sharing whole,timeslicing,mixed) or choose a model with MIG (A100-40GB, A100-80GB, H100-80GB, H200-141GB)"
        );
        let e = check_modes(&[SharingMode::Mig], &t4).unwrap_err().0;
        assert!(
            e.starts_with("--gpu-model T4 does not support MIG, which mode mig needs: list the modes without it (--sharing whole,timeslicing,mixed)"),
            "{e}"
        );
        check_modes(&[SharingMode::Whole, SharingMode::TimeSlicing], &t4).unwrap();
        check_modes(&SharingMode::ALL, &StudyOptions::default()).unwrap();
    }

    #[test]
    fn other_options_are_checked_too() {
        let e = check_modes(
            &[SharingMode::Whole],
            &StudyOptions {
                model: "X9".into(),
                ..StudyOptions::default()
            },
        )
        .unwrap_err()
        .0;
        assert!(
            e.starts_with("--gpu-model X9: not in the catalogue (known: "),
            "{e}"
        );
        let e = check_modes(
            &[SharingMode::Whole],
            &StudyOptions {
                replicas: 1,
                ..StudyOptions::default()
            },
        )
        .unwrap_err()
        .0;
        assert_eq!(e, "--replicas must be at least 2, got 1");
        let e = check_modes(&[SharingMode::Custom], &StudyOptions::default())
            .unwrap_err()
            .0;
        assert!(e.starts_with("mode config needs"), "{e}");
    }

    #[test]
    fn a_configuration_that_configures_nothing_is_refused_naming_the_file() {
        for text in ["", "\n  \n", "# only a comment\n# and another\n", "---\n"] {
            assert_eq!(
                parse_config(text, "s.yaml").unwrap_err().0,
                "s.yaml: the sharing configuration is empty; it needs at least one entry under nodeGroups (see docs/sharing.md)",
                "{text:?}"
            );
        }
        for text in ["{}\n", "version: v1\n", "nodeGroups: []\n"] {
            let e = parse_config(text, "s.yaml").unwrap_err().0;
            assert!(e.starts_with("s.yaml: no nodeGroups: "), "{text:?}: {e}");
        }
        let cfg = parse_config("nodeGroups:\n  - name: whole\n", "s.yaml").unwrap();
        assert_eq!(cfg.node_groups.len(), 1);
        assert_eq!(cfg.node_groups[0].name, "whole");
    }

    #[test]
    fn a_missing_file_and_a_yaml_error_name_the_file() {
        let e = load_config(Path::new("/nonexistent/s.yaml")).unwrap_err().0;
        assert!(e.starts_with("reading /nonexistent/s.yaml: "), "{e}");
        let e = parse_config("nodeGroups:\n  - name: a\n   models: [T4]\n", "s.yaml")
            .unwrap_err()
            .0;
        assert!(e.starts_with("s.yaml:3:"), "{e}");
    }
}

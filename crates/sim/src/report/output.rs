//! The output of a run: the JSON shapes printed with `--json`, the output folder
//! (checked before a run, then written atomically), and the plots' titles.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    csv, plot_sharing_svg, plot_svg, rows, sharing_csv, write_atomic, ReportError, ResultRow,
    Summary,
};
use crate::sharing::StudyRow;
use crate::sweep::Sweep;

/// The files [`write_simulate`] writes.
pub const SIMULATE_FILES: [&str; 3] = ["results.csv", "summary.json", "allocation.svg"];

/// The files [`write_sharing`] writes.
pub const SHARING_FILES: [&str; 3] = ["sharing.csv", "sharing.json", "sharing.svg"];

/// `simulate --json`: every point, then the summary.
#[derive(Clone, Debug, Serialize)]
pub struct SimulateJson<'a> {
    /// A row per policy, seed and integer arrival percentage.
    pub results: Vec<ResultRow>,
    /// The summary (as `summary.json`).
    pub summary: &'a Summary,
}

impl<'a> SimulateJson<'a> {
    /// The JSON of `sweep` and its summary.
    pub fn new(sweep: &Sweep, summary: &'a Summary) -> Self {
        SimulateJson {
            results: rows(sweep),
            summary,
        }
    }

    /// One line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        to_line(self)
    }
}

/// `simulate --sharing ... --json`: every mode and seed, then the means per mode.
#[derive(Clone, Debug, Serialize)]
pub struct SharingJson<'a> {
    /// A row per mode and seed.
    pub results: &'a [StudyRow],
    /// A row per mode, the mean over seeds (as `sharing.json`).
    pub means: &'a [StudyRow],
}

impl SharingJson<'_> {
    /// One line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        to_line(self)
    }
}

pub(super) fn to_line<T: Serialize>(v: &T) -> String {
    // Plain structs of strings and numbers: serialising cannot fail.
    let mut s = serde_json::to_string(v).expect("report rows serialise");
    s.push('\n');
    s
}

/// Makes sure the report files can be written into `dir`, before anything runs: `dir`
/// is created if missing, must be a folder, must accept a new file (a probe file is
/// created and removed), and none of `files` in it may be a folder.
///
/// # Errors
/// [`ReportError`] naming the path and the cause.
pub fn prepare_dir(dir: &Path, files: &[&str]) -> Result<(), ReportError> {
    let fail = |path: &Path, message: String| ReportError {
        path: path.to_path_buf(),
        message,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(fail(
            dir,
            "exists and is not a folder; the reports need a folder".into(),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(dir, format!("cannot create the folder: {e}")))?;
    for f in files {
        let p = dir.join(f);
        if p.is_dir() {
            return Err(fail(
                &p,
                "is a folder; the report file cannot replace it".into(),
            ));
        }
    }
    let probe = dir.join(format!(".mlplane-probe.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| fail(dir, format!("cannot write into the folder: {e}")))?;
    std::fs::remove_file(&probe)
        .map_err(|e| fail(&probe, format!("cannot remove the probe file: {e}")))?;
    Ok(())
}

/// Writes [`SIMULATE_FILES`] into `dir` (created if missing), each atomically; returns
/// their paths.
///
/// # Errors
/// [`ReportError`] naming the file that could not be written.
pub fn write_simulate(
    dir: &Path,
    sweep: &Sweep,
    summary: &Summary,
    title: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    let svg = plot_svg(sweep, title).map_err(|message| ReportError {
        path: dir.join(SIMULATE_FILES[2]),
        message,
    })?;
    let json = serde_json::to_vec_pretty(summary).expect("the summary serialises");
    write_all(
        dir,
        &SIMULATE_FILES,
        [csv(sweep).into_bytes(), json, svg.into_bytes()],
    )
}

/// Writes [`SHARING_FILES`] into `dir` (created if missing), each atomically: the CSV
/// of `rows`, the JSON of `means` and their plot; returns their paths.
///
/// # Errors
/// [`ReportError`] naming the file that could not be written.
pub fn write_sharing(
    dir: &Path,
    rows: &[StudyRow],
    means: &[StudyRow],
    title: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    let svg = plot_sharing_svg(means, title).map_err(|message| ReportError {
        path: dir.join(SHARING_FILES[2]),
        message,
    })?;
    let json = serde_json::to_vec_pretty(means).expect("study rows serialise");
    write_all(
        dir,
        &SHARING_FILES,
        [sharing_csv(rows).into_bytes(), json, svg.into_bytes()],
    )
}

fn write_all(
    dir: &Path,
    names: &[&str; 3],
    contents: [Vec<u8>; 3],
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError {
        path: dir.to_path_buf(),
        message: format!("cannot create the folder: {e}"),
    })?;
    let mut out = Vec::new();
    for (name, bytes) in names.iter().zip(contents) {
        let p = dir.join(name);
        write_atomic(&p, &bytes)?;
        out.push(p);
    }
    Ok(out)
}

fn seeds_text(seeds: usize) -> String {
    format!("{seeds} seed{}", if seeds == 1 { "" } else { "s" })
}

/// The allocation plot's title: a heading with the number of seeds, and the input's
/// label on a second line.
pub fn simulate_title(seeds: usize, label: &str) -> String {
    format!(
        "GPU allocation vs arrived demand ({})\n{label}",
        seeds_text(seeds)
    )
}

/// The sharing study's heading, one line (printed above its table).
pub fn sharing_heading(label: &str, model: &str, seeds: usize) -> String {
    format!(
        "GPU sharing study: {label} ({model}, {})",
        seeds_text(seeds)
    )
}

/// The sharing plot's title: a heading with the GPU model and seeds, and the input's
/// label on a second line.
pub fn sharing_title(label: &str, model: &str, seeds: usize) -> String {
    format!(
        "GPU sharing study ({model}, {})\n{label}",
        seeds_text(seeds)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mlplane-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn prepare_dir_creates_the_folder_and_leaves_nothing_in_it() {
        let d = tmp("create").join("a/b");
        prepare_dir(&d, &SIMULATE_FILES).unwrap();
        assert!(d.is_dir());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "probe removed");
        // An existing folder with old reports is fine.
        std::fs::write(d.join("results.csv"), "old").unwrap();
        prepare_dir(&d, &SIMULATE_FILES).unwrap();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn prepare_dir_refuses_a_file_an_uncreatable_path_and_a_folder_in_the_way() {
        let d = tmp("refuse");
        let f = d.join("file");
        std::fs::write(&f, "x").unwrap();
        let e = prepare_dir(&f, &SIMULATE_FILES).unwrap_err();
        assert_eq!(e.path, f);
        assert_eq!(
            e.message,
            "exists and is not a folder; the reports need a folder"
        );
        let e = prepare_dir(&f.join("sub"), &SIMULATE_FILES).unwrap_err();
        assert!(e.message.starts_with("cannot create the folder: "), "{e}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x", "untouched");
        std::fs::create_dir_all(d.join("out/summary.json")).unwrap();
        let e = prepare_dir(&d.join("out"), &SIMULATE_FILES).unwrap_err();
        assert_eq!(e.path, d.join("out/summary.json"));
        assert_eq!(e.message, "is a folder; the report file cannot replace it");
        // /proc refuses new folders whoever runs the test.
        if Path::new("/proc/self").exists() {
            let e = prepare_dir(Path::new("/proc/nope"), &SIMULATE_FILES).unwrap_err();
            assert_eq!(e.path, Path::new("/proc/nope"));
            assert!(e.message.starts_with("cannot create the folder: "), "{e}");
        }
    }

    #[test]
    fn titles_put_the_input_on_a_second_line() {
        assert_eq!(
            simulate_title(10, "n.csv + p.csv"),
            "GPU allocation vs arrived demand (10 seeds)\nn.csv + p.csv"
        );
        assert_eq!(
            simulate_title(1, "x"),
            "GPU allocation vs arrived demand (1 seed)\nx"
        );
        assert_eq!(
            sharing_heading("n.csv + p.csv", "H100-80GB", 3),
            "GPU sharing study: n.csv + p.csv (H100-80GB, 3 seeds)"
        );
        assert_eq!(
            sharing_title("n.csv + p.csv", "T4", 1),
            "GPU sharing study (T4, 1 seed)\nn.csv + p.csv"
        );
    }

    #[test]
    fn sharing_json_has_results_then_means() {
        let row = StudyRow {
            mode: "whole".into(),
            policy: "fgd".into(),
            seed: 1,
            pods: 4,
            placed: 3,
            refused: 1,
            refused_sharing: 0,
            occupied_gpus: 2,
            total_gpus: 6,
            reserved_pct: 33.33,
            used_pct: 25.0,
            used_of_occupied_pct: 75.0,
            gpus_needed: Some(3),
            refused_at_double: Some(0),
        };
        let line = SharingJson {
            results: std::slice::from_ref(&row),
            means: &[],
        }
        .to_line();
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["results"][0]["placed"], 3);
        assert_eq!(v["results"][0]["gpus_needed"], 3);
        assert_eq!(v["means"].as_array().unwrap().len(), 0);
    }
}

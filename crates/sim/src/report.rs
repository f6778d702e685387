//! Reports of a sweep: a terminal table, a CSV of every point, a JSON summary, and an
//! SVG plot of allocation ratio against arrived demand. This module owns those formats.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use crate::sweep::Sweep;

mod output;
mod replay;
mod title;

pub use output::{
    prepare_dir, sharing_heading, sharing_title, simulate_title, write_sharing, write_simulate,
    SharingJson, SimulateJson, SHARING_FILES, SIMULATE_FILES,
};
pub use replay::{
    plot_allocation_svg, plot_delay_cdf_svg, plot_shares_svg, replay_csv, replay_table, run_label,
    timeline_csv, write_replay, ReplayJson, REPLAY_FILES,
};

/// Arrival percentages shown in the terminal table (those above the maximum are left out).
pub const TABLE_COLUMNS: &[u32] = &[50, 80, 90, 100, 110, 120, 130];

/// An error writing a report file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// One row of the CSV and of `--json`'s `results`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ResultRow {
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Arrived GPU demand, percent of capacity.
    pub arrival_pct: u32,
    /// Allocated GPUs, percent of capacity.
    pub allocation_pct: f64,
    /// Unallocated GPUs.
    pub unallocated_gpus: f64,
}

/// Every point of every run.
pub fn rows(sweep: &Sweep) -> Vec<ResultRow> {
    sweep
        .runs
        .iter()
        .flat_map(|r| {
            r.points.iter().map(move |p| ResultRow {
                policy: r.policy.name().to_string(),
                seed: r.seed,
                arrival_pct: p.arrival_pct,
                allocation_pct: round2(p.allocation_pct),
                unallocated_gpus: round2(p.unallocated_gpus),
            })
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-policy summary for the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct PolicySummary {
    /// Policy name.
    pub policy: String,
    /// Mean allocation percentage at each table column.
    pub allocation_pct: std::collections::BTreeMap<u32, f64>,
    /// Standard deviation over seeds at each table column.
    pub allocation_std: std::collections::BTreeMap<u32, f64>,
    /// Mean unallocated GPUs at each table column.
    pub unallocated_gpus: std::collections::BTreeMap<u32, f64>,
    /// Mean pods that could not be placed.
    pub failed_pods: f64,
}

/// Description of the input, for the JSON summary.
#[derive(Clone, Debug, Serialize)]
pub struct InputInfo {
    /// Where the cluster came from (a path or `built-in`).
    pub nodes_source: String,
    /// Where the workload came from.
    pub pods_source: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of GPUs.
    pub gpus: u64,
    /// Number of pods in the workload (before inflation).
    pub pods: usize,
}

/// The JSON summary of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The input.
    pub input: InputInfo,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Maximum arrival percentage.
    pub max_arrival_pct: u32,
    /// One entry per policy.
    pub policies: Vec<PolicySummary>,
}

/// Builds the summary of a sweep.
pub fn summary(sweep: &Sweep, input: InputInfo) -> Summary {
    let cols = columns(sweep.max_arrival_pct);
    let policies = sweep
        .policies()
        .into_iter()
        .map(|p| {
            let stats = sweep.stats(p);
            let pick = |f: &dyn Fn(&crate::sweep::Stat) -> f64| {
                cols.iter()
                    .map(|&c| (c, round2(f(&stats[c as usize - 1]))))
                    .collect()
            };
            PolicySummary {
                policy: p.name().to_string(),
                allocation_pct: pick(&|s| s.allocation_mean),
                allocation_std: pick(&|s| s.allocation_std),
                unallocated_gpus: pick(&|s| s.unallocated_mean),
                failed_pods: round2(sweep.failed_mean(p)),
            }
        })
        .collect();
    Summary {
        input,
        seeds: sweep.seeds(),
        max_arrival_pct: sweep.max_arrival_pct,
        policies,
    }
}

fn columns(max: u32) -> Vec<u32> {
    let mut c: Vec<u32> = TABLE_COLUMNS
        .iter()
        .copied()
        .filter(|&c| c <= max)
        .collect();
    if !c.contains(&max) {
        c.push(max);
    }
    c
}

/// The terminal table: one row per policy, the mean allocation percentage at each
/// column of [`TABLE_COLUMNS`] (and the maximum), then mean failed pods.
pub fn table(sweep: &Sweep) -> String {
    let cols = columns(sweep.max_arrival_pct);
    let mut s = String::new();
    let _ = write!(s, "{:<16}", "policy \\ arrival");
    for c in &cols {
        let _ = write!(s, "{:>8}", format!("{c}%"));
    }
    let _ = writeln!(s, "{:>10}", "failed");
    for p in sweep.policies() {
        let stats = sweep.stats(p);
        let _ = write!(s, "{:<16}", p.name());
        for &c in &cols {
            let _ = write!(s, "{:>8.2}", stats[c as usize - 1].allocation_mean);
        }
        let _ = writeln!(s, "{:>10.1}", sweep.failed_mean(p));
    }
    s
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename.
///
/// # Errors
/// [`ReportError`] naming the file if writing or renaming fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |e: std::io::Error| ReportError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| ReportError {
        path: path.to_path_buf(),
        message: "not a file path".into(),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// The CSV of every point: `policy,seed,arrival_pct,allocation_pct,unallocated_gpus`.
pub fn csv(sweep: &Sweep) -> String {
    let mut s = String::from("policy,seed,arrival_pct,allocation_pct,unallocated_gpus\n");
    for r in rows(sweep) {
        let _ = writeln!(
            s,
            "{},{},{},{:.2},{:.2}",
            r.policy, r.seed, r.arrival_pct, r.allocation_pct, r.unallocated_gpus
        );
    }
    s
}

/// Line colours (Tableau 10), one per policy in order.
const PALETTE: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

/// An SVG plot of mean allocation ratio against arrived GPU demand, one curve per
/// policy, with the `allocation = arrival` line for reference. The title's lines
/// (`\n` separates them) are shrunk or wrapped to fit the plot's width.
///
/// # Errors
/// A message if plotting fails (it draws into memory, so only on a plotting bug).
pub fn plot_svg(sweep: &Sweep, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max = sweep.max_arrival_pct as f64;
        let policies = sweep.policies();
        let all: Vec<Vec<(f64, f64)>> = policies
            .iter()
            .map(|&p| {
                sweep
                    .stats(p)
                    .iter()
                    .map(|s| (f64::from(s.arrival_pct), s.allocation_mean))
                    .collect()
            })
            .collect();
        let ymax = all
            .iter()
            .flatten()
            .map(|p| p.1)
            .fold(0.0, f64::max)
            .max(10.0);
        let xmin = (max * 0.5).floor();
        let ymin = all
            .iter()
            .flatten()
            .filter(|p| p.0 >= xmin)
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min)
            .min(xmin);
        let (y0, y1) = ((ymin - 1.0).floor(), (ymax + 1.0).ceil());
        let area = title::draw(&root, title, 22.0, 16.0)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .margin_top(5)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(xmin..max, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("arrived GPU demand (% of cluster GPUs)")
            .y_desc("GPU allocation ratio (%)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(xmin.max(y0), xmin.max(y0)), (max.min(y1), max.min(y1))],
                BLACK.mix(0.3),
            ))
            .map_err(|e| e.to_string())?
            .label("allocation = arrival")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
        for (i, (p, pts)) in policies.iter().zip(all).enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let style = RGBColor(r, g, b).to_rgba().stroke_width(2);
            let pts: Vec<(f64, f64)> = pts.into_iter().filter(|q| q.0 >= xmin).collect();
            // Every other policy is dashed, so that curves lying on top of each other
            // stay visible.
            let series = if i % 2 == 1 {
                chart.draw_series(DashedLineSeries::new(pts, 9, 6, style))
            } else {
                chart.draw_series(LineSeries::new(pts, style))
            };
            let dashed = i % 2 == 1;
            series.map_err(|e| e.to_string())?.label(p.name()).legend(
                move |(x, y)| -> DynElement<'static, SVGBackend, (i32, i32)> {
                    if dashed {
                        plotters::element::DashedPathElement::new(
                            [(x, y), (x + 24, y)],
                            7,
                            4,
                            style,
                        )
                        .into_dyn()
                    } else {
                        PathElement::new([(x, y), (x + 24, y)], style).into_dyn()
                    }
                },
            );
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The sharing study's table: one line per mode (means over seeds).
pub fn sharing_table(means: &[crate::sharing::StudyRow]) -> String {
    let needed: Vec<String> = means
        .iter()
        .map(|r| match (r.gpus_needed, r.refused_at_double) {
            (Some(g), Some(0)) => g.to_string(),
            (Some(g), Some(x)) => format!("{g} ({x} never)"),
            _ => "-".into(),
        })
        .collect();
    // The last column is as wide as its widest entry, so that "N (M never)" fits.
    let w = needed
        .iter()
        .map(String::len)
        .chain([12])
        .max()
        .unwrap_or(12);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:>7} {:>8} {:>9} {:>14} {:>9} {:>7} {:>11} {:>w$}",
        "mode",
        "placed",
        "refused",
        "(sharing)",
        "GPUs occupied",
        "reserved%",
        "used%",
        "used%/occ.",
        "GPUs needed"
    );
    for (r, needed) in means.iter().zip(&needed) {
        let _ = writeln!(
            out,
            "{:<13} {:>7} {:>8} {:>9} {:>6} / {:<5} {:>9.2} {:>7.2} {:>11.2} {:>w$}",
            r.mode,
            r.placed,
            r.refused,
            r.refused_sharing,
            r.occupied_gpus,
            r.total_gpus,
            r.reserved_pct,
            r.used_pct,
            r.used_of_occupied_pct,
            needed
        );
    }
    out
}

/// The sharing study's rows as CSV (every mode and seed).
pub fn sharing_csv(rows: &[crate::sharing::StudyRow]) -> String {
    let mut out = String::from(
        "mode,policy,seed,pods,placed,refused,refused_sharing,occupied_gpus,total_gpus,reserved_pct,used_pct,used_of_occupied_pct,gpus_needed,refused_at_double\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.mode,
            r.policy,
            r.seed,
            r.pods,
            r.placed,
            r.refused,
            r.refused_sharing,
            r.occupied_gpus,
            r.total_gpus,
            r.reserved_pct,
            r.used_pct,
            r.used_of_occupied_pct,
            r.gpus_needed.map_or_else(String::new, |g| g.to_string()),
            r.refused_at_double
                .map_or_else(String::new, |g| g.to_string())
        );
    }
    out
}

/// An SVG bar chart of the sharing study: per mode, pods placed (% of the workload),
/// GPU memory allocated (% of the cluster's) and GPUs occupied (% of the cluster's).
/// The title fits as in [`plot_svg`].
///
/// # Errors
/// A message if plotting fails (it draws into memory, so only on a plotting bug).
pub fn plot_sharing_svg(means: &[crate::sharing::StudyRow], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = means.len().max(1);
        let top = means
            .iter()
            .map(|r| {
                100.0 * r.gpus_needed.unwrap_or(r.occupied_gpus) as f64 / r.total_gpus.max(1) as f64
            })
            .fold(100.0, f64::max);
        // Room above the bars for the legend.
        let ymax = (top * 1.3 / 10.0).ceil() * 10.0;
        let area = title::draw(&root, title, 20.0, 15.0)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .margin_top(5)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = means.iter().map(|r| r.mode.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < labels.len() {
                    labels[i].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("percent")
            .draw()
            .map_err(|e| e.to_string())?;
        type Series = (&'static str, RGBColor, fn(&crate::sharing::StudyRow) -> f64);
        let series: [Series; 3] = [
            ("pods placed (% of workload)", RGBColor(31, 119, 180), |r| {
                100.0 * r.placed as f64 / r.pods.max(1) as f64
            }),
            (
                "GPU memory used (% of cluster)",
                RGBColor(255, 127, 14),
                |r| r.used_pct,
            ),
            (
                "GPUs needed for the workload (% of cluster)",
                RGBColor(44, 160, 44),
                |r| {
                    100.0 * r.gpus_needed.unwrap_or(r.occupied_gpus) as f64
                        / r.total_gpus.max(1) as f64
                },
            ),
        ];
        for (s, (label, color, value)) in series.iter().enumerate() {
            let bars = means.iter().enumerate().map(|(i, r)| {
                let x0 = i as f64 + 0.1 + 0.27 * s as f64;
                Rectangle::new([(x0, 0.0), (x0 + 0.25, value(r))], color.filled())
            });
            let c = *color;
            let values = means.iter().enumerate().map(|(i, r)| {
                let x0 = i as f64 + 0.1 + 0.27 * s as f64;
                Text::new(
                    format!("{:.0}", value(r)),
                    (x0 + 0.02, value(r) + ymax * 0.035),
                    ("sans-serif", 11),
                )
            });
            chart.draw_series(values).map_err(|e| e.to_string())?;
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

//! Reports of the replay simulator: a terminal table, CSVs of the groups and of the
//! timeline, a JSON document, and SVG plots (GPU allocation over time, each tenant's
//! share against its fair share, delay CDF per class).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use super::{title, write_atomic, ReportError, PALETTE};
use crate::replay::{ReplayResult, Tenant};

/// The files `--out` gets.
pub const REPLAY_FILES: [&str; 6] = [
    "replay.csv",
    "timeline.csv",
    "replay.json",
    "allocation.svg",
    "shares.svg",
    "delay-cdf.svg",
];

/// The label of a run ([`ReplayResult::run`]): `FGD kube`, `FGD fair`, `FGD fair capped`.
pub fn run_label(r: &ReplayResult) -> String {
    r.run.clone()
}

fn secs(s: f64) -> String {
    if s < 100.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

/// The terminal table: per run, a summary line, then one row per class and tenant and
/// per class over all tenants (`*`): jobs, placements (restarted victims are placed
/// again, so `placed` may exceed `jobs`), waits that ended unplaced, delay p50, p95, p99
/// and max (seconds), preemptions suffered and caused.
pub fn replay_table(results: &[ReplayResult], tenants: &[Tenant]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(
            s,
            "{}: mean GPU allocation {:.1}%, {} preemptions, {} cycles, Jain's index {:.3} (mean share / fair share: {})",
            run_label(r),
            100.0 * r.mean_gpu_allocation,
            r.preemptions,
            r.cycles,
            r.jain,
            tenants
                .iter()
                .zip(r.mean_shares.iter().zip(&r.fair_shares))
                .map(|(t, (m, f))| format!("{} {:.1}%/{:.1}%", t.name, 100.0 * m, 100.0 * f))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "  {:<8} {:<8} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
            "class",
            "tenant",
            "jobs",
            "placed",
            "unplaced",
            "p50 s",
            "p95 s",
            "p99 s",
            "max s",
            "preempted",
            "caused"
        );
        for g in &r.groups {
            let _ = writeln!(
                s,
                "  {:<8} {:<8} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
                g.class,
                g.tenant,
                g.jobs,
                g.placements,
                g.unplaced,
                secs(g.delay_p50_s),
                secs(g.delay_p95_s),
                secs(g.delay_p99_s),
                secs(g.delay_max_s),
                g.preempted,
                g.preempting
            );
        }
    }
    s
}

/// The groups' CSV: `run,policy,fair_share,throttled,class,tenant,jobs,placements,
/// unplaced,delay_p50_s,delay_p95_s,delay_p99_s,delay_max_s,preempted,preempting`.
pub fn replay_csv(results: &[ReplayResult]) -> String {
    let mut s = String::from(
        "run,policy,fair_share,throttled,class,tenant,jobs,placements,unplaced,delay_p50_s,delay_p95_s,delay_p99_s,delay_max_s,preempted,preempting\n",
    );
    for r in results {
        for g in &r.groups {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{},{}",
                run_label(r),
                r.policy,
                r.fair_share,
                !r.throttles.is_empty(),
                g.class,
                g.tenant,
                g.jobs,
                g.placements,
                g.unplaced,
                g.delay_p50_s,
                g.delay_p95_s,
                g.delay_p99_s,
                g.delay_max_s,
                g.preempted,
                g.preempting
            );
        }
    }
    s
}

/// The timeline's CSV: `run,t_s,gpu_allocation,pending,share_<tenant>...`.
pub fn timeline_csv(results: &[ReplayResult], tenants: &[Tenant]) -> String {
    let mut s = String::from("run,t_s,gpu_allocation,pending");
    for t in tenants {
        let _ = write!(s, ",share_{}", t.name);
    }
    s.push('\n');
    for r in results {
        let label = run_label(r);
        for x in &r.samples {
            let _ = write!(
                s,
                "{label},{:.1},{:.5},{}",
                x.t_s, x.gpu_allocation, x.pending
            );
            for v in &x.shares {
                let _ = write!(s, ",{v:.5}");
            }
            s.push('\n');
        }
    }
    s
}

/// `--json`'s document: the input, the tenants and every run (samples included).
#[derive(Serialize)]
pub struct ReplayJson<'a> {
    /// Where the input came from.
    pub input: &'a str,
    /// The arrival speedup.
    pub speedup: f64,
    /// The tenants.
    pub tenants: &'a [Tenant],
    /// The runs.
    pub runs: &'a [ReplayResult],
}

impl ReplayJson<'_> {
    /// The document on one line, with a newline.
    pub fn to_line(&self) -> String {
        super::output::to_line(self)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn hours(t: f64) -> f64 {
    t / 3600.0
}

/// The earliest first sample of the runs, hours (samples start after a quiet start).
fn first_sample_h(results: &[ReplayResult]) -> f64 {
    results
        .iter()
        .filter_map(|r| r.samples.first().map(|s| hours(s.t_s)))
        .fold(f64::INFINITY, f64::min)
        .clamp(0.0, f64::MAX)
}

/// GPU allocation (%) over time (hours), one line per run.
///
/// # Errors
/// A message if plotting fails (it draws into memory, so only on a plotting bug).
pub fn plot_allocation_svg(results: &[ReplayResult], title_text: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xmax = results.iter().map(|r| hours(r.span_s)).fold(0.01, f64::max);
        let xmin = first_sample_h(results).min(xmax - 0.001);
        let area = title::draw(&root, title_text, 22.0, 16.0)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .margin_top(5)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(xmin..xmax, 0.0..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("replay time (hours)")
            .y_desc("GPU allocation ratio (%)")
            .draw()
            .map_err(err)?;
        for (i, r) in results.iter().enumerate() {
            let (cr, cg, cb) = PALETTE[i % PALETTE.len()];
            let style = RGBColor(cr, cg, cb).to_rgba().stroke_width(2);
            let pts: Vec<(f64, f64)> = r
                .samples
                .iter()
                .map(|s| (hours(s.t_s), 100.0 * s.gpu_allocation))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(err)?
                .label(format!(
                    "{} (mean {:.1}%)",
                    run_label(r),
                    100.0 * r.mean_gpu_allocation
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Each tenant's dominant share over time against its fair share (dashed), one panel
/// per run (at most 6 panels: the first runs).
///
/// # Errors
/// A message if plotting fails.
pub fn plot_shares_svg(
    results: &[ReplayResult],
    tenants: &[Tenant],
    title_text: &str,
) -> Result<String, String> {
    let runs: Vec<&ReplayResult> = results.iter().take(6).collect();
    let cols = if runs.len() > 1 { 2 } else { 1 };
    let rows = runs.len().div_ceil(cols).max(1);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (1100, 80 + 330 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let area = title::draw(&root, title_text, 22.0, 16.0)?;
        let panels = area.split_evenly((rows, cols));
        for (r, panel) in runs.iter().zip(panels.iter()) {
            let xmax = hours(r.span_s).max(0.01);
            let xmin = first_sample_h(std::slice::from_ref(*r)).min(xmax - 0.001);
            let ymax = r
                .samples
                .iter()
                .flat_map(|s| s.shares.iter().copied())
                .chain(r.fair_shares.iter().copied())
                .fold(0.0, f64::max)
                .max(0.01)
                * 110.0;
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{} (Jain {:.3})", run_label(r), r.jain),
                    ("sans-serif", 16),
                )
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(xmin..xmax, 0.0..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("hours")
                .y_desc("dominant share (%)")
                .draw()
                .map_err(err)?;
            for (k, t) in tenants.iter().enumerate() {
                let (cr, cg, cb) = PALETTE[k % PALETTE.len()];
                let style = RGBColor(cr, cg, cb).to_rgba().stroke_width(2);
                let pts: Vec<(f64, f64)> = r
                    .samples
                    .iter()
                    .map(|s| (hours(s.t_s), 100.0 * s.shares[k]))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(err)?
                    .label(format!(
                        "{} (weight {}; mean {:.1}%)",
                        t.name,
                        t.weight,
                        100.0 * r.mean_shares[k]
                    ))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
                let f = 100.0 * r.fair_shares[k];
                chart
                    .draw_series(DashedLineSeries::new([(xmin, f), (xmax, f)], 8, 5, style))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The CDF of queueing delay per class, one line per run and class (log-scaled delay,
/// seconds, from 0.1 s; a delay below 0.1 s is drawn at 0.1 s).
///
/// # Errors
/// A message if plotting fails.
pub fn plot_delay_cdf_svg(
    results: &[ReplayResult],
    classes: &[String],
    title_text: &str,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xmax = results
            .iter()
            .flat_map(|r| r.delays.iter().filter_map(|d| d.last().copied()))
            .fold(10.0, f64::max)
            * 1.5;
        let area = title::draw(&root, title_text, 22.0, 16.0)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .margin_top(5)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((0.1..xmax).log_scale(), 0.0..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("queueing delay (s, log scale)")
            .y_desc("pods placed within the delay (%)")
            .x_label_formatter(&|x| format!("{x}"))
            .draw()
            .map_err(err)?;
        for (i, r) in results.iter().enumerate() {
            let (cr, cg, cb) = PALETTE[i % PALETTE.len()];
            for (c, d) in r.delays.iter().enumerate() {
                if d.is_empty() {
                    continue;
                }
                let style = RGBColor(cr, cg, cb).to_rgba().stroke_width(2);
                let n = d.len() as f64;
                let mut pts = vec![(0.1, 0.0)];
                let mut k = 0;
                while k < d.len() {
                    let x = d[k].max(0.1);
                    let mut j = k;
                    while j < d.len() && d[j].max(0.1) == x {
                        j += 1;
                    }
                    pts.push((x, 100.0 * k as f64 / n));
                    pts.push((x, 100.0 * j as f64 / n));
                    k = j;
                }
                pts.push((xmax, 100.0));
                let label = format!("{} {}", run_label(r), classes[c]);
                let series = match c % 3 {
                    0 => chart.draw_series(LineSeries::new(pts, style)),
                    1 => chart.draw_series(DashedLineSeries::new(pts, 9, 6, style)),
                    _ => chart.draw_series(DashedLineSeries::new(pts, 2, 4, style)),
                };
                let dash = c % 3;
                series.map_err(err)?.label(label).legend(
                    move |(x, y)| -> DynElement<'static, SVGBackend, (i32, i32)> {
                        match dash {
                            0 => PathElement::new([(x, y), (x + 24, y)], style).into_dyn(),
                            1 => plotters::element::DashedPathElement::new(
                                [(x, y), (x + 24, y)],
                                7,
                                4,
                                style,
                            )
                            .into_dyn(),
                            _ => plotters::element::DashedPathElement::new(
                                [(x, y), (x + 24, y)],
                                2,
                                3,
                                style,
                            )
                            .into_dyn(),
                        }
                    },
                );
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Writes [`REPLAY_FILES`] into `dir`, each atomically; returns their paths.
///
/// # Errors
/// [`ReportError`] naming the file that could not be written.
pub fn write_replay(
    dir: &Path,
    results: &[ReplayResult],
    tenants: &[Tenant],
    classes: &[String],
    json: &ReplayJson<'_>,
    title_text: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    let plot = |k: usize, r: Result<String, String>| {
        r.map_err(|message| ReportError {
            path: dir.join(REPLAY_FILES[k]),
            message,
        })
    };
    let alloc = plot(
        3,
        plot_allocation_svg(results, &format!("GPU allocation over time\n{title_text}")),
    )?;
    let shares = plot(
        4,
        plot_shares_svg(
            results,
            tenants,
            &format!("Tenants' dominant share (solid) vs fair share (dashed)\n{title_text}"),
        ),
    )?;
    let cdf = plot(
        5,
        plot_delay_cdf_svg(
            results,
            classes,
            &format!("Queueing delay CDF per priority class\n{title_text}"),
        ),
    )?;
    let files: [Vec<u8>; 6] = [
        replay_csv(results).into_bytes(),
        timeline_csv(results, tenants).into_bytes(),
        serde_json::to_vec_pretty(json).expect("the replay serialises"),
        alloc.into_bytes(),
        shares.into_bytes(),
        cdf.into_bytes(),
    ];
    let mut out = Vec::new();
    for (name, bytes) in REPLAY_FILES.iter().zip(files) {
        let p = dir.join(name);
        write_atomic(&p, &bytes)?;
        out.push(p);
    }
    Ok(out)
}

//! `mlplane`: the command line. Thin: parses flags, calls the libraries, prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mlplane_policies::Policy;
use mlplane_sim::{report, synth, trace, Experiment, ExperimentConfig};

#[derive(Parser)]
#[command(
    name = "mlplane",
    version,
    about = "Make ML clusters on Kubernetes cheap to run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run GPU placement policies on a cluster trace (the FGD paper's experiment).
    ///
    /// Pods arrive in a random order (per seed) without departures; the workload is
    /// inflated by resampling until the requested GPUs reach --max-arrival percent of
    /// the cluster's GPUs; the GPU allocation ratio is reported as arrivals pass each
    /// percentage. Without --nodes/--pods it runs a built-in synthetic cluster and
    /// workload derived from Alibaba's GPU-sharing trace.
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct SimulateArgs {
    /// Node list CSV (columns sn,cpu_milli,memory_mib,gpu,model). Needs --pods.
    #[arg(long, value_name = "FILE", requires = "pods")]
    nodes: Option<PathBuf>,
    /// Pod list CSV (columns name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]). Needs --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pods: Option<PathBuf>,
    /// Policies to run, comma-separated, or `all`. Known: Random, DotProd, GpuClustering,
    /// GpuPacking, BestFit, FGD, LeastAllocated, MostAllocated.
    #[arg(long, value_name = "NAME[,NAME...]", default_value = "all")]
    policy: String,
    /// Run N seeds: 42, 43, ... (the paper's experiments use 42..=51). Default: 3.
    #[arg(long, value_name = "N", conflicts_with = "seed")]
    seeds: Option<u64>,
    /// Run this one seed.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Stop arrivals at this percentage of the cluster's GPUs.
    #[arg(long, value_name = "PCT", default_value_t = 130)]
    max_arrival: u32,
    /// Write results.csv, summary.json and allocation.svg into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object with every point on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlplane: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_policies(s: &str) -> Result<Vec<Policy>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(Policy::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let p: Policy = name.parse().context("--policy")?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        bail!("--policy: no policy named");
    }
    Ok(out)
}

fn simulate(args: SimulateArgs) -> Result<()> {
    let policies = parse_policies(&args.policy)?;
    let seeds: Vec<u64> = match (args.seed, args.seeds) {
        (Some(s), _) => vec![s],
        (None, Some(0)) => bail!("--seeds must be at least 1"),
        (None, Some(n)) => (42..42 + n).collect(),
        (None, None) => vec![42, 43, 44],
    };
    if args.max_arrival == 0 {
        bail!("--max-arrival must be at least 1");
    }
    let (cluster, pods, nodes_source, pods_source) = match (&args.nodes, &args.pods) {
        (Some(n), Some(p)) => {
            let cluster = trace::load_nodes(n)?;
            let pods = trace::load_pods(p, &cluster)?;
            (
                cluster,
                pods,
                n.display().to_string(),
                p.display().to_string(),
            )
        }
        _ => {
            let (c, p) = synth::default_input(1);
            let src = format!(
                "built-in synthetic ({} nodes; generator seed 1)",
                synth::DEFAULT_NODES
            );
            (c, p, src.clone(), src)
        }
    };
    let file_name = |p: &Option<PathBuf>| {
        p.as_deref()
            .and_then(Path::file_name)
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
    };
    let input_label = if args.nodes.is_some() {
        format!("{} + {}", file_name(&args.nodes), file_name(&args.pods))
    } else {
        nodes_source.clone()
    };
    let info = report::InputInfo {
        nodes_source,
        pods_source,
        nodes: cluster.nodes().len(),
        gpus: cluster.gpu_count(),
        pods: pods.len(),
    };
    let exp = Experiment::new(
        cluster,
        pods,
        ExperimentConfig {
            max_arrival_pct: args.max_arrival,
            ..ExperimentConfig::default()
        },
    )
    .with_context(|| input_label.clone())?;
    let total: u64 = seeds
        .iter()
        .map(|&s| exp.arrivals(s).len() as u64)
        .sum::<u64>()
        * policies.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} pods scheduled ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    eprintln!(
        "simulating {} polic{} x {} seed{} on {} nodes / {} GPUs, {} pods inflated to {}% of GPUs",
        policies.len(),
        if policies.len() == 1 { "y" } else { "ies" },
        seeds.len(),
        if seeds.len() == 1 { "" } else { "s" },
        info.nodes,
        info.gpus,
        info.pods,
        args.max_arrival
    );
    let started = Instant::now();
    let sweep = mlplane_sim::sweep(&exp, &policies, &seeds, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();

    let summary = report::summary(&sweep, info);
    if let Some(dir) = &args.out {
        let title = format!(
            "GPU allocation vs arrived demand ({} seed{}; {})",
            seeds.len(),
            if seeds.len() == 1 { "" } else { "s" },
            input_label
        );
        write_outputs(dir, &sweep, &summary, &title)?;
    }
    let mut text = String::new();
    if args.json {
        #[derive(serde::Serialize)]
        struct JsonOut<'a> {
            results: Vec<report::ResultRow>,
            summary: &'a report::Summary,
        }
        let out = JsonOut {
            results: report::rows(&sweep),
            summary: &summary,
        };
        text += &serde_json::to_string(&out)?;
        text.push('\n');
    } else {
        text += &format!(
            "GPU allocation ratio (%) by arrived GPU demand (% of cluster GPUs), mean of {} seed(s):\n",
            seeds.len()
        );
        text += &report::table(&sweep);
        if let Some(dir) = &args.out {
            text += &format!(
                "wrote {}, {}, {}\n",
                dir.join("results.csv").display(),
                dir.join("summary.json").display(),
                dir.join("allocation.svg").display()
            );
        }
    }
    print_stdout(&text)?;
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());
    Ok(())
}

/// Prints to stdout; a closed pipe (`mlplane ... | head`) is not an error.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

fn write_outputs(
    dir: &Path,
    sweep: &mlplane_sim::Sweep,
    summary: &report::Summary,
    title: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report::write_atomic(&dir.join("results.csv"), report::csv(sweep).as_bytes())?;
    let json = serde_json::to_vec_pretty(summary)?;
    report::write_atomic(&dir.join("summary.json"), &json)?;
    let svg = report::plot_svg(sweep, title).map_err(anyhow::Error::msg)?;
    report::write_atomic(&dir.join("allocation.svg"), svg.as_bytes())?;
    Ok(())
}

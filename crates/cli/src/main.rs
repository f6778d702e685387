//! `mlplane`: the command line. Thin: parses flags, calls the libraries, prints.

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
                "built-in synthetic ({} nodes, seed 1)",
                synth::DEFAULT_NODES
            );
            (c, p, src.clone(), src)
        }
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
    )?;
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
        write_outputs(dir, &sweep, &summary)?;
    }
    if args.json {
        let obj = serde_json::json!({
            "results": report::rows(&sweep),
            "summary": summary,
        });
        println!("{}", serde_json::to_string(&obj)?);
    } else {
        println!("GPU allocation ratio (%) by arrived GPU demand (% of cluster GPUs), mean of {} seed(s):", seeds.len());
        print!("{}", report::table(&sweep));
        if let Some(dir) = &args.out {
            println!(
                "wrote {0}/results.csv, {0}/summary.json, {0}/allocation.svg",
                dir.display()
            );
        }
    }
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());
    Ok(())
}

fn write_outputs(dir: &Path, sweep: &mlplane_sim::Sweep, summary: &report::Summary) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report::write_atomic(&dir.join("results.csv"), report::csv(sweep).as_bytes())?;
    let json = serde_json::to_vec_pretty(summary)?;
    report::write_atomic(&dir.join("summary.json"), &json)?;
    let svg =
        report::plot_svg(sweep, "GPU allocation vs arrived demand").map_err(anyhow::Error::msg)?;
    report::write_atomic(&dir.join("allocation.svg"), svg.as_bytes())?;
    Ok(())
}

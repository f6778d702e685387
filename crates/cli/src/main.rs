//! `mlplane`: the command line. Thin: parses flags, calls the libraries, prints (and
//! shows a progress bar); the libraries check, run and write.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mlplane_sim::sharing::{self, SharingMode, Study, StudyOptions};
use mlplane_sim::{input, report, select, Experiment, ExperimentConfig};

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
    /// Propose a nvidia-mig-parted config for the GPU-sharing pods of a workload.
    ///
    /// Every GPU node gets --gpu-model; the nodes the whole-GPU pods need stay MIG
    /// disabled, and the rest get the proposed geometry (printed as mig-parted YAML).
    /// `mlplane simulate --sharing mig,mig-1g,mig-disabled` measures it.
    MigAdvise(AdviseArgs),
}

#[derive(Args)]
struct AdviseArgs {
    /// Node list CSV (as for simulate). Needs --pods.
    #[arg(long, value_name = "FILE", requires = "pods")]
    nodes: Option<PathBuf>,
    /// Pod list CSV (as for simulate). Needs --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pods: Option<PathBuf>,
    /// GPU model of every GPU node (a MIG-capable one: A100-40GB, A100-80GB, H100-80GB, H200-141GB).
    #[arg(long, value_name = "MODEL", default_value = "H100-80GB")]
    gpu_model: String,
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
    /// Write results.csv, summary.json and allocation.svg into DIR (created if missing;
    /// checked before the run).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object with every point on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Run the GPU sharing study instead: the same workload under each sharing mode,
    /// comma-separated, or `all`: whole, timeslicing, mig, mixed, mig-1g, mig-disabled
    /// (the three mig modes need a --gpu-model with MIG).
    /// Every GPU node gets --gpu-model; the trace's GPU-sharing pods become memory
    /// shares (or MIG instances); every pod arrives once.
    #[arg(long, value_name = "MODE[,MODE...]")]
    sharing: Option<String>,
    /// Sharing study: also run this sharing configuration (YAML, see docs/sharing.md) as
    /// mode `config`. Implies --sharing whole,config when --sharing is not given.
    #[arg(long, value_name = "FILE")]
    sharing_config: Option<PathBuf>,
    /// Sharing study: GPU model of every GPU node.
    #[arg(long, value_name = "MODEL", default_value = "H100-80GB")]
    gpu_model: String,
    /// Sharing study: time-slicing replicas per GPU.
    #[arg(long, value_name = "N", default_value_t = 8)]
    replicas: u32,
    /// Sharing study: placement policy (random, bestfit, leastallocated, fgd).
    #[arg(long, value_name = "NAME", default_value = "fgd")]
    share_policy: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) if args.sharing.is_some() || args.sharing_config.is_some() => {
            sharing_study(args)
        }
        Command::Simulate(args) => simulate(args),
        Command::MigAdvise(args) => mig_advise(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlplane: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The progress bar of a run of `total` pods.
fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} pods scheduled ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    bar
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn simulate(args: SimulateArgs) -> Result<()> {
    // Everything the flags alone decide is checked before the input is read.
    let policies = select::parse_policies(&args.policy).context("--policy")?;
    let seeds = select::seeds(args.seed, args.seeds).context("--seeds")?;
    if args.max_arrival == 0 {
        bail!("--max-arrival must be at least 1");
    }
    if let Some(dir) = &args.out {
        report::prepare_dir(dir, &report::SIMULATE_FILES).context("--out")?;
    }
    let input = input::load(args.nodes.as_deref(), args.pods.as_deref())?;
    let info = input.info();
    let label = input.label.clone();
    let exp = Experiment::new(
        input.cluster,
        input.pods,
        ExperimentConfig {
            max_arrival_pct: args.max_arrival,
            ..ExperimentConfig::default()
        },
    )
    .with_context(|| label.clone())?;
    let bar = progress(mlplane_sim::sweep_len(&exp, &policies, &seeds));
    eprintln!(
        "simulating {} x {} on {} nodes / {} GPUs, {} pods inflated to {}% of GPUs",
        plural(policies.len(), "policy", "policies"),
        plural(seeds.len(), "seed", "seeds"),
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
    let written = match &args.out {
        Some(dir) => report::write_simulate(
            dir,
            &sweep,
            &summary,
            &report::simulate_title(seeds.len(), &label),
        )?,
        None => Vec::new(),
    };
    let text = if args.json {
        report::SimulateJson::new(&sweep, &summary).to_line()
    } else {
        format!(
            "GPU allocation ratio (%) by arrived GPU demand (% of cluster GPUs), mean of {} seed(s):\n{}{}",
            seeds.len(),
            report::table(&sweep),
            wrote(&written)
        )
    };
    print_stdout(&text)?;
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());
    Ok(())
}

/// `wrote A, B, C` and a newline, or nothing.
fn wrote(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("wrote {}\n", list.join(", "))
}

/// Prints to stdout; a closed pipe (`mlplane ... | head`) is not an error.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

fn sharing_study(args: SimulateArgs) -> Result<()> {
    // Everything the flags and the configuration file decide is checked before the
    // input is read.
    let custom = match &args.sharing_config {
        Some(path) => Some(sharing::load_config(path)?),
        None => None,
    };
    let spec = args.sharing.as_deref().unwrap_or("whole,config");
    let modes = sharing::parse_modes(spec, custom.is_some()).context("--sharing")?;
    let policy =
        mlplane_sim::sharing::SharePolicy::parse(&args.share_policy).with_context(|| {
            format!(
                "--share-policy: unknown policy {:?} (known: random, bestfit, leastallocated, fgd)",
                args.share_policy
            )
        })?;
    let seeds = select::seeds(args.seed, args.seeds).context("--seeds")?;
    let options = StudyOptions {
        model: args.gpu_model.clone(),
        replicas: args.replicas,
        policy,
        custom,
        ..StudyOptions::default()
    };
    sharing::check_modes(&modes, &options)?;
    if let Some(dir) = &args.out {
        report::prepare_dir(dir, &report::SHARING_FILES).context("--out")?;
    }
    let input = input::load(args.nodes.as_deref(), args.pods.as_deref())?;
    let study = Study::new(&input.cluster, input.pods.clone(), options)?;
    if let Some(path) = &args.sharing_config {
        study.check_config(&path.display().to_string())?;
    }
    eprintln!(
        "sharing study: {} mode(s) x {} seed(s) on {} nodes / {} GPUs of {}, {} pods, policy {}",
        modes.len(),
        seeds.len(),
        input.cluster.nodes().len(),
        input.cluster.gpu_count(),
        args.gpu_model,
        input.pods.len(),
        policy.name()
    );
    let bar = progress(study.sweep_len(modes.len(), seeds.len()));
    let started = Instant::now();
    let rows = study.sweep(&modes, &seeds, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let means = sharing::mean_by_mode(&rows);
    let written = match &args.out {
        Some(dir) => report::write_sharing(
            dir,
            &rows,
            &means,
            &report::sharing_title(&input.label, &args.gpu_model, seeds.len()),
        )?,
        None => Vec::new(),
    };
    let text = if args.json {
        report::SharingJson {
            results: &rows,
            means: &means,
        }
        .to_line()
    } else {
        let mut text = format!(
            "{}\n{}",
            report::sharing_heading(&input.label, &args.gpu_model, seeds.len()),
            report::sharing_table(&means)
        );
        if let (Some(a), true) = (study.advice(), modes.contains(&SharingMode::Mig)) {
            text += &format!(
                "mig: advised geometry per GPU index: {} (best of {} candidates measured)\n",
                geometry_text(a),
                study.trials().len()
            );
        }
        text + &wrote(&written)
    };
    print_stdout(&text)?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn mig_advise(args: AdviseArgs) -> Result<()> {
    if !sharing::gpu_spec(&args.gpu_model)?.mig_capable() {
        bail!("--gpu-model {}: does not support MIG", args.gpu_model);
    }
    let input = input::load(args.nodes.as_deref(), args.pods.as_deref())?;
    let study = Study::new(
        &input.cluster,
        input.pods,
        StudyOptions {
            model: args.gpu_model.clone(),
            ..StudyOptions::default()
        },
    )?;
    let Some(advice) = study.advice() else {
        bail!("--gpu-model {}: does not support MIG", args.gpu_model);
    };
    eprintln!(
        "{} node(s) stay MIG-disabled for the whole-GPU pods; the GPU-sharing pods need {} GiB as MIG instances",
        study.whole_pool().len(),
        advice.demanded_mib / 1024
    );
    for (a, used, placed) in study.trials() {
        eprintln!(
            "  candidate {}: {placed} pods placed, {used:.2}% of GPU memory used{}",
            geometry_text(a),
            if a.per_index == advice.per_index {
                "  <- chosen"
            } else {
                ""
            }
        );
    }
    print_stdout(&advice.to_mig_parted("mlplane-advised"))
}

/// A geometry per GPU index as `7g.80gbx1, 3g.40gbx2, ...`.
fn geometry_text(a: &mlplane_share::advisor::Advice) -> String {
    a.per_index
        .iter()
        .map(|g| {
            g.iter()
                .map(|(p, c)| format!("{p}x{c}"))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

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
    /// Write results.csv, summary.json and allocation.svg into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object with every point on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Run the GPU sharing study instead: the same workload under each sharing mode,
    /// comma-separated, or `all`: whole, timeslicing, mig, mixed, mig-1g, mig-disabled.
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

fn seeds_of(args: &SimulateArgs) -> Result<Vec<u64>> {
    Ok(match (args.seed, args.seeds) {
        (Some(s), _) => vec![s],
        (None, Some(0)) => bail!("--seeds must be at least 1"),
        (None, Some(n)) => (42..42 + n).collect(),
        (None, None) => vec![42, 43, 44],
    })
}

/// The cluster and pods of --nodes/--pods, or the built-in default; with the sources'
/// descriptions.
fn load_input(
    nodes: &Option<PathBuf>,
    pods: &Option<PathBuf>,
) -> Result<(
    mlplane_model::Cluster,
    Vec<mlplane_model::Pod>,
    String,
    String,
)> {
    Ok(match (nodes, pods) {
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
    })
}

fn simulate(args: SimulateArgs) -> Result<()> {
    let policies = parse_policies(&args.policy)?;
    let seeds = seeds_of(&args)?;
    if args.max_arrival == 0 {
        bail!("--max-arrival must be at least 1");
    }
    let (cluster, pods, nodes_source, pods_source) = load_input(&args.nodes, &args.pods)?;
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

fn sharing_study(args: SimulateArgs) -> Result<()> {
    use mlplane_sim::sharing::{mean_by_mode, SharingMode, Study, StudyOptions};
    let spec = args.sharing.as_deref().unwrap_or("whole,config");
    let custom = match &args.sharing_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(mlplane_share::config::SharingConfig::parse(
                &text,
                &path.display().to_string(),
            )?)
        }
        None => None,
    };
    let modes: Vec<SharingMode> = if spec.trim().eq_ignore_ascii_case("all") {
        let mut m = SharingMode::ALL.to_vec();
        if custom.is_some() {
            m.push(SharingMode::Custom);
        }
        m
    } else {
        spec.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                SharingMode::parse(m).with_context(|| {
                    format!("--sharing: unknown mode {m:?} (known: whole, timeslicing, mig, mixed, mig-1g, mig-disabled, config)")
                })
            })
            .collect::<Result<_>>()?
    };
    let policy =
        mlplane_sim::sharing::SharePolicy::parse(&args.share_policy).with_context(|| {
            format!(
                "--share-policy: unknown policy {:?} (known: random, bestfit, leastallocated, fgd)",
                args.share_policy
            )
        })?;
    let seeds = seeds_of(&args)?;
    let (cluster, pods, nodes_source, _) = load_input(&args.nodes, &args.pods)?;
    let input_label = match (&args.nodes, &args.pods) {
        (Some(n), Some(p)) => format!(
            "{} + {}",
            n.file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
            p.file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
        ),
        _ => nodes_source.clone(),
    };
    let n_pods = pods.len() as u64;
    let study = Study::new(
        &cluster,
        pods,
        StudyOptions {
            model: args.gpu_model.clone(),
            replicas: args.replicas,
            policy,
            custom,
            ..StudyOptions::default()
        },
    )?;
    if modes.contains(&SharingMode::Custom) && args.sharing_config.is_none() {
        bail!("--sharing config needs --sharing-config FILE");
    }
    eprintln!(
        "sharing study: {} mode(s) x {} seed(s) on {} nodes / {} GPUs of {}, {} pods, policy {}",
        modes.len(),
        seeds.len(),
        cluster.nodes().len(),
        cluster.gpu_count(),
        args.gpu_model,
        n_pods,
        policy.name()
    );
    let bar = ProgressBar::new(2 * n_pods * (modes.len() * seeds.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} pods scheduled ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    let started = Instant::now();
    let jobs: Vec<(SharingMode, u64)> = modes
        .iter()
        .flat_map(|&m| seeds.iter().map(move |&s| (m, s)))
        .collect();
    let double = study.doubled()?;
    let mut rows = {
        use rayon::prelude::*;
        jobs.par_iter()
            .map(|&(m, s)| -> Result<_, mlplane_sim::sharing::StudyError> {
                let mut row = study.run(m, s, &mut || bar.inc(1))?;
                let big = double.run(m, s, &mut || bar.inc(1))?;
                row.gpus_needed = Some(big.occupied_gpus);
                row.refused_at_double = Some(big.refused);
                Ok(row)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    rows.sort_by_key(|r| (modes.iter().position(|m| m.name() == r.mode), r.seed));
    bar.finish_and_clear();
    let means = mean_by_mode(&rows);
    let title = format!(
        "GPU sharing study: {} ({}, {} seed{})",
        input_label,
        args.gpu_model,
        seeds.len(),
        if seeds.len() == 1 { "" } else { "s" }
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        report::write_atomic(
            &dir.join("sharing.csv"),
            report::sharing_csv(&rows).as_bytes(),
        )?;
        report::write_atomic(
            &dir.join("sharing.json"),
            &serde_json::to_vec_pretty(&means)?,
        )?;
        let svg = report::plot_sharing_svg(&means, &title).map_err(anyhow::Error::msg)?;
        report::write_atomic(&dir.join("sharing.svg"), svg.as_bytes())?;
    }
    let mut text = String::new();
    if args.json {
        text += &serde_json::to_string(&serde_json::json!({ "results": rows, "means": means }))?;
        text.push('\n');
    } else {
        text += &format!("{title}\n");
        text += &report::sharing_table(&means);
        if let (Some(a), true) = (
            study.advice(),
            modes.iter().any(|m| matches!(m, SharingMode::Mig)),
        ) {
            text += &format!(
                "mig: advised geometry per GPU index: {} (best of {} candidates measured)\n",
                geometry_text(a),
                study.trials().len()
            );
        }
        if let Some(dir) = &args.out {
            text += &format!(
                "wrote {}, {}, {}\n",
                dir.join("sharing.csv").display(),
                dir.join("sharing.json").display(),
                dir.join("sharing.svg").display()
            );
        }
    }
    print_stdout(&text)?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn mig_advise(args: AdviseArgs) -> Result<()> {
    use mlplane_sim::sharing::{Study, StudyOptions};
    let (cluster, pods, _, _) = load_input(&args.nodes, &args.pods)?;
    let study = Study::new(
        &cluster,
        pods,
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

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
use mlplane_sim::{input, replay, report, select, Experiment, ExperimentConfig};

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
    /// Replay a trace over time: arrivals, departures, priorities, preemption, fair
    /// share across tenants and soft quotas (docs/scheduling.md, "Replay").
    ///
    /// Pods get priority classes from the trace's qos (LS/Guaranteed: high 1000,
    /// BE/Burstable: low 100, CPU-only: low-cpu 50) and tenants drawn by the seed.
    /// Without --nodes/--pods it replays a built-in synthetic cluster and timed workload.
    Replay(ReplayArgs),
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct ReplayArgs {
    /// Node list CSV (as for simulate). Needs --pods.
    #[arg(long, value_name = "FILE", requires = "pods")]
    nodes: Option<PathBuf>,
    /// Pod list CSV with creation_time, scheduled_time, deletion_time and qos. Needs --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pods: Option<PathBuf>,
    /// Policies to run, comma-separated, or `all`.
    #[arg(
        long,
        value_name = "NAME[,NAME...]",
        default_value = "FGD,BestFit,LeastAllocated"
    )]
    policy: String,
    /// Fair-share preemption (victim order and reclaim across tenants): on, off or both.
    #[arg(long, value_name = "on|off|both", default_value = "both")]
    fair_share: String,
    /// With fair share, do not reclaim from tenants above their share at equal priority.
    #[arg(long)]
    no_reclaim: bool,
    /// Tenants with fair-share weights and, after a colon, their relative demand (the
    /// share of pods drawn for each; default 1 each).
    #[arg(
        long,
        value_name = "NAME=W[:D][,...]",
        default_value = "team-a=3:20,team-b=2:30,team-c=1:50"
    )]
    tenants: String,
    /// Arrivals this many times faster than the trace (run times unchanged). Default:
    /// 150 for trace files (the trace alone uses about 1% of its cluster), 1 for the
    /// built-in input.
    #[arg(long, value_name = "K")]
    speedup: Option<f64>,
    /// Replay on this fraction of the cluster's nodes, stratified by node shape (at
    /// least one node of each GPU model is kept). Default: 0.1 for trace files (the
    /// trace's pods together ask for about the whole cluster, so they contend for it only
    /// on a part of it), 1 for the built-in input.
    #[arg(long, value_name = "F")]
    cluster_fraction: Option<f64>,
    /// Seconds a preemption victim takes to leave.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    grace: f64,
    /// With reclaim, seconds after tenant A reclaims from tenant B during which B may
    /// not reclaim from A (stops two tenants trading pods at every departure).
    #[arg(long, value_name = "S", default_value_t = 600)]
    reclaim_window: i64,
    /// Cap the GPUs a tenant's pods of a class hold at once with a ClusterThrottle
    /// (repeatable), e.g. team-a:high=200. Runs the capped case after the others.
    #[arg(long, value_name = "TENANT:CLASS=GPUS")]
    cap: Vec<String>,
    /// Seed of the tenant draw, the node order and the policies' draws.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: i64,
    /// Write replay.csv, timeline.csv, replay.json and three plots into DIR (created if
    /// missing; checked before the run).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
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
        Command::Replay(args) => replay(args),
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

/// The trace's default arrival speedup for `mlplane replay`.
const TRACE_SPEEDUP: f64 = 150.0;
/// The trace's default cluster fraction for `mlplane replay`.
const TRACE_CLUSTER_FRACTION: f64 = 0.1;

fn parse_tenants(spec: &str) -> Result<Vec<replay::Tenant>> {
    let mut out = Vec::new();
    for part in select::split_list(spec).map_err(|e| anyhow::anyhow!("{e}"))? {
        let Some((name, rest)) = part.split_once('=') else {
            bail!("{part:?}: expected NAME=WEIGHT[:DEMAND], e.g. team-a=3:20");
        };
        let (w, d) = rest.split_once(':').unwrap_or((rest, "1"));
        let weight: f64 = w
            .parse()
            .map_err(|_| anyhow::anyhow!("{part:?}: the weight {w:?} is not a number"))?;
        let demand: f64 = d
            .parse()
            .map_err(|_| anyhow::anyhow!("{part:?}: the demand {d:?} is not a number"))?;
        out.push(replay::Tenant {
            name: name.trim().to_string(),
            weight,
            demand,
        });
    }
    Ok(out)
}

fn parse_cap(spec: &str, tenants: &[replay::Tenant]) -> Result<replay::Throttle> {
    let bad = || anyhow::anyhow!("{spec:?}: expected TENANT:CLASS=GPUS, e.g. team-a:high=200");
    let (who, gpus) = spec.split_once('=').ok_or_else(bad)?;
    let (tenant, class) = who.split_once(':').ok_or_else(bad)?;
    let gpus: u64 = gpus
        .parse()
        .map_err(|_| anyhow::anyhow!("{spec:?}: GPUS {gpus:?} is not a whole number"))?;
    if !tenants.iter().any(|t| t.name == tenant) {
        bail!(
            "{spec:?}: no tenant {tenant:?} (tenants: {})",
            tenants
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !replay::default_classes().iter().any(|c| c.name == class) {
        bail!("{spec:?}: no priority class {class:?} (classes: high, low, low-cpu)");
    }
    Ok(replay::gpu_cap(tenant, class, gpus))
}

fn replay(args: ReplayArgs) -> Result<()> {
    // Everything the flags alone decide is checked before the input is read.
    let policies = select::parse_policies(&args.policy).context("--policy")?;
    let fair: &[bool] = match args.fair_share.to_ascii_lowercase().as_str() {
        "on" => &[true],
        "off" => &[false],
        "both" => &[false, true],
        other => bail!("--fair-share: expected on, off or both, got {other:?}"),
    };
    let tenants = parse_tenants(&args.tenants).context("--tenants")?;
    let caps = args
        .cap
        .iter()
        .map(|c| parse_cap(c, &tenants))
        .collect::<Result<Vec<_>>>()
        .context("--cap")?;
    if let Some(k) = args.speedup {
        if !(k.is_finite() && k > 0.0) {
            bail!("--speedup: expected a positive number, got {k}");
        }
    }
    // Whole numbers are taken signed so that a negative one gets this message, not a
    // parse error.
    let Ok(seed) = u64::try_from(args.seed) else {
        bail!(
            "--seed: expected a non-negative whole number, got {}",
            args.seed
        );
    };
    let Ok(reclaim_window) = u64::try_from(args.reclaim_window) else {
        bail!(
            "--reclaim-window: expected a non-negative number of seconds, got {}",
            args.reclaim_window
        );
    };
    if let Some(f) = args.cluster_fraction {
        if !(f > 0.0 && f <= 1.0) {
            bail!("--cluster-fraction: expected a number in (0, 1], got {f}");
        }
    }
    if !(args.grace.is_finite() && args.grace >= 0.0) {
        bail!(
            "--grace: expected a non-negative number of seconds, got {}",
            args.grace
        );
    }
    if let Some(dir) = &args.out {
        report::prepare_dir(dir, &report::REPLAY_FILES).context("--out")?;
    }
    let (workload, label) = match (&args.nodes, &args.pods) {
        (Some(n), Some(p)) => {
            let full = mlplane_sim::trace::load_nodes(n)?;
            let pods = mlplane_sim::trace::load_timed_pods(p, &full)?;
            let f = args.cluster_fraction.unwrap_or(TRACE_CLUSTER_FRACTION);
            let cluster = mlplane_sim::synth::subsample(&full, f, seed);
            let k = args.speedup.unwrap_or(TRACE_SPEEDUP);
            let w =
                replay::Workload::from_trace(std::sync::Arc::new(cluster), pods, tenants, k, seed)?;
            let label = format!(
                "{} ({f} of its nodes) + {}, arrivals x{k}",
                n.file_name().unwrap_or_default().to_string_lossy(),
                p.file_name().unwrap_or_default().to_string_lossy()
            );
            (w, label)
        }
        _ => {
            let mut w = replay::Workload::builtin(tenants, seed)?;
            if let Some(f) = args.cluster_fraction {
                w.cluster = std::sync::Arc::new(mlplane_sim::synth::subsample(&w.cluster, f, seed));
            }
            if let Some(k) = args.speedup {
                for j in &mut w.jobs {
                    j.arrival_s /= k;
                }
                w.speedup = k;
            }
            (
                w,
                format!(
                    "built-in synthetic ({} nodes, {} timed pods; generator seed {})",
                    replay::BUILTIN_NODES,
                    replay::BUILTIN_JOBS,
                    input::DEFAULT_INPUT_SEED
                ),
            )
        }
    };
    let mut configs = Vec::new();
    for &p in &policies {
        for &f in fair {
            let mut c = replay::ReplayConfig::new(p);
            c.fair_share = f;
            c.reclaim = !args.no_reclaim;
            c.reclaim_window_s = reclaim_window;
            c.grace_s = args.grace;
            c.seed = seed;
            configs.push(c);
        }
    }
    if !caps.is_empty() {
        for &p in &policies {
            let mut c = replay::ReplayConfig::new(p);
            c.fair_share = *fair.last().expect("one at least");
            c.reclaim = !args.no_reclaim;
            c.reclaim_window_s = reclaim_window;
            c.grace_s = args.grace;
            c.seed = seed;
            c.throttles = caps.clone();
            configs.push(c);
        }
    }
    eprintln!(
        "replaying {} jobs on {} nodes / {} GPUs ({label}); {} run(s), tenants {}",
        workload.jobs.len(),
        workload.cluster.nodes().len(),
        workload.cluster.gpu_count(),
        configs.len(),
        workload
            .tenants
            .iter()
            .map(|t| format!("{}={}:{}", t.name, t.weight, t.demand))
            .collect::<Vec<_>>()
            .join(",")
    );
    let bar = ProgressBar::new(workload.jobs.len() as u64 * configs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} arrivals replayed ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let mut results = Vec::new();
    let mut times = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let t0 = Instant::now();
        let base = i as u64 * workload.jobs.len() as u64;
        let r = replay::replay(&workload, c, &mut |n| bar.set_position(base + n))?;
        times.push(t0.elapsed().as_secs_f64());
        // A line per run as well, for logs and pipes where the bar is hidden.
        bar.suspend(|| {
            eprintln!(
                "run {}/{}: {} in {:.1} s",
                i + 1,
                configs.len(),
                r.run,
                t0.elapsed().as_secs_f64()
            )
        });
        results.push(r);
    }
    bar.finish_and_clear();
    let classes: Vec<String> = workload.classes.iter().map(|c| c.name.clone()).collect();
    let doc = report::ReplayJson {
        input: &label,
        speedup: workload.speedup,
        tenants: &workload.tenants,
        runs: &results,
    };
    let written = match &args.out {
        Some(dir) => {
            report::write_replay(dir, &results, &workload.tenants, &classes, &doc, &label)?
        }
        None => Vec::new(),
    };
    let text = if args.json {
        doc.to_line()
    } else {
        let timing: Vec<String> = results
            .iter()
            .zip(&times)
            .map(|(r, t)| format!("{} {t:.2} s", report::run_label(r)))
            .collect();
        format!(
            "{}replay time per run: {}\n{}",
            report::replay_table(&results, &workload.tenants),
            timing.join(", "),
            wrote(&written)
        )
    };
    print_stdout(&text)?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

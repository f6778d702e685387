//! The `mlplane` binary as a user runs it: exit codes, messages, `--json`, `--out`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mlplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlplane"))
        .args(args)
        .output()
        .expect("run mlplane")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlplane-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const NODES: &str =
    "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,T4\nn1,64000,262144,4,T4\n";
const PODS: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\na,8000,16384,1,1000,\nb,4000,8192,1,500,\nc,4000,8192,0,0,\nd,16000,32768,2,1000,T4\n";

#[test]
fn json_has_a_row_for_every_policy_seed_and_percentage() {
    let d = tmp("json");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--policy",
        "fgd,BestFit",
        "--seeds",
        "2",
        "--max-arrival",
        "120",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2 * 2 * 120);
    let first = &rows[0];
    assert_eq!(first["policy"], "FGD");
    assert_eq!(first["seed"], 42);
    assert_eq!(first["arrival_pct"], 1);
    for key in ["allocation_pct", "unallocated_gpus"] {
        assert!(first[key].is_number(), "{key}");
    }
    let last = &rows[rows.len() - 1];
    assert_eq!(
        (
            last["policy"].as_str(),
            last["seed"].as_u64(),
            last["arrival_pct"].as_u64()
        ),
        (Some("BestFit"), Some(43), Some(120))
    );
    // 6 GPUs: allocation can never exceed them.
    for r in rows {
        let a = r["allocation_pct"].as_f64().unwrap();
        let u = r["unallocated_gpus"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&a));
        assert!((a / 100.0 * 6.0 + u - 6.0).abs() < 0.02, "{r}");
    }
}

#[test]
fn out_writes_csv_json_and_svg() {
    let d = tmp("out");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let out_dir = d.join("report");
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--seed",
        "7",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    assert!(csv.starts_with("policy,seed,arrival_pct,allocation_pct,unallocated_gpus\n"));
    assert_eq!(csv.lines().count(), 1 + 8 * 130);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["input"]["gpus"], 6);
    assert_eq!(summary["policies"].as_array().unwrap().len(), 8);
    let svg = std::fs::read_to_string(out_dir.join("allocation.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("FGD"));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("policy \\ arrival") && table.contains("130%"),
        "{table}"
    );
}

fn fails_with(args: &[&str], message: &str) {
    let out = mlplane(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(message), "expected {message:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error_with_status_1() {
    let d = tmp("bad");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let bad_row = write(
        &d,
        "bad_row.csv",
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,T4\nn1,64000,262144\n",
    );
    fails_with(
        &["simulate", "--nodes", &bad_row, "--pods", &p],
        "bad_row.csv:3: malformed CSV: 3 fields where the header has 5",
    );
    let neg = write(
        &d,
        "neg.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,-1,1,0,0\n",
    );
    fails_with(
        &["simulate", "--nodes", &n, "--pods", &neg],
        "neg.csv:2: field cpu_milli: \"-1\" is not valid",
    );
    let col = write(&d, "col.csv", "name,cpu,memory_mib,num_gpu,gpu_milli\n");
    fails_with(
        &["simulate", "--nodes", &n, "--pods", &col],
        "col.csv:1: unknown column \"cpu\"",
    );
    let empty = write(&d, "empty.csv", "sn,cpu_milli,memory_mib,gpu,model\n");
    fails_with(
        &["simulate", "--nodes", &empty, "--pods", &p],
        "empty.csv: no nodes: the cluster is empty",
    );
    fails_with(
        &["simulate", "--policy", "Tetris"],
        "unknown policy \"Tetris\"",
    );
    fails_with(
        &["simulate", "--nodes", "/nonexistent.csv", "--pods", &p],
        "/nonexistent.csv: No such file",
    );
    let cpu_nodes = write(
        &d,
        "cpu_nodes.csv",
        "sn,cpu_milli,memory_mib,gpu,model\nc0,1000,1000,0,\n",
    );
    fails_with(
        &["simulate", "--nodes", &cpu_nodes, "--pods", &p],
        "the cluster has no GPUs",
    );
}

#[test]
fn nodes_without_pods_is_a_usage_error() {
    let out = mlplane(&["simulate", "--nodes", "x.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pods"));
}

/// The sharing study on the small input, worked out by hand: 6 GPUs (as H100-80GB);
/// pods a (1 GPU), b (a 500-milli share), c (CPU only), d (2 GPUs). Everything fits.
/// whole: a, b and d take 1 + 1 + 2 GPUs: reserved 4/6 = 66.67%, used (1 + 0.5 + 2)/6 =
/// 58.33%. timeslicing: b is a 40960 MiB share, a a full-GPU share, d two whole GPUs:
/// reserved = used = 58.33%.
#[test]
fn sharing_study_json_matches_the_hand_count() {
    let d = tmp("sharing");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--sharing",
        "whole,timeslicing",
        "--seed",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let means = v["means"].as_array().unwrap();
    assert_eq!(means.len(), 2);
    let row = |m: &str| means.iter().find(|r| r["mode"] == m).unwrap().clone();
    let w = row("whole");
    assert_eq!(
        (w["placed"].as_u64(), w["refused"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(w["reserved_pct"].as_f64(), Some(66.67));
    assert_eq!(w["used_pct"].as_f64(), Some(58.33));
    assert_eq!(w["gpus_needed"].as_u64(), Some(4));
    let t = row("timeslicing");
    assert_eq!(
        (t["reserved_pct"].as_f64(), t["used_pct"].as_f64()),
        (Some(58.33), Some(58.33))
    );
    assert_eq!(t["gpus_needed"].as_u64(), Some(4), "a, b and d's two GPUs");
}

#[test]
fn sharing_study_rejects_bad_options_by_name() {
    let out = mlplane(&["simulate", "--sharing", "whole,bogus"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sharing: unknown mode \"bogus\""), "{err}");
    let out = mlplane(&["simulate", "--sharing", "mig", "--gpu-model", "T4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("T4 does not support MIG"), "{err}");
    let out = mlplane(&["simulate", "--sharing", "all", "--gpu-model", "X9"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gpu-model X9: not in the catalogue"));
    let out = mlplane(&["simulate", "--sharing", "all", "--replicas", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replicas must be at least 2, got 1"));
}

#[test]
fn mig_advise_prints_a_mig_parted_config() {
    let d = tmp("advise");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let out = mlplane(&["mig-advise", "--nodes", &n, "--pods", &p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The whole-GPU pool (n1, 4 GPUs, for a's and d's 3 GPUs) stays whole; n0's two
    // GPUs serve b's 40960 MiB share: 3g.40gb, two per GPU on index 0 (one node).
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("version: v1\nmig-configs:\n  mlplane-advised:\n    - devices: [0"),
        "{text}"
    );
    assert!(text.contains("\"3g.40gb\": 2"), "{text}");
}

/// One's own configuration as mode `config`: every GPU time-sliced 4 ways with
/// failRequestsGreaterThanOne. By hand, on the small input (6 GPUs of 81920 MiB):
/// a (`nvidia.com/gpu: 1`) gets one replica, charged 81920 / 4 = 20480 MiB; b's 500-milli
/// share is a 40960 MiB memory share; c needs no GPU; d (`nvidia.com/gpu: 2`) is
/// refused. Reserved (20480 + 40960) / 491520 = 12.5%; used (81920 + 40960) / 491520 =
/// 25% (a needs its whole GPU but holds a quarter of one: the danger of plain
/// time-slicing that memory shares avoid).
#[test]
fn sharing_config_file_runs_as_mode_config() {
    let d = tmp("config");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let cfg = write(
        &d,
        "sharing.yaml",
        "nodeGroups:\n  - name: all\n    sharing:\n      timeSlicing:\n        failRequestsGreaterThanOne: true\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 4\n",
    );
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--sharing-config",
        &cfg,
        "--seed",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let means = v["means"].as_array().unwrap();
    let modes: Vec<&str> = means.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["whole", "config"]);
    let c = &means[1];
    assert_eq!(
        (c["placed"].as_u64(), c["refused"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        (c["reserved_pct"].as_f64(), c["used_pct"].as_f64()),
        (Some(12.5), Some(25.0))
    );
    // A broken file names the field.
    let bad = write(&d, "bad.yaml", "nodeGroups:\n  - name: all\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 1\n");
    let out = mlplane(&["simulate", "--sharing-config", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "nodeGroups[0].sharing.timeSlicing.resources[0].replicas: must be at least 2, got 1"
        ),
        "{err}"
    );
}

/// Runs `args`, expects exit status 1 with `message` on stderr, and that nothing was
/// simulated (no "simulating"/"sharing study" line, no "done in").
fn fails_before_running(args: &[&str], message: &str) -> String {
    let started = std::time::Instant::now();
    let out = mlplane(args);
    let secs = started.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(message), "expected {message:?} in {err:?}");
    for ran in ["simulating", "sharing study:", "done in", "panicked"] {
        assert!(!err.contains(ran), "{ran:?} in {err:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(secs < 10.0, "took {secs:.1} s");
    err
}

#[test]
fn an_out_folder_that_cannot_be_written_fails_before_simulating() {
    fails_before_running(
        &["simulate", "--out", "/proc/nope"],
        "mlplane: error: --out: /proc/nope: cannot create the folder: No such file or directory",
    );
    fails_before_running(
        &["simulate", "--sharing", "whole", "--out", "/proc/nope"],
        "--out: /proc/nope: cannot create the folder",
    );
    let d = tmp("outfile");
    let file = write(&d, "results", "keep me");
    fails_before_running(
        &["simulate", "--out", &file],
        &format!("--out: {file}: exists and is not a folder"),
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // A folder where a report file goes cannot be replaced by it.
    let out_dir = d.join("report");
    std::fs::create_dir_all(out_dir.join("allocation.svg")).unwrap();
    fails_before_running(
        &["simulate", "--out", out_dir.to_str().unwrap()],
        "allocation.svg: is a folder; the report file cannot replace it",
    );
}

#[test]
fn an_empty_list_item_is_an_error_naming_the_flag() {
    fails_before_running(
        &["simulate", "--policy", "FGD,,BestFit"],
        "mlplane: error: --policy: item 2 of \"FGD,,BestFit\" is empty (a stray comma?)",
    );
    fails_before_running(
        &["simulate", "--policy", ","],
        "mlplane: error: --policy: \",\" names nothing",
    );
    fails_before_running(
        &["simulate", "--sharing", "whole,"],
        "mlplane: error: --sharing: item 2 of \"whole,\" is empty",
    );
    fails_before_running(
        &["simulate", "--seeds", "0"],
        "mlplane: error: --seeds: must be at least 1, got 0",
    );
}

#[test]
fn mig_modes_on_a_gpu_without_mig_fail_before_running() {
    let err = fails_before_running(
        &["simulate", "--sharing", "all", "--gpu-model", "T4"],
        "--gpu-model T4 does not support MIG, which modes mig, mig-1g, mig-disabled need",
    );
    assert!(
        err.contains("list the modes without them (--sharing whole,timeslicing,mixed)"),
        "{err}"
    );
    // Without MIG modes the same model runs.
    let d = tmp("t4");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--sharing",
        "whole,timeslicing,mixed",
        "--gpu-model",
        "T4",
        "--seed",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let modes: Vec<&str> = v["means"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["whole", "timeslicing", "mixed"]);
    fails_before_running(
        &["mig-advise", "--gpu-model", "T4"],
        "--gpu-model T4: does not support MIG",
    );
}

#[test]
fn a_sharing_configuration_that_configures_nothing_is_refused_naming_the_file() {
    let d = tmp("emptycfg");
    for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# nothing yet\n\n")] {
        let f = write(&d, name, text);
        fails_before_running(
            &["simulate", "--sharing-config", &f],
            &format!("mlplane: error: {f}: the sharing configuration is empty"),
        );
    }
    let f = write(&d, "braces.yaml", "{}\n");
    fails_before_running(
        &["simulate", "--sharing-config", &f],
        &format!("mlplane: error: {f}: no nodeGroups: the configuration shares no GPU"),
    );
}

#[test]
fn a_configuration_that_selects_no_node_or_does_not_resolve_fails_before_running() {
    let d = tmp("resolvecfg");
    // Every GPU node of the study is an H100-80GB: a group for T4s selects none.
    let f = write(
        &d,
        "t4.yaml",
        "nodeGroups:\n  - name: ts\n    models: [T4]\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 4\n",
    );
    fails_before_running(
        &["simulate", "--sharing-config", &f],
        &format!("mlplane: error: {f}: nodeGroups[0] (\"ts\") selects no node of the cluster (models: T4, nodes: any; every GPU node of the study is a H100-80GB)"),
    );
    let f = write(
        &d,
        "one.yaml",
        "nodeGroups:\n  - name: ts\n    sharing:\n      timeSlicing:\n        resources:\n          - name: nvidia.com/gpu\n            replicas: 1\n",
    );
    fails_before_running(
        &["simulate", "--sharing-config", &f],
        &format!("mlplane: error: {f}: nodeGroups[0].sharing.timeSlicing.resources[0].replicas: must be at least 2, got 1"),
    );
}

#[test]
fn a_yaml_syntax_error_names_the_file_line_and_column() {
    let d = tmp("yamlerr");
    // `sharing:` is indented one space less than `name:`.
    let f = write(
        &d,
        "indent.yaml",
        "nodeGroups:\n  - name: all\n   sharing:\n      timeSlicing: {}\n",
    );
    fails_before_running(
        &["simulate", "--sharing-config", &f],
        &format!("mlplane: error: {f}:3:4: nodeGroups: did not find expected '-' indicator"),
    );
    let f = write(
        &d,
        "field.yaml",
        "nodeGroups:\n  - name: all\n    sharingx: 1\n",
    );
    fails_before_running(
        &["simulate", "--sharing-config", &f],
        &format!("{f}:3:5: nodeGroups[0].sharingx: unknown field `sharingx`"),
    );
}

/// A configuration whose MIG geometry does not fit the GPU is refused before any
/// mode runs (resolved on the cluster first).
#[test]
fn a_configuration_that_does_not_resolve_fails_before_any_run() {
    let d = tmp("noresolve");
    let (n, p) = (write(&d, "n.csv", NODES), write(&d, "p.csv", PODS));
    let cfg = write(
        &d,
        "mig.yaml",
        "migConfigs:\n  big:\n    - devices: all\n      mig-enabled: true\n      mig-devices: { \"7g.80gb\": 2 }\nnodeGroups:\n  - name: mig\n    migStrategy: mixed\n    migConfig: big\n",
    );
    let out = mlplane(&[
        "simulate",
        "--nodes",
        &n,
        "--pods",
        &p,
        "--sharing-config",
        &cfg,
        "--seed",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("mlplane: error: {cfg}: migConfigs.big[0].mig-devices: on node n0: H100-80GB allows at most 1 instance(s) of 7g.80gb, 2 asked")),
        "{err}"
    );
    // Checked against the cluster before the study starts.
    assert!(!err.contains("sharing study:"), "{err}");
    assert!(!err.contains("done in"), "{err}");
    assert!(out.stdout.is_empty());
}

const TIMED_NODES: &str = "sn,cpu_milli,memory_mib,gpu,model\nn0,16000,65536,1,T4\n";
// L (BE: low) runs 0..100; H (LS: high) arrives at 10 for 50 s; C (CPU-only: low-cpu)
// arrives at 200 and ends the replay.
const TIMED_PODS: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
L,1000,1024,1,1000,,BE,Running,0,100,0\n\
H,1000,1024,1,1000,,LS,Running,10,60,10\n\
C,1000,1024,0,0,,BE,Running,200,300,200\n";

#[test]
fn replay_json_matches_the_hand_worked_preemption() {
    // H preempts L at 10; L leaves after the 5 s grace time, H starts at 15 (delay 5)
    // and ends at 65, when the restarted L starts (delay 50).
    let d = tmp("replay");
    let nodes = write(&d, "nodes.csv", TIMED_NODES);
    let pods = write(&d, "pods.csv", TIMED_PODS);
    let out_dir = d.join("out");
    let out = mlplane(&[
        "replay",
        "--nodes",
        &nodes,
        "--pods",
        &pods,
        "--speedup",
        "1",
        "--cluster-fraction",
        "1",
        "--grace",
        "5",
        "--policy",
        "BestFit",
        "--fair-share",
        "off",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &v["runs"][0];
    assert_eq!(run["preemptions"], 1);
    let group = |class: &str| {
        run["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["class"] == class && g["tenant"] == "*")
            .unwrap()
            .clone()
    };
    assert_eq!(group("high")["delay_max_s"], 5.0);
    assert_eq!(group("low")["delay_max_s"], 50.0);
    assert_eq!(group("low")["placements"], 2);
    assert_eq!(group("low-cpu")["jobs"], 1);
    for f in [
        "replay.csv",
        "timeline.csv",
        "replay.json",
        "allocation.svg",
        "shares.svg",
        "delay-cdf.svg",
    ] {
        let bytes = std::fs::read(out_dir.join(f)).unwrap();
        assert!(!bytes.is_empty(), "{f}");
    }
    let csv = std::fs::read_to_string(out_dir.join("replay.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("BestFit kube,BestFit,false,false,high,*,1,1,0,5.000")),
        "{csv}"
    );
}

#[test]
fn replay_without_arguments_runs_the_builtin_input() {
    let out = mlplane(&["replay", "--policy", "BestFit", "--fair-share", "on"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("BestFit fair: mean GPU allocation"),
        "{text}"
    );
    assert!(text.contains("  high     *          "), "{text}");
}

#[test]
fn replay_flags_are_checked_before_the_run() {
    fails_with(
        &["replay", "--speedup", "-1"],
        "--speedup: expected a positive number, got -1",
    );
    fails_with(
        &["replay", "--seed", "-1"],
        "--seed: expected a non-negative whole number, got -1",
    );
    fails_with(
        &["replay", "--reclaim-window", "-5"],
        "--reclaim-window: expected a non-negative number of seconds, got -5",
    );
    fails_with(
        &["replay", "--grace", "-1"],
        "--grace: expected a non-negative number of seconds, got -1",
    );
    fails_with(
        &["replay", "--fair-share", "maybe"],
        "--fair-share: expected on, off or both, got \"maybe\"",
    );
    fails_with(
        &["replay", "--tenants", "a"],
        "expected NAME=WEIGHT[:DEMAND]",
    );
    fails_with(
        &["replay", "--tenants", "a=x"],
        "the weight \"x\" is not a number",
    );
    fails_with(
        &["replay", "--cap", "team-z:high=3"],
        "no tenant \"team-z\"",
    );
    fails_with(
        &["replay", "--cap", "team-a:mid=3"],
        "no priority class \"mid\"",
    );
    fails_with(
        &["replay", "--speedup", "0"],
        "--speedup: expected a positive number, got 0",
    );
    fails_with(
        &["replay", "--cluster-fraction", "2"],
        "--cluster-fraction: expected a number in (0, 1], got 2",
    );
    fails_with(
        &["replay", "--tenants", "a=0"],
        "tenant \"a\": the weight must be a positive number, got 0",
    );
}

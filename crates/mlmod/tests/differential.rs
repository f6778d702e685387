//! Differential tests: mlmod against the real Lmod.
//!
//! Every scenario is a list of shell lines (mostly `module ...` commands). It runs twice,
//! each time in a clean shell,
//!
//! ```text
//! env -i HOME=<tmp> PATH=/usr/bin:/bin bash --noprofile --norc -c '<init>; <steps>'
//! ```
//!
//! where `<init>` is `source /usr/share/lmod/lmod/init/bash` for Lmod and
//! `eval "$(mlmod init bash)"` for mlmod. After the init and after every step the shell
//! records the step's exit status, its stdout/stderr, the exported environment
//! (`env -0`, so values may hold any byte but NUL), the aliases (`alias -p`) and the shell
//! functions that were not there right after the init (so `module`, `ml` and each
//! implementation's own helpers are left out). The two runs are then compared step by
//! step on the *public* environment (see [`is_internal_var`]), the aliases, the
//! functions and the exit status. Each side has its own home directory, written `<HOME>`
//! wherever it appears. What the commands print is shown in reports, not compared.
//!
//! Sources of scenarios:
//! * `tests/data/scenarios.txt` over the fixture trees in `tests/data/trees/` (syntax at
//!   the top of that file), test `scenarios`;
//! * every visible module of the real EasyBuild tree `../shared/data/modulefiles/easybuild`
//!   (`module load X; module purge` for each, many per shell; a sample by default),
//!   test `easybuild_tree`;
//! * walks through the real Spack hierarchy `../shared/data/modulefiles/spack`, copied to a
//!   temporary directory with its absolute `MODULEPATH` prefix rewritten, described in
//!   `tests/data/spack_walks.txt`, test `spack_hierarchy`.
//!
//! Environment switches:
//! * `MLMOD_REQUIRE_LMOD=1`: fail instead of skipping when Lmod is not installed.
//! * `MLMOD_DIFF_SELF=1`: the "mlmod" side also runs Lmod (checks the harness and the
//!   fixtures: everything must pass in this mode).
//! * `MLMOD_DIFF_FULL=1`: every EasyBuild module instead of every 16th (see
//!   [`DEFAULT_STRIDE`]); `MLMOD_DIFF_STRIDE=N`: every Nth.
//! * `MLMOD_DIFF_ONLY=substr[,substr...]`: only scenarios / modules / walks whose name
//!   contains one of the substrings.
//! * `MLMOD_DIFF_TRACE=1`: print, for every step, what the step changed on the Lmod side.
//! * `MLMOD_DIFF_BIN=PATH`: the mlmod binary to test (default: the one cargo built).
//! * `MLMOD_DIFF_JOBS=N`: shells run at once (default: the number of CPUs).
//! * `MLMOD_DIFF_KEEP=1`: keep the temporary directories (scripts, per-step dumps).
//! * `MLMOD_DIFF_STALL_SECS=N`: kill a shell when no step finished for N s (default 120).
//! * `MLMOD_MODULEFILES_DIR=DIR`: where `easybuild/` and `spack/` lie.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lmod's bash init; its presence is what "Lmod is installed" means here.
const LMOD_INIT: &str = "/usr/share/lmod/lmod/init/bash";

/// Deliberate differences between mlmod and Lmod, as `(scenario, key, reason)`.
///
/// `scenario` is a scenario name (`pushenv-stack`), `easybuild:<module>`,
/// `spack:<walk>`, or a prefix ending in `*` (`easybuild:*`, `*`). `key` is an
/// environment variable name, `status`, `alias:NAME` or `function:NAME`, or a prefix
/// ending in `*`. Every entry must also be listed with its reason in `docs/compat.md`.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "avail-evaluates-modulefiles",
        "status",
        "Lmod's non-terse avail and spider evaluate every modulefile, so an LmodWarning in \
         an unrelated modulefile makes them return 1; mlmod's listings do not run modulefile \
         side effects and return 0 (docs/compat.md)",
    ),
    ("easybuild:R/3.6.2-foss-2019b-fh1", "*", SAME_NAME_LOAD),
    ("easybuild:R/3.6.2", "*", SAME_NAME_LOAD),
    ("easybuild:R/4.0.0-foss-2019b-fh1", "*", SAME_NAME_LOAD),
    ("easybuild:Python/3.7.4-foss-2019b-fh1", "*", SAME_NAME_LOAD),
];

/// Why the easybuild modules that load another version of their own name differ.
const SAME_NAME_LOAD: &str = "the modulefile loads another version of its own name \
     (R/3.6.2-foss-2019b-fh1 loads R/3.6.2-foss-2019b): Lmod's one-name rule drops the \
     outer module from LOADEDMODULES but keeps its changes, which `module purge` then \
     leaves behind; mlmod lists both and unloads both (docs/compat.md)";

/// Lmod's own `LMOD_*` variables. Any other `LMOD_*` variable is compared, unless the
/// init of either side defines it (Lmod's init exports LMOD_CMD, LMOD_DIR, ...):
/// modulefiles set variables such as `LMOD_MPI_NAME` (Spack) that steer the hierarchy.
const LMOD_OWN_VARS: &[&str] = &[
    "LMOD_CMD",
    "LMOD_DIR",
    "LMOD_PKG",
    "LMOD_ROOT",
    "LMOD_VERSION",
    "LMOD_SETTARG_CMD",
    "LMOD_SETTARG_FULL_SUPPORT",
    "LMOD_sys",
    "LMOD_SHELL_PRGM",
];

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn self_mode() -> bool {
    env_flag("MLMOD_DIFF_SELF")
}

fn jobs() -> usize {
    env_usize("MLMOD_DIFF_JOBS")
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn only_filter(name: &str) -> bool {
    match std::env::var("MLMOD_DIFF_ONLY") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .any(|s| name.contains(s)),
        _ => true,
    }
}

/// True when Lmod is there; otherwise prints why the test is skipped (or panics when
/// `MLMOD_REQUIRE_LMOD` is set).
fn lmod_available(test: &str) -> bool {
    if Path::new(LMOD_INIT).is_file() {
        return true;
    }
    if env_flag("MLMOD_REQUIRE_LMOD") {
        panic!("{test}: Lmod is required (MLMOD_REQUIRE_LMOD is set) but {LMOD_INIT} is missing");
    }
    eprintln!(
        "SKIPPED {test}: Lmod is not installed ({LMOD_INIT} is missing); \
         install the Debian package `lmod`, or set MLMOD_REQUIRE_LMOD=1 to make this fail"
    );
    false
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data_dir() -> PathBuf {
    manifest_dir().join("tests").join("data")
}

fn modulefiles_dir() -> PathBuf {
    match std::env::var_os("MLMOD_MODULEFILES_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest_dir().join("../../../shared/data/modulefiles"),
    }
}

/// A fresh, absolute, symlink-free scratch directory for one test run.
fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = base.join(format!("mlmod-diff-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    fs::canonicalize(&dir).expect("canonicalize scratch dir")
}

fn remove_scratch(dir: &Path) {
    if env_flag("MLMOD_DIFF_KEEP") {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Shell variables (set, not exported, before the init) and the steps of one session.
type SessionSpec = (Vec<(String, String)>, Vec<String>);

/// Quotes a string for bash (single quotes).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The mlmod binary: `$MLMOD_DIFF_BIN`, else the one cargo built.
fn mlmod_bin() -> String {
    match std::env::var("MLMOD_DIFF_BIN") {
        Ok(b) if !b.is_empty() => b,
        _ => env!("CARGO_BIN_EXE_mlmod").to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The two implementations
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Lmod,
    Mlmod,
}

const SIDES: [Side; 2] = [Side::Lmod, Side::Mlmod];

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Lmod => "lmod",
            Side::Mlmod if self_mode() => "mlmod(self: lmod)",
            Side::Mlmod => "mlmod",
        }
    }

    /// The line that defines `module` and `ml` in the clean shell.
    fn init(self) -> String {
        match self {
            Side::Mlmod if !self_mode() => {
                format!("eval \"$({} init bash)\"", sh_quote(&mlmod_bin()))
            }
            _ => format!("source {LMOD_INIT}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running one shell session
// ---------------------------------------------------------------------------------------

/// What the shell recorded after one step (step 0 is the init).
#[derive(Clone, Debug, Default)]
struct Snapshot {
    status: i32,
    env: BTreeMap<String, String>,
    aliases: BTreeMap<String, String>,
    /// name -> body as `declare -f` prints it, prefixed by `(exported) ` when exported.
    functions: BTreeMap<String, String>,
    stdout: String,
    stderr: String,
}

impl Snapshot {
    /// Each side has its own home directory: write it as `<HOME>` wherever it appears.
    fn with_home_masked(mut self, home: &str) -> Self {
        for map in [&mut self.env, &mut self.aliases, &mut self.functions] {
            for v in map.values_mut() {
                if v.contains(home) {
                    *v = v.replace(home, "<HOME>");
                }
            }
        }
        self
    }
}

#[derive(Debug)]
struct SessionResult {
    /// One entry per step, init included; `None` when the shell never got there.
    snaps: Vec<Option<Snapshot>>,
    /// Whether `module` was a function right after the init.
    module_defined: bool,
    /// Why the session ended early (stall, death), if it did.
    problem: Option<String>,
    wall: Duration,
}

const DUMP_FN: &str = r#"
__mldiff_dump() {
  local __mldiff_d="$__mldiff_out/$2" __mldiff_f
  /usr/bin/env -0 > "$__mldiff_d.env"
  alias -p > "$__mldiff_d.alias"
  declare -F > "$__mldiff_d.fnames"
  for __mldiff_f in $(compgen -A function); do
    case "$__mldiff_base" in *" $__mldiff_f "*) continue ;; esac
    printf '%s\0' "$__mldiff_f"
    declare -f "$__mldiff_f"
    printf '\0'
  done > "$__mldiff_d.funcs"
  printf '%s\n' "$1" > "$__mldiff_d.status"
}
"#;

/// Step prefix: run this step and the following ones in a subshell.
const SUBSHELL_OPEN: &str = "\u{1}";
/// Step prefix: end the subshell after this step.
const SUBSHELL_CLOSE: &str = "\u{2}";

/// Builds the `bash -c` script: shell variables (not exported), the init, the steps, a
/// dump after each.
fn build_script(out: &Path, init: &str, vars: &[(String, String)], steps: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "__mldiff_out={}", sh_quote(&out.to_string_lossy()));
    for (k, v) in vars {
        let _ = writeln!(s, "{k}={}", sh_quote(v));
    }
    s.push_str(DUMP_FN);
    let _ = writeln!(
        s,
        "{{\n{init}\n}} >\"$__mldiff_out/0.stdout\" 2>\"$__mldiff_out/0.stderr\"\n__mldiff_st=$?"
    );
    s.push_str("__mldiff_base=\" $(compgen -A function | /usr/bin/tr '\\n' ' ') \"\n");
    s.push_str("if declare -F module >/dev/null; then : > \"$__mldiff_out/module_defined\"; fi\n");
    s.push_str("__mldiff_dump $__mldiff_st 0\n");
    for (i, cmd) in steps.iter().enumerate() {
        let n = i + 1;
        // A step starting with SUBSHELL_OPEN begins a subshell, one starting with
        // SUBSHELL_CLOSE ends it after the step: what happens inside (a leak of the
        // implementation under test included) does not reach later steps.
        let (open, cmd) = match cmd.strip_prefix(SUBSHELL_OPEN) {
            Some(c) => (true, c),
            None => (false, cmd.as_str()),
        };
        let (close, cmd) = match cmd.strip_prefix(SUBSHELL_CLOSE) {
            Some(c) => (true, c),
            None => (false, cmd),
        };
        if open {
            s.push_str("(\n");
        }
        let _ = writeln!(
            s,
            "{{\n{cmd}\n}} >\"$__mldiff_out/{n}.stdout\" 2>\"$__mldiff_out/{n}.stderr\"\n__mldiff_dump $? {n}"
        );
        if close {
            s.push_str(")\n");
        }
    }
    s.push_str(": > \"$__mldiff_out/done\"\n");
    s
}

fn stall_limit() -> Duration {
    Duration::from_secs(env_usize("MLMOD_DIFF_STALL_SECS").unwrap_or(120) as u64)
}

/// Runs `steps` in a clean bash for one implementation. `dir` must be a fresh directory;
/// it receives the script, the home directory and the per-step dumps.
fn run_session(
    side: Side,
    vars: &[(String, String)],
    steps: &[String],
    dir: &Path,
) -> SessionResult {
    let out = dir.join("out");
    let home = dir.join("home");
    fs::create_dir_all(&out).expect("create out dir");
    fs::create_dir_all(&home).expect("create home dir");
    let script = build_script(&out, &side.init(), vars, steps);
    fs::write(dir.join("script.sh"), &script).expect("write script");
    let stdout = fs::File::create(dir.join("shell.stdout")).expect("create shell.stdout");
    let stderr = fs::File::create(dir.join("shell.stderr")).expect("create shell.stderr");

    let start = Instant::now();
    let mut cmd = Command::new("env");
    cmd.arg("-i")
        .arg(format!("HOME={}", home.display()))
        .arg("PATH=/usr/bin:/bin")
        .arg("bash")
        .arg("--noprofile")
        .arg("--norc")
        // The script file, not `-c SCRIPT`: a full run's script is longer than the
        // kernel's limit on one argument (128 KiB).
        .arg(dir.join("script.sh"))
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().expect("spawn env -i bash");

    let mut problem = None;
    let mut next = 0usize; // next step whose dump we wait for
    let mut last_progress = Instant::now();
    loop {
        while out.join(format!("{next}.status")).exists() {
            next += 1;
            last_progress = Instant::now();
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                if !out.join("done").exists() {
                    problem = Some(format!(
                        "the shell ended ({status}) before the end of the scenario; last step recorded: {}",
                        next as isize - 1
                    ));
                }
                break;
            }
            Ok(None) => {}
            Err(e) => {
                problem = Some(format!("waiting for the shell failed: {e}"));
                break;
            }
        }
        if last_progress.elapsed() > stall_limit() {
            // Kill the whole process group (bash and whatever it runs).
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", child.id()))
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            problem = Some(format!(
                "killed: step {next} did not finish within {} s (MLMOD_DIFF_STALL_SECS)",
                stall_limit().as_secs()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();

    let mut snaps = Vec::with_capacity(steps.len() + 1);
    let home = home.to_string_lossy();
    for n in 0..=steps.len() {
        snaps.push(read_snapshot(&out, n).map(|s| s.with_home_masked(&home)));
    }
    if let Some(p) = &mut problem {
        let shell_err = fs::read_to_string(dir.join("shell.stderr")).unwrap_or_default();
        if !shell_err.trim().is_empty() {
            let _ = write!(
                p,
                "; shell stderr:\n{}",
                indent(&tail_lines(&shell_err, 15), "      ")
            );
        }
    }
    SessionResult {
        snaps,
        module_defined: out.join("module_defined").exists(),
        problem,
        wall,
    }
}

fn read_lossy(path: &Path) -> io::Result<String> {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_snapshot(out: &Path, n: usize) -> Option<Snapshot> {
    let p = |ext: &str| out.join(format!("{n}.{ext}"));
    let status = read_lossy(&p("status")).ok()?;
    let status = status.trim().parse().unwrap_or(-1);
    let env = parse_env(&read_lossy(&p("env")).unwrap_or_default());
    let aliases = parse_aliases(&read_lossy(&p("alias")).unwrap_or_default());
    let functions = parse_functions(
        &read_lossy(&p("fnames")).unwrap_or_default(),
        &read_lossy(&p("funcs")).unwrap_or_default(),
    );
    Some(Snapshot {
        status,
        env,
        aliases,
        functions,
        stdout: read_lossy(&p("stdout")).unwrap_or_default(),
        stderr: read_lossy(&p("stderr")).unwrap_or_default(),
    })
}

/// Parses `env -0` output.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.split('\0')
        .filter(|e| !e.is_empty())
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses `alias -p` output (`alias NAME='VALUE'`, a value may span lines).
fn parse_aliases(text: &str) -> BTreeMap<String, String> {
    let mut records: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("alias ") {
            records.push(rest.to_string());
        } else if let Some(last) = records.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    records
        .into_iter()
        .filter_map(|r| {
            r.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Parses the `name\0body\0...` records of the dump, with `declare -F` for attributes.
fn parse_functions(fnames: &str, funcs: &str) -> BTreeMap<String, String> {
    let exported: BTreeSet<&str> = fnames
        .lines()
        .filter_map(|l| l.strip_prefix("declare -"))
        .filter_map(|l| l.split_once(' '))
        .filter(|(attrs, _)| attrs.contains('x'))
        .map(|(_, name)| name.trim())
        .collect();
    let parts: Vec<&str> = funcs.split('\0').collect();
    let mut map = BTreeMap::new();
    for pair in parts.chunks(2) {
        if let [name, body] = pair {
            if name.is_empty() {
                continue;
            }
            let body = body.trim_end().to_string();
            let value = if exported.contains(name) {
                format!("(exported) {body}")
            } else {
                body
            };
            map.insert(name.to_string(), value);
        }
    }
    map
}

// ---------------------------------------------------------------------------------------
// What is compared
// ---------------------------------------------------------------------------------------

/// Internal variables of Lmod, of mlmod, and of the shell, which the comparison leaves
/// out. `init_lmod` holds the `LMOD_*` names that either side's init defined.
fn is_internal_var(name: &str, init_lmod: &BTreeSet<String>) -> bool {
    if name.starts_with("LMOD_FAMILY_") {
        return false;
    }
    if name.starts_with("LMOD_") {
        return LMOD_OWN_VARS.contains(&name) || init_lmod.contains(name);
    }
    name.starts_with("_ModuleTable")
        || name.starts_with("__LMOD_")
        || name.starts_with("_MLMOD")
        || name.starts_with("__MLMOD")
        || name.starts_with("MLMOD_")
        || name.starts_with("BASH_FUNC_")
        || matches!(
            name,
            "MODULESHOME" | "BASH_ENV" | "_" | "SHLVL" | "PWD" | "OLDPWD"
        )
}

/// The `LMOD_*` names defined right after the init.
fn init_lmod_names(init: Option<&Snapshot>) -> BTreeSet<String> {
    init.map(|s| {
        s.env
            .keys()
            .filter(|k| k.starts_with("LMOD_") && !k.starts_with("LMOD_FAMILY_"))
            .cloned()
            .collect()
    })
    .unwrap_or_default()
}

/// Everything compared for one step, keyed `VAR`, `alias:NAME`, `function:NAME`.
fn public_view(s: &Snapshot, init_lmod: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in &s.env {
        if !is_internal_var(k, init_lmod) {
            m.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &s.aliases {
        m.insert(format!("alias:{k}"), v.clone());
    }
    for (k, v) in &s.functions {
        m.insert(format!("function:{k}"), v.clone());
    }
    m
}

#[derive(Debug)]
struct Difference {
    key: String,
    lmod: Option<String>,
    mlmod: Option<String>,
}

fn diff_views(
    lmod: &BTreeMap<String, String>,
    mlmod: &BTreeMap<String, String>,
) -> Vec<Difference> {
    let keys: BTreeSet<&String> = lmod.keys().chain(mlmod.keys()).collect();
    keys.into_iter()
        .filter(|k| lmod.get(*k) != mlmod.get(*k))
        .map(|k| Difference {
            key: k.clone(),
            lmod: lmod.get(k).cloned(),
            mlmod: mlmod.get(k).cloned(),
        })
        .collect()
}

fn pattern_matches(pattern: &str, s: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => pattern == s,
    }
}

fn known_difference(scenario: &str, key: &str) -> bool {
    KNOWN_DIFFERENCES
        .iter()
        .any(|(s, k, _)| pattern_matches(s, scenario) && pattern_matches(k, key))
}

// ---------------------------------------------------------------------------------------
// Report formatting
// ---------------------------------------------------------------------------------------

fn show_value(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "<unset>".to_string(),
    }
}

fn delimiter_of(a: &str, b: &str) -> Option<char> {
    [':', ';', ' ', ',']
        .into_iter()
        .find(|&d| a.contains(d) || b.contains(d))
}

/// A line-per-entry view of a difference in a path-like variable.
fn path_detail(a: &str, b: &str) -> Option<String> {
    let d = delimiter_of(a, b)?;
    let ea: Vec<&str> = a.split(d).collect();
    let eb: Vec<&str> = b.split(d).collect();
    if ea.len() < 2 && eb.len() < 2 {
        return None;
    }
    let sa: BTreeSet<&str> = ea.iter().copied().collect();
    let sb: BTreeSet<&str> = eb.iter().copied().collect();
    let only_a: Vec<&str> = ea.iter().copied().filter(|e| !sb.contains(e)).collect();
    let only_b: Vec<&str> = eb.iter().copied().filter(|e| !sa.contains(e)).collect();
    let mut s = String::new();
    if !only_a.is_empty() {
        let _ = write!(s, "only in lmod: {only_a:?}; ");
    }
    if !only_b.is_empty() {
        let _ = write!(s, "only in mlmod: {only_b:?}; ");
    }
    if only_a.is_empty() && only_b.is_empty() {
        if ea.len() != eb.len() {
            let _ = write!(
                s,
                "same entries, different counts ({} vs {}); ",
                ea.len(),
                eb.len()
            );
        } else {
            s.push_str("same entries, different order; ");
        }
    }
    let _ = writeln!(s, "split at {d:?}:");
    let w = ea.len().max(eb.len());
    for i in 0..w {
        let x = ea.get(i).copied().unwrap_or("");
        let y = eb.get(i).copied().unwrap_or("");
        let mark = if x == y { ' ' } else { '!' };
        let _ = writeln!(s, "        {mark} {i:>2}  {x:<50}  {y}");
    }
    Some(s)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut s = String::new();
    if start > 0 {
        let _ = writeln!(s, "[... {start} lines]");
    }
    for l in &lines[start..] {
        let _ = writeln!(s, "{l}");
    }
    s
}

fn head_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut s = String::new();
    for l in lines.iter().take(n) {
        let _ = writeln!(s, "{l}");
    }
    if lines.len() > n {
        let _ = writeln!(s, "[... {} more lines]", lines.len() - n);
    }
    s
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

// ---------------------------------------------------------------------------------------
// Scenarios and checks
// ---------------------------------------------------------------------------------------

/// An expectation on one side's result of a step, written after `#!` in scenario files.
#[derive(Clone, Debug, PartialEq)]
enum Check {
    /// `ok`: exit status 0.
    Ok,
    /// `fail`: exit status not 0.
    Fail,
    /// `unchanged`: public environment, aliases and functions as after the previous step.
    Unchanged,
    /// `same-as=N`: as after step N (0 = right after the init).
    SameAs(usize),
    /// `VAR=value`: the variable has exactly this value (`$T`-style names expanded).
    Var(String, String),
    /// `-VAR`: the variable is unset.
    Unset(String),
    /// `alias:NAME` / `-alias:NAME`, `function:NAME` / `-function:NAME`: present / absent.
    Present(String),
}

#[derive(Clone, Debug)]
struct Step {
    cmd: String,
    checks: Vec<Check>,
    line: usize,
}

#[derive(Clone, Debug)]
struct Scenario {
    name: String,
    file: String,
    line: usize,
    steps: Vec<Step>,
}

/// Splits a check list on whitespace; single quotes group (`VAR='a b'`).
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn parse_check(w: &str) -> Result<Check, String> {
    Ok(match w {
        "ok" => Check::Ok,
        "fail" => Check::Fail,
        "unchanged" => Check::Unchanged,
        _ => {
            if let Some(n) = w.strip_prefix("same-as=") {
                Check::SameAs(n.parse().map_err(|_| format!("bad step number in `{w}`"))?)
            } else if let Some(k) = w.strip_prefix('-') {
                if k.is_empty() {
                    return Err(format!("bad check `{w}`"));
                }
                Check::Unset(k.to_string())
            } else if let Some((k, v)) = w.split_once('=') {
                if k.is_empty() || k.contains(':') {
                    return Err(format!("bad check `{w}`"));
                }
                Check::Var(k.to_string(), v.to_string())
            } else if w.starts_with("alias:") || w.starts_with("function:") {
                Check::Present(w.to_string())
            } else {
                return Err(format!("unknown check `{w}`"));
            }
        }
    })
}

/// Parses the scenario format (see the top of `tests/data/scenarios.txt`).
fn parse_scenarios(text: &str, file: &str) -> Result<Vec<Scenario>, String> {
    let mut out: Vec<Scenario> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with("#!")) {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            let name = trimmed[1..trimmed.len() - 1].trim().to_string();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("{file}:{line}: bad scenario name `{name}`"));
            }
            if out.iter().any(|s| s.name == name) {
                return Err(format!("{file}:{line}: duplicate scenario `{name}`"));
            }
            out.push(Scenario {
                name,
                file: file.to_string(),
                line,
                steps: Vec::new(),
            });
            continue;
        }
        let Some(sc) = out.last_mut() else {
            return Err(format!("{file}:{line}: a step before the first [scenario]"));
        };
        let (cmd, checks) = match raw.split_once("#!") {
            Some((c, k)) => (c.trim(), k),
            None => (trimmed, ""),
        };
        if cmd.is_empty() {
            return Err(format!("{file}:{line}: checks without a command"));
        }
        let checks = split_words(checks)
            .and_then(|ws| {
                ws.iter()
                    .map(|w| parse_check(w))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| format!("{file}:{line}: {e}"))?;
        for c in &checks {
            if let Check::SameAs(n) = c {
                if *n > sc.steps.len() {
                    return Err(format!(
                        "{file}:{line}: same-as={n} refers to a later step (this is step {})",
                        sc.steps.len() + 1
                    ));
                }
            }
        }
        sc.steps.push(Step {
            cmd: cmd.to_string(),
            checks,
            line,
        });
    }
    if let Some(empty) = out.iter().find(|s| s.steps.is_empty()) {
        return Err(format!(
            "{file}:{}: scenario `{}` has no steps",
            empty.line, empty.name
        ));
    }
    Ok(out)
}

/// Replaces `$NAME` and `${NAME}` for the given shell variables.
fn expand_vars(s: &str, vars: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = vars.iter().collect();
    sorted.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut s = s.to_string();
    for (k, v) in sorted {
        s = s
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    s
}

/// For display only: writes the values of the scenario's shell variables as `$NAME`.
fn abbreviate(s: &str, vars: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = vars.iter().filter(|(_, v)| v.len() > 1).collect();
    sorted.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut s = s.to_string();
    for (k, v) in sorted {
        s = s.replace(v.as_str(), &format!("${k}"));
    }
    s
}

/// Evaluates a step's checks against one side; returns the failures.
fn run_checks(
    step: &Step,
    n: usize,
    snaps: &[Option<Snapshot>],
    init_lmod: &BTreeSet<String>,
    vars: &[(String, String)],
) -> Vec<String> {
    let mut fails = Vec::new();
    let Some(Some(snap)) = snaps.get(n) else {
        if !step.checks.is_empty() {
            fails.push("step did not run".to_string());
        }
        return fails;
    };
    let view = public_view(snap, init_lmod);
    let view_of = |k: usize| {
        snaps
            .get(k)
            .and_then(|s| s.as_ref())
            .map(|s| public_view(s, init_lmod))
    };
    for c in &step.checks {
        match c {
            Check::Ok if snap.status != 0 => {
                fails.push(format!("`ok`: exit status {}", snap.status))
            }
            Check::Fail if snap.status == 0 => fails.push("`fail`: exit status 0".to_string()),
            Check::Unchanged | Check::SameAs(_) => {
                let k = if let Check::SameAs(k) = c { *k } else { n - 1 };
                match view_of(k) {
                    None => fails.push(format!("step {k} missing")),
                    Some(prev) => {
                        let d = diff_views(&prev, &view);
                        if !d.is_empty() {
                            let mut s = format!("`{}`: differs from step {k}:", check_text(c));
                            for x in d {
                                let _ = write!(
                                    s,
                                    "\n        {}: step {k} {} now {}",
                                    x.key,
                                    show_value(&x.lmod),
                                    show_value(&x.mlmod)
                                );
                            }
                            fails.push(s);
                        }
                    }
                }
            }
            Check::Var(k, v) => {
                let want = expand_vars(v, vars);
                match view.get(k) {
                    Some(got) if *got == want => {}
                    got => fails.push(format!(
                        "`{k}={v}`: want {:?}, got {}",
                        want,
                        show_value(&got.cloned())
                    )),
                }
            }
            Check::Unset(k) => {
                if let Some(got) = view.get(k) {
                    fails.push(format!("`-{k}`: set to {got:?}"));
                }
            }
            Check::Present(k) if !view.contains_key(k) => {
                fails.push(format!("`{k}`: not defined"));
            }
            _ => {}
        }
    }
    fails
}

fn check_text(c: &Check) -> String {
    match c {
        Check::Ok => "ok".into(),
        Check::Fail => "fail".into(),
        Check::Unchanged => "unchanged".into(),
        Check::SameAs(n) => format!("same-as={n}"),
        Check::Var(k, v) => format!("{k}={v}"),
        Check::Unset(k) => format!("-{k}"),
        Check::Present(k) => k.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Comparing two runs of the same steps
// ---------------------------------------------------------------------------------------

/// The outcome of comparing one unit (a scenario, a module, a walk).
#[derive(Default)]
struct Outcome {
    /// Human-readable problems; empty when the unit passed.
    text: String,
    failed: bool,
    /// Differences waived by [`KNOWN_DIFFERENCES`].
    waived: usize,
}

/// Labels for the steps of a session: the unit each step belongs to (for reports and
/// known differences) and the text shown for it.
struct StepInfo {
    unit: String,
    cmd: String,
    checks: Vec<Check>,
    where_: String,
}

/// Compares the two sessions step by step. Returns one [`Outcome`] per unit, keyed by
/// unit name, in first-appearance order.
fn compare_sessions(
    infos: &[StepInfo],
    lmod: &SessionResult,
    mlmod: &SessionResult,
    vars: &[(String, String)],
) -> Vec<(String, Outcome)> {
    let mut init_lmod = init_lmod_names(lmod.snaps[0].as_ref());
    init_lmod.extend(init_lmod_names(mlmod.snaps[0].as_ref()));

    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut unit_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut get = |unit: &str, outcomes: &mut Vec<(String, Outcome)>| -> usize {
        *unit_index.entry(unit.to_string()).or_insert_with(|| {
            outcomes.push((unit.to_string(), Outcome::default()));
            outcomes.len() - 1
        })
    };

    // Session-level problems go to the first unit.
    let first_unit = infos
        .first()
        .map_or("init", |i| i.unit.as_str())
        .to_string();
    for (side, r) in [(Side::Lmod, lmod), (Side::Mlmod, mlmod)] {
        let idx = get(&first_unit, &mut outcomes);
        let o = &mut outcomes[idx].1;
        if let Some(p) = &r.problem {
            o.failed = true;
            let _ = writeln!(o.text, "  {}: {p}", side.label());
        }
        if !r.module_defined {
            o.failed = true;
            let init = r.snaps[0].as_ref();
            let _ = writeln!(
                o.text,
                "  {}: `module` is not a shell function after `{}` (status {}){}",
                side.label(),
                side.init(),
                init.map_or(-1, |s| s.status),
                init.filter(|s| !s.stderr.trim().is_empty())
                    .map(|s| format!(
                        "; its stderr:\n{}",
                        indent(&head_lines(s.stderr.trim_end(), 10), "      ")
                    ))
                    .unwrap_or_else(|| "; it printed nothing on stderr".to_string())
            );
        }
    }

    // Per-unit count of divergent steps shown in full.
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    const MAX_SHOWN: usize = 3;
    for n in 0..lmod.snaps.len().max(mlmod.snaps.len()) {
        let (unit, cmd, where_, checks) = if n == 0 {
            (
                first_unit.clone(),
                "<init>".to_string(),
                String::new(),
                Vec::new(),
            )
        } else {
            let i = &infos[n - 1];
            (
                i.unit.clone(),
                i.cmd.clone(),
                i.where_.clone(),
                i.checks.clone(),
            )
        };
        let idx = get(&unit, &mut outcomes);
        let o = &mut outcomes[idx].1;
        let a = lmod.snaps.get(n).and_then(|s| s.as_ref());
        let b = mlmod.snaps.get(n).and_then(|s| s.as_ref());
        let mut lines = String::new();

        // Expectations are checked on Lmod's run only: they pin down what Lmod does (and
        // keep the fixtures honest); mlmod is held to Lmod by the comparison below, which
        // also honours KNOWN_DIFFERENCES.
        if n > 0 && !checks.is_empty() && a.is_some() {
            let step = Step {
                cmd: cmd.clone(),
                checks: checks.clone(),
                line: 0,
            };
            for f in run_checks(&step, n, &lmod.snaps, &init_lmod, vars) {
                let f = abbreviate(&f, vars);
                let _ = writeln!(
                    lines,
                    "    expectation failed on {} (the scenario file disagrees with Lmod): {f}",
                    Side::Lmod.label()
                );
            }
        }

        match (a, b) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                let missing = if a.is_none() { Side::Lmod } else { Side::Mlmod };
                let _ = writeln!(lines, "    step did not run on {}", missing.label());
            }
            (Some(a), Some(b)) => {
                if a.status != b.status && !known_difference(&unit, "status") {
                    let _ = writeln!(lines, "    status: lmod {}, mlmod {}", a.status, b.status);
                } else if a.status != b.status {
                    o.waived += 1;
                }
                let mut diffs =
                    diff_views(&public_view(a, &init_lmod), &public_view(b, &init_lmod));
                let before = diffs.len();
                diffs.retain(|d| !known_difference(&unit, &d.key));
                o.waived += before - diffs.len();
                const MAX_VARS: usize = 12;
                for d in diffs.iter().take(MAX_VARS) {
                    let short = |v: &Option<String>| v.as_ref().map(|v| abbreviate(v, vars));
                    let (l, m) = (short(&d.lmod), short(&d.mlmod));
                    let _ = writeln!(
                        lines,
                        "    {}:\n      lmod   {}\n      mlmod  {}",
                        d.key,
                        show_value(&l),
                        show_value(&m)
                    );
                    if let (Some(x), Some(y)) = (&l, &m) {
                        if let Some(detail) = path_detail(x, y) {
                            let _ = write!(lines, "      {detail}");
                        }
                    }
                }
                if diffs.len() > MAX_VARS {
                    let rest: Vec<String> = diffs[MAX_VARS..]
                        .iter()
                        .map(|d| {
                            let side = match (&d.lmod, &d.mlmod) {
                                (Some(_), None) => " (only lmod)",
                                (None, Some(_)) => " (only mlmod)",
                                _ => "",
                            };
                            format!("{}{side}", d.key)
                        })
                        .collect();
                    let _ = writeln!(
                        lines,
                        "    ... and {} more differences: {}",
                        rest.len(),
                        rest.join(", ")
                    );
                }
            }
        }

        if !lines.is_empty() {
            o.failed = true;
            let count = shown.entry(unit.clone()).or_insert(0);
            *count += 1;
            if *count <= MAX_SHOWN {
                let _ = writeln!(o.text, "  step {n} `{cmd}`{where_}:");
                o.text.push_str(&lines);
                for (side, s) in [(Side::Lmod, a), (Side::Mlmod, b)] {
                    if let Some(s) = s {
                        let out = abbreviate(&format!("{}{}", s.stdout, s.stderr), vars);
                        if !out.trim().is_empty() {
                            let _ = write!(
                                o.text,
                                "    {} output:\n{}",
                                side.label(),
                                indent(&head_lines(out.trim_end(), 12), "      | ")
                            );
                        }
                    }
                }
            } else if *count == MAX_SHOWN + 1 {
                let _ = writeln!(
                    o.text,
                    "  (later differing steps of this unit are not shown)"
                );
            }
        }
    }
    outcomes
}

/// Collects unit outcomes into a report; panics at the end when anything failed.
struct Report {
    test: &'static str,
    text: String,
    units: usize,
    failed: Vec<String>,
    waived: usize,
}

impl Report {
    fn new(test: &'static str) -> Self {
        Report {
            test,
            text: String::new(),
            units: 0,
            failed: Vec::new(),
            waived: 0,
        }
    }

    fn add(&mut self, unit: &str, location: &str, o: Outcome) {
        self.units += 1;
        self.waived += o.waived;
        if o.failed {
            if self.failed.len() < 25 {
                let _ = writeln!(self.text, "\n=== {unit}{location}: lmod and mlmod differ");
                self.text.push_str(&o.text);
            }
            self.failed.push(unit.to_string());
        }
    }

    fn finish(self) {
        let mode = if self_mode() {
            " (self mode: both sides are Lmod)"
        } else {
            ""
        };
        if self.failed.is_empty() {
            eprintln!(
                "{}: {} units agree{mode}{}",
                self.test,
                self.units,
                if self.waived > 0 {
                    format!(", {} known differences waived", self.waived)
                } else {
                    String::new()
                }
            );
            return;
        }
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mlmod-diff-{}.txt", self.test));
        let mut full = self.text.clone();
        if self.failed.len() > 25 {
            let _ = writeln!(
                full,
                "\n({} more failing units not shown in detail)",
                self.failed.len() - 25
            );
        }
        let _ = writeln!(
            full,
            "\n{}: {} of {} units differ{mode}: {}",
            self.test,
            self.failed.len(),
            self.units,
            self.failed.join(", ")
        );
        let _ = fs::write(&path, &full);
        eprintln!("{full}");
        panic!(
            "{}: {} of {} units differ between Lmod and mlmod (report above and in {})",
            self.test,
            self.failed.len(),
            self.units,
            path.display()
        );
    }
}

/// Runs both sides of `sessions` (`(vars, steps)` each) with at most `jobs()` shells at a
/// time. Returns `(lmod, mlmod)` per session, in order.
fn run_pairs(root: &Path, sessions: &[SessionSpec]) -> Vec<(SessionResult, SessionResult)> {
    let mut work: Vec<(usize, Side)> = Vec::new();
    for i in 0..sessions.len() {
        for side in SIDES {
            work.push((i, side));
        }
    }
    let queue = Arc::new(Mutex::new(work.into_iter()));
    let results: Arc<Mutex<BTreeMap<(usize, u8), SessionResult>>> = Arc::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs().min(sessions.len() * 2).max(1) {
            let queue = Arc::clone(&queue);
            let results = Arc::clone(&results);
            scope.spawn(move || loop {
                let Some((i, side)) = queue.lock().unwrap().next() else {
                    break;
                };
                let dir = root.join(format!("{i}-{}", side.label().split('(').next().unwrap()));
                fs::create_dir_all(&dir).expect("create session dir");
                let (vars, steps) = &sessions[i];
                let r = run_session(side, vars, steps, &dir);
                results.lock().unwrap().insert((i, side as u8), r);
            });
        }
    });
    let mut results = Arc::try_unwrap(results).unwrap().into_inner().unwrap();
    (0..sessions.len())
        .map(|i| {
            (
                results.remove(&(i, Side::Lmod as u8)).unwrap(),
                results.remove(&(i, Side::Mlmod as u8)).unwrap(),
            )
        })
        .collect()
}

/// With `MLMOD_DIFF_TRACE`, prints what each step changed on the Lmod side.
fn trace(title: &str, infos: &[StepInfo], r: &SessionResult) {
    if !env_flag("MLMOD_DIFF_TRACE") {
        return;
    }
    let init_lmod = init_lmod_names(r.snaps[0].as_ref());
    let mut s = format!("--- trace {title} (lmod)\n");
    let mut prev = r.snaps[0]
        .as_ref()
        .map(|x| public_view(x, &init_lmod))
        .unwrap_or_default();
    for (n, info) in infos.iter().enumerate() {
        let Some(snap) = r.snaps.get(n + 1).and_then(|x| x.as_ref()) else {
            let _ = writeln!(s, "  {} `{}`: did not run", n + 1, info.cmd);
            break;
        };
        let view = public_view(snap, &init_lmod);
        let _ = writeln!(s, "  {} `{}` -> status {}", n + 1, info.cmd, snap.status);
        for d in diff_views(&prev, &view) {
            let _ = writeln!(s, "      {} = {}", d.key, show_value(&d.mlmod));
        }
        prev = view;
    }
    eprint!("{s}");
}

// ---------------------------------------------------------------------------------------
// Test: fixture scenarios
// ---------------------------------------------------------------------------------------

fn load_scenarios() -> Vec<Scenario> {
    let path = data_dir().join("scenarios.txt");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_scenarios(&text, "scenarios.txt").unwrap_or_else(|e| panic!("{e}"))
}

fn trees_dir() -> PathBuf {
    fs::canonicalize(data_dir().join("trees")).expect("tests/data/trees exists")
}

/// The scenario file is well-formed and refers only to fixture trees that exist. Runs
/// without Lmod.
#[test]
fn scenario_file_is_valid() {
    let scenarios = load_scenarios();
    assert!(scenarios.len() >= 20, "only {} scenarios", scenarios.len());
    let trees = trees_dir();
    for sc in &scenarios {
        for st in &sc.steps {
            for word in st.cmd.split_whitespace() {
                if let Some(rest) = word.strip_prefix("$T/") {
                    let p = trees.join(rest.trim_end_matches(';'));
                    assert!(
                        p.exists(),
                        "scenarios.txt:{}: {} does not exist",
                        st.line,
                        p.display()
                    );
                }
            }
        }
    }
    let walks =
        fs::read_to_string(data_dir().join("spack_walks.txt")).expect("read spack_walks.txt");
    let walks = parse_scenarios(&walks, "spack_walks.txt").unwrap_or_else(|e| panic!("{e}"));
    assert!(!walks.is_empty());
}

#[test]
fn parsers_handle_awkward_input() {
    let env = parse_env("A=1\0B=x=y\0C=line1\nline2\0EMPTY=\0");
    assert_eq!(env["B"], "x=y");
    assert_eq!(env["C"], "line1\nline2");
    assert_eq!(env["EMPTY"], "");
    let al = parse_aliases("alias a='ls -l'\nalias b='x\ny'\nalias c='it'\\''s'\n");
    assert_eq!(al["a"], "'ls -l'");
    assert_eq!(al["b"], "'x\ny'");
    assert_eq!(al["c"], r"'it'\''s'");
    let f = parse_functions(
        "declare -f f\ndeclare -fx g\n",
        "f\0f () \n{ \n    echo f\n}\n\0g\0g () \n{ \n    :\n}\n\0",
    );
    assert_eq!(f["f"], "f () \n{ \n    echo f\n}");
    assert!(f["g"].starts_with("(exported) "));
    assert_eq!(
        split_words("ok A='x y' -B").unwrap(),
        vec!["ok", "A=x y", "-B"]
    );
    let sc = parse_scenarios("# c\n[a]\nmodule load x #! ok X=1 same-as=0\n", "t").unwrap();
    assert_eq!(
        sc[0].steps[0].checks,
        vec![
            Check::Ok,
            Check::Var("X".into(), "1".into()),
            Check::SameAs(0)
        ]
    );
    assert!(parse_scenarios("[a]\nfoo #! same-as=3\n", "t").is_err());
    assert!(parse_scenarios("foo\n", "t").is_err());
    let lm = BTreeSet::from(["LMOD_CMD".to_string()]);
    assert!(is_internal_var("_ModuleTable001_", &lm));
    assert!(is_internal_var("__LMOD_REF_COUNT_PATH", &lm));
    assert!(is_internal_var("LMOD_CMD", &lm));
    assert!(is_internal_var("__MLMOD_STATE", &lm));
    assert!(!is_internal_var("LMOD_FAMILY_COMPILER", &lm));
    assert!(!is_internal_var("LMOD_MPI_NAME", &lm));
    assert!(!is_internal_var("PATH", &lm));
    assert!(path_detail("/a:/b", "/b:/a")
        .unwrap()
        .contains("different order"));
    assert_eq!(
        expand_vars("$T/x:${T}/y", &[("T".into(), "/t".into())]),
        "/t/x:/t/y"
    );
}

#[test]
fn scenarios() {
    if !lmod_available("scenarios") {
        return;
    }
    let scenarios: Vec<Scenario> = load_scenarios()
        .into_iter()
        .filter(|s| only_filter(&s.name))
        .collect();
    let trees = trees_dir();
    let vars = vec![("T".to_string(), trees.to_string_lossy().into_owned())];
    let root = scratch_dir("scenarios");
    let sessions: Vec<SessionSpec> = scenarios
        .iter()
        .map(|sc| {
            (
                vars.clone(),
                sc.steps.iter().map(|s| s.cmd.clone()).collect(),
            )
        })
        .collect();
    let start = Instant::now();
    let results = run_pairs(&root, &sessions);
    let mut report = Report::new("scenarios");
    let mut lmod_time = Duration::ZERO;
    let mut mlmod_time = Duration::ZERO;
    for (sc, (l, m)) in scenarios.iter().zip(&results) {
        lmod_time += l.wall;
        mlmod_time += m.wall;
        let infos: Vec<StepInfo> = sc
            .steps
            .iter()
            .map(|s| StepInfo {
                unit: sc.name.clone(),
                cmd: s.cmd.clone(),
                checks: s.checks.clone(),
                where_: format!(" ({}:{})", sc.file, s.line),
            })
            .collect();
        trace(&sc.name, &infos, l);
        for (unit, o) in compare_sessions(&infos, l, m, &vars) {
            report.add(&unit, &format!(" ({}:{})", sc.file, sc.line), o);
        }
    }
    eprintln!(
        "scenarios: {} scenarios, {} commands; shell time lmod {:.1} s, {} {:.1} s; wall {:.1} s",
        scenarios.len(),
        sessions.iter().map(|s| s.1.len()).sum::<usize>(),
        lmod_time.as_secs_f64(),
        Side::Mlmod.label(),
        mlmod_time.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    remove_scratch(&root);
    report.finish();
}

// ---------------------------------------------------------------------------------------
// Test: every visible module of the EasyBuild tree
// ---------------------------------------------------------------------------------------

/// Names from `module -t avail` output: drops headers (`DIR:`) and directories (`NAME/`),
/// strips markers such as `(@target)` or `(D)`.
fn parse_terse_avail(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with(':') && !l.ends_with('/'))
        .map(|l| match l.find('(') {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The default sample: every 16th visible module. Lmod 8.6 needs 0.3 to 1 s per
/// `module load` of this tree here (0.54 s per command on average, purges included),
/// so every 8th module (396 of 3167, 794 commands) took 213 s on 2 cores; every 16th
/// keeps the whole default run near 2 minutes. `MLMOD_DIFF_STRIDE=8` or
/// `MLMOD_DIFF_FULL=1` for more.
const DEFAULT_STRIDE: usize = 16;

#[test]
fn easybuild_tree() {
    if !lmod_available("easybuild_tree") {
        return;
    }
    let eb = modulefiles_dir().join("easybuild");
    if !eb.is_dir() {
        eprintln!(
            "SKIPPED easybuild_tree: {} not found (set MLMOD_MODULEFILES_DIR)",
            eb.display()
        );
        return;
    }
    let eb = fs::canonicalize(&eb).unwrap();
    let vars = vec![("EB".to_string(), eb.to_string_lossy().into_owned())];
    let root = scratch_dir("easybuild");

    // The list of visible modules, from Lmod.
    let list_dir = root.join("list");
    fs::create_dir_all(&list_dir).unwrap();
    let t = Instant::now();
    let listing = run_session(
        Side::Lmod,
        &vars,
        &["module use \"$EB\"".into(), "module -t avail".into()],
        &list_dir,
    );
    let avail_time = t.elapsed();
    let avail = listing
        .snaps
        .get(2)
        .and_then(|s| s.as_ref())
        .map(|s| format!("{}{}", s.stdout, s.stderr))
        .unwrap_or_else(|| panic!("`module -t avail` under Lmod failed: {:?}", listing.problem));
    let all = parse_terse_avail(&avail);
    assert!(
        !all.is_empty(),
        "`module -t avail` listed nothing:\n{avail}"
    );

    let full = env_flag("MLMOD_DIFF_FULL");
    let stride = if full {
        1
    } else {
        env_usize("MLMOD_DIFF_STRIDE")
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_STRIDE)
    };
    let sample: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % stride == 0)
        .map(|(_, m)| m.clone())
        .filter(|m| only_filter(m))
        .collect();

    if sample.is_empty() {
        eprintln!("easybuild walk: MLMOD_DIFF_ONLY matches no module; nothing to compare");
        return;
    }
    // A few shells, each running `module load X; module purge` for its share.
    let nshells = jobs().min(sample.len()).max(1);
    let mut chunks: Vec<Vec<String>> = vec![Vec::new(); nshells];
    for (i, m) in sample.iter().enumerate() {
        chunks[i % nshells].push(m.clone());
    }
    let mut sessions = Vec::new();
    let mut all_infos = Vec::new();
    for chunk in &chunks {
        let mut steps = vec!["module use \"$EB\"".to_string()];
        let mut infos = vec![StepInfo {
            unit: format!("easybuild:{}", chunk[0]),
            cmd: steps[0].clone(),
            checks: vec![Check::Ok],
            where_: String::new(),
        }];
        for m in chunk {
            // Each module in a subshell: a unit starts from the same environment on
            // both sides even when one side leaves something behind after `purge`
            // (Lmod does, for modules that load another version of their own name).
            for (cmd, prefix) in [
                (format!("module load {}", sh_quote(m)), SUBSHELL_OPEN),
                ("module purge".to_string(), SUBSHELL_CLOSE),
            ] {
                infos.push(StepInfo {
                    unit: format!("easybuild:{m}"),
                    cmd: cmd.clone(),
                    checks: Vec::new(),
                    where_: String::new(),
                });
                steps.push(format!("{prefix}{cmd}"));
            }
        }
        sessions.push((vars.clone(), steps));
        all_infos.push(infos);
    }

    let start = Instant::now();
    let results = run_pairs_concurrently(&root, &sessions);
    let wall = start.elapsed();
    let mut report = Report::new("easybuild_tree");
    let (mut lt, mut mt) = (Duration::ZERO, Duration::ZERO);
    for (infos, (l, m)) in all_infos.iter().zip(&results) {
        lt = lt.max(l.wall);
        mt = mt.max(m.wall);
        for (unit, o) in compare_sessions(infos, l, m, &vars) {
            report.add(&unit, "", o);
        }
    }
    let ncmd = sample.len() * 2 + nshells;
    eprintln!(
        "easybuild_tree: {} of {} visible modules (every {}{}), {} commands in {} shells per side; \
         `module -t avail` under Lmod {:.2} s; lmod {:.1} s ({:.0} ms/command/shell), {} {:.1} s; wall {:.1} s",
        sample.len(),
        all.len(),
        if stride == 1 {
            "one".to_string()
        } else {
            format!("{stride}th")
        },
        if full {
            ", MLMOD_DIFF_FULL"
        } else {
            "; MLMOD_DIFF_FULL=1 for all"
        },
        ncmd,
        nshells,
        avail_time.as_secs_f64(),
        lt.as_secs_f64(),
        lt.as_secs_f64() * 1000.0 * nshells as f64 / ncmd as f64,
        Side::Mlmod.label(),
        mt.as_secs_f64(),
        wall.as_secs_f64()
    );
    remove_scratch(&root);
    report.finish();
}

/// Like [`run_pairs`] but starts every shell at once (the sessions are already split
/// into `jobs()` chunks), so the fast side does not queue behind the slow one.
fn run_pairs_concurrently(
    root: &Path,
    sessions: &[SessionSpec],
) -> Vec<(SessionResult, SessionResult)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(i, (vars, steps))| {
                let run = move |side: Side| {
                    let dir = root.join(format!("{i}-{}", side.label().split('(').next().unwrap()));
                    fs::create_dir_all(&dir).expect("create session dir");
                    run_session(side, vars, steps, &dir)
                };
                (
                    scope.spawn(move || run(Side::Lmod)),
                    scope.spawn(move || run(Side::Mlmod)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------
// Test: walks through the Spack hierarchy
// ---------------------------------------------------------------------------------------

/// The absolute prefix that Spack wrote into the modulefiles' MODULEPATH entries.
const SPACK_PREFIX: &str = "/u/local/spack/0.12/share/spack/lmod/linux-centos7-x86_64";

/// Copies `src` to `dst`, rewriting `from` to `to` in every regular file.
fn copy_rewriting(src: &Path, dst: &Path, from: &str, to: &str) -> io::Result<usize> {
    let mut n = 0;
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let target = dst.join(entry.file_name());
        if ty.is_dir() {
            n += copy_rewriting(&entry.path(), &target, from, to)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            let bytes = fs::read(entry.path())?;
            match String::from_utf8(bytes) {
                Ok(text) => fs::write(&target, text.replace(from, to))?,
                Err(e) => fs::write(&target, e.into_bytes())?,
            }
            n += 1;
        }
    }
    Ok(n)
}

#[test]
fn spack_hierarchy() {
    if !lmod_available("spack_hierarchy") {
        return;
    }
    let src = modulefiles_dir().join("spack").join("linux-centos7-x86_64");
    if !src.is_dir() {
        eprintln!(
            "SKIPPED spack_hierarchy: {} not found (set MLMOD_MODULEFILES_DIR)",
            src.display()
        );
        return;
    }
    let root = scratch_dir("spack");
    let tree = root.join("linux-centos7-x86_64");
    let nfiles = copy_rewriting(&src, &tree, SPACK_PREFIX, &tree.to_string_lossy())
        .expect("copy the spack tree");
    let vars = vec![("SPACK".to_string(), tree.to_string_lossy().into_owned())];

    let text = fs::read_to_string(data_dir().join("spack_walks.txt")).unwrap();
    let walks: Vec<Scenario> = parse_scenarios(&text, "spack_walks.txt")
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|s| only_filter(&s.name))
        .collect();
    let sessions: Vec<_> = walks
        .iter()
        .map(|w| {
            (
                vars.clone(),
                w.steps.iter().map(|s| s.cmd.clone()).collect::<Vec<_>>(),
            )
        })
        .collect();
    let runs = root.join("runs");
    let start = Instant::now();
    let results = run_pairs(&runs, &sessions);
    let mut report = Report::new("spack_hierarchy");
    let (mut lt, mut mt) = (Duration::ZERO, Duration::ZERO);
    for (w, (l, m)) in walks.iter().zip(&results) {
        lt += l.wall;
        mt += m.wall;
        let infos: Vec<StepInfo> = w
            .steps
            .iter()
            .map(|s| StepInfo {
                unit: format!("spack:{}", w.name),
                cmd: s.cmd.clone(),
                checks: s.checks.clone(),
                where_: format!(" ({}:{})", w.file, s.line),
            })
            .collect();
        trace(&w.name, &infos, l);
        for (unit, o) in compare_sessions(&infos, l, m, &vars) {
            report.add(&unit, &format!(" ({}:{})", w.file, w.line), o);
        }
    }
    eprintln!(
        "spack_hierarchy: {} walks, {} commands over a copy of {} modulefiles; shell time lmod {:.1} s, {} {:.1} s; wall {:.1} s",
        walks.len(),
        sessions.iter().map(|s| s.1.len()).sum::<usize>(),
        nfiles,
        lt.as_secs_f64(),
        Side::Mlmod.label(),
        mt.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    remove_scratch(&root);
    report.finish();
}

// ---------------------------------------------------------------------------------------
// Test: listings print Lmod's module names
// ---------------------------------------------------------------------------------------

/// Runs `module ARGS` on one side in a clean bash with the easybuild tree on
/// MODULEPATH; its stdout and stderr together.
fn listing_output(side: Side, eb: &Path, home: &Path, args: &str) -> String {
    let init = match side {
        Side::Lmod => format!("source {LMOD_INIT}"),
        Side::Mlmod => format!("eval \"$({} init bash)\"", sh_quote(&mlmod_bin())),
    };
    let script = format!(
        "{init}; module use {}; module {args}",
        sh_quote(&eb.to_string_lossy())
    );
    let out = std::process::Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin", "LMOD_IGNORE_CACHE=1"])
        .arg(format!("HOME={}", home.display()))
        .args(["bash", "--noprofile", "--norc", "-c", &script])
        .output()
        .expect("run bash");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The module names and full names in a listing, in order of first appearance: every
/// word (markers such as `(D)` and trailing `:` or `,` cut off) that is one of
/// `known`. Layout, wrapping and help texts do not matter.
fn names_in(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        let w = w.split('(').next().unwrap_or(w);
        let w = w.trim_end_matches([':', ',']);
        if known.contains(w) && seen.insert(w.to_string()) {
            out.push(w.to_string());
        }
    }
    out
}

/// `spider` (alone, with a name, a full name, a partial version or a search text,
/// terse or not) and `keyword` print exactly Lmod's text on the easybuild tree and on
/// the Spack hierarchy (its MODULEPATH entries rewritten to a scratch copy); filtered
/// `avail`, whose columns differ (docs/compat.md), prints the same module names.
#[test]
fn listings_print_lmods_text() {
    if !lmod_available("listings_print_lmods_text") {
        return;
    }
    let eb = modulefiles_dir().join("easybuild");
    let spack = modulefiles_dir().join("spack").join("linux-centos7-x86_64");
    if !eb.is_dir() || !spack.is_dir() {
        eprintln!(
            "SKIPPED listings_print_lmods_text: {} or {} not found (set MLMOD_MODULEFILES_DIR)",
            eb.display(),
            spack.display()
        );
        return;
    }
    let eb = fs::canonicalize(&eb).unwrap();
    let root = scratch_dir("listings");
    let sp = root.join("spack");
    copy_rewriting(&spack, &sp, SPACK_PREFIX, &sp.to_string_lossy()).expect("copy spack");
    let (lmod_home, mlmod_home) = (root.join("lmod"), root.join("mlmod"));
    fs::create_dir_all(&lmod_home).unwrap();
    fs::create_dir_all(&mlmod_home).unwrap();
    let terse = listing_output(Side::Lmod, &eb, &lmod_home, "-t avail");
    let mut known: BTreeSet<String> = BTreeSet::new();
    for n in parse_terse_avail(&terse) {
        if let Some((sn, _)) = n.rsplit_once('/') {
            known.insert(sn.to_string());
        }
        known.insert(n);
    }
    assert!(known.len() > 3000, "Lmod listed {} names", known.len());
    let core = sp.join("Core");
    let cases: Vec<(&Path, &str)> = vec![
        (&eb, "spider"),
        (&eb, "spider Java"),
        (&eb, "spider Java/11.0.2"),
        (&eb, "spider Java/11"),
        (&eb, "spider Jav"),
        (&eb, "spider python"),
        (&eb, "spider Python"),
        (&eb, "-t spider Jav"),
        (&eb, "keyword bzip2"),
        (&eb, "keyword compiler"),
        (&eb, "avail Java/1"),
        (&eb, "-t avail GCC"),
        (&core, "spider"),
        (&core, "spider hdf5"),
        (&core, "spider netlib"),
        (&core, "spider 2.3"),
        (&core, "keyword mpi"),
    ];
    let mut failures = Vec::new();
    for (tree, c) in &cases {
        let l = listing_output(Side::Lmod, tree, &lmod_home, c);
        let m = listing_output(Side::Mlmod, tree, &mlmod_home, c);
        assert!(
            !names_in(&l, &known).is_empty() || tree != &eb.as_path(),
            "`module {c}` under Lmod named no module:\n{l}"
        );
        if c.starts_with("avail") || c.starts_with("-t avail") {
            // Names only here; the layout is compared in messages_print_lmods_text.
            let (mut ln, mut mn) = (names_in(&l, &known), names_in(&m, &known));
            ln.sort();
            mn.sort();
            if ln != mn {
                failures.push(format!("module {c}:\n  Lmod:  {ln:?}\n  mlmod: {mn:?}"));
            }
        } else if l != m {
            let first = l
                .lines()
                .zip(m.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(l.lines().count().min(m.lines().count()));
            failures.push(format!(
                "module {c} (in {}): first difference at line {}:\n  Lmod:  {:?}\n  mlmod: {:?}",
                tree.display(),
                first + 1,
                l.lines().nth(first),
                m.lines().nth(first)
            ));
        }
    }
    remove_scratch(&root);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Test: messages and per-module texts as Lmod prints them
// ---------------------------------------------------------------------------------------

/// A message compared for its words: mlmod's own prefixes (`mlmod has detected the
/// following error:`, `mlmod Warning:`) read as Lmod's, and every run of white space
/// as one blank, since mlmod does not wrap messages at the terminal width
/// (docs/compat.md).
fn message_words(text: &str) -> String {
    text.replace(
        "mlmod has detected the following error:",
        "Lmod has detected the following error:",
    )
    .replace("mlmod Warning:", "Lmod Warning:")
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

/// `help` and `whatis` of modulefiles that fail after giving their texts (easybuild
/// `IRIS/2.0.1`, fixtures in `tests/data/trees/failing`), `spider` with several names,
/// `keyword` (its header, no match, no word, `-t`), the column layouts of `list`,
/// `avail` and `describe`, and the messages for names not found (`load`, `spider`, `show`, `help`, `whatis`)
/// are Lmod's: the texts byte for byte, the messages word for word.
#[test]
fn messages_print_lmods_text() {
    if !lmod_available("messages_print_lmods_text") {
        return;
    }
    let eb = modulefiles_dir().join("easybuild");
    let failing = fs::canonicalize(trees_dir().join("failing")).unwrap();
    let root = scratch_dir("messages");
    let (lmod_home, mlmod_home) = (root.join("lmod"), root.join("mlmod"));
    fs::create_dir_all(&lmod_home).unwrap();
    fs::create_dir_all(&mlmod_home).unwrap();
    // (tree, arguments, compared byte for byte)
    let mut cases: Vec<(PathBuf, &str, bool)> = vec![
        (failing.clone(), "help late/1.0", true),
        (failing.clone(), "whatis late/1.0", true),
        (failing.clone(), "help early/1.0", true),
        (failing.clone(), "whatis early/1.0", true),
        (failing.clone(), "whatis late/1.0 early/1.0", true),
        (failing.clone(), "help late/1.0 nosuch early/1.0", false),
        (failing.clone(), "whatis nosuch", false),
        (failing.clone(), "show nosuch", false),
        (failing.clone(), "load nosuch", false),
        (failing.clone(), "spider nosuch", false),
        (failing.clone(), "spider late/1.0 nosuch", false),
        // Nothing loaded: Lmod refuses to save an empty collection unless forced.
        (failing.clone(), "save nothing-here; echo status=$?", false),
    ];
    // Global aliases, sorted symbolic versions, hidden modules with --show_hidden
    // (avail marks them H; spider lists them), and terse listings without
    // "(default)", on the versions tree.
    let versions = fs::canonicalize(trees_dir().join("versions")).unwrap();
    for c in [
        "avail",
        "avail hid",
        "avail aliased",
        "avail mlal",
        "-t avail",
        "-t avail aliased",
        "--show_hidden avail",
        "--show_hidden avail hid dot",
        "-t --show_hidden avail hid dot",
        "-d avail",
        "--show_hidden spider",
        "-t --show_hidden spider",
        "--show_hidden spider hid",
        "--show_hidden spider hid/3.0",
        "--show_hidden spider dot",
        // `-r`: Lua patterns, each name found reported alone; an exact name is a
        // name search.
        "-r spider ^ord",
        "-r spider 'ord[12]$'",
        "-t -r spider ^ord",
        "-r spider ord1",
        "-r avail 'ord%d0'",
    ] {
        cases.push((versions.clone(), c, true));
    }
    if eb.is_dir() {
        let eb = fs::canonicalize(&eb).unwrap();
        cases.extend([
            (eb.clone(), "help IRIS", true),
            (eb.clone(), "whatis IRIS", true),
            (eb.clone(), "spider IRIS/2.0.1", true),
            (eb.clone(), "help zlib/1.2.11-GCCcore-11.2.0 bzip2", true),
            (eb.clone(), "whatis zlib/1.2.11-GCCcore-11.2.0 bzip2/1.0.8-GCCcore-11.2.0", true),
            (eb.clone(), "spider Java/11.0.2 bzip2/1.0.8-GCCcore-11.2.0", true),
            (eb.clone(), "-t spider Java/11 bzip2", true),
            (eb.clone(), "spider Java/99", false),
            // Lmod names several unknown names in its hash table's order, mlmod in
            // the order typed: one unknown name with a known one here.
            (eb.clone(), "load zzqq zlib/1.2.11-GCCcore-11.2.0", false),
            (eb.clone(), "keyword BZIP2 compiler", true),
            (eb.clone(), "-t keyword bzip2", true),
            (eb.clone(), "keyword zzzqq", true),
            (eb.clone(), "-r spider '^GCC'", true),
            (eb.clone(), "-r avail '^Py'", true),
            (eb.clone(), "keyword", true),
            // ColumnTable layouts: list (numbers past 99), avail with its markers,
            // legend and tail, describe.
            (eb.clone(), "load Java/11 foss/2021b; module list", true),
            // Lmod gives no notice for Pysam, loaded and replaced within this load.
            (eb.clone(), "load IRIS; module list", true),
            (
                eb.clone(),
                "load Pysam/0.18.0-GCC-11.2.0; module load IRIS",
                true,
            ),
            (eb.clone(), "load Java/11; module avail", true),
            (eb.clone(), "avail Java", true),
            (eb.clone(), "-d avail", true),
            (eb.clone(), "avail zzz", true),
            (
                eb.clone(),
                "load zlib/1.2.11-GCCcore-11.2.0 bzip2/1.0.8-GCCcore-11.2.0; module save >/dev/null 2>&1; module describe",
                true,
            ),
        ]);
    } else {
        eprintln!(
            "messages_print_lmods_text: {} not found; its cases skipped",
            eb.display()
        );
    }
    let mut failures = Vec::new();
    for (tree, c, exact) in &cases {
        let l = listing_output(Side::Lmod, tree, &lmod_home, c);
        let m = listing_output(Side::Mlmod, tree, &mlmod_home, c);
        let same = if *exact {
            l == m
        } else {
            message_words(&l) == message_words(&m)
        };
        if !same {
            failures.push(format!(
                "module {c} (in {}):\n--- Lmod:\n{l}\n--- mlmod:\n{m}",
                tree.display()
            ));
        }
    }
    remove_scratch(&root);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Bad input: Lua syntax and runtime errors name the file and line, `LmodError` names
//! the file, an unknown module suggests close names; every failing command returns a
//! non-zero status and changes nothing (it renders no change, only `false`).

use std::path::PathBuf;
use std::process::Command;

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/trees/basic")
}

/// Runs `mlmod bash ARGS` with MODULEPATH = the basic fixture tree; returns (stdout, stderr).
fn mlmod(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .arg("bash")
        .args(args)
        .env_clear()
        .env("MODULEPATH", tree())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run mlmod");
    assert!(
        out.status.success(),
        "mlmod itself exits 0; the eval'd code carries the status"
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `mlmod bash ARGS` with MODULEPATH = `root` in an empty environment; returns
/// (stdout, stderr).
fn mlmod_on(root: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .arg("bash")
        .args(args)
        .env_clear()
        .env("MODULEPATH", root)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run mlmod");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A failed command renders only `false;`: no variable reaches the shell.
fn assert_failed_cleanly(stdout: &str) {
    assert_eq!(stdout, "false;\n", "a failing command must change nothing");
}

#[test]
fn syntax_error_names_file_and_line() {
    let (out, err) = mlmod(&["load", "bad"]);
    assert_failed_cleanly(&out);
    let file = tree().join("bad/1.0.lua");
    // bad/1.0.lua line 2 is `this is not ( valid lua`.
    assert!(err.contains(&format!("{}:2:", file.display())), "{err}");
}

#[test]
fn runtime_error_names_full_file_and_line_without_traceback() {
    let (out, err) = mlmod(&["load", "rterr"]);
    assert_failed_cleanly(&out);
    let file = tree().join("rterr/1.0.lua");
    // rterr/1.0.lua line 3 indexes a nil local.
    assert!(
        err.contains(&format!(
            "{}:3: attempt to index a nil value",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("stack traceback"), "{err}");
}

#[test]
fn lmod_error_names_the_file() {
    let (out, err) = mlmod(&["load", "err"]);
    assert_failed_cleanly(&out);
    assert!(
        err.contains(&format!(
            "{}: err refuses to load",
            tree().join("err/1.0.lua").display()
        )),
        "{err}"
    );
}

#[test]
fn an_error_anywhere_in_one_command_loads_nothing() {
    // env/1.0 would set variables, but the command also names a missing module.
    let (out, err) = mlmod(&["load", "env/1.0", "no-such-module"]);
    assert_failed_cleanly(&out);
    assert!(err.contains("\"no-such-module\""), "{err}");
}

#[test]
fn unknown_module_suggests_close_names() {
    let (out, err) = mlmod(&["load", "envv"]);
    assert_failed_cleanly(&out);
    assert!(
        err.contains("The following module(s) are unknown: \"envv\""),
        "{err}"
    );
    assert!(err.contains("Did you mean: env"), "{err}");
}

#[test]
fn unknown_subcommand_is_an_error() {
    let (out, err) = mlmod(&["frobnicate"]);
    assert_failed_cleanly(&out);
    assert!(
        err.contains("unknown module command \"frobnicate\""),
        "{err}"
    );
}

#[test]
fn unreadable_state_is_an_error_not_a_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .args(["bash", "list"])
        .env_clear()
        .env("_MLMOD_STATE", "{not json")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "false;\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("_MLMOD_STATE is not readable"));
}

/// Runs a bash script after `eval "$(mlmod init bash)"` and `module use` of the basic
/// tree, with a clean environment; returns stderr (what the user sees).
fn bash_session(script: &str, extra_env: &[(&str, &str)]) -> String {
    let init = format!(
        "eval \"$({} init bash)\"; module use '{}'",
        env!("CARGO_BIN_EXE_mlmod"),
        tree().display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-c", &format!("{init}\n{script}")])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_changes_are_reported_as_lmod_does() {
    let err = bash_session(
        "module load env/1.0\nmodule load env/2.0\nmodule swap env env/1.0",
        &[],
    );
    // The one-name rule, then a swap: both are reported, as Lmod words them.
    assert_eq!(
        err.matches("The following have been reloaded with a version change:")
            .count(),
        2,
        "{err}"
    );
    assert!(err.contains("1) env/1.0 => env/2.0"), "{err}");
    assert!(err.contains("1) env/2.0 => env/1.0"), "{err}");
}

#[test]
fn tcl_modulefiles_get_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("mlmod-tcl-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("foo")).unwrap();
    std::fs::write(dir.join("foo/1.0"), "#%Module1.0\nsetenv FOO 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .args(["bash", "load", "foo"])
        .env_clear()
        .env("MODULEPATH", &dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "false;\n");
    assert!(
        err.contains("is a Tcl modulefile; mlmod reads only Lua modulefiles"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn modules_loaded_by_another_tool_are_flagged_and_left_alone() {
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .args(["bash", "list"])
        .env_clear()
        .env("LOADEDMODULES", "Java/11.0.2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LOADEDMODULES lists modules that mlmod did not load"),
        "{err}"
    );
    // `list` must not clear another tool's list.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn reset_needs_system_defaults_and_loads_them() {
    let (out, err) = mlmod(&["reset"]);
    assert_failed_cleanly(&out);
    assert!(err.contains("no system default modules"), "{err}");
    let err = bash_session(
        "module load env/1.0\nmodule reset\nmodule -t list",
        &[("LMOD_SYSTEM_DEFAULT_MODULES", "msg/1.0")],
    );
    assert!(err.ends_with("msg/1.0\n"), "{err}");
}

#[test]
fn overview_counts_versions() {
    let (_, err) = mlmod(&["overview", "env"]);
    // basic/env has 1.0 and 2.0.
    assert!(err.contains("env (2)"), "{err}");
}

#[test]
fn lock_help_prints_usage_and_writes_no_file() {
    let dir = std::env::temp_dir().join(format!("mlmod-lock-help-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .args(["lock", "--help"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: mlmod lock [FILE]"));
    assert!(!dir.join("--help").exists(), "no lock file named --help");
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .args(["lock", "--frobnicate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.join("--frobnicate").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn typos_get_a_did_you_mean() {
    let (out, err) = mlmod(&["lod", "gcc"]);
    assert_failed_cleanly(&out);
    assert!(
        err.contains("unknown module command \"lod\" (did you mean \"load\"?)"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .arg("bsh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown shell \"bsh\" (did you mean \"bash\"?)"),
        "{err}"
    );
    // `mlmod help` is the usage, not an unknown shell.
    let out = Command::new(env!("CARGO_BIN_EXE_mlmod"))
        .arg("help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: mlmod init SHELL"));
}

#[test]
fn module_help_lists_every_subcommand() {
    let (_, err) = mlmod(&["help"]);
    for c in [
        "save", "restore", "savelist", "describe", "overview", "lock", "spider", "keyword",
    ] {
        assert!(err.contains(c), "{c} missing from: {err}");
    }
}

/// The loaded, default and symbolic-version markers of `avail`, as Debian's Lmod 8.6
/// prints them for the same tree (run by hand on 2026-12-04): `(1.8:eight)`,
/// `(L,1.8:eight)`, `(D:1.8:eight)`, `(L,D:1.8:eight)`.
#[test]
fn avail_markers_are_lmods() {
    let root = std::env::temp_dir().join(format!("mlmod-markers-{}", std::process::id()));
    let java = root.join("Java");
    std::fs::create_dir_all(&java).unwrap();
    std::fs::write(java.join("1.8.0_181.lua"), "whatis(\"java\")\n").unwrap();
    std::fs::write(java.join("11.lua"), "whatis(\"java11\")\n").unwrap();
    // `avail` after an optional `module load` in the same bash.
    let run = |load: bool| {
        let m = env!("CARGO_BIN_EXE_mlmod");
        let script = if load {
            format!("eval \"$({m} bash load Java/1.8.0_181)\"; {m} bash avail >/dev/null")
        } else {
            format!("{m} bash avail >/dev/null")
        };
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &script])
            .env_clear()
            .env("MODULEPATH", &root)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let marker = |text: &str| {
        text.split_whitespace()
            .skip_while(|w| *w != "Java/1.8.0_181")
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    for (rc, plain, loaded) in [
        ("module_version(\"Java/1.8.0_181\",\"1.8\",\"eight\")\n", "(1.8:eight)", "(L,1.8:eight)"),
        (
            "module_version(\"Java/1.8.0_181\",\"1.8\",\"eight\")\nmodule_version(\"Java/1.8.0_181\",\"default\")\n",
            "(D:1.8:eight)",
            "(L,D:1.8:eight)",
        ),
    ] {
        std::fs::write(java.join(".modulerc.lua"), rc).unwrap();
        assert_eq!(marker(&run(false)), plain);
        assert_eq!(marker(&run(true)), loaded);
    }
    // A search for exactly a symbolic version lists only its module (Lmod: `-t avail
    // Java/1.8` prints the alias line and Java/1.8.0_181, not Java/1.8.0_192).
    std::fs::write(java.join("1.8.0_192.lua"), "whatis(\"java\")\n").unwrap();
    std::fs::write(
        java.join(".modulerc.lua"),
        "module_version(\"Java/1.8.0_181\",\"1.8\")\n",
    )
    .unwrap();
    let (_, text) = mlmod_on(&root, &["-t", "avail", "Java/1.8"]);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines, ["Java/1.8(@Java/1.8.0_181)", "Java/1.8.0_181"]);
    // Any other text still matches anywhere: Java/1.8.0 lists both.
    let (_, text) = mlmod_on(&root, &["-t", "avail", "Java/1.8.0"]);
    assert_eq!(text.lines().skip(1).count(), 3, "{text}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A `.modulerc.lua` with a syntax error: listings ignore it and loading the name fails
/// naming the file and line, as Debian's Lmod 8.6 does (checked by hand on 2026-12-04:
/// `Unable to load module because of error when evaluating modulefile: <unknown>`,
/// then `.../Java/.modulerc.lua: ...:2: ')' expected (to close '(' at line 1) near <eof>`).
#[test]
fn a_broken_modulerc_fails_the_load_naming_file_and_line() {
    let root = std::env::temp_dir().join(format!("mlmod-badrc-{}", std::process::id()));
    let java = root.join("Java");
    std::fs::create_dir_all(&java).unwrap();
    std::fs::write(java.join("11.lua"), "whatis(\"java11\")\n").unwrap();
    std::fs::write(
        java.join(".modulerc.lua"),
        "module_version(\"Java/11\",\"eleven\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| mlmod_on(&root, args);
    let (out, err) = run(&["load", "Java"]);
    assert_failed_cleanly(&out);
    let rc = java.join(".modulerc.lua").display().to_string();
    assert!(
        err.contains("Unable to load module because of error when evaluating modulefile"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{rc}:2: ')' expected (to close '(' at line 1) near <eof>"
        )),
        "{err}"
    );
    let (_, listing) = run(&["-t", "avail"]);
    assert!(listing.contains("Java/11"), "{listing}");
    std::fs::remove_dir_all(&root).unwrap();
}

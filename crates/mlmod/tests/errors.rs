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

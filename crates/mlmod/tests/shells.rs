//! mlmod in each real shell it supports: `init` defines `module`, `load` sets variables
//! with awkward values exactly, `unload` removes them, an error returns a non-zero
//! status and leaves the environment alone. Also bash non-interactive (`bash -c`) and
//! as a login shell (`bash -l -c`). Shells that are not installed are skipped with a
//! message unless `MLMOD_REQUIRE_SHELLS` is set (`.ci/run` installs zsh, fish, tcsh).

use std::path::PathBuf;
use std::process::Command;

fn mlmod() -> &'static str {
    env!("CARGO_BIN_EXE_mlmod")
}

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/trees/basic")
}

/// `ENV_QUOTES` as the `env/1.0` fixture sets it.
const QUOTES: &str = r#"it's "quoted" $HOME `tick` \back ; & | * ?"#;

fn have(shell: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {shell}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip(shell: &str) -> bool {
    if have(shell) {
        return false;
    }
    if std::env::var_os("MLMOD_REQUIRE_SHELLS").is_some() {
        panic!("{shell} is not installed but MLMOD_REQUIRE_SHELLS is set");
    }
    eprintln!("SKIPPED: {shell} is not installed");
    true
}

/// Runs `argv` with a clean environment and returns stdout (asserting success).
fn run(argv: &[&str]) -> String {
    let out = Command::new("env")
        .args(["-i", "HOME=/tmp", "PATH=/usr/bin:/bin"])
        .args(argv)
        .output()
        .expect("run shell");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{argv:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The script's lines are printed as `KEY=value` lines; parse them.
fn check(stdout: &str, shell: &str) {
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{shell}: no {k} in output:\n{stdout}"))
            .to_string()
    };
    assert_eq!(get("ENV_A"), "a1", "{shell}");
    assert_eq!(get("ENV_QUOTES"), QUOTES, "{shell}");
    assert_eq!(get("ENV_SPACES"), "two words  and\ttab", "{shell}");
    assert_eq!(get("ENV_UTF8"), "grüße", "{shell}");
    assert_eq!(get("AFTER_UNLOAD"), "unset", "{shell}");
    assert_eq!(get("BAD_STATUS"), "nonzero", "{shell}");
    assert_eq!(get("AFTER_BAD"), "a1", "{shell}");
}

/// A POSIX-family script: init, load, print, failing load, unload.
fn posix_script(init: &str) -> String {
    let t = tree().display().to_string();
    format!(
        "{init}\nmodule use '{t}'\nmodule load env/1.0\n\
         printf 'ENV_A=%s\\nENV_QUOTES=%s\\nENV_SPACES=%s\\nENV_UTF8=%s\\n' \"$ENV_A\" \"$ENV_QUOTES\" \"$ENV_SPACES\" \"$ENV_UTF8\"\n\
         if module load no-such-module 2>/dev/null; then echo BAD_STATUS=zero; else echo BAD_STATUS=nonzero; fi\n\
         echo \"AFTER_BAD=$ENV_A\"\n\
         module unload env\n\
         echo \"AFTER_UNLOAD=${{ENV_A-unset}}\"\n"
    )
}

#[test]
fn bash_non_interactive_and_login() {
    let init = format!("eval \"$({} init bash)\"", mlmod());
    let s = posix_script(&init);
    check(
        &run(&["bash", "--noprofile", "--norc", "-c", &s]),
        "bash -c",
    );
    check(&run(&["bash", "-l", "-c", &s]), "bash -l -c");
}

#[test]
fn posix_sh() {
    if skip("dash") {
        return;
    }
    let init = format!("eval \"$({} init sh)\"", mlmod());
    check(&run(&["dash", "-c", &posix_script(&init)]), "dash");
}

#[test]
fn zsh() {
    if skip("zsh") {
        return;
    }
    let init = format!("eval \"$({} init zsh)\"", mlmod());
    check(&run(&["zsh", "-f", "-c", &posix_script(&init)]), "zsh");
}

#[test]
fn fish() {
    if skip("fish") {
        return;
    }
    let t = tree().display().to_string();
    let s = format!(
        "{} init fish | source\nmodule use '{t}'\nmodule load env/1.0\n\
         printf 'ENV_A=%s\\nENV_QUOTES=%s\\nENV_SPACES=%s\\nENV_UTF8=%s\\n' \"$ENV_A\" \"$ENV_QUOTES\" \"$ENV_SPACES\" \"$ENV_UTF8\"\n\
         if module load no-such-module 2>/dev/null; echo BAD_STATUS=zero; else; echo BAD_STATUS=nonzero; end\n\
         echo \"AFTER_BAD=$ENV_A\"\n\
         module unload env\n\
         if set -q ENV_A; echo AFTER_UNLOAD=set; else; echo AFTER_UNLOAD=unset; end\n",
        mlmod()
    );
    check(&run(&["fish", "--no-config", "-c", &s]), "fish");
}

#[test]
fn tcsh() {
    if skip("tcsh") {
        return;
    }
    let t = tree().display().to_string();
    // csh defines aliases per line: a script file, not `-c`. No redirection on the
    // failing load: csh runs a redirected builtin in a subshell and loses its status.
    let script = format!(
        "eval \"`{} init csh`\"\nmodule use '{t}'\nmodule load env/1.0\n\
         printenv ENV_A | sed 's/^/ENV_A=/'\nprintenv ENV_QUOTES | sed 's/^/ENV_QUOTES=/'\n\
         printenv ENV_SPACES | sed 's/^/ENV_SPACES=/'\nprintenv ENV_UTF8 | sed 's/^/ENV_UTF8=/'\n\
         module load no-such-module\n\
         if ($status) then\n echo BAD_STATUS=nonzero\nelse\n echo BAD_STATUS=zero\nendif\n\
         printenv ENV_A | sed 's/^/AFTER_BAD=/'\n\
         module unload env\n\
         if ($?ENV_A) then\n echo AFTER_UNLOAD=set\nelse\n echo AFTER_UNLOAD=unset\nendif\n",
        mlmod()
    );
    let path = std::env::temp_dir().join(format!("mlmod-shells-{}.csh", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let out = run(&["tcsh", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    check(&out, "tcsh");
}

#[test]
fn json_output_lists_the_changes() {
    let out = Command::new(mlmod())
        .args(["json", "load", "env/1.0"])
        .env_clear()
        .env("MODULEPATH", tree())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let set = |name: &str| {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["op"] == "set" && c["name"] == name)
            .map(|c| c["value"].as_str().unwrap().to_string())
    };
    assert_eq!(set("ENV_A").as_deref(), Some("a1"));
    assert_eq!(set("LOADEDMODULES").as_deref(), Some("env/1.0"));
}

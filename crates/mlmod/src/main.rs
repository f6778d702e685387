//! `mlmod`: renders `module` commands as shell code.
//!
//! - `mlmod init SHELL` prints the code that defines `module` and `ml`
//!   (`eval "$(mlmod init bash)"`);
//! - `mlmod SHELL ARGS...` runs `module ARGS...` and prints code for SHELL to eval,
//!   so mlmod can stand where Lmod's `$LMOD_CMD` stands; `mlmod SHELL ml ARGS...` runs
//!   `ml ARGS...`. Messages go to stderr. SHELL: bash, zsh, sh, fish, csh, tcsh, json.

use std::io::Write;
use std::process::ExitCode;

use mlmod::shell::{self, Shell};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shells = "bash, zsh, sh, fish, csh, tcsh, json";
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            eprintln!(
                "usage: mlmod init SHELL | mlmod SHELL [ml] SUBCOMMAND [ARGS...]\n       mlmod stack build SPEC --root DIR [--force] | mlmod stack verify --root DIR\n       mlmod stack pack --root DIR --out FILE.squashfs|FILE.tar.gz\n       mlmod lock [FILE] (module restore --locked FILE loads it back)\nshells: {shells}"
            );
            ExitCode::SUCCESS
        }
        Some("--version") => {
            println!("mlmod {}", mlmod::commands::VERSION);
            ExitCode::SUCCESS
        }
        Some("stack") => stack(&args[1..]),
        // `mlmod lock [FILE]`: the same as `module lock [FILE]` (it changes nothing,
        // so it needs no eval).
        Some("lock") if args.len() > 1 && args[1].starts_with('-') => {
            if matches!(args[1].as_str(), "-h" | "--help") {
                println!("usage: mlmod lock [FILE]\n  Pins the loaded modules (each modulefile's SHA-256, and each stack prefix's manifest digest) to FILE, or prints the lock without FILE.\n  module restore --locked FILE loads them back, or refuses with the list of changes.");
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "mlmod lock: unknown option {:?}; usage: mlmod lock [FILE]",
                    args[1]
                );
                ExitCode::from(2)
            }
        }
        Some("lock") => {
            let env = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect();
            let out = mlmod::commands::run(env, "bash", &args, false);
            // Without FILE the lock is the output: stdout here (not eval'd).
            if args.len() == 1 && out.ok {
                emit(&out.text);
            } else {
                let _ = std::io::stderr().write_all(out.text.as_bytes());
            }
            if out.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("init") => {
            let Some(sh) = args.get(1).and_then(|s| Shell::parse(s)) else {
                eprintln!("mlmod init: expected a shell: {shells}");
                return ExitCode::from(2);
            };
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "mlmod".into());
            emit(&shell::init(sh, &exe));
            ExitCode::SUCCESS
        }
        Some(s) => {
            let Some(sh) = Shell::parse(s) else {
                let words = [
                    "bash", "zsh", "sh", "fish", "csh", "tcsh", "json", "init", "stack", "lock",
                ];
                let hint = mlmod::commands::closest(s, &words)
                    .map(|w| format!(" (did you mean {w:?}?)"))
                    .unwrap_or_default();
                eprintln!("mlmod: unknown shell {s:?}{hint}; expected one of: {shells}, or init, stack, lock, --help");
                return ExitCode::from(2);
            };
            let (ml, rest) = match args.get(1).map(String::as_str) {
                Some("ml") => (true, &args[2..]),
                _ => (false, &args[1..]),
            };
            let env = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect();
            let out = mlmod::commands::run(env, sh.name(), rest, ml);
            if !out.text.is_empty() && sh != Shell::Json {
                let _ = std::io::stderr().write_all(out.text.as_bytes());
            }
            let messages: Vec<String> = if sh == Shell::Json {
                vec![out.text.clone()]
            } else {
                Vec::new()
            };
            emit(&shell::render(sh, &out.changes, &messages, out.ok));
            ExitCode::SUCCESS
        }
    }
}

fn emit(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|_| o.flush());
}

/// `mlmod stack build SPEC --root DIR [--force]`, `mlmod stack verify --root DIR`.
fn stack(args: &[String]) -> ExitCode {
    use mlmod::stack::{build, spec::Spec};
    let usage = "usage: mlmod stack build SPEC --root DIR [--force] | mlmod stack verify --root DIR\n       mlmod stack pack --root DIR --out FILE.squashfs|FILE.tar.gz";
    let mut root: Option<std::path::PathBuf> = None;
    let mut force = false;
    let mut out_file: Option<std::path::PathBuf> = None;
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--root" => {
                root = args.get(i + 1).map(std::path::PathBuf::from);
                i += 1;
            }
            "--force" => force = true,
            "--out" => {
                out_file = args.get(i + 1).map(std::path::PathBuf::from);
                i += 1;
            }
            a => rest.push(a),
        }
        i += 1;
    }
    if matches!(
        args.first().map(String::as_str),
        None | Some("-h" | "--help")
    ) {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    let Some(root) = root else {
        eprintln!("mlmod stack: --root DIR is required\n{usage}");
        return ExitCode::from(2);
    };
    let result = match (args.first().map(String::as_str), rest.as_slice()) {
        (Some("build"), [spec]) => Spec::load(std::path::Path::new(spec))
            .and_then(|s| build::build(&s, &root, force))
            .map(|done| {
                for (name, o) in done {
                    let what = match o {
                        build::Outcome::Published => "published",
                        build::Outcome::Unchanged => {
                            "unchanged (already published; its sources are not read again)"
                        }
                        build::Outcome::Replaced => "replaced (--force)",
                    };
                    println!("{name}: {what}");
                }
            }),
        (Some("verify"), []) => build::verify(&root).map(|checked| {
            println!("{} prefix(es) match their manifests", checked.len());
        }),
        (Some("pack"), []) => match &out_file {
            Some(out) => build::pack(&root, out).map(|n| {
                println!("packed {n} package(s) into {}", out.display());
            }),
            None => {
                eprintln!("mlmod stack pack: --out FILE is required\n{usage}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlmod stack: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Named collections as Lmod keeps them: `restore` loads each module by the name the
//! user typed, so a collection that holds `foo` loads today's default of foo; with
//! `LMOD_PIN_VERSIONS=yes` it loads the exact versions saved (Lmod's
//! `LMOD_PIN_VERSIONS`, default `no`, checked against Lmod 8.6 by hand: save `foo`
//! with foo/1.0 only, add foo/2.0, restore gives 2.0, pinned gives 1.0).

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mlmod-coll-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("tree/foo")).unwrap();
    std::fs::create_dir_all(d.join("home")).unwrap();
    d
}

/// Runs a bash session with mlmod's `module` on `dir/tree`; stdout and stderr.
fn session(dir: &Path, script: &str, env: &[(&str, &str)]) -> (String, String) {
    let init = format!(
        "eval \"$({} init bash)\"; module use '{}'",
        env!("CARGO_BIN_EXE_mlmod"),
        dir.join("tree").display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-c", &format!("{init}\n{script}")])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.join("home"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn restore_loads_by_the_typed_name_unless_pinned() {
    let d = scratch("typed");
    std::fs::write(d.join("tree/foo/1.0.lua"), "setenv(\"FOO_V\", \"1.0\")\n").unwrap();
    std::fs::write(d.join("tree/bar.lua"), "setenv(\"BAR\", \"1\")\n").unwrap();
    let (_, err) = session(&d, "module load foo bar && module save c", &[]);
    assert!(!err.contains("error"), "{err}");
    // A newer foo appears after the save.
    std::fs::write(d.join("tree/foo/2.0.lua"), "setenv(\"FOO_V\", \"2.0\")\n").unwrap();
    let show = "module restore c >/dev/null 2>&1; echo \"$FOO_V $BAR $LOADEDMODULES\"";
    let (out, _) = session(&d, show, &[]);
    assert_eq!(out.trim(), "2.0 1 foo/2.0:bar");
    let (out, _) = session(&d, show, &[("LMOD_PIN_VERSIONS", "yes")]);
    assert_eq!(out.trim(), "1.0 1 foo/1.0:bar");
    // The file records both names.
    let text = std::fs::read_to_string(d.join("home/.mlmod.d/c.json")).unwrap();
    assert!(
        text.contains("\"name\": \"foo/1.0\"") && text.contains("\"user_name\": \"foo\""),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_missing_collection_points_to_savelist() {
    let d = scratch("missing");
    let (_, err) = session(&d, "module restore nosuch; echo status=$? >&2", &[]);
    assert!(
        err.contains("User module collection: \"nosuch\" does not exist"),
        "{err}"
    );
    assert!(err.contains("Try \"module savelist\""), "{err}");
    assert!(err.contains("status=1"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A collection Lmod saved (`~/.lmod.d/NAME`, Lua, written here in the shape Lmod 8.6
/// writes) is restored when mlmod has none of that name: the active modules in load
/// order, by the typed name, with the saved MODULEPATH; `describe` lists them.
#[test]
fn lmod_collections_are_read() {
    let d = scratch("lmod");
    std::fs::write(d.join("tree/foo/1.0.lua"), "setenv(\"FOO_V\", \"1.0\")\n").unwrap();
    std::fs::write(d.join("tree/foo/2.0.lua"), "setenv(\"FOO_V\", \"2.0\")\n").unwrap();
    std::fs::write(d.join("tree/bar.lua"), "setenv(\"BAR\", \"1\")\n").unwrap();
    let tree = d.join("tree");
    let lmod = format!(
        r#"_ModuleTable_ = {{
  MTversion = 3,
  c_rebuildTime = false,
  c_shortTime = false,
  depthT = {{}},
  family = {{}},
  mT = {{
    bar = {{
      fn = "{t}/bar.lua",
      fullName = "bar",
      loadOrder = 2,
      propT = {{}},
      stackDepth = 0,
      status = "active",
      userName = "bar",
      wV = "M.*zfinal",
    }},
    foo = {{
      fn = "{t}/foo/1.0.lua",
      fullName = "foo/1.0",
      loadOrder = 1,
      propT = {{}},
      stackDepth = 0,
      status = "active",
      userName = "foo/1.0",
      wV = "000000001.*zfinal",
    }},
  }},
  mpathA = {{
    "{t}",
  }},
  mpathRefCountT = {{
    ["{t}"] = 1,
  }},
  systemBaseMPATH = "{t}",
}}
"#,
        t = tree.display()
    );
    std::fs::create_dir_all(d.join("home/.lmod.d")).unwrap();
    std::fs::write(d.join("home/.lmod.d/work"), lmod).unwrap();
    // MODULEPATH is emptied first: restore sets it from the collection.
    let script = format!(
        "module unuse '{}'; module restore work >/dev/null 2>&1; echo \"$FOO_V $BAR $LOADEDMODULES $MODULEPATH\"",
        tree.display()
    );
    let (out, err) = session(&d, &script, &[]);
    assert_eq!(
        out.trim(),
        format!("1.0 1 foo/1.0:bar {}", tree.display()),
        "{err}"
    );
    let (_, err) = session(&d, "module describe work", &[]);
    assert!(
        err.contains("1) foo/1.0") && err.contains("2) bar"),
        "{err}"
    );
    // A broken file is named in the error.
    std::fs::write(d.join("home/.lmod.d/broken"), "_ModuleTable_ = {").unwrap();
    let (_, err) = session(&d, "module restore broken", &[]);
    assert!(
        err.contains(".lmod.d/broken: not an Lmod collection"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_symbolic_version_is_saved_as_the_version_it_named() {
    // Lmod 8.6 saves `module load foo/stable` (stable -> 1.0) as `userName =
    // "foo/1.0"` (checked by hand in ~/.lmod.d), so moving the symbol later does not
    // change what the collection restores; a bare name is still resolved at restore.
    let d = scratch("symbolic");
    for v in ["1.0", "2.0"] {
        std::fs::write(
            d.join(format!("tree/foo/{v}.lua")),
            format!("setenv(\"FOO_V\", \"{v}\")\n"),
        )
        .unwrap();
    }
    let rc = d.join("tree/foo/.modulerc.lua");
    std::fs::write(&rc, "module_version(\"foo/1.0\", \"stable\")\n").unwrap();
    let (_, err) = session(&d, "module load foo/stable && module save c", &[]);
    assert!(!err.contains("error"), "{err}");
    let text = std::fs::read_to_string(d.join("home/.mlmod.d/c.json")).unwrap();
    assert!(text.contains("\"user_name\": \"foo/1.0\""), "{text}");
    std::fs::write(&rc, "module_version(\"foo/2.0\", \"stable\")\n").unwrap();
    let (out, _) = session(&d, "module restore c >/dev/null 2>&1; echo \"$FOO_V\"", &[]);
    assert_eq!(out.trim(), "1.0");
}

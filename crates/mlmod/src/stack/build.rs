//! Building and publishing a stack.
//!
//! Every package is built in `ROOT/.staging/` (prefix, manifest and modulefile) and only
//! then renamed into `ROOT/software/NAME/VERSION` and `ROOT/modules/NAME/VERSION.lua`, so
//! that a failed or killed build leaves the published stack as it was (a killed build
//! leaves its staging folder, which the next build removes). A published version is
//! never modified: building it again with the same spec entry does nothing, with a
//! different one is an error unless forced, and forcing keeps the old prefix until the
//! new one is complete. Folder renames are atomic on one file system; the prefix is
//! published before its modulefile, so a modulefile never points at a missing prefix.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;
use super::spec::{PackageSpec, Spec};
use std::io::Write as _;

use super::{io_err, modulefile, StackError};

/// What happened to one package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Built and published.
    Published,
    /// Already published from the same spec entry: left alone.
    Unchanged,
    /// Rebuilt over a different published version (forced).
    Replaced,
}

/// Builds every package of `spec` under `root`, in dependency order; `force` allows
/// replacing a published version whose spec entry changed. Stops at the first failure
/// (packages published before it stay published; the failing one leaves no trace).
///
/// # Errors
/// [`StackError::Build`] naming the package, [`StackError::Io`].
pub fn build(spec: &Spec, root: &Path, force: bool) -> Result<Vec<(String, Outcome)>, StackError> {
    let staging = root.join(".staging");
    // A killed earlier build may have left staging folders: they were never published.
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    let mut out = Vec::new();
    let mut result = Ok(());
    for (p, line) in &spec.packages {
        match build_one(spec, p, root, &staging, force) {
            Ok(o) => out.push((p.full_name(), o)),
            Err(e) => {
                // Name the spec line of the package that failed.
                result = Err(match e {
                    StackError::Build { package, message } => StackError::Build {
                        package: format!("{}:{line}: {package}", spec.path.display()),
                        message,
                    },
                    other => other,
                });
                break;
            }
        }
    }
    // Each package removes its own staging folder; remove the (now empty) parent.
    let _ = std::fs::remove_dir(&staging);
    result.map(|()| out)
}

fn build_one(
    spec: &Spec,
    p: &PackageSpec,
    root: &Path,
    staging: &Path,
    force: bool,
) -> Result<Outcome, StackError> {
    let name = p.full_name();
    let fail = |m: String| StackError::Build {
        package: name.clone(),
        message: m,
    };
    let prefix = root.join("software").join(&p.name).join(&p.version);
    let modfile = root
        .join("modules")
        .join(&p.name)
        .join(format!("{}.lua", p.version));
    let existing = prefix.exists();
    if existing {
        match Manifest::read(&prefix) {
            Ok(m) if m.spec == *p && modfile.exists() => return Ok(Outcome::Unchanged),
            Ok(m) if m.spec == *p => {
                // Published prefix, missing modulefile (a build killed between the two
                // renames): finish publishing it.
                publish_modulefile(p, &prefix, &prefix, &modfile, staging).map_err(|e| fail(e.to_string()))?;
                return Ok(Outcome::Unchanged);
            }
            _ if !force => {
                return Err(fail(format!(
                    "{} is already published from a different spec entry; versions are never modified (rebuild with --force)",
                    prefix.display()
                )))
            }
            _ => {}
        }
    }
    let work = staging.join(format!("{}-{}-{}", p.name, p.version, std::process::id()));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let staged = work.join("prefix");
    let result = (|| -> Result<Outcome, StackError> {
        install(spec, p, &staged).map_err(|e| fail(e.to_string()))?;
        Manifest::of(&staged, p)?.write(&staged)?;
        let parent = prefix.parent().expect("software/NAME");
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        let outcome = if existing {
            // Keep the old prefix until the new one is in place.
            let old = work.join("old");
            std::fs::rename(&prefix, &old).map_err(io_err(&prefix))?;
            if let Err(e) = std::fs::rename(&staged, &prefix) {
                let _ = std::fs::rename(&old, &prefix);
                return Err(io_err(&prefix)(e));
            }
            Outcome::Replaced
        } else {
            std::fs::rename(&staged, &prefix).map_err(io_err(&prefix))?;
            Outcome::Published
        };
        publish_modulefile(p, &prefix, &prefix, &modfile, &work)?;
        Ok(outcome)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Writes the modulefile to a temporary file in `tmp_dir`, then renames it into place.
fn publish_modulefile(
    p: &PackageSpec,
    files: &Path,
    prefix: &Path,
    modfile: &Path,
    tmp_dir: &Path,
) -> Result<(), StackError> {
    let text = modulefile::generate(p, files, prefix);
    std::fs::create_dir_all(tmp_dir).map_err(io_err(tmp_dir))?;
    let tmp = tmp_dir.join("modulefile.lua");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    let parent = modfile.parent().expect("modules/NAME");
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    std::fs::rename(&tmp, modfile).map_err(io_err(modfile))
}

/// Installs `p` into `staged` (which must not exist).
fn install(spec: &Spec, p: &PackageSpec, staged: &Path) -> Result<(), String> {
    if let Some(dir) = &p.dir {
        let src = {
            let d = PathBuf::from(dir);
            if d.is_absolute() {
                d
            } else {
                spec.base_dir().join(d)
            }
        };
        if !src.is_dir() {
            return Err(format!("dir {}: not a directory", src.display()));
        }
        return copy_tree(&src, staged).map_err(|e| e.to_string());
    }
    if let Some(dist) = &p.pip {
        return pip_install(spec, p, dist, staged);
    }
    if let Some(t) = &p.tarball {
        let path = {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                spec.base_dir().join(t)
            }
        };
        return unpack(&path, staged);
    }
    Err("no source".into())
}

/// Unpacks a tarball into `staged`; if everything in it sits in one top-level folder
/// (`hello-1.0/...`, the usual layout), that folder's contents become the prefix.
/// Entries that would land outside (absolute paths, `..`) are refused by `tar`.
fn unpack(path: &Path, staged: &Path) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("tarball {}: {e}", path.display()))?;
    let name = path.to_string_lossy();
    let reader: Box<dyn std::io::Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if name.ends_with(".tar") {
        Box::new(f)
    } else {
        return Err(format!(
            "tarball {}: expected .tar, .tar.gz or .tgz",
            path.display()
        ));
    };
    let tmp = staged.with_extension("unpack");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    tar::Archive::new(reader)
        .unpack(&tmp)
        .map_err(|e| format!("tarball {}: {e}", path.display()))?;
    let top: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    let root = match top.as_slice() {
        [one] if one.is_dir() && !one.is_symlink() => one.clone(),
        _ => tmp.clone(),
    };
    std::fs::rename(&root, staged).map_err(|e| format!("{}: {e}", staged.display()))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// The Python interpreter for pip sources: `$MLMOD_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("MLMOD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `python -m pip install --no-deps --prefix STAGED DIST==VERSION`: the distribution
/// alone (its dependencies are other packages of the stack, loaded with
/// `depends_on`), then a check that the versions the spec gives those dependencies
/// satisfy the distribution's own requirements.
fn pip_install(spec: &Spec, p: &PackageSpec, dist: &str, staged: &Path) -> Result<(), String> {
    let want = format!("{dist}=={}", p.version);
    let out = std::process::Command::new(python())
        // Byte-compiled at build time (pip's default), so that importing from the
        // published prefix writes no `__pycache__` files into it.
        .args(["-m", "pip", "install", "--no-deps", "--no-input"])
        .args(["--disable-pip-version-check", "--prefix"])
        .arg(staged)
        .arg(&want)
        .env("PYTHONNOUSERSITE", "1")
        // The install goes to our own prefix, never the system's site-packages, so a
        // Debian python's "externally managed" guard does not apply.
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .output()
        .map_err(|e| format!("cannot run {} -m pip: {e}", python()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join("\n  ");
        return Err(format!("pip install {want} failed:\n  {tail}"));
    }
    // The spec's versions of this package's dependencies, by distribution name.
    let deps: Vec<String> = p
        .depends
        .iter()
        .filter_map(|d| {
            let (name, version) = d.split_once('/')?;
            let q = spec.packages.iter().find(|(q, _)| q.full_name() == *d)?;
            Some(format!(
                "{}={version}",
                q.0.pip.clone().unwrap_or_else(|| name.to_string())
            ))
        })
        .collect();
    let check = std::process::Command::new(python())
        .args([
            "-c",
            REQUIREMENTS_CHECK,
            &staged.display().to_string(),
            dist,
        ])
        .args(&deps)
        .env("PYTHONNOUSERSITE", "1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python()))?;
    if !check.status.success() {
        return Err(String::from_utf8_lossy(&check.stderr).trim().to_string());
    }
    Ok(())
}

/// Checks an installed distribution's requirements against the stack's versions:
/// argv = prefix, distribution, then NAME=VERSION for each stack dependency. Uses the
/// `packaging` library that pip vendors; prints the conflicts and exits 1.
const REQUIREMENTS_CHECK: &str = r#"
import sys, glob, importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
prefix, dist = sys.argv[1], sys.argv[2]
given = dict(a.split("=", 1) for a in sys.argv[3:])
norm = lambda n: n.lower().replace("_", "-").replace(".", "-")
given = {norm(k): v for k, v in given.items()}
paths = glob.glob(prefix + "/lib/python*/site-packages")
found = [d for d in md.distributions(path=paths) if norm(d.metadata["Name"]) == norm(dist)]
if not found:
    sys.exit("pip installed nothing named %s" % dist)
bad = []
for r in found[0].requires or []:
    req = Requirement(r)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    v = given.get(norm(req.name))
    if v is not None and not req.specifier.contains(v, prereleases=True):
        bad.append("%s requires %s, the stack gives %s %s" % (dist, req, req.name, v))
if bad:
    sys.exit("conflicting versions: " + "; ".join(bad))
"#;

/// Copies a tree: folders, files (with their permissions) and symbolic links as links.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), StackError> {
    std::fs::create_dir_all(dst).map_err(io_err(dst))?;
    for e in std::fs::read_dir(src).map_err(io_err(src))? {
        let e = e.map_err(io_err(src))?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let ft = e.file_type().map_err(io_err(&from))?;
        if ft.is_symlink() {
            let t = std::fs::read_link(&from).map_err(io_err(&from))?;
            std::os::unix::fs::symlink(&t, &to).map_err(io_err(&to))?;
        } else if ft.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            std::fs::copy(&from, &to).map_err(io_err(&from))?;
        }
    }
    Ok(())
}

/// Checks every published prefix under `root` against its manifest; returns the
/// packages checked.
///
/// # Errors
/// [`StackError::Verify`] listing every prefix that differs (each changed, missing or
/// added file named), or one without a manifest.
pub fn verify(root: &Path) -> Result<Vec<String>, StackError> {
    let software = root.join("software");
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&software)
        .map_err(io_err(&software))?
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for n in names {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&n)
            .map_err(io_err(&n))?
            .flatten()
            .map(|e| e.path())
            .collect();
        versions.sort();
        for v in versions {
            match Manifest::read(&v).and_then(|m| m.verify(&v).map(|()| m)) {
                Ok(m) => checked.push(m.spec.full_name()),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(StackError::Verify(problems.join("\n")))
    }
}

/// `mlmod stack pack --root DIR --out FILE`: verifies every prefix, writes
/// `ROOT/stack-manifest.json` (every package with its manifest digest), then packs
/// `software/`, `modules/` and that file into FILE: a squashfs image for `.squashfs` or
/// `.sqsh` (with `mksquashfs` from Debian's squashfs-tools), else a tarball (`.tar`,
/// `.tar.gz`). FILE is written to a temporary name and renamed when complete.
///
/// # Errors
/// [`StackError::Verify`] if a prefix differs from its manifest, [`StackError::Build`]
/// if packing fails.
pub fn pack(root: &Path, out: &Path) -> Result<usize, StackError> {
    let checked = verify(root)?;
    let mut listing = std::collections::BTreeMap::new();
    for name in &checked {
        let (n, v) = name.split_once('/').expect("NAME/VERSION");
        let m = Manifest::read(&root.join("software").join(n).join(v))?;
        listing.insert(name.clone(), m.digest);
    }
    let sm = root.join("stack-manifest.json");
    let text =
        serde_json::to_string_pretty(&serde_json::json!({ "format": 1, "packages": listing }))
            .expect("serialisable");
    std::fs::write(&sm, text + "\n").map_err(io_err(&sm))?;
    let fail = |m: String| StackError::Build {
        package: out.display().to_string(),
        message: m,
    };
    let name = out.to_string_lossy().into_owned();
    let tmp = out.with_file_name(format!(
        ".{}.partial",
        out.file_name()
            .map_or_else(|| "pack".into(), |f| f.to_string_lossy().into_owned())
    ));
    let _ = std::fs::remove_file(&tmp);
    if name.ends_with(".squashfs") || name.ends_with(".sqsh") {
        let st = std::process::Command::new("mksquashfs")
            .arg(root.join("software"))
            .arg(root.join("modules"))
            .arg(&sm)
            .arg(&tmp)
            .args(["-noappend", "-all-root", "-quiet", "-no-progress"])
            .output()
            .map_err(|e| {
                fail(format!(
                    "cannot run mksquashfs (apt-get install squashfs-tools): {e}"
                ))
            })?;
        if !st.status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(format!(
                "mksquashfs failed: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            )));
        }
    } else if name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let w: Box<dyn std::io::Write> = if name.ends_with(".tar") {
            Box::new(f)
        } else {
            Box::new(flate2::write::GzEncoder::new(
                f,
                flate2::Compression::default(),
            ))
        };
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        let r = b
            .append_dir_all("software", root.join("software"))
            .and_then(|()| b.append_dir_all("modules", root.join("modules")))
            .and_then(|()| b.append_path_with_name(&sm, "stack-manifest.json"))
            .and_then(|()| b.into_inner().and_then(|mut w| w.flush()));
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(format!("writing the tarball: {e}")));
        }
    } else {
        return Err(fail(
            "expected FILE ending in .squashfs, .sqsh, .tar, .tar.gz or .tgz".into(),
        ));
    }
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(checked.len())
}

//! Building and publishing a stack.
//!
//! Every package of the spec is first installed into `ROOT/.staging/` (prefix and
//! manifest); only when all of them succeeded are they renamed into
//! `ROOT/software/NAME/VERSION`, each followed by its modulefile
//! `ROOT/modules/NAME/VERSION.lua`. A failed build publishes nothing; a build killed
//! while installing leaves the published stack as it was (and a staging folder, which
//! the next build removes); one killed while publishing leaves whole packages published. A published version is
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
/// replacing a published version whose spec entry changed. All packages are installed
/// into staging first; only when every one succeeded are they published (renamed into
/// place, one package at a time). On any failure nothing of this build is published.
///
/// # Errors
/// [`StackError::Build`] naming the spec line and package, [`StackError::Io`].
pub fn build(spec: &Spec, root: &Path, force: bool) -> Result<Vec<(String, Outcome)>, StackError> {
    let staging = root.join(".staging");
    // A killed earlier build may have left staging folders: they were never published.
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    let result = stage_and_publish(spec, root, &staging, force);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// One package's plan: already there, or staged in `work` and to be published.
enum Step {
    Unchanged { finish_modulefile: bool },
    Staged { work: PathBuf, replace: bool },
}

fn stage_and_publish(
    spec: &Spec,
    root: &Path,
    staging: &Path,
    force: bool,
) -> Result<Vec<(String, Outcome)>, StackError> {
    // Local sources of versions not yet published are checked before anything is
    // installed, so that a missing folder or tarball fails at once rather than after
    // minutes of pip installs (a published version's sources are not read again).
    for (p, line) in &spec.packages {
        if prefix_of(root, p).exists() {
            continue;
        }
        let missing = match (&p.dir, &p.tarball) {
            (Some(d), _) if !spec.resolve(d).is_dir() => Some(format!(
                "dir {}: not a directory",
                spec.resolve(d).display()
            )),
            (_, Some(t)) if !spec.resolve(t).is_file() => {
                Some(format!("tarball {}: not a file", spec.resolve(t).display()))
            }
            _ => None,
        };
        if let Some(message) = missing {
            return Err(StackError::Build {
                package: format!("{}:{line}: {}", spec.path.display(), p.full_name()),
                message,
            });
        }
    }
    let mut steps: Vec<(&PackageSpec, Step)> = Vec::new();
    for (p, line) in &spec.packages {
        let step = stage(spec, p, root, staging, force).map_err(|e| match e {
            // Name the spec line of the package that failed.
            StackError::Build { package, message } => StackError::Build {
                package: format!("{}:{line}: {package}", spec.path.display()),
                message,
            },
            other => other,
        })?;
        steps.push((p, step));
    }
    let mut out = Vec::new();
    for (p, step) in steps {
        let prefix = prefix_of(root, p);
        let modfile = modulefile_of(root, p);
        let outcome = match step {
            Step::Unchanged { finish_modulefile } => {
                if finish_modulefile {
                    publish_modulefile(p, &prefix, &prefix, &modfile, staging)?;
                }
                Outcome::Unchanged
            }
            Step::Staged { work, replace } => {
                let staged = work.join("prefix");
                let parent = prefix.parent().expect("software/NAME");
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                if replace {
                    // Keep the old prefix until the new one is in place.
                    let old = work.join("old");
                    std::fs::rename(&prefix, &old).map_err(io_err(&prefix))?;
                    if let Err(e) = std::fs::rename(&staged, &prefix) {
                        let _ = std::fs::rename(&old, &prefix);
                        return Err(io_err(&prefix)(e));
                    }
                } else {
                    std::fs::rename(&staged, &prefix).map_err(io_err(&prefix))?;
                }
                publish_modulefile(p, &prefix, &prefix, &modfile, &work)?;
                let _ = std::fs::remove_dir_all(&work);
                if replace {
                    Outcome::Replaced
                } else {
                    Outcome::Published
                }
            }
        };
        out.push((p.full_name(), outcome));
    }
    Ok(out)
}

fn prefix_of(root: &Path, p: &PackageSpec) -> PathBuf {
    root.join("software").join(&p.name).join(&p.version)
}

fn modulefile_of(root: &Path, p: &PackageSpec) -> PathBuf {
    root.join("modules")
        .join(&p.name)
        .join(format!("{}.lua", p.version))
}

/// The spec fields in which two entries differ.
fn changed_fields(a: &PackageSpec, b: &PackageSpec) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(a).expect("serialisable"),
        serde_json::to_value(b).expect("serialisable"),
    );
    let keys: std::collections::BTreeSet<&String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|m| m.keys())
        .collect();
    keys.into_iter()
        .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
        .cloned()
        .collect()
}

/// Decides what to do with `p` and, if it is to be built, installs it into staging.
fn stage(
    spec: &Spec,
    p: &PackageSpec,
    root: &Path,
    staging: &Path,
    force: bool,
) -> Result<Step, StackError> {
    let name = p.full_name();
    let fail = |m: String| StackError::Build {
        package: name.clone(),
        message: m,
    };
    let prefix = prefix_of(root, p);
    let existing = prefix.exists();
    if existing {
        match Manifest::read(&prefix) {
            Ok(m) if m.spec == *p => {
                // A published prefix without its modulefile (a build killed between
                // the two renames) gets the modulefile now.
                return Ok(Step::Unchanged {
                    finish_modulefile: !modulefile_of(root, p).exists(),
                });
            }
            Ok(m) if !force => {
                return Err(fail(format!(
                    "{} is already published and its spec entry changed ({}); versions are never modified (rebuild with --force)",
                    prefix.display(),
                    changed_fields(&m.spec, p).join(", ")
                )))
            }
            Err(_) if !force => {
                return Err(fail(format!(
                    "{} exists without a readable manifest; versions are never modified (rebuild with --force)",
                    prefix.display()
                )))
            }
            _ => {}
        }
    }
    let work = staging.join(format!("{}-{}", p.name, p.version));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let staged = work.join("prefix");
    install(spec, p, &staged).map_err(|e| fail(e.to_string()))?;
    Manifest::of(&staged, p)?.write(&staged)?;
    Ok(Step::Staged {
        work,
        replace: existing,
    })
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
        let src = spec.resolve(dir);
        if !src.is_dir() {
            return Err(format!("dir {}: not a directory", src.display()));
        }
        return copy_tree(&src, staged).map_err(|e| e.to_string());
    }
    if let Some(dist) = &p.pip {
        return pip_install(spec, p, dist, staged);
    }
    if let Some(t) = &p.tarball {
        return unpack(&spec.resolve(t), staged);
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
/// argv = prefix, distribution, then NAME=VERSION for each stack dependency. Every
/// requirement (whose marker applies) must be a listed dependency whose version it
/// accepts. Uses the `packaging` library (pip vendors one); exits 1 with the reason.
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
bad, missing = [], []
for r in found[0].requires or []:
    req = Requirement(r)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    v = given.get(norm(req.name))
    if v is None:
        missing.append(str(req))
    elif not req.specifier.contains(v, prereleases=True):
        bad.append("%s requires %s, the stack gives %s %s" % (dist, req, req.name, v))
if bad:
    sys.exit("conflicting versions: " + "; ".join(bad))
if missing:
    sys.exit("%s requires %s: add them to the spec and to this package's `depends`" % (dist, ", ".join(missing)))
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

/// `mlmod stack pack --root DIR --out FILE`: verifies every prefix, then packs
/// `software/`, `modules/` and a `stack-manifest.json` (every package with its manifest
/// digest) into FILE: a squashfs image for `.squashfs` or
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
    // The stack manifest goes into the image only (a copy in ROOT would go stale).
    let pack_dir = root.join(".staging").join("pack");
    std::fs::create_dir_all(&pack_dir).map_err(io_err(&pack_dir))?;
    let sm = pack_dir.join("stack-manifest.json");
    let text =
        serde_json::to_string_pretty(&serde_json::json!({ "format": 1, "packages": listing }))
            .expect("serialisable");
    std::fs::write(&sm, text + "\n").map_err(io_err(&sm))?;
    let result = pack_into(root, out, &sm);
    let _ = std::fs::remove_dir_all(&pack_dir);
    let _ = std::fs::remove_dir(root.join(".staging"));
    result.map(|()| checked.len())
}

fn pack_into(root: &Path, out: &Path, sm: &Path) -> Result<(), StackError> {
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
            .arg(sm)
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
            .and_then(|()| b.append_path_with_name(sm, "stack-manifest.json"))
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
    std::fs::rename(&tmp, out).map_err(io_err(out))
}

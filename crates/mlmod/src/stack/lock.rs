//! Pinning module sets: `module lock FILE` records the loaded modules with the digest of
//! each modulefile and, for modules of a stack, of its prefix's manifest;
//! `module restore --locked FILE` loads exactly that set, or refuses with the list of
//! what changed or disappeared.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{sha256, Manifest};
use crate::engine::{Engine, ModError};

/// A lock file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version: 1.
    pub format: u32,
    /// MODULEPATH when locked.
    pub modulepath: Option<String>,
    /// The loaded modules, in load order.
    pub modules: Vec<LockedModule>,
}

/// One pinned module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedModule {
    /// `NAME/VERSION`.
    pub name: String,
    /// The modulefile.
    pub file: String,
    /// Loaded by the user (else only as a dependency).
    pub user: bool,
    /// `sha256:` of the modulefile.
    pub file_digest: String,
    /// The stack prefix, for a modulefile `ROOT/modules/NAME/VERSION.lua` whose
    /// `ROOT/software/NAME/VERSION` has a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The prefix manifest's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

/// The stack prefix of a modulefile `ROOT/modules/NAME/VERSION.lua`, if it has one.
fn prefix_of(file: &Path) -> Option<PathBuf> {
    let version = file.file_name()?.to_str()?.strip_suffix(".lua")?;
    let name_dir = file.parent()?;
    let name = name_dir.file_name()?;
    let modules = name_dir.parent()?;
    if modules.file_name()? != "modules" {
        return None;
    }
    let p = modules.parent()?.join("software").join(name).join(version);
    p.join(super::manifest::MANIFEST).is_file().then_some(p)
}

fn usage(m: String) -> ModError {
    ModError::Usage(m)
}

/// The lock of what `engine` has loaded. Stack prefixes are verified against their
/// manifests first: a tampered prefix is not pinned.
///
/// # Errors
/// [`ModError::Usage`] for an unreadable modulefile or a prefix that differs from its
/// manifest.
pub fn lock(engine: &Engine) -> Result<LockFile, ModError> {
    let mut modules = Vec::new();
    for l in engine.loaded() {
        let bytes = std::fs::read(&l.file).map_err(|e| usage(format!("{}: {e}", l.file)))?;
        let prefix = prefix_of(Path::new(&l.file));
        let manifest_digest = match &prefix {
            Some(p) => {
                let m = Manifest::read(p).map_err(|e| usage(e.to_string()))?;
                m.verify(p).map_err(|e| usage(e.to_string()))?;
                Some(m.digest)
            }
            None => None,
        };
        modules.push(LockedModule {
            name: l.full_name(),
            file: l.file.clone(),
            user: l.user,
            file_digest: sha256(&bytes),
            prefix: prefix.map(|p| p.display().to_string()),
            manifest_digest,
        });
    }
    Ok(LockFile {
        format: 1,
        modulepath: engine.modulepath(),
        modules,
    })
}

/// What differs between the lock and the files now: one line per changed or missing
/// modulefile, prefix manifest or prefix file.
pub fn differences(lock: &LockFile) -> Vec<String> {
    let mut out = Vec::new();
    for m in &lock.modules {
        match std::fs::read(&m.file) {
            Err(_) => out.push(format!("{}: modulefile {} is gone", m.name, m.file)),
            Ok(b) if sha256(&b) != m.file_digest => {
                out.push(format!("{}: modulefile {} changed", m.name, m.file))
            }
            Ok(_) => {}
        }
        if let (Some(p), Some(d)) = (&m.prefix, &m.manifest_digest) {
            let p = Path::new(p);
            match Manifest::read(p) {
                Err(_) => out.push(format!(
                    "{}: prefix {} is gone (no manifest)",
                    m.name,
                    p.display()
                )),
                Ok(man) if man.digest != *d => out.push(format!(
                    "{}: prefix {} was rebuilt (manifest digest changed)",
                    m.name,
                    p.display()
                )),
                Ok(man) => {
                    if let Err(e) = man.verify(p) {
                        out.push(e.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Reads a lock file.
///
/// # Errors
/// [`ModError::Usage`] naming the file.
pub fn read(path: &Path) -> Result<LockFile, ModError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let lock: LockFile = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: not a lock file: {e}", path.display())))?;
    if lock.format != 1 {
        return Err(usage(format!(
            "{}: lock format {} (this mlmod reads 1)",
            path.display(),
            lock.format
        )));
    }
    Ok(lock)
}

/// Writes a lock file (temporary file, then rename).
///
/// # Errors
/// [`ModError::Usage`] naming the file.
pub fn write(path: &Path, lock: &LockFile) -> Result<(), ModError> {
    let tmp = path.with_extension("tmp-lock");
    let text = serde_json::to_string_pretty(lock).expect("serialisable") + "\n";
    std::fs::write(&tmp, text).map_err(|e| usage(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// `module restore --locked FILE`: checks every pinned file, then purges, sets the
/// locked MODULEPATH and loads the user's modules; the result must be exactly the
/// locked set.
///
/// Returns the number of modules loaded.
///
/// # Errors
/// [`ModError::Usage`] listing every difference, or a load error; the command is a
/// transaction, so the environment is left as it was.
pub fn restore(engine: &Engine, path: &Path) -> Result<usize, ModError> {
    let lock = read(path)?;
    let diffs = differences(&lock);
    if !diffs.is_empty() {
        return Err(usage(format!(
            "{} no longer matches what is installed; nothing was loaded:\n  {}",
            path.display(),
            diffs
                .iter()
                .map(|d| d.replace('\n', "\n    "))
                .collect::<Vec<_>>()
                .join("\n  ")
        )));
    }
    let names: Vec<String> = lock
        .modules
        .iter()
        .filter(|m| m.user)
        .map(|m| m.name.clone())
        .collect();
    crate::collection::load_set(engine, lock.modulepath.as_deref(), &names)?;
    let got: Vec<(String, String)> = engine
        .loaded()
        .iter()
        .map(|l| (l.full_name(), l.file.clone()))
        .collect();
    let want: Vec<(String, String)> = lock
        .modules
        .iter()
        .map(|m| (m.name.clone(), m.file.clone()))
        .collect();
    if got != want {
        return Err(usage(format!(
            "{}: loading the locked modules gave {} instead of {}",
            path.display(),
            got.iter()
                .map(|g| g.0.as_str())
                .collect::<Vec<_>>()
                .join(":"),
            want.iter()
                .map(|w| w.0.as_str())
                .collect::<Vec<_>>()
                .join(":")
        )));
    }
    Ok(want.len())
}

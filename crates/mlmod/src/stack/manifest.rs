//! Per-prefix manifests: what was built from which spec entry, and a SHA-256 digest of
//! every file, so that a published prefix can be verified and pinned.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::spec::PackageSpec;
use super::{io_err, StackError};

/// File name of the manifest inside a prefix (left out of the digests).
pub const MANIFEST: &str = ".mlmod-manifest.json";

/// A prefix's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version: 1.
    pub format: u32,
    /// The spec entry the prefix was built from.
    pub spec: PackageSpec,
    /// The packages it depends on, `NAME/VERSION`, as resolved.
    pub depends: Vec<String>,
    /// Path relative to the prefix → `sha256:HEX` of the content, with ` +x` for an
    /// executable file (`symlink:TARGET` for a symbolic link).
    pub files: BTreeMap<String, String>,
    /// `sha256:HEX` over the sorted `path digest` lines of `files`.
    pub digest: String,
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Digests of every file under `prefix` (the manifest left out), by relative path.
///
/// # Errors
/// [`StackError::Io`] for a file that cannot be read.
pub fn digest_tree(prefix: &Path) -> Result<BTreeMap<String, String>, StackError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![prefix.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let p = e.path();
            let rel = p
                .strip_prefix(prefix)
                .expect("under the prefix")
                .to_string_lossy()
                .into_owned();
            if rel == MANIFEST {
                continue;
            }
            let ft = e.file_type().map_err(io_err(&p))?;
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).map_err(io_err(&p))?;
                out.insert(rel, format!("symlink:{}", t.display()));
            } else if ft.is_dir() {
                stack.push(p);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let bytes = std::fs::read(&p).map_err(io_err(&p))?;
                let mode = e.metadata().map_err(io_err(&p))?.permissions().mode();
                // The executable bit matters as much as the content.
                let exec = if mode & 0o111 != 0 { " +x" } else { "" };
                out.insert(rel, format!("{}{exec}", sha256(&bytes)));
            }
        }
    }
    Ok(out)
}

/// The digest over a file table.
pub fn tree_digest(files: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (p, d) in files {
        text.push_str(p);
        text.push(' ');
        text.push_str(d);
        text.push('\n');
    }
    sha256(text.as_bytes())
}

impl Manifest {
    /// The manifest of `prefix` as it is now, for `spec`.
    ///
    /// # Errors
    /// As [`digest_tree`].
    pub fn of(prefix: &Path, spec: &PackageSpec) -> Result<Self, StackError> {
        let files = digest_tree(prefix)?;
        Ok(Manifest {
            format: 1,
            spec: spec.clone(),
            depends: spec.depends.clone(),
            digest: tree_digest(&files),
            files,
        })
    }

    /// Reads `prefix`'s manifest.
    ///
    /// # Errors
    /// [`StackError::Io`] if missing, [`StackError::Verify`] if it is not a manifest.
    pub fn read(prefix: &Path) -> Result<Self, StackError> {
        let p = prefix.join(MANIFEST);
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        serde_json::from_str(&text)
            .map_err(|e| StackError::Verify(format!("{}: not a manifest: {e}", p.display())))
    }

    /// Writes it into `prefix` (temporary file, then rename).
    ///
    /// # Errors
    /// [`StackError::Io`].
    pub fn write(&self, prefix: &Path) -> Result<(), StackError> {
        let p = prefix.join(MANIFEST);
        let tmp = prefix.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_string_pretty(self).expect("serialisable");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io_err(&p))
    }

    /// Checks `prefix` against this manifest: every file there with the same digest,
    /// and no file more.
    ///
    /// # Errors
    /// [`StackError::Verify`] naming each changed, missing or added file.
    pub fn verify(&self, prefix: &Path) -> Result<(), StackError> {
        let now = digest_tree(prefix)?;
        let mut problems = Vec::new();
        for (p, d) in &self.files {
            match now.get(p) {
                None => problems.push(format!("missing: {}", prefix.join(p).display())),
                Some(n) if n != d => {
                    problems.push(format!("changed: {}", prefix.join(p).display()))
                }
                _ => {}
            }
        }
        for p in now.keys().filter(|p| !self.files.contains_key(*p)) {
            problems.push(format!("added: {}", prefix.join(p).display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StackError::Verify(format!(
                "{} differs from its manifest:\n  {}",
                self.spec.full_name(),
                problems.join("\n  ")
            )))
        }
    }
}

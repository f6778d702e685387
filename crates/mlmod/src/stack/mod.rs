//! Software stacks on a read-only volume: a spec lists packages with exact versions;
//! each is installed into its own prefix `ROOT/software/NAME/VERSION`, gets a generated
//! modulefile `ROOT/modules/NAME/VERSION.lua` and a manifest with a digest of every
//! file, and is published atomically.
//!
//! - [`spec`]: the spec file (TOML) with errors that name the line;
//! - [`build`]: staging, installing, publishing (rename into place), never modifying a
//!   published version unless forced;
//! - [`manifest`]: per-prefix manifests (SHA-256 of every file) and verification;
//! - [`modulefile`]: the generated Lua modulefile;
//! - [`lock`]: pinning the loaded module set (`module lock`, `module restore --locked`).
//!
//! The library prints nothing; `mlmod stack ...` renders reports.

pub mod build;
pub mod lock;
pub mod manifest;
pub mod modulefile;
pub mod spec;

/// An error of a stack command; the message names the file, line or package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The spec file is not valid.
    #[error("{0}")]
    Spec(String),
    /// Installing or publishing a package failed; nothing of it was published.
    #[error("{package}: {message}")]
    Build {
        /// `NAME/VERSION`.
        package: String,
        /// What went wrong.
        message: String,
    },
    /// A published prefix differs from its manifest.
    #[error("{0}")]
    Verify(String),
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Wraps an I/O error with its path.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StackError + '_ {
    move |source| StackError::Io {
        path: path.display().to_string(),
        source,
    }
}

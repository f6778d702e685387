//! The stack spec: a TOML file listing packages with exact versions.
//!
//! ```toml
//! [[package]]
//! name = "hello"
//! version = "1.0"
//! dir = "prebuilt/hello-1.0"      # an existing directory to publish (relative to the spec)
//! description = "Says hello"
//! homepage = "https://example.org/hello"
//! depends = ["greeting-data/2.1"] # other packages of this spec, NAME/VERSION
//! ```
//!
//! Each package has exactly one source: `dir` (an existing directory, copied),
//! `tarball` (a `.tar`, `.tar.gz` or `.tgz` unpacked as the prefix; a single top-level
//! folder in it is the prefix itself) or `pip`
//! (a distribution on the package index: `pip = "python-dateutil"` installs
//! `python-dateutil==VERSION` with pip into its own prefix, without its dependencies,
//! which must be other packages of the spec listed in `depends`; the interpreter is
//! `$MLMOD_PYTHON` or `python3`). Errors name the spec file and line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::StackError;

/// One package of the spec, as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Name: letters, digits, `.`, `_`, `+`, `-`.
    pub name: String,
    /// Exact version (no `/`).
    pub version: String,
    /// An existing directory to publish as the prefix.
    #[serde(default)]
    pub dir: Option<String>,
    /// A distribution on the package index (`name` on PyPI).
    #[serde(default)]
    pub pip: Option<String>,
    /// A tarball (`.tar`, `.tar.gz`, `.tgz`) to unpack as the prefix.
    #[serde(default)]
    pub tarball: Option<String>,
    /// One-line description (whatis).
    #[serde(default)]
    pub description: Option<String>,
    /// Home page (whatis).
    #[serde(default)]
    pub homepage: Option<String>,
    /// Other packages of the spec this one needs, `NAME/VERSION`; they become
    /// `depends_on` in the modulefile.
    #[serde(default)]
    pub depends: Vec<String>,
}

impl PackageSpec {
    /// `NAME/VERSION`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    package: Vec<toml::Spanned<PackageSpec>>,
}

/// A parsed, checked spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The spec file.
    pub path: PathBuf,
    /// Packages in dependency order (a package after everything it depends on), each
    /// with the line it starts on.
    pub packages: Vec<(PackageSpec, usize)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Spec {
    /// Reads and checks the spec at `path`.
    ///
    /// # Errors
    /// [`StackError::Spec`] naming the file and line: TOML syntax, unknown fields, a
    /// bad name or version, no source or two, a dependency not in the spec, a package
    /// listed twice, a dependency cycle. [`StackError::Io`] if it cannot be read.
    pub fn load(path: &Path) -> Result<Self, StackError> {
        let text = std::fs::read_to_string(path).map_err(super::io_err(path))?;
        Self::parse(path, &text)
    }

    /// Parses spec text; `path` names it in errors and anchors relative `dir`s.
    ///
    /// # Errors
    /// As [`Spec::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, StackError> {
        let file = path.display();
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let msg = e.message().to_string();
            match line {
                Some(l) => StackError::Spec(format!("{file}:{l}: {msg}")),
                None => StackError::Spec(format!("{file}: {msg}")),
            }
        })?;
        let mut pkgs: Vec<(PackageSpec, usize)> = Vec::new();
        for sp in raw.package {
            let line = line_of(text, sp.span().start);
            let p = sp.into_inner();
            let bad =
                |m: String| StackError::Spec(format!("{file}:{line}: package {:?}: {m}", p.name));
            let name_ok = !p.name.is_empty()
                && p.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
            if !name_ok {
                return Err(bad(
                    "name must be letters, digits, '.', '_', '+' or '-'".into()
                ));
            }
            if p.version.is_empty() || p.version.contains('/') || p.version.trim() != p.version {
                return Err(bad(format!(
                    "version {:?} must be non-empty, without '/' or spaces",
                    p.version
                )));
            }
            let sources = [&p.dir, &p.pip, &p.tarball]
                .iter()
                .filter(|s| s.is_some())
                .count();
            if sources != 1 {
                return Err(bad(
                    "needs exactly one source: `dir`, `tarball` or `pip`".into()
                ));
            }
            if pkgs.iter().any(|(q, _)| q.full_name() == p.full_name()) {
                return Err(bad(format!("{} is listed twice", p.full_name())));
            }
            pkgs.push((p, line));
        }
        for (p, line) in &pkgs {
            for d in &p.depends {
                if !pkgs.iter().any(|(q, _)| q.full_name() == *d) {
                    return Err(StackError::Spec(format!(
                        "{file}:{line}: package {:?}: depends on {d:?}, which this spec does not list (NAME/VERSION)",
                        p.name
                    )));
                }
            }
        }
        // Dependency order (stable: spec order among ready packages).
        let mut ordered: Vec<(PackageSpec, usize)> = Vec::new();
        let mut left = pkgs;
        while !left.is_empty() {
            let ready = left.iter().position(|(p, _)| {
                p.depends
                    .iter()
                    .all(|d| ordered.iter().any(|(q, _)| q.full_name() == *d))
            });
            match ready {
                Some(i) => ordered.push(left.remove(i)),
                None => {
                    let (p, line) = &left[0];
                    return Err(StackError::Spec(format!(
                        "{file}:{line}: package {:?}: dependency cycle through {}",
                        p.name,
                        left.iter()
                            .map(|(q, _)| q.full_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(Spec {
            path: path.to_path_buf(),
            packages: ordered,
        })
    }

    /// The folder relative `dir` sources are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// A source path as the spec gives it: absolute, or relative to the spec's folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            self.base_dir().join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Spec::parse(Path::new("stack.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn orders_by_dependency_and_names_lines_in_errors() {
        let text = "[[package]]\nname = \"app\"\nversion = \"1.0\"\ndir = \"a\"\ndepends = [\"lib/2.0\"]\n\n[[package]]\nname = \"lib\"\nversion = \"2.0\"\ndir = \"l\"\n";
        let s = Spec::parse(Path::new("/x/stack.toml"), text).unwrap();
        let order: Vec<(String, usize)> = s
            .packages
            .iter()
            .map(|(p, l)| (p.full_name(), *l))
            .collect();
        assert_eq!(
            order,
            [("lib/2.0".to_string(), 7), ("app/1.0".to_string(), 1)]
        );
        assert_eq!(s.base_dir(), PathBuf::from("/x"));
        assert_eq!(
            err("[[package]]\nname = \"a\"\nversion = \"1\"\ndir = \"d\"\ndepends = [\"b/1\"]\n"),
            "stack.toml:1: package \"a\": depends on \"b/1\", which this spec does not list (NAME/VERSION)"
        );
        assert_eq!(
            err("[[package]]\nname = \"a\"\nversion = \"1\"\n"),
            "stack.toml:1: package \"a\": needs exactly one source: `dir`, `tarball` or `pip`"
        );
        assert!(err("[[package]]\nname = \"a\"\nversion = \"1\"\ndir = \"d\"\n\n[[package]]\nname = \"a b\"\nversion = \"1\"\ndir = \"d\"\n")
            .starts_with("stack.toml:6: package \"a b\": name must be"));
        assert!(
            err("[[package]]\nname = \"a\"\nversion = \"1/2\"\ndir = \"d\"\n")
                .contains("version \"1/2\"")
        );
        assert!(
            err("[[package]]\nname = \"a\"\nversion = \"1\"\ndir = \"d\"\ncolour = 3\n")
                .starts_with("stack.toml:5: unknown field `colour`"),
            "{}",
            err("[[package]]\nname = \"a\"\nversion = \"1\"\ndir = \"d\"\ncolour = 3\n")
        );
        assert!(err("[[package]]\nname = \"a\nversion = \"1\"\n").starts_with("stack.toml:2:"));
        assert!(err("[[package]]\nname = \"a\"\nversion = \"1\"\ndir = \"d\"\ndepends = [\"b/1\"]\n[[package]]\nname = \"b\"\nversion = \"1\"\ndir = \"d\"\ndepends = [\"a/1\"]\n").contains("dependency cycle"));
    }
}

//! Finding modulefiles on MODULEPATH: names, versions, defaults, aliases, hidden ones.
//!
//! Layout, as Lmod reads it (<https://lmod.readthedocs.io/en/latest/060_locating.html>):
//! `DIR/NAME/VERSION.lua` is module `NAME/VERSION` (`NAME` may contain `/`);
//! `DIR/NAME.lua` is a module without a version. A file or folder starting with `.` is
//! hidden: loadable by its full name, not listed. In `DIR/NAME/`:
//! - a `default` symlink names the default version;
//! - `.modulerc.lua` may call `module_version("NAME/V", "sym", ...)` (a symbolic
//!   version; `"default"` marks the default), `module_alias`, `hide_version`;
//! - `.version` (Tcl) may `set ModulesVersion "V"`.
//!
//! Without a marked default the highest version by [`crate::version`] ordering wins,
//! across all MODULEPATH folders; among equal versions the earlier folder wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::version::version_key;

/// One modulefile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// Short name, e.g. `GCCcore` or `compiler/gcc`.
    pub sn: String,
    /// Version, or `None` for `DIR/NAME.lua`.
    pub version: Option<String>,
    /// The file.
    pub path: PathBuf,
    /// Hidden (a `.` name, or `hide_version`).
    pub hidden: bool,
    /// Index of the MODULEPATH folder it was found in.
    pub dir: usize,
    /// Lmod's sort key of the version ([`crate::version::version_key`]).
    pub key: String,
}

impl ModuleFile {
    /// `NAME/VERSION` or `NAME`.
    pub fn full_name(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/{}", self.sn, v),
            None => self.sn.clone(),
        }
    }
}

/// All versions of one name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameEntry {
    /// The versions, in MODULEPATH order then version order.
    pub files: Vec<ModuleFile>,
    /// The marked default version (symlink, `.modulerc.lua`, `.version`), if any.
    pub marked_default: Option<String>,
    /// Symbolic versions: `(symbol, version)`, from `module_version`.
    pub symbols: Vec<(String, String)>,
    /// The error of this name's `.modulerc.lua`, with file and line, if it could not be
    /// evaluated: listings ignore it and loading a version of the name fails with it,
    /// as in Lmod.
    pub rc_error: Option<String>,
}

impl NameEntry {
    /// The default: the marked one if it exists, else the highest visible version
    /// (the earlier folder on ties).
    pub fn default_file(&self) -> Option<&ModuleFile> {
        if let Some(d) = &self.marked_default {
            if let Some(f) = self
                .files
                .iter()
                .find(|f| f.version.as_deref() == Some(d.as_str()))
            {
                return Some(f);
            }
        }
        let mut best: Option<&ModuleFile> = None;
        for f in self.files.iter().filter(|f| !f.hidden) {
            let better = match best {
                None => true,
                Some(b) => {
                    let (kf, kb) = (key(f), key(b));
                    kf > kb || (kf == kb && f.dir < b.dir)
                }
            };
            if better {
                best = Some(f);
            }
        }
        best
    }

    /// Symbolic versions that point at `version`.
    pub fn symbols_of(&self, version: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .symbols
            .iter()
            .filter(|(_, v)| v == version)
            .map(|(s, _)| s.as_str())
            .collect();
        // Lmod lists them sorted (`(a:b:c)` for `module_version("z/1", "b", "c", "a")`).
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn key(f: &ModuleFile) -> &str {
    &f.key
}

/// Modulefiles found on a MODULEPATH.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// The MODULEPATH folders, in order.
    pub dirs: Vec<PathBuf>,
    /// Names, sorted case-insensitively as Lmod lists them.
    pub names: BTreeMap<String, NameEntry>,
    /// `module_alias(alias, target)` entries.
    pub aliases: Vec<(String, String)>,
}

/// Reads rc files (`.modulerc.lua`): implemented by the Lua evaluator.
pub trait RcReader {
    /// Evaluates an rc file; returns its directives.
    ///
    /// # Errors
    /// The evaluation error, naming the file and line.
    fn read_rc(&self, path: &Path) -> Result<Vec<RcDirective>, String>;
}

/// A directive of a `.modulerc.lua`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcDirective {
    /// `module_version("NAME/V", "sym", ...)`.
    Version {
        /// The target full name.
        target: String,
        /// The symbolic names.
        symbols: Vec<String>,
    },
    /// `module_alias("alias", "target")`.
    Alias {
        /// The alias.
        alias: String,
        /// The target.
        target: String,
    },
    /// `hide_version("NAME/V")` or `hide_modulefile(path)`.
    Hide(String),
}

/// Which part of the tree to read.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Everything.
    All,
    /// Only names whose first path component is this (for a fast `load`).
    FirstComponent(&'a str),
}

impl Tree {
    /// Scans `dirs` (missing folders are skipped, as Lmod does).
    pub fn scan(dirs: &[PathBuf], scope: Scope<'_>, rc: &dyn RcReader) -> Tree {
        let mut tree = Tree {
            dirs: dirs.to_vec(),
            ..Tree::default()
        };
        for (i, dir) in dirs.iter().enumerate() {
            match scope {
                Scope::All => tree.walk(i, dir, "", rc),
                Scope::FirstComponent(c) => {
                    if c.is_empty() || c.contains('/') || c == "." || c == ".." {
                        continue;
                    }
                    let p = dir.join(c);
                    if p.is_dir() {
                        tree.walk(i, &p, c, rc);
                    }
                    let f = dir.join(format!("{c}.lua"));
                    if f.is_file() {
                        tree.add(i, c, None, f, c.starts_with('.'));
                    }
                }
            }
            if let Scope::All = scope {
                let rcf = dir.join(".modulerc.lua");
                if rcf.is_file() {
                    tree.apply_rc(i, "", &rc.read_rc(&rcf).unwrap_or_default());
                }
            }
        }
        for e in tree.names.values_mut() {
            e.files
                .sort_by(|a, b| a.dir.cmp(&b.dir).then_with(|| key(a).cmp(key(b))));
        }
        tree
    }

    /// Scans one more folder into this tree (it gets the next folder index), e.g. a
    /// folder a module in the hierarchy opens.
    pub fn push_dir(&mut self, dir: PathBuf, rc: &dyn RcReader) {
        let i = self.dirs.len();
        self.dirs.push(dir.clone());
        self.walk(i, &dir, "", rc);
        self.finish_dir(i, &dir, rc);
    }

    /// [`Tree::push_dir`], also reading every modulefile under `dir` (on the reader
    /// threads) and applying `read` to its short name and text. Returns what `read`
    /// gave for each file that could be read as UTF-8, with its path.
    pub fn push_dir_reading<T: Send>(
        &mut self,
        dir: PathBuf,
        rc: &dyn RcReader,
        read: ReadFn<T>,
    ) -> Vec<(PathBuf, T)> {
        let i = self.dirs.len();
        self.dirs.push(dir.clone());
        let mut out = Vec::new();
        if let Some(l) = list(&dir, "", Some(read), &mut Vec::new(), reader_threads()) {
            self.apply(i, l, "", rc, &mut out);
        }
        self.finish_dir(i, &dir, rc);
        out
    }

    /// The folder's own `.modulerc.lua`, then every name's versions in order.
    fn finish_dir(&mut self, i: usize, dir: &Path, rc: &dyn RcReader) {
        let rcf = dir.join(".modulerc.lua");
        if rcf.is_file() {
            self.apply_rc(i, "", &rc.read_rc(&rcf).unwrap_or_default());
        }
        for e in self.names.values_mut() {
            e.files
                .sort_by(|a, b| a.dir.cmp(&b.dir).then_with(|| key(a).cmp(key(b))));
        }
    }

    fn add(&mut self, dir: usize, sn: &str, version: Option<String>, path: PathBuf, hidden: bool) {
        let key = version_key(version.as_deref().unwrap_or(""));
        let e = self.names.entry(sn.to_string()).or_default();
        e.files.push(ModuleFile {
            sn: sn.to_string(),
            version,
            path,
            hidden,
            dir,
            key,
        });
    }

    /// Reads the folder `path` (whose name relative to the MODULEPATH folder is `rel`)
    /// and everything under it into the tree. The listing is read first, without Lua
    /// (see [`list`]); then it is applied here in name order, with rc files evaluated.
    fn walk(&mut self, dir: usize, path: &Path, rel: &str, rc: &dyn RcReader) {
        if let Some(l) = list::<()>(path, rel, None, &mut Vec::new(), reader_threads()) {
            self.apply(dir, l, rel, rc, &mut Vec::new());
        }
    }

    /// Adds a folder's listing (see [`Tree::walk`]); what was read from each
    /// modulefile goes to `read` with its path, in listing order.
    fn apply<T>(
        &mut self,
        dir: usize,
        listing: Listing<T>,
        rel: &str,
        rc: &dyn RcReader,
        read: &mut Vec<(PathBuf, T)>,
    ) {
        for e in listing.entries {
            match e {
                Listed::File { name, path, text } => {
                    let stem = &name[..name.len() - ".lua".len()];
                    let hidden =
                        stem.starts_with('.') || rel.split('/').any(|c| c.starts_with('.'));
                    if let Some(t) = text {
                        read.push((path.clone(), t));
                    }
                    if rel.is_empty() {
                        self.add(dir, stem, None, path, hidden);
                    } else {
                        self.add(dir, rel, Some(stem.to_string()), path, hidden);
                    }
                }
                Listed::Dir { name, listing } => {
                    let child = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    self.apply(dir, listing, &child, rc, read);
                }
            }
        }
        if rel.is_empty() {
            return;
        }
        // Defaults and rc files of this name folder, in Lmod's order of precedence:
        // the first marked default wins.
        let mark = |t: &mut Tree, v: String| {
            t.names
                .entry(rel.to_string())
                .or_default()
                .marked_default
                .get_or_insert(v);
        };
        if let Some(v) = listing.default {
            mark(self, v);
        }
        if let Some(rcf) = &listing.rc {
            match rc.read_rc(rcf) {
                Ok(d) => self.apply_rc(dir, rel, &d),
                Err(e) => {
                    self.names.entry(rel.to_string()).or_default().rc_error = Some(e);
                }
            }
        }
        if let Some(v) = listing.dot_version {
            mark(self, v);
        }
    }

    fn apply_rc(&mut self, _dir: usize, _rel: &str, directives: &[RcDirective]) {
        for d in directives {
            match d {
                RcDirective::Version { target, symbols } => {
                    let Some((sn, v)) = split_full(target, self) else {
                        continue;
                    };
                    let e = self.names.entry(sn).or_default();
                    for s in symbols {
                        if s == "default" {
                            e.marked_default.get_or_insert(v.clone());
                        } else if !e.symbols.iter().any(|(x, _)| x == s) {
                            e.symbols.push((s.clone(), v.clone()));
                        }
                    }
                }
                RcDirective::Alias { alias, target } => {
                    self.aliases.push((alias.clone(), target.clone()))
                }
                RcDirective::Hide(full) => {
                    if let Some((sn, v)) = split_full(full, self) {
                        if let Some(e) = self.names.get_mut(&sn) {
                            for f in &mut e.files {
                                if f.version.as_deref() == Some(v.as_str()) {
                                    f.hidden = true;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Finds the modulefile a user's request names: `NAME` (the default), `NAME/V`
    /// (exact, then a symbolic version, then the highest `V.*`), or an alias.
    pub fn resolve(&self, request: &str) -> Option<&ModuleFile> {
        let request = request.trim_end_matches('/');
        if let Some((_, target)) = self.aliases.iter().find(|(a, _)| a == request) {
            if target != request {
                return self.resolve(target);
            }
        }
        if let Some(e) = self.names.get(request) {
            if let Some(f) = e.default_file() {
                return Some(f);
            }
        }
        let mut cut = request.len();
        while let Some(i) = request[..cut].rfind('/') {
            let (sn, spec) = (&request[..i], &request[i + 1..]);
            if let Some(e) = self.names.get(sn) {
                if let Some(f) = resolve_version(e, spec) {
                    return Some(f);
                }
            }
            cut = i;
        }
        None
    }

    /// Visible modulefiles, sorted by name then version.
    pub fn visible(&self) -> impl Iterator<Item = &ModuleFile> {
        self.names
            .values()
            .flat_map(|e| e.files.iter().filter(|f| !f.hidden))
    }

    /// Names close to `request`, for "did you mean" messages (same letters ignoring
    /// case, or an edit distance of at most 2), at most 5.
    pub fn suggest(&self, request: &str) -> Vec<String> {
        let sn = request.split('/').next().unwrap_or(request).to_lowercase();
        let mut out: Vec<(usize, &String)> = self
            .names
            .keys()
            .filter_map(|n| {
                let d = edit_distance(&n.to_lowercase(), &sn);
                (d <= 2 || n.to_lowercase().contains(&sn) && sn.len() >= 3).then_some((d, n))
            })
            .collect();
        out.sort();
        out.into_iter().take(5).map(|(_, n)| n.clone()).collect()
    }
}

fn resolve_version<'a>(e: &'a NameEntry, spec: &str) -> Option<&'a ModuleFile> {
    if spec == "default" {
        return e.default_file();
    }
    if let Some(f) = e.files.iter().find(|f| f.version.as_deref() == Some(spec)) {
        return Some(f);
    }
    if let Some((_, v)) = e.symbols.iter().find(|(s, _)| s == spec) {
        return e
            .files
            .iter()
            .find(|f| f.version.as_deref() == Some(v.as_str()));
    }
    // Partial version: the highest visible version that starts with `spec` followed by
    // a separator (`gcc/5.5.0` finds `gcc/5.5.0-264foil`, `Java/1` finds `1.8.0_181`
    // but not `11.0.2`).
    e.files
        .iter()
        .filter(|f| {
            !f.hidden
                && f.version.as_deref().is_some_and(|v| {
                    v.len() > spec.len()
                        && v.starts_with(spec)
                        && !v.as_bytes()[spec.len()].is_ascii_alphanumeric()
                })
        })
        .max_by(|a, b| key(a).cmp(key(b)).then(b.dir.cmp(&a.dir)))
}

/// Splits `NAME/V` where NAME is a known name (or, failing that, at the last `/`).
fn split_full(full: &str, tree: &Tree) -> Option<(String, String)> {
    let mut cut = full.len();
    while let Some(i) = full[..cut].rfind('/') {
        if tree.names.contains_key(&full[..i]) {
            return Some((full[..i].to_string(), full[i + 1..].to_string()));
        }
        cut = i;
    }
    full.rfind('/')
        .map(|i| (full[..i].to_string(), full[i + 1..].to_string()))
}

/// One folder of a MODULEPATH tree as read from the file system (no Lua), so that
/// listings can be read on several threads and applied in order on one. `T` is what
/// was read from each modulefile's text, if texts were read.
#[derive(Debug)]
struct Listing<T> {
    /// Modulefiles (`*.lua` files) and sub-folders, in name order.
    entries: Vec<Listed<T>>,
    /// The version a `default` symlink names.
    default: Option<String>,
    /// The folder's `.modulerc.lua`, if it has one.
    rc: Option<PathBuf>,
    /// The version a `.version` file sets.
    dot_version: Option<String>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            entries: Vec::new(),
            default: None,
            rc: None,
            dot_version: None,
        }
    }
}

#[derive(Debug)]
enum Listed<T> {
    /// A modulefile: its file name (with `.lua`), path, and what was read from its
    /// text (`None` if texts are not read, or it could not be read as UTF-8).
    File {
        name: String,
        path: PathBuf,
        text: Option<T>,
    },
    /// A sub-folder, with its listing.
    Dir { name: String, listing: Listing<T> },
}

/// Applied to each modulefile's short name and text while listing (on reader threads).
type ReadFn<'a, T> = &'a (dyn Fn(&str, &str) -> T + Sync);

/// Folders with at least this many sub-folders are read on several threads.
const PARALLEL_DIRS: usize = 32;

/// How many threads read the file system in listings: the available cores, at most
/// four. Asked once per process (the question itself reads cgroup files).
pub(crate) fn reader_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    })
}

/// Reads the folder `path` (named `rel` relative to its MODULEPATH folder; empty for
/// the MODULEPATH folder itself) and everything under it; `None` if it cannot be
/// listed. With `read`, every modulefile is also read and `read` applied to its short
/// name and text. `buf` is scratch space for file reads; `threads` is how many threads
/// may read (see [`reader_threads`]).
///
/// File types come from the directory listing (no `stat` per file, except for
/// symlinks). In a name's folder `default`, `.version` and `.modulerc.lua` are looked
/// at, and the first two read, only when listed. The sub-folders of a large folder are
/// read on up to four threads: listing thousands of folders and reading their files
/// is kernel work that divides over cores.
fn list<T: Send>(
    path: &Path,
    rel: &str,
    read: Option<ReadFn<T>>,
    buf: &mut Vec<u8>,
    threads: usize,
) -> Option<Listing<T>> {
    let mut l = list_one(path, rel, read, buf)?;
    let mut subdirs: Vec<&mut Listed<T>> = l
        .entries
        .iter_mut()
        .filter(|e| matches!(e, Listed::Dir { .. }))
        .collect();
    let fill = |chunk: &mut [&mut Listed<T>], buf: &mut Vec<u8>| {
        for e in chunk {
            if let Listed::Dir { name, listing } = &mut **e {
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if let Some(sub) = list(&path.join(&*name), &child, read, buf, threads) {
                    *listing = sub;
                }
            }
        }
    };
    if threads < 2 || subdirs.len() < PARALLEL_DIRS {
        fill(&mut subdirs, buf);
    } else {
        let size = subdirs.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut chunks = subdirs.chunks_mut(size);
            let first = chunks.next();
            for c in chunks {
                scope.spawn(|| fill(c, &mut Vec::new()));
            }
            if let Some(c) = first {
                fill(c, buf);
            }
        });
    }
    Some(l)
}

/// One folder's own entries (sub-folders left empty; see [`list`]).
fn list_one<T>(
    path: &Path,
    rel: &str,
    read: Option<ReadFn<T>>,
    buf: &mut Vec<u8>,
) -> Option<Listing<T>> {
    let name_folder = !rel.is_empty();
    let rd = std::fs::read_dir(path).ok()?;
    let mut entries: Vec<Listed<T>> = Vec::new();
    let mut l = Listing::default();
    let (mut has_default, mut has_version) = (false, false);
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        match name.as_str() {
            "default" => {
                has_default = true;
                continue;
            }
            ".version" => {
                has_version = true;
                continue;
            }
            ".modulerc.lua" => {
                if name_folder {
                    l.rc = Some(e.path());
                }
                continue;
            }
            ".modulerc" => continue,
            _ => {}
        }
        let Ok(ft) = e.file_type() else { continue };
        let (is_file, is_dir) = if ft.is_symlink() {
            match std::fs::metadata(e.path()) {
                Ok(m) => (m.is_file(), m.is_dir()),
                Err(_) => continue,
            }
        } else {
            (ft.is_file(), ft.is_dir())
        };
        if is_file && name.ends_with(".lua") {
            let path = e.path();
            let text = read.and_then(|f| {
                let n = crate::engine::read_into(&path, buf).ok()?;
                let text = std::str::from_utf8(&buf[..n]).ok()?;
                // The short name: the folder's name, or the file's for `DIR/NAME.lua`.
                Some(if name_folder {
                    f(rel, text)
                } else {
                    f(&name[..name.len() - ".lua".len()], text)
                })
            });
            entries.push(Listed::File { name, path, text });
            continue;
        }
        if is_dir {
            entries.push(Listed::Dir {
                name,
                listing: Listing::default(),
            });
        }
    }
    entries.sort_unstable_by(|a, b| entry_name(a).cmp(entry_name(b)));
    l.entries = entries;
    if !name_folder {
        return Some(l);
    }
    if has_default {
        if let Ok(target) = std::fs::read_link(path.join("default")) {
            if let Some(t) = target.file_name().and_then(|t| t.to_str()) {
                l.default = Some(t.strip_suffix(".lua").unwrap_or(t).to_string());
            }
        }
    }
    if has_version {
        if let Ok(text) = std::fs::read_to_string(path.join(".version")) {
            l.dot_version = parse_dot_version(&text);
        }
    }
    Some(l)
}

/// The name an entry was listed under, for sorting.
fn entry_name<T>(e: &Listed<T>) -> &str {
    match e {
        Listed::File { name, .. } | Listed::Dir { name, .. } => name,
    }
}

/// The version a Tcl `.version` file sets: `set ModulesVersion "V"`.
pub fn parse_dot_version(text: &str) -> Option<String> {
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next() == Some("set") && w.next() == Some("ModulesVersion") {
            let v = w.next()?.trim_matches(|c| c == '"' || c == '{' || c == '}');
            return Some(v.to_string());
        }
    }
    None
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoRc;
    impl RcReader for NoRc {
        fn read_rc(&self, _: &Path) -> Result<Vec<RcDirective>, String> {
            Ok(Vec::new())
        }
    }

    /// A tree whose top folder and one category folder have more than
    /// [`PARALLEL_DIRS`] sub-folders, with a default symlink, a `.version` file, a
    /// hidden version, a non-modulefile and a name without versions.
    fn parallel_fixture() -> PathBuf {
        let root = std::env::temp_dir().join(format!("mlmod-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let w = |p: &str, text: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        for n in 0..40 {
            for v in ["1.0", "1.10", "2.0"] {
                w(&format!("n{n:02}/{v}.lua"), &format!("-- n{n:02} {v}\n"));
            }
        }
        for n in 0..35 {
            w(&format!("cat/t{n:02}/3.1.lua"), "whatis(\"x\")\n");
        }
        w("n00/.hidden.lua", "");
        w("n00/notes.txt", "not a modulefile");
        w("n01/.version", "#%Module\nset ModulesVersion \"1.0\"\n");
        std::os::unix::fs::symlink("1.10.lua", root.join("n02/default")).unwrap();
        w("solo.lua", "");
        root
    }

    #[test]
    fn threaded_listing_equals_serial_listing() {
        let root = parallel_fixture();
        let build = |threads: usize| {
            let mut t = Tree::default();
            t.dirs.push(root.clone());
            let mut read = Vec::new();
            let scan = |sn: &str, text: &str| (sn.to_string(), text.len());
            let l = list(&root, "", Some(&scan), &mut Vec::new(), threads).unwrap();
            t.apply(0, l, "", &NoRc, &mut read);
            (t, read)
        };
        let (serial, serial_read) = build(1);
        let (threaded, threaded_read) = build(4);
        assert_eq!(serial.names, threaded.names);
        assert_eq!(serial_read, threaded_read);
        // 40 × 3 + 35 + hidden + solo modulefiles, each read once, in name order.
        assert_eq!(serial_read.len(), 157);
        assert_eq!(serial_read[0].1, ("cat/t00".to_string(), 12));
        assert_eq!(serial_read.last().unwrap().1, ("solo".to_string(), 0));
        assert_eq!(serial.names.len(), 40 + 35 + 1);
        assert_eq!(serial.names["n01"].marked_default.as_deref(), Some("1.0"));
        assert_eq!(serial.names["n02"].marked_default.as_deref(), Some("1.10"));
        assert!(serial.names["n00"].files.iter().any(|f| f.hidden));
        assert_eq!(
            serial.names["cat/t34"].files[0].version.as_deref(),
            Some("3.1")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dot_version_files() {
        assert_eq!(
            parse_dot_version("#%Module\nset ModulesVersion \"1.2\"\n"),
            Some("1.2".into())
        );
        assert_eq!(parse_dot_version("#%Module\n"), None);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("gcc", "gcd"), 1);
        assert_eq!(edit_distance("python", "pyhton"), 2);
    }
}

//! Evaluating modulefiles and running `module` subcommands.
//!
//! A modulefile is evaluated once under a mode (load, unload, show, help, whatis); in
//! unload mode every verb does its inverse (`setenv` → unset, `prepend_path` →
//! remove, `load` → unload), as in Lmod's `MC_Unload`. Effects go into an [`Env`]
//! transaction and reach the shell only if the whole command succeeds.
//!
//! Each modulefile runs in its own sandboxed Lua environment: the Lmod functions, the
//! safe parts of the standard library (`string`, `table`, `math`, `os.getenv`,
//! `os.date`, `os.time`, ...), and no `io`, `require` or `os.execute`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use crate::env::{Env, Loaded};
use crate::tree::{ModuleFile, RcDirective, RcReader, Scope, Tree};

/// How a modulefile is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Apply it.
    Load,
    /// Undo it.
    Unload,
    /// Print what it would do (`module show`).
    Show,
    /// Collect `help` text.
    Help,
    /// Collect `whatis` lines.
    Whatis,
    /// Find the MODULEPATH folders a module opens (`module spider`).
    Spider,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Load => "load",
            Mode::Unload => "unload",
            Mode::Show => "show",
            Mode::Help => "help",
            Mode::Whatis => "whatis",
            Mode::Spider => "spider",
        }
    }
}

/// An error of a module command; the message is what the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModError {
    /// A module that is not on MODULEPATH (Lmod's `e_Failed_Load` words; mlmod adds
    /// close names).
    #[error("{}{}", failed_load(&[name.as_str()]), suggest(.suggestions))]
    Unknown {
        /// What was asked.
        name: String,
        /// Close names.
        suggestions: Vec<String>,
    },
    /// Several names of one `module load` that are not on MODULEPATH, sorted, as Lmod
    /// lists them in one message.
    #[error("{}", failed_load(&names.iter().map(String::as_str).collect::<Vec<_>>()))]
    UnknownMany {
        /// What was asked.
        names: Vec<String>,
    },
    /// A Lua syntax or runtime error, or `LmodError`, with file and line when known.
    #[error("{0}")]
    Eval(String),
    /// A conflict or missing prerequisite, or a swap of a module that is not loaded.
    #[error("{0}")]
    Rule(String),
    /// A bad command line.
    #[error("{0}")]
    Usage(String),
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("\n\nDid you mean: {}?", s.join(", "))
    }
}

/// Lmod's message for names `load` cannot find (messageDir/en.lua, `e_Failed_Load`).
fn failed_load(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let list = list.join(" ");
    format!(
        "The following module(s) are unknown: {list}\n\n\
         Please check the spelling or version number. Also try \"module spider ...\"\n\
         It is also possible your cache file is out-of-date; it may help to try:\n  \
         $ module --ignore_cache load {list}\n\n\
         Also make sure that all modulefiles written in TCL start with the string #%Module"
    )
}

/// What one module file evaluation is about.
#[derive(Clone, Debug)]
struct Frame {
    file: ModuleFile,
    usr_name: String,
    mode: Mode,
}

/// Mutable data shared by the Lua callbacks.
struct Inner {
    env: Env,
    modulepath_dirs: Vec<PathBuf>,
    frames: Vec<Frame>,
    messages: Vec<String>,
    show: String,
    /// The text of each `help()` call, in order.
    help: Vec<String>,
    whatis: Vec<String>,
    shell: String,
    /// Properties `add_property` set during the current load.
    pending_props: Vec<(String, String)>,
    /// MODULEPATH folders a module adds, found in spider mode.
    spider_dirs: Vec<String>,
    /// An `LmodWarning` was given: the command succeeds but returns a non-zero status,
    /// as Lmod's does.
    warned: bool,
    /// Modulefile texts read during this command (listings read many files twice).
    texts: HashMap<PathBuf, Arc<str>>,
    /// mlmod's state listed loaded modules when the command started.
    had_modules: bool,
    /// The modules loaded when the command started (full names): only their
    /// replacement by another version is a notice (Lmod is silent when a module
    /// loaded earlier in the same command is replaced, as in easybuild `IRIS`).
    loaded_at_start: HashSet<String>,
    /// What happened to modules besides what the user asked, for Lmod's notices:
    /// version changes (`old => new`), reloads after MODULEPATH changes, modules made
    /// inactive and modules activated again.
    notices: Notices,
}

/// Lmod's notices after a command.
#[derive(Debug, Default)]
struct Notices {
    version_changes: Vec<(String, String)>,
    reloaded: Vec<String>,
    inactive: Vec<String>,
    activated: Vec<String>,
}

/// The Lua state of an engine and its sandbox's base table (the modulefile API).
struct LuaState {
    lua: Lua,
    base: Table,
}

/// One `module` command run: the engine over one process environment.
pub struct Engine {
    /// The Lua state and the sandbox's base table, made on first use: listings that
    /// evaluate nothing (`avail` without rc files) never pay for them.
    lua: std::cell::OnceCell<Result<LuaState, ModError>>,
    inner: Rc<RefCell<Inner>>,
    /// The process environment the engine started from (to start helper engines).
    base_env: HashMap<String, String>,
}

fn lua_err(e: ModError) -> mlua::Error {
    mlua::Error::external(e)
}

/// Finds a `ModError` inside a Lua error, or turns the Lua error into one that names the
/// file and line.
fn from_lua(e: mlua::Error) -> ModError {
    match &e {
        mlua::Error::ExternalError(x) => {
            if let Some(m) = x.downcast_ref::<ModError>() {
                return m.clone();
            }
        }
        mlua::Error::CallbackError {
            cause,
            traceback: _,
        } => return from_lua((**cause).clone()),
        mlua::Error::WithContext { cause, .. } => return from_lua((**cause).clone()),
        _ => {}
    }
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message,
        mlua::Error::RuntimeError(m) => m,
        other => other.to_string(),
    };
    ModError::Eval(msg)
}

fn arg_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Arguments of the path functions: positional `(name, value, delim)` or a table
/// `{name, value, delim=..., priority=...}`.
fn path_args(args: &MultiValue) -> mlua::Result<(String, String, String, i64)> {
    let v: Vec<&Value> = args.iter().collect();
    let num = |x: &Value| match x {
        Value::Integer(i) => Some(*i),
        Value::Number(n) => Some(*n as i64),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    };
    if let Some(Value::Table(t)) = v.first() {
        let name: String = t.get(1)?;
        let value: Value = t.get(2)?;
        let delim: Option<String> = t.get("delim")?;
        let priority: Value = t.get("priority")?;
        return Ok((
            name,
            arg_str(&value).unwrap_or_default(),
            delim
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| ":".into()),
            num(&priority).unwrap_or(0),
        ));
    }
    let name = v
        .first()
        .and_then(|x| arg_str(x))
        .ok_or_else(|| mlua::Error::runtime("path function: missing variable name"))?;
    let value = v
        .get(1)
        .and_then(|x| arg_str(x))
        .ok_or_else(|| mlua::Error::runtime(format!("path function for {name}: missing value")))?;
    let delim = v
        .get(2)
        .and_then(|x| arg_str(x))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ":".into());
    let priority = v.get(3).and_then(|x| num(x)).unwrap_or(0);
    Ok((name, value, delim, priority))
}

fn strings(args: &MultiValue) -> Vec<String> {
    let mut out = Vec::new();
    for a in args.iter() {
        match a {
            Value::Table(t) => {
                for v in t.clone().sequence_values::<Value>().flatten() {
                    if let Some(s) = arg_str(&v) {
                        out.push(s);
                    }
                }
            }
            v => {
                if let Some(s) = arg_str(v) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The first two arguments as strings (a missing one is empty): `(name, value)`.
/// Module names given to a verb, with surrounding white space removed as Lmod does
/// (EasyBuild trees have `load("cutadapt/3.5-GCCcore-11.2.0 ")`); empty names dropped.
fn module_names(args: &MultiValue) -> Vec<String> {
    strings(args)
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

fn name_value(args: &MultiValue) -> (String, String) {
    let mut v = strings(args).into_iter();
    (v.next().unwrap_or_default(), v.next().unwrap_or_default())
}

fn quote_lua(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Engine {
    /// An engine over the process environment `base`.
    ///
    /// # Errors
    /// [`ModError::Usage`] if the state variable is unreadable.
    pub fn new(base: HashMap<String, String>, shell: &str) -> Result<Self, ModError> {
        let base_env = base.clone();
        let env = Env::new(base).map_err(ModError::Usage)?;
        let dirs = split_modulepath(env.get("MODULEPATH"));
        let had_modules = !env.state.loaded.is_empty();
        let loaded_at_start = env.state.loaded.iter().map(|l| l.full_name()).collect();
        let inner = Rc::new(RefCell::new(Inner {
            env,
            modulepath_dirs: dirs,
            frames: Vec::new(),
            messages: Vec::new(),
            show: String::new(),
            help: Vec::new(),
            whatis: Vec::new(),
            shell: shell.to_string(),
            pending_props: Vec::new(),
            spider_dirs: Vec::new(),
            warned: false,
            texts: HashMap::new(),
            notices: Notices::default(),
            had_modules,
            loaded_at_start,
        }));
        Ok(Engine {
            lua: std::cell::OnceCell::new(),
            inner,
            base_env,
        })
    }

    /// The Lua state, made (and the modulefile API installed) on first use.
    ///
    /// # Errors
    /// [`ModError`] if Lua cannot be set up (out of memory).
    fn lua(&self) -> Result<(&Lua, &Table), ModError> {
        let state = self.lua.get_or_init(|| {
            let lua = Lua::new();
            let base = lua.create_table().map_err(from_lua)?;
            install(&lua, &base, &self.inner).map_err(from_lua)?;
            Ok(LuaState { lua, base })
        });
        match state {
            Ok(s) => Ok((&s.lua, &s.base)),
            Err(e) => Err(e.clone()),
        }
    }

    /// The environment transaction.
    pub fn env(&self) -> std::cell::Ref<'_, Env> {
        std::cell::Ref::map(self.inner.borrow(), |i| &i.env)
    }

    /// Evaluates `file` in `mode` in a fresh sandbox.
    fn eval(&self, file: &ModuleFile, usr_name: &str, mode: Mode) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        eval_file(lua, &self.inner, base, file, usr_name, mode)
    }

    /// Loads modules by name (`module load`).
    ///
    /// # Errors
    /// [`ModError`] for an unknown module, a rule violation or an evaluation error.
    pub fn load(&self, names: &[String]) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        // As Lmod, every name that cannot be found is named in one error, after the
        // others were tried (the command fails as a whole all the same).
        let mut unknown: Vec<ModError> = Vec::new();
        for n in names {
            let mp = modulepath_now(&self.inner);
            match load_module(lua, &self.inner, base, n, LoadHow::User) {
                Err(e @ ModError::Unknown { .. }) if matches!(&e, ModError::Unknown { name, .. } if name == n) =>
                {
                    unknown.push(e);
                    continue;
                }
                r => r?,
            }
            settle(lua, &self.inner, base, &mp)?;
        }
        if unknown.len() > 1 {
            let mut names: Vec<String> = unknown
                .into_iter()
                .filter_map(|e| match e {
                    ModError::Unknown { name, .. } => Some(name),
                    _ => None,
                })
                .collect();
            names.sort();
            return Err(ModError::UnknownMany { names });
        }
        match unknown.pop() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Loads modules that exist; unknown names are skipped (`module try-load`).
    ///
    /// # Errors
    /// [`ModError`] for a rule violation or an evaluation error.
    pub fn try_load(&self, names: &[String]) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        for n in names {
            match load_module(lua, &self.inner, base, n, LoadHow::User) {
                Err(ModError::Unknown { .. }) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Unloads modules (`module unload`); names not loaded are ignored.
    ///
    /// # Errors
    /// [`ModError`] for an evaluation error.
    pub fn unload(&self, names: &[String]) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        for n in names {
            let mp = modulepath_now(&self.inner);
            unload_module(lua, &self.inner, base, n, true)?;
            settle(lua, &self.inner, base, &mp)?;
        }
        Ok(())
    }

    /// Unloads everything, last loaded first (`module purge`).
    ///
    /// # Errors
    /// [`ModError`] for an evaluation error.
    pub fn purge(&self) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        let mp = modulepath_now(&self.inner);
        loop {
            let last = self
                .inner
                .borrow()
                .env
                .state
                .loaded
                .last()
                .map(|l| l.full_name());
            match last {
                Some(n) => unload_module(lua, &self.inner, base, &n, true)?,
                None => return settle(lua, &self.inner, base, &mp),
            }
        }
    }

    /// Replaces `old` with `new` (`module swap`).
    ///
    /// # Errors
    /// As [`Engine::unload`] and [`Engine::load`].
    pub fn swap(&self, old: &str, new: &str) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        // One settle after the whole swap, as Lmod: the dependents of a swapped
        // compiler are reloaded, not made inactive in between.
        let mp = modulepath_now(&self.inner);
        let before = {
            let i = self.inner.borrow();
            i.find_loaded(old).map(|k| i.env.state.loaded[k].clone())
        };
        if before.is_none() {
            // Lmod refuses and changes nothing.
            return Err(ModError::Rule(format!(
                "Swap failed: \"{old}\" is not loaded."
            )));
        }
        let place = before.as_ref().and_then(|b| {
            self.inner
                .borrow()
                .env
                .state
                .loaded
                .iter()
                .position(|l| l.file == b.file)
        });
        unload_module(lua, &self.inner, base, old, true)?;
        load_module(lua, &self.inner, base, new, LoadHow::User)?;
        let hierarchy = modulepath_now(&self.inner) != mp;
        if let Some(b) = before {
            let mut i = self.inner.borrow_mut();
            // As in Lmod: the new module goes to the end of the load order, except when
            // the swap changes MODULEPATH (a compiler or MPI swap): then it takes the old
            // one's place and the modules that depend on it are reloaded after it.
            let list = &mut i.env.state.loaded;
            if let (true, Some(p), Some(at)) =
                (hierarchy, place, list.iter().position(|l| l.sn == b.sn))
            {
                let m = list.remove(at);
                list.insert(p.min(list.len()), m);
            }
            let after = i
                .env
                .state
                .loaded
                .iter()
                .find(|l| l.sn == b.sn)
                .map(|l| l.full_name());
            if let Some(a) = after.filter(|a| *a != b.full_name()) {
                i.notices.version_changes.insert(0, (b.full_name(), a));
            }
        }
        settle(lua, &self.inner, base, &mp)
    }

    /// Adds folders to MODULEPATH (`module use`), at the front unless `append`.
    ///
    /// # Errors
    /// [`ModError`] from reloading modules the new MODULEPATH changes.
    pub fn use_dirs(&self, dirs: &[String], append: bool) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        let mp = modulepath_now(&self.inner);
        let mut i = self.inner.borrow_mut();
        let cwd = std::env::current_dir().unwrap_or_default();
        let list: Vec<String> = dirs.iter().map(|d| absolute(&cwd, d)).collect();
        if append {
            for d in &list {
                i.env.add_path("MODULEPATH", d, ":", false, 0);
            }
        } else {
            // Lmod prepends each folder in turn: `use A B` puts B first.
            for d in &list {
                i.env.add_path("MODULEPATH", d, ":", true, 0);
            }
        }
        i.refresh_modulepath();
        drop(i);
        settle(lua, &self.inner, base, &mp)
    }

    /// Removes folders from MODULEPATH (`module unuse`).
    ///
    /// # Errors
    /// [`ModError`] from reloading modules the new MODULEPATH changes.
    pub fn unuse_dirs(&self, dirs: &[String]) -> Result<(), ModError> {
        let (lua, base) = self.lua()?;
        let mp = modulepath_now(&self.inner);
        let mut i = self.inner.borrow_mut();
        let cwd = std::env::current_dir().unwrap_or_default();
        // `unuse` keeps a relative folder's symlinks (lexical), as Lmod 8.6 does.
        for d in dirs {
            i.env
                .remove_path("MODULEPATH", &lexical(&cwd, d), ":", true);
        }
        i.refresh_modulepath();
        drop(i);
        settle(lua, &self.inner, base, &mp)
    }

    /// The loaded modules, in load order.
    pub fn loaded(&self) -> Vec<Loaded> {
        self.inner.borrow().env.state.loaded.clone()
    }

    /// The whole tree on MODULEPATH.
    pub fn tree(&self) -> Tree {
        let i = self.inner.borrow();
        Tree::scan(&i.modulepath_dirs, Scope::All, self)
    }

    /// Finds a module by name on MODULEPATH.
    pub fn resolve(&self, name: &str) -> Option<ModuleFile> {
        let i = self.inner.borrow();
        i.tree_for(name).resolve(name).cloned()
    }

    /// `module show`: the modulefile's path and the calls it makes.
    ///
    /// # Errors
    /// [`ModError::Unknown`] or an evaluation error.
    pub fn show(&self, name: &str) -> Result<String, ModError> {
        let f = self.resolve_or_err(name)?;
        self.inner.borrow_mut().show.clear();
        self.eval(&f, name, Mode::Show)?;
        let body = std::mem::take(&mut self.inner.borrow_mut().show);
        let rule = "-".repeat(75);
        Ok(format!("{rule}\n   {}:\n{rule}\n{body}", f.path.display()))
    }

    /// `module help`: the modulefile and the text of each of its `help()` calls.
    /// As Lmod's help mode, an error in the modulefile is ignored: the calls made
    /// before it count (easybuild `IRIS/2.0.1` fails after its `help`).
    ///
    /// # Errors
    /// [`ModError::Unknown`].
    pub fn help(&self, name: &str) -> Result<(ModuleFile, Vec<String>), ModError> {
        let f = self.resolve_or_err(name)?;
        let calls = self.help_calls(&f, name);
        Ok((f, calls))
    }

    /// The help text of the modulefile `f` (which may lie anywhere in the hierarchy),
    /// evaluated as `name`: its `help()` calls joined. An error in the modulefile is
    /// ignored, as Lmod ignores it: the text given before it is kept.
    pub fn help_of(&self, f: &ModuleFile, name: &str) -> String {
        self.help_calls(f, name).concat()
    }

    fn help_calls(&self, f: &ModuleFile, name: &str) -> Vec<String> {
        self.inner.borrow_mut().help.clear();
        // Lmod's help mode reports no evaluation error (loadModuleFile's result is
        // not looked at by Master:access).
        let _ = self.eval(f, name, Mode::Help);
        std::mem::take(&mut self.inner.borrow_mut().help)
    }

    /// `module whatis`: the modulefile's whatis lines; as in Lmod's whatis mode, an
    /// error in the modulefile is ignored and the lines given before it are kept.
    ///
    /// # Errors
    /// [`ModError::Unknown`].
    pub fn whatis(&self, name: &str) -> Result<(ModuleFile, Vec<String>), ModError> {
        let f = self.resolve_or_err(name)?;
        let lines = self.whatis_lines(&f).0;
        Ok((f, lines))
    }

    /// The whatis lines of many modulefiles, in order (empty for a file that fails).
    /// Files whose whatis lines are plain literals are read without Lua
    /// ([`crate::literal::literal_whatis`]); the rest are evaluated, large batches on
    /// two threads, each with its own engine (Lua states are not shared).
    pub fn whatis_many(&self, files: &[ModuleFile]) -> Vec<Vec<String>> {
        self.prefetch(files);
        let mut out: Vec<Option<Vec<String>>> = files
            .iter()
            .map(|f| {
                let text = read_text(&self.inner, &f.path).ok()?;
                crate::literal::literal_whatis(&text)
            })
            .collect();
        let todo: Vec<usize> = (0..files.len()).filter(|&i| out[i].is_none()).collect();
        if todo.len() < 64 {
            for i in todo {
                out[i] = Some(self.whatis_lines(&files[i]).0);
            }
            return out.into_iter().map(Option::unwrap_or_default).collect();
        }
        let (a, b) = todo.split_at(todo.len() / 2);
        let mut env = self.base_env.clone();
        if let Some(mp) = self.modulepath() {
            env.insert("MODULEPATH".into(), mp);
        }
        env.remove(crate::env::STATE_VAR);
        let shell = self.inner.borrow().shell.clone();
        let theirs: Vec<(ModuleFile, Option<Arc<str>>)> = {
            let inner = self.inner.borrow();
            b.iter()
                .map(|&i| (files[i].clone(), inner.texts.get(&files[i].path).cloned()))
                .collect()
        };
        let results = std::thread::scope(|scope| {
            let other = scope.spawn(move || match Engine::new(env, &shell) {
                Ok(e) => {
                    e.seed_texts(
                        theirs
                            .iter()
                            .filter_map(|(f, t)| Some((f.path.clone(), t.clone()?)))
                            .collect(),
                    );
                    theirs
                        .iter()
                        .map(|(f, _)| e.whatis_lines(f).0)
                        .collect::<Vec<_>>()
                }
                Err(_) => vec![Vec::new(); theirs.len()],
            });
            let mut mine: Vec<Vec<String>> =
                a.iter().map(|&i| self.whatis_lines(&files[i]).0).collect();
            mine.extend(other.join().unwrap_or_default());
            mine
        });
        for (i, r) in todo.into_iter().zip(results) {
            out[i] = Some(r);
        }
        out.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// The whatis lines of a modulefile.
    ///
    /// # Errors
    /// An evaluation error.
    pub fn whatis_of(&self, f: &ModuleFile) -> Result<Vec<String>, ModError> {
        match self.whatis_lines(f) {
            (_, Some(e)) => Err(e),
            (lines, None) => Ok(lines),
        }
    }

    /// The whatis lines a modulefile gives before it ends or fails, and its error if it
    /// failed. Listings (`keyword`, `spider`) show the lines of a file that fails after
    /// its whatis calls, as Lmod does.
    pub fn whatis_lines(&self, f: &ModuleFile) -> (Vec<String>, Option<ModError>) {
        self.inner.borrow_mut().whatis.clear();
        let r = self.eval(f, &f.full_name(), Mode::Whatis);
        let lines = std::mem::take(&mut self.inner.borrow_mut().whatis);
        (lines, r.err())
    }

    fn resolve_or_err(&self, name: &str) -> Result<ModuleFile, ModError> {
        let i = self.inner.borrow();
        let t = i.tree_for(name);
        t.resolve(name).cloned().ok_or_else(|| ModError::Unknown {
            name: name.to_string(),
            suggestions: i.suggest(name),
        })
    }

    /// Messages gathered so far.
    pub fn take_messages(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.borrow_mut().messages)
    }

    /// The whole module hierarchy reachable from MODULEPATH (`module spider`): the
    /// folders in the order found, each with the modules that must be loaded to reach
    /// it (empty for MODULEPATH itself). A modulefile is evaluated (in spider mode) only
    /// if its text mentions MODULEPATH.
    pub fn hierarchy(&self) -> (Tree, Vec<Vec<String>>) {
        let (tree, needs, _) = self.hierarchy_scan(|_, _| ());
        (tree, needs)
    }

    /// [`Engine::hierarchy`], also applying `scan` to the short name and text of every
    /// modulefile as
    /// it is read, on the reader threads, so that listings that look into every file
    /// (keyword) neither keep the texts nor read them twice. The third value maps each
    /// modulefile's path to what `scan` gave; a file that could not be read (or is not
    /// UTF-8) has no entry.
    pub fn hierarchy_scan<T: Send>(
        &self,
        scan: impl Fn(&str, &str) -> T + Sync,
    ) -> (Tree, Vec<Vec<String>>, HashMap<std::ffi::OsString, T>) {
        let start = self.inner.borrow().modulepath_dirs.clone();
        let mut tree = Tree::default();
        let mut needs: Vec<Vec<String>> = Vec::new();
        let mut scanned: HashMap<std::ffi::OsString, T> = HashMap::new();
        let mut queue: std::collections::VecDeque<(PathBuf, Vec<String>)> =
            start.into_iter().map(|d| (d, Vec::new())).collect();
        let read = |name: &str, text: &str| (text.contains("MODULEPATH"), scan(name, text));
        while let Some((dir, need)) = queue.pop_front() {
            if tree.dirs.contains(&dir) || tree.dirs.len() > 10_000 {
                continue;
            }
            let idx = tree.dirs.len();
            let mut opens: HashSet<std::ffi::OsString> = HashSet::new();
            for (path, (mentions, t)) in tree.push_dir_reading(dir, self, &read) {
                let path = path.into_os_string();
                if mentions {
                    opens.insert(path.clone());
                }
                scanned.insert(path, t);
            }
            needs.push(need.clone());
            // The files that may open folders, in listing order.
            let files: Vec<ModuleFile> = tree
                .names
                .values()
                .flat_map(|e| e.files.iter())
                .filter(|f| f.dir == idx && opens.contains(f.path.as_os_str()))
                .cloned()
                .collect();
            for f in files {
                self.inner.borrow_mut().spider_dirs.clear();
                if self.eval(&f, &f.full_name(), Mode::Spider).is_err() {
                    continue;
                }
                let found = std::mem::take(&mut self.inner.borrow_mut().spider_dirs);
                for d in found {
                    let p = PathBuf::from(Env::clean_entry(&d));
                    if !tree.dirs.contains(&p) {
                        let mut n = need.clone();
                        n.push(f.full_name());
                        queue.push_back((p, n));
                    }
                }
            }
        }
        (tree, needs, scanned)
    }

    /// Sets MODULEPATH (or unsets it).
    pub fn set_modulepath(&self, mp: Option<&str>) {
        let mut i = self.inner.borrow_mut();
        match mp {
            Some(v) => i.env.set("MODULEPATH", v),
            None => i.env.unset("MODULEPATH"),
        }
        i.env.state.refs.remove("MODULEPATH");
        i.refresh_modulepath();
    }

    /// Reads the modulefiles among `files` that this command has not read yet, on up
    /// to four threads, into the text cache. Listings that must look at many files
    /// spend most of their time in the kernel opening and reading
    /// small files, and that work divides over cores. A file that cannot be read is
    /// left out here; [`Engine::read_text`] reports its error when it is needed.
    pub fn prefetch(&self, files: &[ModuleFile]) {
        let missing: Vec<ModuleFile> = {
            let i = self.inner.borrow();
            files
                .iter()
                .filter(|f| !i.texts.contains_key(&f.path))
                .cloned()
                .collect()
        };
        let texts = read_many(&missing, |_, t| t.to_string());
        let mut i = self.inner.borrow_mut();
        for (f, t) in missing.into_iter().zip(texts) {
            if let Some(t) = t {
                i.texts.insert(f.path, t.into());
            }
        }
    }

    /// Adds already-read modulefile texts to this engine's cache.
    fn seed_texts(&self, texts: Vec<(PathBuf, Arc<str>)>) {
        self.inner.borrow_mut().texts.extend(texts);
    }

    /// Lmod's notices about modules changed besides those the user named (version
    /// changes, reloads after MODULEPATH changes, inactive and activated modules), as
    /// text; empty if there were none.
    pub fn notices(&self) -> String {
        let n = &self.inner.borrow().notices;
        let mut out = String::new();
        let list = |title: &str, items: Vec<String>| -> String {
            if items.is_empty() {
                return String::new();
            }
            let mut s = format!("\n{title}\n");
            for (k, it) in items.iter().enumerate() {
                s += &format!("  {}) {it}\n", k + 1);
            }
            // Lmod ends each list with a blank line.
            s.push('\n');
            s
        };
        out += &list("Inactive Modules:", n.inactive.clone());
        out += &list("Activating Modules:", n.activated.clone());
        out += &list(
            "Due to MODULEPATH changes, the following have been reloaded:",
            n.reloaded.clone(),
        );
        out += &list(
            "The following have been reloaded with a version change:",
            n.version_changes
                .iter()
                .map(|(a, b)| format!("{a} => {b}"))
                .collect(),
        );
        out
    }

    /// A warning if the environment lists loaded modules that mlmod did not load (for
    /// example loaded by Lmod in the login shell): mlmod cannot unload those.
    pub fn foreign_modules(&self) -> Option<String> {
        let i = self.inner.borrow();
        let mine = !i.env.state.loaded.is_empty();
        let listed = i.env.get("LOADEDMODULES").is_some_and(|v| !v.is_empty());
        let lmod = i.env.get("_ModuleTable001_").is_some();
        (!mine && (listed || lmod)).then(|| {
            "mlmod: warning: LOADEDMODULES lists modules that mlmod did not load (Lmod's?); \
             mlmod cannot unload them: run `module purge` with Lmod first, or start a new shell\n"
                .to_string()
        })
    }

    /// True if an `LmodWarning` was given during the command.
    pub fn warned(&self) -> bool {
        self.inner.borrow().warned
    }

    /// The MODULEPATH of the transaction now.
    pub fn modulepath(&self) -> Option<String> {
        self.inner
            .borrow()
            .env
            .get("MODULEPATH")
            .map(str::to_string)
    }

    /// Rewrites LOADEDMODULES and _LMFILES_ from the state, then returns the changes.
    pub fn finish(&self) -> Vec<crate::env::Change> {
        let mut i = self.inner.borrow_mut();
        let names: Vec<String> = i.env.state.loaded.iter().map(|l| l.full_name()).collect();
        let files: Vec<String> = i.env.state.loaded.iter().map(|l| l.file.clone()).collect();
        if names.is_empty() && !i.had_modules {
            // Nothing of ours was or is loaded: leave another tool's lists alone.
        } else if names.is_empty() {
            if i.env.get("LOADEDMODULES").is_some() {
                i.env.unset("LOADEDMODULES");
            }
            if i.env.get("_LMFILES_").is_some() {
                i.env.unset("_LMFILES_");
            }
        } else {
            i.env.set("LOADEDMODULES", &names.join(":"));
            i.env.set("_LMFILES_", &files.join(":"));
        }
        i.env.changes()
    }
}

/// Installs the modulefile API (Lmod's functions) into `base`, the table each
/// modulefile's sandbox is made from.
fn install(lua: &Lua, base: &Table, inner0: &Rc<RefCell<Inner>>) -> mlua::Result<()> {
    let g = lua.globals();
    for name in [
        "string",
        "table",
        "math",
        "utf8",
        "pairs",
        "ipairs",
        "next",
        "select",
        "type",
        "tostring",
        "tonumber",
        "pcall",
        "error",
        "assert",
        "unpack",
        "rawget",
        "rawset",
        "rawequal",
        "rawlen",
        "setmetatable",
        "getmetatable",
        "print",
    ] {
        let v: Value = g.get(name)?;
        base.set(name, v)?;
    }
    if base.get::<Value>("unpack")?.is_nil() {
        let tu: Value = g.get::<Table>("table")?.get("unpack")?;
        base.set("unpack", tu)?;
    }
    // os: only what cannot change the machine.
    let os: Table = g.get("os")?;
    let safe_os = lua.create_table()?;
    for n in ["date", "time", "clock", "difftime"] {
        safe_os.set(n, os.get::<Value>(n)?)?;
    }
    let inner = inner0.clone();
    safe_os.set(
        "getenv",
        lua.create_function(move |_, name: String| {
            Ok(inner.borrow().env.get(&name).map(str::to_string))
        })?,
    )?;
    base.set("os", safe_os)?;
    // io: writing to the terminal goes to the user's messages; files may be read
    // but not written.
    let safe_io = lua.create_table()?;
    let io: Table = g.get("io")?;
    let real_open: mlua::Function = io.get("open")?;
    safe_io.set(
        "open",
        lua.create_function(move |_, (path, mode): (String, Option<String>)| {
            let m = mode.unwrap_or_else(|| "r".into());
            if !m.starts_with('r') || m.contains('+') {
                return Ok((
                    Value::Nil,
                    Some(format!("{path}: modulefiles may not write files")),
                ));
            }
            let f: Value = real_open.call((path, m))?;
            Ok((f, None))
        })?,
    )?;
    safe_io.set("lines", io.get::<Value>("lines")?)?;
    let inner = inner0.clone();
    let write = lua.create_function(move |_, args: MultiValue| {
        // `io.write(...)` or `io.stderr:write(...)`: skip the stream argument.
        let parts: Vec<String> = args.iter().filter_map(arg_str).collect();
        let mut i = inner.borrow_mut();
        if matches!(i.mode(), Mode::Load | Mode::Unload) {
            let text = parts.concat();
            i.messages.push(text.trim_end_matches('\n').to_string());
        }
        Ok(())
    })?;
    let stream = lua.create_table()?;
    stream.set("write", write.clone())?;
    safe_io.set("stderr", stream.clone())?;
    safe_io.set("stdout", stream)?;
    safe_io.set("write", write)?;
    base.set("io", safe_io)?;
    // print in a modulefile goes to the user, like LmodMessage.
    let inner = inner0.clone();
    base.set(
        "print",
        lua.create_function(move |_, args: Variadic<Value>| {
            let s: Vec<String> = args.iter().filter_map(arg_str).collect();
            inner.borrow_mut().messages.push(s.join("\t"));
            Ok(())
        })?,
    )?;

    macro_rules! func {
        ($name:expr, $f:expr) => {{
            let inner = inner0.clone();
            let f = lua.create_function(move |lua, args: MultiValue| $f(lua, &inner, args))?;
            base.set($name, f)?;
        }};
    }

    // --- environment verbs ---
    func!("setenv", |_,
                     inner: &Rc<RefCell<Inner>>,
                     args: MultiValue| {
        let (name, value) = name_value(&args);
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => i.env.set(&name, &value),
            Mode::Unload => i.env.unset(&name),
            Mode::Show => i.show_call("setenv", &[&name, &value]),
            _ => {}
        }
        Ok(())
    });
    func!("unsetenv", |_,
                       inner: &Rc<RefCell<Inner>>,
                       args: MultiValue| {
        let v = strings(&args);
        let name = v.first().cloned().unwrap_or_default();
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => i.env.unset(&name),
            Mode::Unload => {
                if let Some(val) = v.get(1) {
                    i.env.set(&name, val);
                }
            }
            Mode::Show => i.show_call("unsetenv", &[&name]),
            _ => {}
        }
        Ok(())
    });
    func!("pushenv", |_,
                      inner: &Rc<RefCell<Inner>>,
                      args: MultiValue| {
        let (name, value) = name_value(&args);
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => {
                let old = i.env.get(&name).map(str::to_string);
                i.env
                    .state
                    .pushenv
                    .entry(name.clone())
                    .or_default()
                    .push(old);
                i.env.set(&name, &value);
            }
            Mode::Unload => {
                let old = i.env.state.pushenv.get_mut(&name).and_then(|s| s.pop());
                if i.env.state.pushenv.get(&name).is_some_and(|s| s.is_empty()) {
                    i.env.state.pushenv.remove(&name);
                }
                match old.flatten() {
                    Some(o) => i.env.set(&name, &o),
                    None => i.env.unset(&name),
                }
            }
            Mode::Show => i.show_call("pushenv", &[&name, &value]),
            _ => {}
        }
        Ok(())
    });
    for (fname, front) in [("prepend_path", true), ("append_path", false)] {
        let inner = inner0.clone();
        let f = lua.create_function(move |_, args: MultiValue| {
            let (name, value, delim, priority) = path_args(&args)?;
            let mut i = inner.borrow_mut();
            match i.mode() {
                Mode::Load => i.env.add_path(&name, &value, &delim, front, priority),
                Mode::Unload => i.env.remove_path(&name, &value, &delim, false),
                Mode::Show => i.show_call(fname, &[&name, &value]),
                Mode::Spider if name == "MODULEPATH" => {
                    let dirs: Vec<String> = value.split(&delim).map(str::to_string).collect();
                    i.spider_dirs.extend(dirs);
                }
                _ => {}
            }
            if name == "MODULEPATH" {
                i.refresh_modulepath();
            }
            Ok(())
        })?;
        base.set(fname, f)?;
    }
    func!("remove_path", |_,
                          inner: &Rc<RefCell<Inner>>,
                          args: MultiValue| {
        let (name, value, delim, _) = path_args(&args)?;
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => i.env.remove_path(&name, &value, &delim, true),
            Mode::Show => i.show_call("remove_path", &[&name, &value]),
            _ => {}
        }
        if name == "MODULEPATH" {
            i.refresh_modulepath();
        }
        Ok(())
    });
    func!("set_alias", |_,
                        inner: &Rc<RefCell<Inner>>,
                        args: MultiValue| {
        let (name, value) = name_value(&args);
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => i.env.set_alias(&name, &value),
            Mode::Unload => i.env.unset_alias(&name),
            Mode::Show => i.show_call("set_alias", &[&name, &value]),
            _ => {}
        }
        Ok(())
    });
    func!("unset_alias", |_,
                          inner: &Rc<RefCell<Inner>>,
                          args: MultiValue| {
        let v = strings(&args);
        let name = v.first().cloned().unwrap_or_default();
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Load => i.env.unset_alias(&name),
            Mode::Show => i.show_call("unset_alias", &[&name]),
            _ => {}
        }
        Ok(())
    });
    func!(
        "set_shell_function",
        |_, inner: &Rc<RefCell<Inner>>, args: MultiValue| {
            let v = strings(&args);
            let name = v.first().cloned().unwrap_or_default();
            let bash = v.get(1).cloned().unwrap_or_default();
            let csh = v.get(2).cloned().unwrap_or_default();
            let mut i = inner.borrow_mut();
            match i.mode() {
                Mode::Load => i.env.set_function(&name, &bash, &csh),
                Mode::Unload => i.env.unset_function(&name),
                Mode::Show => i.show_call("set_shell_function", &[&name, &bash]),
                _ => {}
            }
            Ok(())
        }
    );
    func!(
        "unset_shell_function",
        |_, inner: &Rc<RefCell<Inner>>, args: MultiValue| {
            let v = strings(&args);
            let name = v.first().cloned().unwrap_or_default();
            let mut i = inner.borrow_mut();
            if i.mode() == Mode::Load {
                i.env.unset_function(&name);
            }
            Ok(())
        }
    );

    // --- dependencies and rules ---
    for (fname, kind) in [
        ("load", DepKind::Load),
        ("try_load", DepKind::TryLoad),
        ("try_add", DepKind::TryLoad),
        ("depends_on", DepKind::DependsOn),
        ("always_load", DepKind::Always),
        ("load_any", DepKind::Any),
    ] {
        let inner = inner0.clone();
        let base_t = base.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            let names = module_names(&args);
            dependency(lua, &inner, &base_t, fname, kind, &names)
        })?;
        base.set(fname, f)?;
    }
    func!("prereq", |_,
                     inner: &Rc<RefCell<Inner>>,
                     args: MultiValue| rule(
        inner,
        "prereq",
        &module_names(&args)
    ));
    func!("prereq_any", |_,
                         inner: &Rc<RefCell<Inner>>,
                         args: MultiValue| {
        rule(inner, "prereq_any", &module_names(&args))
    });
    func!("conflict", |_,
                       inner: &Rc<RefCell<Inner>>,
                       args: MultiValue| {
        rule(inner, "conflict", &module_names(&args))
    });
    {
        let inner = inner0.clone();
        let base_t = base.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            let fam = strings(&args).into_iter().next().unwrap_or_default();
            family(lua, &inner, &base_t, &fam)
        })?;
        base.set("family", f)?;
    }

    // --- information ---
    func!("whatis", |_,
                     inner: &Rc<RefCell<Inner>>,
                     args: MultiValue| {
        let v = strings(&args).join("");
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Whatis => i.whatis.push(v),
            Mode::Show => i.show_call("whatis", &[&v]),
            _ => {}
        }
        Ok(())
    });
    func!("help", |_, inner: &Rc<RefCell<Inner>>, args: MultiValue| {
        let v = strings(&args).join("");
        let mut i = inner.borrow_mut();
        match i.mode() {
            Mode::Help => i.help.push(v),
            Mode::Show => {
                let t = format!("help([[{v}]])\n");
                i.show.push_str(&t);
            }
            _ => {}
        }
        Ok(())
    });
    for (fname, prefix) in [("LmodMessage", ""), ("LmodWarning", "Lmod Warning: ")] {
        let inner = inner0.clone();
        let f = lua.create_function(move |_, args: MultiValue| {
            let v = strings(&args).join("");
            let mut i = inner.borrow_mut();
            if matches!(i.mode(), Mode::Load | Mode::Unload) {
                i.messages.push(format!("{prefix}{v}"));
                if !prefix.is_empty() {
                    i.warned = true;
                }
            }
            Ok(())
        })?;
        base.set(fname, f)?;
    }
    func!("LmodError", |_,
                        inner: &Rc<RefCell<Inner>>,
                        args: MultiValue| {
        let v = strings(&args).join("");
        let i = inner.borrow();
        if matches!(i.mode(), Mode::Load | Mode::Unload) {
            let file = i
                .frames
                .last()
                .map(|f| f.file.path.display().to_string())
                .unwrap_or_default();
            return Err(lua_err(ModError::Eval(format!("{file}: {v}"))));
        }
        Ok(())
    });
    func!(
        "add_property",
        |_, inner: &Rc<RefCell<Inner>>, args: MultiValue| {
            let v = strings(&args);
            let mut i = inner.borrow_mut();
            if i.mode() == Mode::Load {
                if let (Some(k), Some(val)) = (v.first(), v.get(1)) {
                    i.pending_props.push((k.clone(), val.clone()));
                }
            }
            Ok(())
        }
    );
    func!(
        "remove_property",
        |_, _inner: &Rc<RefCell<Inner>>, _args: MultiValue| Ok(())
    );
    func!("extensions", |_,
                         _inner: &Rc<RefCell<Inner>>,
                         _args: MultiValue| Ok(
        ()
    ));
    func!("execute", |_,
                      _inner: &Rc<RefCell<Inner>>,
                      _args: MultiValue| Ok(()));

    // --- introspection ---
    func!("myModuleName", |_,
                           inner: &Rc<RefCell<Inner>>,
                           _a: MultiValue| {
        Ok(inner
            .borrow()
            .frame()
            .map(|f| f.file.sn.clone())
            .unwrap_or_default())
    });
    func!(
        "myModuleVersion",
        |_, inner: &Rc<RefCell<Inner>>, _a: MultiValue| Ok(inner
            .borrow()
            .frame()
            .and_then(|f| f.file.version.clone())
            .unwrap_or_default())
    );
    func!(
        "myModuleFullName",
        |_, inner: &Rc<RefCell<Inner>>, _a: MultiValue| Ok(inner
            .borrow()
            .frame()
            .map(|f| f.file.full_name())
            .unwrap_or_default())
    );
    func!(
        "myModuleUsrName",
        |_, inner: &Rc<RefCell<Inner>>, _a: MultiValue| Ok(inner
            .borrow()
            .frame()
            .map(|f| f.usr_name.clone())
            .unwrap_or_default())
    );
    func!("myFileName", |_,
                         inner: &Rc<RefCell<Inner>>,
                         _a: MultiValue| {
        Ok(inner
            .borrow()
            .frame()
            .map(|f| f.file.path.display().to_string())
            .unwrap_or_default())
    });
    func!("myShellName", |_,
                          inner: &Rc<RefCell<Inner>>,
                          _a: MultiValue| Ok(
        inner.borrow().shell.clone()
    ));
    func!("myShellType", |_,
                          inner: &Rc<RefCell<Inner>>,
                          _a: MultiValue| {
        let s = inner.borrow().shell.clone();
        Ok(match s.as_str() {
            "csh" | "tcsh" => "csh".to_string(),
            "fish" => "fish".to_string(),
            _ => "sh".to_string(),
        })
    });
    func!("mode", |_, inner: &Rc<RefCell<Inner>>, _a: MultiValue| Ok(
        inner.borrow().mode().name().to_string()
    ));
    func!("isloaded", |_,
                       inner: &Rc<RefCell<Inner>>,
                       args: MultiValue| {
        let name = module_names(&args).into_iter().next().unwrap_or_default();
        Ok(inner.borrow().find_loaded(&name).is_some())
    });
    func!("isAvail", |_,
                      inner: &Rc<RefCell<Inner>>,
                      args: MultiValue| {
        let name = module_names(&args).into_iter().next().unwrap_or_default();
        let i = inner.borrow();
        Ok(i.tree_for(&name).resolve(&name).is_some())
    });
    func!("pathJoin", |_,
                       _inner: &Rc<RefCell<Inner>>,
                       args: MultiValue| {
        let parts: Vec<String> = strings(&args)
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let mut s = parts.join("/");
        while s.contains("//") {
            s = s.replace("//", "/");
        }
        Ok(s)
    });
    // Lmod's fileOps helpers (tools/fileOps.lua), same answers: the directory part
    // keeps its trailing `/` ("./" without one), the extension its dot.
    fn first(args: &MultiValue) -> Option<String> {
        strings(args).into_iter().next()
    }
    fn dir_end(p: &str) -> Option<usize> {
        p.rfind('/')
    }
    func!(
        "dirname",
        |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(first(&args).map(|p| {
            match dir_end(&p) {
                Some(j) => p[..=j].to_string(),
                None => "./".to_string(),
            }
        }))
    );
    func!(
        "barefilename",
        |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(first(&args).map(|p| {
            match dir_end(&p) {
                Some(j) => p[j + 1..].to_string(),
                None => p,
            }
        }))
    );
    func!(
        "splitFileName",
        |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| {
            let (d, f): (Option<String>, Option<String>) = first(&args)
                .map(|p| match dir_end(&p) {
                    Some(j) => (p[..=j].to_string(), p[j + 1..].to_string()),
                    None => ("./".to_string(), p),
                })
                .unzip();
            Ok((d, f))
        }
    );
    // The last `.` at or after the last `/` (Lmod searches from the slash itself).
    fn last_dot(p: &str) -> Option<usize> {
        let from = dir_end(p).unwrap_or(0);
        p[from..].rfind('.').map(|k| from + k)
    }
    func!(
        "extname",
        |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(first(&args).map(|p| {
            match last_dot(&p) {
                Some(k) => p[k..].to_string(),
                None => String::new(),
            }
        }))
    );
    func!("removeExt", |_,
                        _i: &Rc<RefCell<Inner>>,
                        args: MultiValue| Ok(
        first(&args).map(|p| match last_dot(&p) {
            Some(k) => p[..k].to_string(),
            None => p,
        })
    ));
    // isDir follows a symbolic link; isFile is true for a regular file or any link.
    func!("isDir", |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(
        first(&args).is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
    ));
    func!("isFile", |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(
        first(&args).is_some_and(|p| {
            std::fs::symlink_metadata(p)
                .is_ok_and(|m| m.file_type().is_file() || m.file_type().is_symlink())
        })
    ));
    func!("is_spider", |_,
                        inner: &Rc<RefCell<Inner>>,
                        _a: MultiValue| Ok(
        inner.borrow().mode().name() == "spider"
    ));
    // Lmod's parseVersion, the key versions sort by.
    func!(
        "convertToCanonical",
        |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(
            first(&args).map(|v| crate::version::version_key(&v))
        )
    );
    // As Lmod's MasterControl:userInGroups: a word of `groups` names one of them, or
    // the user is root (`id -u` is 0).
    let in_groups = |wanted: Vec<String>| -> bool {
        let run = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        run("groups", &[])
            .split([' ', '\n'])
            .any(|g| !g.is_empty() && wanted.iter().any(|w| w == g))
            || run("id", &["-u"]).trim() == "0"
    };
    for n in ["userInGroups", "userInGroup"] {
        func!(n, |_, _i: &Rc<RefCell<Inner>>, args: MultiValue| Ok(
            in_groups(strings(&args))
        ));
    }
    // Lmod's rc-file verbs are harmless no-ops inside a modulefile.
    for n in [
        "module_version",
        "module_alias",
        "hide_version",
        "hide_modulefile",
    ] {
        base.set(n, lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    }
    Ok(())
}

impl RcReader for Engine {
    fn read_rc(&self, path: &Path) -> Result<Vec<RcDirective>, String> {
        match self.lua() {
            Ok((lua, _)) => read_rc(lua, path),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Evaluates a `.modulerc.lua` in its own small sandbox and returns its directives, or
/// the error (file and line) that stopped it; an unreadable file has no directives.
fn read_rc(lua: &Lua, path: &Path) -> Result<Vec<RcDirective>, String> {
    let Ok(code) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let out: Rc<RefCell<Vec<RcDirective>>> = Rc::default();
    let run = || -> mlua::Result<()> {
        let env = lua.create_table()?;
        let o = out.clone();
        env.set(
            "module_version",
            lua.create_function(move |_, args: MultiValue| {
                let v = strings(&args);
                if let Some((t, syms)) = v.split_first() {
                    o.borrow_mut().push(RcDirective::Version {
                        target: t.clone(),
                        symbols: syms.to_vec(),
                    });
                }
                Ok(())
            })?,
        )?;
        let o = out.clone();
        env.set(
            "module_alias",
            lua.create_function(move |_, args: MultiValue| {
                let v = strings(&args);
                if let (Some(a), Some(t)) = (v.first(), v.get(1)) {
                    o.borrow_mut().push(RcDirective::Alias {
                        alias: a.clone(),
                        target: t.clone(),
                    });
                }
                Ok(())
            })?,
        )?;
        for n in ["hide_version", "hide_modulefile"] {
            let o = out.clone();
            env.set(
                n,
                lua.create_function(move |_, args: MultiValue| {
                    for s in strings(&args) {
                        o.borrow_mut().push(RcDirective::Hide(s));
                    }
                    Ok(())
                })?,
            )?;
        }
        lua.load(code)
            .set_name(format!("@{}", path.display()))
            .set_environment(env)
            .exec()
    };
    // Listings ignore a broken rc file, as Lmod does; loads report it (NameEntry::rc_error).
    match run() {
        Ok(()) => {
            let r = out.borrow().clone();
            Ok(r)
        }
        Err(e) => Err(lua_error_text(&e)),
    }
}

/// The first line of a Lua error: `FILE:LINE: message`, without mlua's traceback.
fn lua_error_text(e: &mlua::Error) -> String {
    let full = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    full.lines().next().unwrap_or("").to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DepKind {
    Load,
    TryLoad,
    DependsOn,
    Always,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoadHow {
    User,
    Dependency,
    DependsOn,
}

impl Inner {
    fn frame(&self) -> Option<&Frame> {
        self.frames.last()
    }

    fn mode(&self) -> Mode {
        self.frames.last().map_or(Mode::Load, |f| f.mode)
    }

    fn show_call(&mut self, f: &str, args: &[&str]) {
        let a: Vec<String> = args.iter().map(|s| quote_lua(s)).collect();
        let line = format!("{f}({})\n", a.join(","));
        self.show.push_str(&line);
    }

    fn refresh_modulepath(&mut self) {
        self.modulepath_dirs = split_modulepath(self.env.get("MODULEPATH"));
    }

    /// The part of the tree where `name` can be (fast path for load).
    fn tree_for(&self, name: &str) -> Tree {
        let first = name.split('/').next().unwrap_or(name);
        // Aliases may live in top-level rc files: fall back to a full scan if needed.
        let t = Tree::scan(
            &self.modulepath_dirs,
            Scope::FirstComponent(first),
            &FreshLuaRc,
        );
        if t.resolve(name).is_some() {
            return t;
        }
        Tree::scan(&self.modulepath_dirs, Scope::All, &FreshLuaRc)
    }

    fn suggest(&self, name: &str) -> Vec<String> {
        Tree::scan(&self.modulepath_dirs, Scope::All, &FreshLuaRc).suggest(name)
    }

    /// Index of the loaded module named `name` (full name, or short name).
    fn find_loaded(&self, name: &str) -> Option<usize> {
        let l = &self.env.state.loaded;
        l.iter()
            .position(|m| m.full_name() == name)
            .or_else(|| l.iter().position(|m| m.sn == name))
    }
}

/// Reads rc files with a fresh Lua state: tree scans run inside Lua callbacks, where
/// the engine's own state is busy.
struct FreshLuaRc;
impl RcReader for FreshLuaRc {
    fn read_rc(&self, path: &Path) -> Result<Vec<RcDirective>, String> {
        read_rc(&Lua::new(), path)
    }
}

fn split_modulepath(v: Option<&str>) -> Vec<PathBuf> {
    v.unwrap_or("")
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// `d` as Lmod 8.6's `module use` stores it (checked against Debian's lmod): an
/// absolute path with `.` and `..` resolved lexically (symlinks kept); a relative path
/// resolved against `cwd` through its symlinks (the real path), when it exists.
fn absolute(cwd: &Path, d: &str) -> String {
    let p = Path::new(d);
    if p.is_relative() {
        if let Ok(real) = std::fs::canonicalize(cwd.join(p)) {
            return real.display().to_string();
        }
    }
    lexical(cwd, d)
}

/// `d` made absolute against `cwd`, with `.` and `..` resolved lexically (symlinks
/// kept).
fn lexical(cwd: &Path, d: &str) -> String {
    use std::path::Component;
    let p = Path::new(d);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(x) => out.push(x),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out.display().to_string()
}

fn eval_file(
    lua: &Lua,
    inner: &Rc<RefCell<Inner>>,
    base: &Table,
    file: &ModuleFile,
    usr_name: &str,
    mode: Mode,
) -> Result<(), ModError> {
    let code = read_text(inner, &file.path)
        .map_err(|e| ModError::Eval(format!("{}: {e}", file.path.display())))?;
    let run = || -> mlua::Result<()> {
        let env = lua.create_table()?;
        let meta = lua.create_table()?;
        meta.set("__index", base.clone())?;
        env.set_metatable(Some(meta));
        env.set("_G", env.clone())?;
        lua.load(&*code)
            .set_name(format!("@{}", file.path.display()))
            .set_environment(env)
            .exec()
    };
    inner.borrow_mut().frames.push(Frame {
        file: file.clone(),
        usr_name: usr_name.to_string(),
        mode,
    });
    let r = run();
    inner.borrow_mut().frames.pop();
    r.map_err(|e| match from_lua(e) {
        ModError::Eval(m) => ModError::Eval(clean_lua_message(&m, &file.path)),
        other => other,
    })
}

/// A Tcl modulefile (`#%Module` first line) for `name` on MODULEPATH, if any.
fn tcl_modulefile(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    for d in dirs {
        let p = d.join(name);
        let cands: Vec<PathBuf> = if p.is_dir() {
            std::fs::read_dir(&p)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect()
        } else {
            vec![p]
        };
        for c in cands {
            if let Ok(bytes) = std::fs::read(&c) {
                if bytes.starts_with(b"#%Module") {
                    return Some(c);
                }
            }
        }
    }
    None
}

/// The text of a modulefile, read once per command.
fn read_text(inner: &Rc<RefCell<Inner>>, path: &Path) -> std::io::Result<Arc<str>> {
    if let Some(t) = inner.borrow().texts.get(path) {
        return Ok(t.clone());
    }
    let t: Arc<str> = read_small(path, &mut Vec::new())?.into();
    inner
        .borrow_mut()
        .texts
        .insert(path.to_path_buf(), t.clone());
    Ok(t)
}

/// Reads the modulefiles `files` on up to four threads and applies `f` to each (with
/// its text); `None` for a file that cannot be read or is not UTF-8 (its error is
/// reported when it is read for use).
fn read_many<T: Send>(
    files: &[ModuleFile],
    f: impl Fn(&ModuleFile, &str) -> T + Sync,
) -> Vec<Option<T>> {
    let threads = crate::tree::reader_threads();
    let read = |chunk: &[ModuleFile]| -> Vec<Option<T>> {
        let mut buf = Vec::new();
        chunk
            .iter()
            .map(|m| {
                let n = read_into(&m.path, &mut buf).ok()?;
                std::str::from_utf8(&buf[..n]).ok().map(|t| f(m, t))
            })
            .collect()
    };
    if threads < 2 || files.len() < 64 {
        return read(files);
    }
    let size = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(size)
            .skip(1)
            .map(|c| scope.spawn(|| read(c)))
            .collect();
        let mut out = read(&files[..size.min(files.len())]);
        for (h, c) in handles.into_iter().zip(files.chunks(size).skip(1)) {
            out.extend(
                h.join()
                    .unwrap_or_else(|_| c.iter().map(|_| None).collect()),
            );
        }
        out
    })
}

/// Reads a (small) text file with three system calls: open, one read, close. Neither
/// the `statx` for a size hint that `std::fs::read_to_string` makes nor the second
/// read that confirms the end of the file: a read from a regular file that returns
/// fewer bytes than asked for has reached the end (Linux returns short counts from
/// regular files only at the end). Listings read thousands of modulefiles, so this
/// matters. `buf` is scratch space reused between calls (it keeps its length, so it
/// is zeroed only when it grows).
///
/// # Errors
/// The I/O error, or `InvalidData` if the file is not UTF-8.
fn read_small(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<String> {
    let n = read_into(path, buf)?;
    String::from_utf8(buf[..n].to_vec())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The bytes of `path` into `buf` (grown as needed, never shrunk); their length.
pub(crate) fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    if buf.len() < 16 * 1024 {
        buf.resize(16 * 1024, 0);
    }
    let mut len = 0;
    loop {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break;
                }
                let grow = buf.len();
                buf.resize(grow * 2, 0);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Drops Lua's stack traceback and restores the full file name that Lua shortens to
/// `...tail` (its chunk names are cut to 60 characters).
fn clean_lua_message(msg: &str, path: &Path) -> String {
    let msg = msg
        .split("\nstack traceback:")
        .next()
        .unwrap_or(msg)
        .trim_end();
    let full = path.display().to_string();
    if let Some(rest) = msg.strip_prefix("...") {
        if let Some(colon) = rest.find(".lua:") {
            let tail = &rest[..colon + 4];
            if full.ends_with(tail) {
                return format!("{full}{}", &rest[colon + 4..]);
            }
        }
    }
    msg.to_string()
}

/// After MODULEPATH changed (a compiler or MPI module was loaded, swapped or
/// unloaded, or `use`/`unuse`), makes every loaded module the one its name now finds,
/// as Lmod does: a module whose name finds another file is reloaded from it (swapping a
/// compiler reloads the libraries built with it); one whose name finds nothing is
/// unloaded and remembered as inactive, and inactive modules whose name finds a file
/// again are loaded.
fn reload_hier(lua: &Lua, inner: &Rc<RefCell<Inner>>, base: &Table) -> Result<(), ModError> {
    let resolve = |n: &str| -> Option<ModuleFile> {
        let i = inner.borrow();
        i.tree_for(n).resolve(n).cloned()
    };
    for _round in 0..8 {
        let mut changed = false;
        // Which loaded modules now resolve to another file (or to none), by the name
        // the user gave: a module loaded by its full name stays that version or goes
        // inactive, one loaded by its short name follows the default.
        let loaded = inner.borrow().env.state.loaded.clone();
        let want_of = |l: &Loaded| {
            if l.usr_name.is_empty() {
                l.full_name()
            } else {
                l.usr_name.clone()
            }
        };
        // The first loaded module whose name now finds another file (or none), by the
        // name the user gave: a module loaded by its full name stays that version or
        // goes inactive, one loaded by its short name follows the default.
        let first = loaded.iter().position(|l| match resolve(&want_of(l)) {
            Some(f) => f.path.display().to_string() != l.file,
            None => true,
        });
        if let Some(k) = first {
            changed = true;
            // As if loaded again in order from there: unload that module and every one
            // after it, last first (so each unload sees the environment its load made,
            // e.g. MPI x LAPACK folders computed from other modules' variables), then
            // load each again by its name, or make it inactive.
            let suffix: Vec<Loaded> = loaded[k..].to_vec();
            for l in suffix.iter().rev() {
                unload_module(lua, inner, base, &l.full_name(), true)?;
            }
            for l in suffix {
                let want = want_of(&l);
                match resolve(&want) {
                    Some(f) => {
                        if f.path.display().to_string() != l.file {
                            let mut i = inner.borrow_mut();
                            if f.full_name() == l.full_name() {
                                i.notices.reloaded.push(l.full_name());
                            } else {
                                i.notices
                                    .version_changes
                                    .push((l.full_name(), f.full_name()));
                            }
                        }
                        let how = if l.refs > 0 && !l.user {
                            LoadHow::DependsOn
                        } else if l.user {
                            LoadHow::User
                        } else {
                            LoadHow::Dependency
                        };
                        load_module(lua, inner, base, &f.full_name(), how)?;
                        // Keep the name the user gave, so later changes follow it too.
                        let file = f.path.display().to_string();
                        if let Some(m) = inner
                            .borrow_mut()
                            .env
                            .state
                            .loaded
                            .iter_mut()
                            .find(|m| m.file == file)
                        {
                            m.usr_name = want.clone();
                            m.user |= l.user;
                        }
                    }
                    None => {
                        let mut i = inner.borrow_mut();
                        i.env.state.inactive.push(want);
                        i.notices.inactive.push(l.sn.clone());
                    }
                }
            }
        }
        let inactive = inner.borrow().env.state.inactive.clone();
        for n in inactive {
            if resolve(&n).is_some() {
                inner.borrow_mut().env.state.inactive.retain(|x| *x != n);
                load_module(lua, inner, base, &n, LoadHow::User)?;
                inner.borrow_mut().notices.activated.push(n.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
    Ok(())
}

/// At the top level (not inside a modulefile), brings the loaded modules in line with
/// MODULEPATH if it changed since `before`, as Lmod does after each module it loads or
/// unloads.
fn settle(
    lua: &Lua,
    inner: &Rc<RefCell<Inner>>,
    base: &Table,
    before: &Option<String>,
) -> Result<(), ModError> {
    let (top, now) = {
        let i = inner.borrow();
        (
            i.frames.is_empty(),
            i.env.get("MODULEPATH").map(str::to_string),
        )
    };
    if top && now != *before {
        reload_hier(lua, inner, base)?;
    }
    Ok(())
}

fn modulepath_now(inner: &Rc<RefCell<Inner>>) -> Option<String> {
    inner.borrow().env.get("MODULEPATH").map(str::to_string)
}

fn load_module(
    lua: &Lua,
    inner: &Rc<RefCell<Inner>>,
    base: &Table,
    name: &str,
    how: LoadHow,
) -> Result<(), ModError> {
    let (file, already, same_sn) = {
        let i = inner.borrow();
        let t = i.tree_for(name);
        let Some(f) = t.resolve(name).cloned() else {
            if let Some(tcl) = tcl_modulefile(&i.modulepath_dirs, name) {
                return Err(ModError::Usage(format!(
                    "{}: \"{name}\" is a Tcl modulefile; mlmod reads only Lua modulefiles (.lua) for now",
                    tcl.display()
                )));
            }
            return Err(ModError::Unknown {
                name: name.to_string(),
                suggestions: i.suggest(name),
            });
        };
        // A broken `.modulerc.lua` of the name fails the load, naming its file and line
        // (Lmod's words).
        if let Some(err) = t.names.get(&f.sn).and_then(|e| e.rc_error.as_ref()) {
            return Err(ModError::Eval(format!(
                "Unable to load module because of error when evaluating modulefile: <unknown>\n     {err}\n     Please check the modulefile and especially if there is a line number\nspecified in the above message"
            )));
        }
        // A modulefile that loads itself while it is being loaded (easybuild's
        // SUM/2.5.2 does, behind `if not isloaded(...)`): Lmod loads it once.
        if i.frames.iter().any(|fr| fr.file.path == f.path) {
            return Ok(());
        }
        let already = i
            .env
            .state
            .loaded
            .iter()
            .position(|l| l.file == f.path.display().to_string());
        let same_sn = i.env.state.loaded.iter().position(|l| l.sn == f.sn);
        (f, already, same_sn)
    };
    if let Some(idx) = already {
        if how == LoadHow::DependsOn {
            inner.borrow_mut().env.state.loaded[idx].refs += 1;
            return Ok(());
        }
        // Lmod reloads a module that is loaded again: it is unloaded and loaded, so its
        // paths move to the front; who holds it is kept.
        let old = inner.borrow().env.state.loaded[idx].clone();
        let mp = modulepath_now(inner);
        unload_module(lua, inner, base, &old.full_name(), true)?;
        settle(lua, inner, base, &mp)?;
        load_module(lua, inner, base, name, how)?;
        let mut i = inner.borrow_mut();
        if let Some(l) = i.env.state.loaded.iter_mut().find(|l| l.file == old.file) {
            l.user |= old.user;
            l.refs = old.refs;
        }
        return Ok(());
    }
    // The one-name rule: another version of the same name is swapped out.
    if let Some(idx) = same_sn {
        let old = inner.borrow().env.state.loaded[idx].full_name();
        let mp = modulepath_now(inner);
        unload_module(lua, inner, base, &old, true)?;
        settle(lua, inner, base, &mp)?;
        let mut i = inner.borrow_mut();
        if i.loaded_at_start.contains(&old) {
            i.notices.version_changes.push((old, file.full_name()));
        }
    }
    inner.borrow_mut().pending_props.clear();
    eval_file(lua, inner, base, &file, name, Mode::Load)?;
    let mut i = inner.borrow_mut();
    let props = std::mem::take(&mut i.pending_props);
    let mut l = Loaded {
        sn: file.sn.clone(),
        version: file.version.clone(),
        file: file.path.display().to_string(),
        user: how == LoadHow::User,
        refs: u32::from(how == LoadHow::DependsOn),
        usr_name: name.to_string(),
        props: Default::default(),
    };
    for (k, v) in props {
        l.props.entry(k).or_default().push(v);
    }
    i.env.state.loaded.push(l);
    Ok(())
}

fn unload_module(
    lua: &Lua,
    inner: &Rc<RefCell<Inner>>,
    base: &Table,
    name: &str,
    _user: bool,
) -> Result<(), ModError> {
    let entry = {
        let i = inner.borrow();
        i.find_loaded(name)
            .map(|idx| i.env.state.loaded[idx].clone())
    };
    let Some(l) = entry else {
        return Ok(());
    };
    let file = ModuleFile {
        sn: l.sn.clone(),
        version: l.version.clone(),
        path: PathBuf::from(&l.file),
        hidden: false,
        dir: 0,
        key: crate::version::version_key(l.version.as_deref().unwrap_or("")),
    };
    // Take it off the list first, so that its own `isloaded` and nested unloads see it gone.
    {
        let mut i = inner.borrow_mut();
        i.env.state.loaded.retain(|m| m.file != l.file);
        // Release families it holds.
        let fams: Vec<String> = i
            .env
            .state
            .families
            .iter()
            .filter(|(_, sn)| **sn == l.sn)
            .map(|(f, _)| f.clone())
            .collect();
        for f in fams {
            i.env.state.families.remove(&f);
        }
    }
    eval_file(lua, inner, base, &file, &l.usr_name, Mode::Unload)
}

fn dependency(
    lua: &Lua,
    inner: &Rc<RefCell<Inner>>,
    base: &Table,
    fname: &str,
    kind: DepKind,
    names: &[String],
) -> mlua::Result<()> {
    let mode = inner.borrow().mode();
    match mode {
        Mode::Show => {
            let a: Vec<&str> = names.iter().map(String::as_str).collect();
            inner.borrow_mut().show_call(fname, &a);
            Ok(())
        }
        Mode::Load => {
            if kind == DepKind::Any {
                if names
                    .iter()
                    .any(|n| inner.borrow().find_loaded(n).is_some())
                {
                    return Ok(());
                }
                for n in names {
                    match load_module(lua, inner, base, n, LoadHow::Dependency) {
                        Ok(()) => return Ok(()),
                        Err(ModError::Unknown { .. }) => continue,
                        Err(e) => return Err(lua_err(e)),
                    }
                }
                return Err(lua_err(ModError::Rule(format!(
                    "load_any: none of these modules could be loaded: {}",
                    names.join(" ")
                ))));
            }
            for n in names {
                let how = if kind == DepKind::DependsOn {
                    LoadHow::DependsOn
                } else {
                    LoadHow::Dependency
                };
                match load_module(lua, inner, base, n, how) {
                    Err(ModError::Unknown { .. }) if kind == DepKind::TryLoad => {}
                    r => r.map_err(lua_err)?,
                }
            }
            Ok(())
        }
        Mode::Unload => {
            match kind {
                DepKind::Always => {}
                DepKind::DependsOn => {
                    for n in names.iter().rev() {
                        let drop = {
                            let mut i = inner.borrow_mut();
                            match i.find_loaded(n) {
                                Some(idx) => {
                                    let l = &mut i.env.state.loaded[idx];
                                    l.refs = l.refs.saturating_sub(1);
                                    l.refs == 0 && !l.user
                                }
                                None => false,
                            }
                        };
                        if drop {
                            unload_module(lua, inner, base, n, false).map_err(lua_err)?;
                        }
                    }
                }
                _ => {
                    for n in names.iter().rev() {
                        unload_module(lua, inner, base, n, false).map_err(lua_err)?;
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn rule(inner: &Rc<RefCell<Inner>>, fname: &str, names: &[String]) -> mlua::Result<()> {
    let i = inner.borrow();
    match i.mode() {
        Mode::Show => {
            drop(i);
            let a: Vec<&str> = names.iter().map(String::as_str).collect();
            inner.borrow_mut().show_call(fname, &a);
            Ok(())
        }
        Mode::Load => match fname {
            "conflict" => {
                let clash: Vec<String> = names
                    .iter()
                    .filter_map(|n| {
                        i.find_loaded(n)
                            .map(|idx| i.env.state.loaded[idx].full_name())
                    })
                    .collect();
                if clash.is_empty() {
                    Ok(())
                } else {
                    Err(lua_err(ModError::Rule(format!(
                        "Cannot load module \"{}\" because these module(s) are loaded:\n   {}",
                        i.frame().map(|f| f.file.full_name()).unwrap_or_default(),
                        clash.join(" ")
                    ))))
                }
            }
            "prereq" => {
                let missing: Vec<&String> = names
                    .iter()
                    .filter(|n| i.find_loaded(n).is_none())
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(lua_err(ModError::Rule(format!(
                        "Cannot load module \"{}\" without these module(s) loaded:\n   {}",
                        i.frame().map(|f| f.file.full_name()).unwrap_or_default(),
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ))))
                }
            }
            _ => {
                if names.iter().any(|n| i.find_loaded(n).is_some()) {
                    Ok(())
                } else {
                    Err(lua_err(ModError::Rule(format!(
                            "Cannot load module \"{}\" without at least one of these module(s) loaded:\n   {}",
                            i.frame().map(|f| f.file.full_name()).unwrap_or_default(),
                            names.join(" ")
                        ))))
                }
            }
        },
        _ => Ok(()),
    }
}

fn family(lua: &Lua, inner: &Rc<RefCell<Inner>>, base: &Table, fam: &str) -> mlua::Result<()> {
    let (mode, me) = {
        let i = inner.borrow();
        (i.mode(), i.frame().map(|f| f.file.clone()))
    };
    let Some(me) = me else { return Ok(()) };
    let var = format!("LMOD_FAMILY_{}", fam.to_uppercase());
    match mode {
        Mode::Load => {
            let holder = inner.borrow().env.state.families.get(fam).cloned();
            if let Some(other) = holder.filter(|o| *o != me.sn) {
                // Lmod's auto swap: the other member of the family goes.
                unload_module(lua, inner, base, &other, true).map_err(lua_err)?;
            }
            let mut i = inner.borrow_mut();
            i.env.state.families.insert(fam.to_string(), me.sn.clone());
            i.env.set(&var, &me.sn);
            i.env.set(
                &format!("{var}_VERSION"),
                me.version.as_deref().unwrap_or(""),
            );
        }
        Mode::Unload => {
            let mut i = inner.borrow_mut();
            i.env.state.families.remove(fam);
            i.env.unset(&var);
            i.env.unset(&format!("{var}_VERSION"));
        }
        Mode::Show => inner.borrow_mut().show_call("family", &[fam]),
        _ => {}
    }
    Ok(())
}

//! Named collections (`module save`, `restore`, `savelist`, `describe`): the loaded
//! modules and MODULEPATH, kept as JSON files in `$MLMOD_COLLECTIONS` or, by default,
//! `$HOME/.mlmod.d/NAME.json`. Lmod keeps its own format in `~/.lmod.d`; `restore`
//! and `describe` read those too (never write them) when mlmod has no collection of
//! that name.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, ModError};

/// Format version of a collection file.
pub const COLLECTION_FORMAT: u32 = 1;

/// One module of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Full name, `NAME/VERSION`.
    pub name: String,
    /// Loaded by the user (restored explicitly) rather than as a dependency.
    pub user: bool,
    /// The name the user loaded it by (`bzip2` for `bzip2/1.0.8`); empty in files
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_name: String,
}

/// A saved collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// Format version, [`COLLECTION_FORMAT`].
    pub v: u32,
    /// MODULEPATH when saved.
    pub modulepath: Option<String>,
    /// Modules in load order.
    pub modules: Vec<Member>,
}

fn dir(engine: &Engine) -> Result<PathBuf, ModError> {
    let env = engine.env();
    if let Some(d) = env.get("MLMOD_COLLECTIONS") {
        return Ok(PathBuf::from(d));
    }
    match env.get("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h).join(".mlmod.d")),
        _ => Err(ModError::Usage(
            "HOME is not set: cannot find the collections folder (set MLMOD_COLLECTIONS)".into(),
        )),
    }
}

fn check_name(name: &str) -> Result<(), ModError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(ModError::Usage(format!(
            "\"{name}\" is not a valid collection name (no '/', not starting with '.')"
        )));
    }
    Ok(())
}

/// Saves the loaded modules as collection `name`; returns the file written.
///
/// # Errors
/// [`ModError::Usage`] for a bad name or a write failure (the old file, if any, stays).
pub fn save(engine: &Engine, name: &str) -> Result<PathBuf, ModError> {
    check_name(name)?;
    let d = dir(engine)?;
    let tree = engine.tree();
    // A name loaded by a symbolic version (`modrc/stable`) is saved by the version it
    // named, as Lmod saves `userName = "modrc/1.0"`; bare names and partial versions
    // stay as typed, to be resolved again at restore.
    let user_name = |typed: String, full: &str| -> String {
        let symbolic = typed.rsplit_once('/').is_some_and(|(sn, v)| {
            tree.names
                .get(sn)
                .is_some_and(|e| e.symbols.iter().any(|(s, _)| s == v))
        });
        if symbolic {
            full.to_string()
        } else {
            typed
        }
    };
    let c = Collection {
        v: COLLECTION_FORMAT,
        modulepath: engine.modulepath(),
        modules: engine
            .loaded()
            .into_iter()
            .map(|l| {
                let full = l.full_name();
                Member {
                    user_name: if l.user {
                        user_name(l.usr_name, &full)
                    } else {
                        String::new()
                    },
                    name: full,
                    user: l.user,
                }
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&c).expect("collection serialises");
    let io = |e: std::io::Error, p: &PathBuf| ModError::Usage(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(&d).map_err(|e| io(e, &d))?;
    let path = d.join(format!("{name}.json"));
    let tmp = d.join(format!(".{name}.json.tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| io(e, &tmp))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e, &path)
    })?;
    Ok(path)
}

/// Reads collection `name`: mlmod's own file, else one that Lmod saved in
/// `~/.lmod.d/NAME` (or `NAME.$LMOD_SYSTEM_NAME`), read without changing it.
///
/// # Errors
/// [`ModError::Usage`] if neither exists or a file cannot be read.
pub fn read(engine: &Engine, name: &str) -> Result<Collection, ModError> {
    check_name(name)?;
    let path = dir(engine)?.join(format!("{name}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(found) = lmod_collection(engine, name) {
                return found;
            }
            // Lmod's wording.
            return Err(ModError::Usage(format!(
                "User module collection: \"{name}\" does not exist ({}).\n  Try \"module savelist\" for possible choices.",
                path.display()
            )));
        }
        Err(e) => {
            return Err(ModError::Usage(format!(
                "collection \"{name}\" ({}): {e}",
                path.display()
            )))
        }
    };
    let c: Collection = serde_json::from_str(&text)
        .map_err(|e| ModError::Usage(format!("{}: not a collection file: {e}", path.display())))?;
    if c.v != COLLECTION_FORMAT {
        return Err(ModError::Usage(format!(
            "{}: collection format {} is not {COLLECTION_FORMAT}",
            path.display(),
            c.v
        )));
    }
    Ok(c)
}

/// The collection `name` as Lmod saved it, if the file exists: `Some(Err)` if it
/// cannot be read. Lmod's file is Lua (`_ModuleTable_ = { mT = {...}, mpathA = {...} }`,
/// MT.lua); it is run in an empty environment, so it can only build tables. Modules
/// whose `status` is `active` are taken in `loadOrder`; those with `stackDepth` 0 were
/// loaded by the user.
fn lmod_collection(engine: &Engine, name: &str) -> Option<Result<Collection, ModError>> {
    let (home, system) = {
        let env = engine.env();
        (
            env.get("HOME").map(str::to_string)?,
            env.get("LMOD_SYSTEM_NAME").map(str::to_string),
        )
    };
    let file = match system {
        Some(sys) if !sys.is_empty() => format!("{name}.{sys}"),
        _ => name.to_string(),
    };
    let path = PathBuf::from(home).join(".lmod.d").join(file);
    let text = std::fs::read_to_string(&path).ok()?;
    let bad =
        |m: String| ModError::Usage(format!("{}: not an Lmod collection: {m}", path.display()));
    Some(parse_lmod_collection(&text).map_err(bad))
}

/// Parses an Lmod collection file (see [`lmod_collection`]).
fn parse_lmod_collection(text: &str) -> Result<Collection, String> {
    use mlua::{Lua, Table, Value};
    let lua = Lua::new();
    let env = lua.create_table().map_err(|e| e.to_string())?;
    lua.load(text)
        .set_environment(env.clone())
        .exec()
        .map_err(|e| e.to_string())?;
    let mt: Table = env
        .get("_ModuleTable_")
        .map_err(|_| "no _ModuleTable_ table".to_string())?;
    let mpath: Vec<String> = match mt.get::<Value>("mpathA").map_err(|e| e.to_string())? {
        Value::Table(t) => t
            .sequence_values::<String>()
            .filter_map(Result::ok)
            .collect(),
        _ => Vec::new(),
    };
    let mods: Table = mt.get("mT").map_err(|_| "no mT table".to_string())?;
    let mut members: Vec<(i64, Member)> = Vec::new();
    for pair in mods.pairs::<String, Table>() {
        let (sn, m) = pair.map_err(|e| e.to_string())?;
        if m.get::<Option<String>>("status").ok().flatten().as_deref() != Some("active") {
            continue;
        }
        let full: String = m
            .get::<Option<String>>("fullName")
            .ok()
            .flatten()
            .unwrap_or_else(|| sn.clone());
        let user_name = m
            .get::<Option<String>>("userName")
            .ok()
            .flatten()
            .unwrap_or_default();
        let depth = m
            .get::<Option<i64>>("stackDepth")
            .ok()
            .flatten()
            .unwrap_or(0);
        let order = m
            .get::<Option<i64>>("loadOrder")
            .ok()
            .flatten()
            .unwrap_or(i64::MAX);
        members.push((
            order,
            Member {
                name: full,
                user: depth == 0,
                user_name,
            },
        ));
    }
    members.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    Ok(Collection {
        v: COLLECTION_FORMAT,
        modulepath: (!mpath.is_empty()).then(|| mpath.join(":")),
        modules: members.into_iter().map(|(_, m)| m).collect(),
    })
}

/// Purges, sets MODULEPATH as saved, and loads the collection's user-loaded modules
/// by the names the user loaded them with, so that `bzip2` loads today's default, as
/// Lmod does; with `LMOD_PIN_VERSIONS=yes` by their full names (Lmod's
/// `--pin_versions`; <https://lmod.readthedocs.io/en/latest/010_user.html>). For a
/// set pinned by digest, see `module restore --locked`.
///
/// # Errors
/// [`ModError`] if the collection cannot be read or a module cannot be loaded (then
/// nothing changes: the command is all or nothing).
pub fn restore(engine: &Engine, name: &str) -> Result<(), ModError> {
    let c = read(engine, name)?;
    let pin = engine.env().get("LMOD_PIN_VERSIONS") == Some("yes");
    let names: Vec<String> = c
        .modules
        .iter()
        .filter(|m| m.user)
        .map(|m| {
            if pin || m.user_name.is_empty() {
                m.name.clone()
            } else {
                m.user_name.clone()
            }
        })
        .collect();
    load_set(engine, c.modulepath.as_deref(), &names)
}

/// Replaces the loaded modules: purge, set MODULEPATH (unset for `None`), load `names`
/// (the modules the user loaded; their dependencies come with them). Used by
/// `restore` and `restore --locked`.
///
/// # Errors
/// A load error (the command is a transaction: nothing changes).
pub fn load_set(
    engine: &Engine,
    modulepath: Option<&str>,
    names: &[String],
) -> Result<(), ModError> {
    engine.purge()?;
    engine.set_modulepath(modulepath);
    engine.load(names)
}

/// Names of the saved collections, sorted.
pub fn list(engine: &Engine) -> Vec<String> {
    let Ok(d) = dir(engine) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    v.sort();
    v
}

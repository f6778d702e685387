//! Named collections (`module save`, `restore`, `savelist`, `describe`): the loaded
//! modules and MODULEPATH, kept as JSON files in `$MLMOD_COLLECTIONS` or, by default,
//! `$HOME/.mlmod.d/NAME.json` (Lmod keeps its own format in `~/.lmod.d`).

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
    let c = Collection {
        v: COLLECTION_FORMAT,
        modulepath: engine.modulepath(),
        modules: engine
            .loaded()
            .into_iter()
            .map(|l| Member {
                name: l.full_name(),
                user: l.user,
                user_name: if l.user { l.usr_name } else { String::new() },
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

/// Reads collection `name`.
///
/// # Errors
/// [`ModError::Usage`] if it does not exist or cannot be read.
pub fn read(engine: &Engine, name: &str) -> Result<Collection, ModError> {
    check_name(name)?;
    let path = dir(engine)?.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ModError::Usage(if e.kind() == std::io::ErrorKind::NotFound {
            // Lmod's wording.
            format!(
                "User module collection: \"{name}\" does not exist ({}).\n  Try \"module savelist\" for possible choices.",
                path.display()
            )
        } else {
            format!("collection \"{name}\" ({}): {e}", path.display())
        })
    })?;
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

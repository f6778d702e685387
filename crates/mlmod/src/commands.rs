//! `module` subcommands: parsing Lmod's command line and producing an [`Outcome`].

use std::collections::HashMap;

use crate::engine::{Engine, ModError};
use crate::env::Change;
use crate::tree::{ModuleFile, Tree};

/// mlmod's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The result of one `module` command.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Changes for the shell; empty when the command failed (it is all or nothing).
    pub changes: Vec<Change>,
    /// Text for the user's terminal (stderr, as Lmod writes it).
    pub text: String,
    /// False if the command failed; the shell's `module` then returns non-zero.
    pub ok: bool,
}

/// Subcommands and their Lmod spellings; a unique prefix of a canonical name works too.
const COMMANDS: &[(&str, &[&str])] = &[
    ("load", &["load", "add", "lo", "loa"]),
    ("try-load", &["try-load", "try-add", "try_load"]),
    ("unload", &["unload", "rm", "del", "delete", "remove"]),
    ("swap", &["swap", "sw", "switch"]),
    ("purge", &["purge"]),
    ("list", &["list"]),
    ("avail", &["avail", "av"]),
    ("spider", &["spider"]),
    ("show", &["show", "display", "disp"]),
    ("whatis", &["whatis"]),
    ("keyword", &["keyword", "key", "search"]),
    ("help", &["help"]),
    ("use", &["use"]),
    ("unuse", &["unuse"]),
    ("refresh", &["refresh"]),
    ("reset", &["reset"]),
    ("is-loaded", &["is-loaded", "is_loaded", "isloaded"]),
    ("is-avail", &["is-avail", "is_avail", "isavail"]),
    ("overview", &["overview", "ov"]),
    ("save", &["save", "s"]),
    ("restore", &["restore", "r"]),
    ("lock", &["lock"]),
    ("savelist", &["savelist"]),
    ("describe", &["describe", "mcc"]),
];

/// The word of `words` closest to `typed` by edit distance, if it is within 2 edits
/// (and the typed word is not shorter than 2 letters): the "did you mean" of a typo.
pub fn closest<'a>(typed: &str, words: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    if typed.chars().count() < 2 {
        return None;
    }
    words
        .iter()
        .map(|w| (distance(typed, w), *w))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, w)| w)
}

/// The canonical subcommand for what the user typed.
pub fn canonical(word: &str) -> Option<&'static str> {
    for (c, spellings) in COMMANDS {
        if spellings.contains(&word) {
            return Some(c);
        }
    }
    let hits: Vec<&str> = COMMANDS
        .iter()
        .map(|c| c.0)
        .filter(|c| c.starts_with(word))
        .collect();
    match hits.as_slice() {
        [one] if !word.is_empty() => Some(one),
        _ => None,
    }
}

#[derive(Default)]
struct Opts {
    terse: bool,
    defaults_only: bool,
    append: bool,
    version: bool,
    force: bool,
    show_hidden: bool,
    regex: bool,
}

/// Runs `module ARGS...` (or `ml ARGS...` when `ml` is true) against the environment
/// `env` for `shell` and returns what to do.
pub fn run(env: HashMap<String, String>, shell: &str, args: &[String], ml: bool) -> Outcome {
    let engine = match Engine::new(env, shell) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let foreign = engine.foreign_modules();
    let mut opts = Opts::default();
    let mut words: Vec<String> = Vec::new();
    for a in args {
        match a.as_str() {
            "-t" | "--terse" => opts.terse = true,
            "-r" | "--regexp" => opts.regex = true,
            "-d" | "--default" => opts.defaults_only = true,
            "-a" | "--append" => opts.append = true,
            "--version" | "-v" | "-V" => opts.version = true,
            "-f" | "--force" => opts.force = true,
            "--show_hidden" | "--show-hidden" => opts.show_hidden = true,
            "-q" | "--quiet" | "--ignore_cache" | "--ignore-cache" | "-w" => {}
            _ => words.push(a.clone()),
        }
    }
    if opts.version {
        return Outcome {
            text: format!("mlmod {VERSION} (an Lmod-compatible module engine)\n"),
            ok: true,
            ..Outcome::default()
        };
    }
    let (cmd, rest): (&str, Vec<String>) = if ml {
        match words
            .first()
            .and_then(|w| canonical(w).filter(|_| !w.starts_with('-')))
        {
            Some(c) => (c, words[1..].to_vec()),
            None if words.is_empty() => ("list", Vec::new()),
            None => ("ml-load", words.clone()),
        }
    } else {
        match words.first() {
            None => return usage(),
            Some(w) => match canonical(w) {
                Some(c) => (c, words[1..].to_vec()),
                None => {
                    let names: Vec<&str> = COMMANDS.iter().map(|c| c.0).collect();
                    let hint = closest(w, &names)
                        .map(|c| format!(" (did you mean \"{c}\"?)"))
                        .unwrap_or_default();
                    return fail(&ModError::Usage(format!(
                        "unknown module command \"{w}\"{hint}; try \"module help\""
                    )));
                }
            },
        }
    };
    // Each engine operation brings loaded modules in line with MODULEPATH itself.
    let result = dispatch(&engine, cmd, &rest, &opts);
    let mut messages = engine.take_messages();
    match result {
        Ok((text, status)) => {
            let changes = engine.finish();
            let mut out = String::new();
            for m in messages.drain(..) {
                out.push_str(&m);
                out.push('\n');
            }
            if let Some(f) = &foreign {
                out.push_str(f);
            }
            out.push_str(&engine.notices());
            out.push_str(&text);
            Outcome {
                changes,
                text: out,
                ok: status && !engine.warned(),
            }
        }
        Err(e) => {
            let mut o = fail(&e);
            let mut t: String = messages.iter().map(|m| format!("{m}\n")).collect();
            t.push_str(&o.text);
            o.text = t;
            o
        }
    }
}

fn usage() -> Outcome {
    Outcome {
        text: "Usage: module [options] sub-command [args ...]\n\
               Sub-commands: load, try-load, unload, swap, purge, list, avail, spider, show,\n\
               whatis, keyword, help, use [-a], unuse, refresh, reset, is-loaded, is-avail,\n\
               overview, save [NAME], restore [NAME | --locked FILE], savelist, describe [NAME],\n\
               lock [FILE]\n\
               Options: -t (terse), -d (defaults only), --version\n"
            .to_string(),
        ok: true,
        ..Outcome::default()
    }
}

fn fail(e: &ModError) -> Outcome {
    Outcome {
        changes: Vec::new(),
        // Lmod follows an error with three blank lines (its traceback, empty here).
        text: format!(
            "mlmod has detected the following error: {}\n\n\n\n",
            e.to_string().trim_end_matches('\n')
        ),
        ok: false,
    }
}

/// The terminal width Lmod lays its text out for (tools/TermWidth.lua):
/// `LMOD_TERM_WIDTH`, else 80 (Lmod asks `stty`/`tput` only when it writes to a
/// terminal; mlmod's output is captured by the shell's `eval`).
fn term_width(engine: &Engine) -> usize {
    engine
        .env()
        .get("LMOD_TERM_WIDTH")
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(80)
}

/// `text` centred in a rule of dashes, as Lmod's `Banner:bannerStr` does: at least
/// four dashes on each side.
fn banner(text: &str, width: usize) -> String {
    let len = text.len() + 2;
    let left = (width.saturating_sub(len) / 2).max(4);
    let right = width.saturating_sub(left + len).max(4);
    format!("{} {text} {}", "-".repeat(left), "-".repeat(right))
}

/// Lmod's warning for names `help`, `whatis` and `show` cannot find
/// (`w_Failed_2_Find`), or nothing when `missing` is empty. mlmod does not wrap it
/// at the terminal width.
fn failed_to_find(missing: &[&str]) -> String {
    if missing.is_empty() {
        return String::new();
    }
    format!(
        "mlmod Warning: Failed to find the following module(s): \"{}\" in your MODULEPATH\nTry:\n\n    $ module spider {}\n\nto see if the module(s) are available across all compilers and MPI implementations.\n\n\n\n",
        missing.join("\", \""),
        missing.join(" ")
    )
}

fn need(rest: &[String], what: &str) -> Result<(), ModError> {
    if rest.is_empty() {
        Err(ModError::Usage(format!(
            "module {what}: expected at least one module name"
        )))
    } else {
        Ok(())
    }
}

fn dispatch(
    engine: &Engine,
    cmd: &str,
    rest: &[String],
    opts: &Opts,
) -> Result<(String, bool), ModError> {
    match cmd {
        "load" => {
            need(rest, "load")?;
            engine.load(rest)?;
            Ok((String::new(), true))
        }
        "ml-load" => {
            let (unloads, loads): (Vec<String>, Vec<String>) =
                rest.iter().cloned().partition(|w| w.starts_with('-'));
            let unloads: Vec<String> = unloads
                .iter()
                .map(|w| w.trim_start_matches('-').to_string())
                .collect();
            engine.unload(&unloads)?;
            engine.load(&loads)?;
            Ok((String::new(), true))
        }
        "try-load" => {
            engine.try_load(rest)?;
            Ok((String::new(), true))
        }
        "unload" => {
            need(rest, "unload")?;
            engine.unload(rest)?;
            Ok((String::new(), true))
        }
        "swap" => match rest {
            [new] => {
                let sn = new.split('/').next().unwrap_or(new).to_string();
                engine.swap(&sn, new).map_err(|e| match e {
                    // Lmod names what the user typed.
                    ModError::Rule(m) if m == format!("Swap failed: \"{sn}\" is not loaded.") => {
                        ModError::Rule(format!("Swap failed: \"{new}\" is not loaded."))
                    }
                    e => e,
                })?;
                Ok((String::new(), true))
            }
            [old, new] => {
                engine.swap(old, new)?;
                Ok((String::new(), true))
            }
            _ => Err(ModError::Usage(
                "module swap: expected OLD NEW (or NEW)".into(),
            )),
        },
        "purge" => {
            engine.purge()?;
            Ok((String::new(), true))
        }
        "reset" => {
            // Lmod's reset restores the system default modules; without them it fails.
            let defaults = engine
                .env()
                .get("LMOD_SYSTEM_DEFAULT_MODULES")
                .map(str::to_string);
            let Some(d) = defaults.filter(|d| !d.trim().is_empty()) else {
                return Err(ModError::Usage(
                    "module reset: no system default modules (set LMOD_SYSTEM_DEFAULT_MODULES)"
                        .into(),
                ));
            };
            engine.purge()?;
            let names: Vec<String> = d
                .split([':', ' ', ','])
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            engine.load(&names)?;
            Ok((String::new(), true))
        }
        "overview" => Ok((overview(engine, rest), true)),
        "refresh" => Ok((String::new(), true)),
        "list" => Ok((list(engine, opts.terse), true)),
        "avail" => Ok((avail(engine, rest, opts), true)),
        "spider" => Ok((spider(engine, rest, opts, opts.show_hidden)?, true)),
        "show" => {
            need(rest, "show")?;
            let mut s = String::new();
            let mut missing: Vec<&str> = Vec::new();
            for n in rest {
                match engine.show(n) {
                    Ok(t) => s.push_str(&t),
                    Err(ModError::Unknown { .. }) => missing.push(n),
                    Err(e) => return Err(e),
                }
            }
            s += &failed_to_find(&missing);
            Ok((s, missing.is_empty()))
        }
        "help" => {
            if rest.is_empty() {
                return Ok((usage().text, true));
            }
            // As Lmod's Master:access: per module a banner, each help() call's text
            // on its own line and a blank line; names not found are named after.
            let width = term_width(engine);
            let mut s = String::new();
            let mut missing: Vec<&str> = Vec::new();
            for n in rest {
                let (f, calls) = match engine.help(n) {
                    Ok(x) => x,
                    Err(ModError::Unknown { .. }) => {
                        missing.push(n);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let title = format!("Module Specific Help for \"{}\"", f.full_name());
                s += &format!("\n{}\n", banner(&title, width));
                for c in calls {
                    s += &c;
                    s.push('\n');
                }
                s.push('\n');
            }
            s += &failed_to_find(&missing);
            Ok((s, missing.is_empty()))
        }
        "whatis" => {
            need(rest, "whatis")?;
            let mut s = String::new();
            let mut missing: Vec<&str> = Vec::new();
            for n in rest {
                let (f, lines) = match engine.whatis(n) {
                    Ok(x) => x,
                    Err(ModError::Unknown { .. }) => {
                        missing.push(n);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // Lmod's MC_Access.whatis: a name shorter than 20 is padded to 20,
                // a longer one followed by as many blanks as its length plus 2.
                let name = f.full_name();
                let l = name.len();
                let pad = if l < 20 { 20 - l } else { l + 2 };
                for line in lines {
                    s += &format!("{name}{}: {line}\n", " ".repeat(pad));
                }
                s.push('\n');
            }
            s += &failed_to_find(&missing);
            Ok((s, missing.is_empty()))
        }
        // Without a word Lmod lists nothing under a header for "".
        "keyword" => Ok((keyword(engine, rest, opts.terse), true)),
        "use" => {
            need(rest, "use")?;
            engine.use_dirs(rest, opts.append)?;
            Ok((String::new(), true))
        }
        "unuse" => {
            need(rest, "unuse")?;
            engine.unuse_dirs(rest)?;
            Ok((String::new(), true))
        }
        "is-loaded" => {
            let loaded = engine.loaded();
            let ok = !rest.is_empty()
                && rest
                    .iter()
                    .all(|n| loaded.iter().any(|l| l.full_name() == *n || l.sn == *n));
            Ok((String::new(), ok))
        }
        "is-avail" => {
            let ok = !rest.is_empty() && rest.iter().all(|n| engine.resolve(n).is_some());
            Ok((String::new(), ok))
        }
        "save" => {
            let name = rest.first().map_or("default", String::as_str);
            if engine.loaded().is_empty() && !opts.force {
                // Lmod refuses to save nothing unless forced (status 1).
                return Ok((
                    format!(
                        "mlmod Warning: You are trying to save an empty collection of modules in \"{name}\".\nIf this is what you want then enter:\n  $ module --force save {name}\n\n\n\n"
                    ),
                    false,
                ));
            }
            let path = crate::collection::save(engine, name)?;
            Ok((
                format!(
                    "Saved current collection of modules to: \"{name}\" ({})\n",
                    path.display()
                ),
                true,
            ))
        }
        "restore" if rest.first().is_some_and(|a| a == "--locked") => {
            let Some(file) = rest.get(1) else {
                return Err(ModError::Usage("restore --locked needs a lock file".into()));
            };
            let n = crate::stack::lock::restore(engine, std::path::Path::new(file))?;
            Ok((
                format!("Restored {n} module(s) exactly as locked in {file}\n"),
                true,
            ))
        }
        "lock" => {
            let lock = crate::stack::lock::lock(engine)?;
            match rest.first() {
                Some(file) => {
                    crate::stack::lock::write(std::path::Path::new(file), &lock)?;
                    Ok((
                        format!("Locked {} module(s) in {file}\n", lock.modules.len()),
                        true,
                    ))
                }
                None => Ok((
                    serde_json::to_string_pretty(&lock).expect("serialisable") + "\n",
                    true,
                )),
            }
        }
        "restore" => {
            let name = rest.first().map_or("default", String::as_str);
            crate::collection::restore(engine, name)?;
            Ok((
                format!("Restoring modules from collection \"{name}\"\n"),
                true,
            ))
        }
        "savelist" => {
            let names = crate::collection::list(engine);
            if names.is_empty() {
                return Ok(("No named collections.\n".into(), true));
            }
            let mut out = String::from("Named collection list :\n");
            for (i, n) in names.iter().enumerate() {
                out += &format!("  {}) {n}\n", i + 1);
            }
            Ok((out, true))
        }
        "describe" => {
            let name = rest.first().map_or("default", String::as_str);
            let c = crate::collection::read(engine, name)?;
            // Lmod's CollectionLst: `   N)` and the name in a ColumnTable.
            let rows: Vec<Vec<String>> = c
                .modules
                .iter()
                .enumerate()
                .map(|(i, m)| vec![format!("   {})", i + 1), m.name.clone()])
                .collect();
            let out = format!(
                "Collection \"{name}\" contains: \n{}\n",
                column_table(&rows, term_width(engine))
            );
            Ok((out, true))
        }
        other => Err(ModError::Usage(format!("module {other}: not implemented"))),
    }
}

/// Lays out `items` in columns for an 80-column terminal, as Lmod does.
fn columns(items: &[String], indent: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let width = 78usize.saturating_sub(indent);
    let w = items.iter().map(|s| s.chars().count()).max().unwrap_or(1) + 3;
    let ncol = (width / w).max(1);
    let nrow = items.len().div_ceil(ncol);
    let mut out = String::new();
    for r in 0..nrow {
        let mut line = " ".repeat(indent);
        for c in 0..ncol {
            if let Some(s) = items.get(c * nrow + r) {
                line += &format!("{s:<w$}");
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

fn list(engine: &Engine, terse: bool) -> String {
    let loaded = engine.loaded();
    if loaded.is_empty() {
        return "No modules loaded\n".into();
    }
    if terse {
        return loaded
            .iter()
            .map(|l| format!("{}\n", l.full_name()))
            .collect();
    }
    // Lmod's List: `%3d)` and the name in a ColumnTable, then its tail.
    let rows: Vec<Vec<String>> = loaded
        .iter()
        .enumerate()
        .map(|(i, l)| vec![format!("{:>3})", i + 1), l.full_name()])
        .collect();
    format!(
        "\nCurrently Loaded Modules:\n{}\n\n \n\n",
        column_table(&rows, term_width(engine))
    )
}

/// Rows of cells laid out in columns as Lmod's ColumnTable (tools/ColumnTable.lua)
/// lays out a table of rows for `width` columns: cells of a row joined by one blank,
/// each column as wide as its widest row plus one, the most columns (filled top to
/// bottom) whose widths add up to less than `width`; trailing blanks cut; no newline
/// after the last line. Columns empty in every row are dropped first.
fn column_table(rows: &[Vec<String>], width: usize) -> String {
    let sz = rows.len();
    if sz == 0 {
        return String::new();
    }
    let dim = rows.iter().map(Vec::len).max().unwrap_or(0);
    let cell = |r: usize, c: usize| rows[r].get(c).map_or("", String::as_str);
    let keep: Vec<usize> = (0..dim)
        .filter(|&c| (0..sz).any(|r| !cell(r, c).is_empty()))
        .collect();
    let tbl: Vec<Vec<&str>> = (0..sz)
        .map(|r| keep.iter().map(|&c| cell(r, c)).collect())
        .collect();
    let dim = keep.len();
    let len = |s: &str| s.chars().count();
    // The narrowest and widest rows (cells and the blanks between them).
    let row_len = |r: usize| -> usize {
        tbl[r].iter().map(|c| len(c)).sum::<usize>() + dim.saturating_sub(1)
    };
    let gaps = dim.saturating_sub(1);
    let imin = (0..dim)
        .map(|c| (0..sz).map(|r| len(tbl[r][c])).min().unwrap_or(0))
        .sum::<usize>()
        + gaps;
    let imax = (0..sz).map(row_len).max().unwrap_or(0);
    // A column of rows istart..iend: its cells' widths, and its width (each cell
    // column from the last non-empty one on counts a blank, as Lmod's _columnSum2).
    let column = |istart: usize, iend: usize| -> (usize, Vec<usize>) {
        let widths: Vec<usize> = (0..dim)
            .map(|c| (istart..iend).map(|r| len(tbl[r][c])).max().unwrap_or(0))
            .collect();
        let mut total = 0;
        let mut found = false;
        for c in (0..dim).rev() {
            if found || widths[c] > 0 {
                found = true;
                total += 1;
            }
            total += widths[c];
        }
        (total, widths)
    };
    let (nrows, ncols) = if imax >= width {
        (sz, 1)
    } else {
        let max_columns = (width / imin.max(1)).min(sz).max(1);
        let nrows = sz.div_ceil(max_columns);
        let max_columns = sz.div_ceil(nrows);
        let mut result = 1;
        for ncols in (1..=max_columns).rev() {
            let nrows = sz.div_ceil(ncols);
            let sum: usize = (0..ncols)
                .map(|k| column((k * nrows).min(sz), ((k + 1) * nrows).min(sz)).0)
                .sum();
            if sum < width {
                result = ncols;
                break;
            }
        }
        let nrows = sz.div_ceil(result);
        (nrows, sz.div_ceil(nrows))
    };
    let cols: Vec<(usize, Vec<usize>)> = (0..ncols)
        .map(|k| column((k * nrows).min(sz), ((k + 1) * nrows).min(sz)))
        .collect();
    let mut lines: Vec<String> = Vec::new();
    for r in 0..nrows {
        let mut line = String::new();
        for (k, (total, widths)) in cols.iter().enumerate() {
            let i = r + k * nrows;
            if i >= sz {
                continue;
            }
            // Lmod's _display2: each cell padded to its column's width, a blank
            // between cells up to the last non-empty cell column, then the rest.
            let last = widths.iter().rposition(|w| *w > 0).map_or(0, |c| c + 1);
            let mut used = 0;
            for (c, w) in widths.iter().enumerate() {
                let t = tbl[i][c];
                let mut pad = w - len(t);
                if c + 1 < last {
                    pad += 1;
                }
                line += t;
                line += &" ".repeat(pad);
                used += len(t) + pad;
            }
            line += &" ".repeat(total.saturating_sub(used));
        }
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n")
}

fn sort_files(files: &mut [&ModuleFile]) {
    // Names compare with a trailing `/`, as Lmod lists them (`Boost.MPI` before `Boost`).
    fn slashed(f: &ModuleFile) -> impl Iterator<Item = u8> + '_ {
        f.sn.bytes().chain(*b"/")
    }
    files.sort_by(|a, b| slashed(a).cmp(slashed(b)).then_with(|| a.key.cmp(&b.key)));
}

/// Lua's `string.find` for `-r` searches, which Lmod runs its patterns with (so `%d`,
/// `^`, `$`, `[...]`, `.-` mean what they mean to Lmod).
struct LuaPattern(mlua::Lua);

impl LuaPattern {
    fn new() -> Result<Self, ModError> {
        Ok(LuaPattern(mlua::Lua::new()))
    }

    /// True if `pattern` finds a match in `text`.
    ///
    /// # Errors
    /// [`ModError::Usage`] naming a malformed pattern.
    fn finds(&self, text: &str, pattern: &str) -> Result<bool, ModError> {
        let bad = |e: mlua::Error| {
            ModError::Usage(format!("-r: {pattern:?} is not a valid Lua pattern: {e}"))
        };
        let string: mlua::Table = self.0.globals().get("string").map_err(bad)?;
        let find: mlua::Function = string.get("find").map_err(bad)?;
        let r: mlua::Value = find.call((text, pattern)).map_err(bad)?;
        Ok(!r.is_nil())
    }
}

fn avail(engine: &Engine, filters: &[String], opts: &Opts) -> String {
    let pattern = opts.regex.then(|| LuaPattern::new().ok()).flatten();
    let tree = engine.tree();
    let loaded = engine.loaded();
    let width = term_width(engine);
    let mut out = String::new();
    let mut legend_aliases = false;
    let mut legend_d = false;
    let mut legend_h = false;
    let mut legend_l = false;
    let mut any = false;
    // A search string that is exactly a symbolic version (`Java/1.8` for
    // `module_version("Java/1.8.0_181", "1.8")`) lists only the module it names, as
    // Lmod does; any other string matches case-insensitively anywhere in the name.
    let aliased: Vec<Option<String>> = filters
        .iter()
        .map(|p| {
            let (sn, sym) = p.rsplit_once('/')?;
            let e = tree.names.get(sn)?;
            e.files
                .iter()
                .filter_map(|f| f.version.as_deref())
                .find(|v| e.symbols_of(v).contains(&sym))
                .map(|v| format!("{sn}/{v}"))
        })
        .collect();
    // Lmod 8.6 lists `module_alias` entries first, under "Global Aliases"; a search
    // string keeps the aliases whose target contains it, and the heading stays even
    // when none does (Master.lua's avail and terse_avail, checked against Debian's
    // lmod).
    if !tree.aliases.is_empty() {
        let mut aliases: Vec<&(String, String)> = tree.aliases.iter().collect();
        aliases.sort();
        aliases.dedup_by(|a, b| a.0 == b.0);
        aliases.retain(|(_, t)| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|p| t.to_lowercase().contains(&p.to_lowercase()))
        });
        if opts.terse {
            for (a, t) in &aliases {
                out += &format!("{a}(@{t})\n");
            }
        } else {
            out += &format!("\n{}\n", banner("Global Aliases", width));
            if aliases.is_empty() {
                out.push('\n');
            } else {
                let rows: Vec<Vec<String>> = aliases
                    .iter()
                    .map(|(a, t)| vec!["  ".to_string(), format!("{a} -> {t}"), String::new()])
                    .collect();
                out += &column_table(&rows, width);
                out.push('\n');
            }
        }
    }
    for (di, dir) in tree.dirs.iter().enumerate() {
        let mut files: Vec<&ModuleFile> = tree
            .names
            .values()
            .flat_map(|e| e.files.iter())
            .filter(|f| opts.show_hidden || !f.hidden)
            .filter(|f| f.dir == di)
            .filter(|f| {
                filters.is_empty() || {
                    let n = f.full_name();
                    filters.iter().zip(&aliased).any(|(p, alias)| match alias {
                        Some(target) => n == *target,
                        None if opts.regex => pattern
                            .as_ref()
                            .is_some_and(|l| l.finds(&n, p).unwrap_or(false)),
                        None => n.to_lowercase().contains(&p.to_lowercase()),
                    })
                }
            })
            .collect();
        if opts.defaults_only {
            files.retain(|f| is_default(&tree, f));
        }
        if files.is_empty() {
            continue;
        }
        any = true;
        sort_files(&mut files);
        if opts.terse {
            use std::fmt::Write as _;
            let _ = writeln!(out, "{}:", dir.display());
            let mut last_sn: Option<&str> = None;
            for f in files {
                let e = &tree.names[&f.sn];
                let plain = filters.is_empty() && !opts.defaults_only;
                if plain && f.version.is_some() && last_sn != Some(f.sn.as_str()) {
                    out.push_str(&f.sn);
                    out.push_str("/\n");
                }
                last_sn = Some(f.sn.as_str());
                if let Some(v) = &f.version {
                    for s in e.symbols_of(v) {
                        let _ = writeln!(out, "{}/{s}(@{}/{v})", f.sn, f.sn);
                    }
                }
                out.push_str(&f.sn);
                if let Some(v) = &f.version {
                    out.push('/');
                    out.push_str(v);
                }
                // Lmod 8.6's terse_avail marks no default.
                out.push('\n');
            }
            continue;
        }
        out += &format!("\n{}\n", banner(&dir.display().to_string(), width));
        // Lmod's rows: a blank cell, the name, and its markers, flags (L = loaded,
        // D = default) and symbolic versions, in a ColumnTable.
        let rows: Vec<Vec<String>> = files
            .iter()
            .map(|f| {
                let e = &tree.names[&f.sn];
                let mut flags: Vec<&str> = Vec::new();
                if loaded
                    .iter()
                    .any(|l| l.file == f.path.display().to_string())
                {
                    flags.push("L");
                    legend_l = true;
                }
                // With `-d` every line is a default, and Lmod marks none of them.
                if !opts.defaults_only
                    && e.files
                        .iter()
                        .filter(|x| opts.show_hidden || !x.hidden)
                        .count()
                        > 1
                    && is_default(&tree, f)
                {
                    flags.push("D");
                    legend_d = true;
                }
                // `--show_hidden` lists hidden modules, marked H (Lmod 8.6).
                if f.hidden {
                    flags.push("H");
                    legend_h = true;
                }
                let symbols: Vec<&str> = f
                    .version
                    .as_deref()
                    .map(|v| e.symbols_of(v))
                    .unwrap_or_default();
                // As Lmod 8.6 prints them (checked against Debian's lmod): the flags
                // joined by ",", the symbolic versions joined by ":" after the D
                // (`(L,D:1.8:eight)`), or as an item of their own without one
                // (`(L,1.8:eight)`, `(1.8:eight)`).
                let mut items: Vec<String> = flags
                    .iter()
                    .map(|f| {
                        if *f == "D" && !symbols.is_empty() {
                            format!("D:{}", symbols.join(":"))
                        } else {
                            f.to_string()
                        }
                    })
                    .collect();
                if !flags.contains(&"D") && !symbols.is_empty() {
                    items.push(symbols.join(":"));
                }
                legend_aliases |= !symbols.is_empty();
                let marks = items.join(",");
                let marks = if marks.is_empty() {
                    String::new()
                } else {
                    format!("({marks})")
                };
                vec!["  ".to_string(), f.full_name(), marks]
            })
            .collect();
        out += &column_table(&rows, width);
        out.push('\n');
    }
    if opts.terse {
        return out;
    }
    if !any {
        out += "No module(s) or extension(s) found!";
    }
    // Lmod's legend (a BeautifulTbl: keys in order, padded to the longest, two
    // blanks) and the tail Lmod prints after every non-terse avail, as wrapped for
    // 80 columns.
    let mut legend: Vec<(&str, &str)> = Vec::new();
    if legend_aliases {
        legend.push((
            "Aliases",
            "Aliases exist: foo/1.2.3 (1.2) means that \"module load foo/1.2\" will load foo/1.2.3",
        ));
    }
    if legend_d {
        legend.push(("D", "Default Module"));
    }
    if legend_h {
        legend.push(("H", "Hidden Module"));
    }
    if legend_l {
        legend.push(("L", "Module is loaded"));
    }
    if !legend.is_empty() {
        out += "\n  Where:\n";
        let w = legend.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (k, v) in legend {
            out += &format!("   {:<w$}  {v}\n", format!("{k}:"));
        }
    }
    out += "\nIf the avail list is too long consider trying:\n\n\
            \"module --default avail\" or \"ml -d av\" to just list the default modules.\n\
            \"module overview\" or \"ml ov\" to display the number of modules for each name.\n\n\
            Use \"module spider\" to find all possible modules and extensions.\n\
            Use \"module keyword key1 key2 ...\" to search for all possible modules matching\n\
            any of the \"keys\".\n\n\n";
    out
}

/// Lmod's header of a MODULEPATH folder: its path centred in an 80-column rule.
fn dir_header(dir: &std::path::Path) -> String {
    let title = format!(" {} ", dir.display());
    let pad = 80usize.saturating_sub(title.len());
    format!(
        "\n{}{}{}\n",
        "-".repeat(pad / 2),
        title,
        "-".repeat(pad - pad / 2)
    )
}

/// `module overview`: each name with its number of versions, per MODULEPATH folder.
fn overview(engine: &Engine, filters: &[String]) -> String {
    let tree = engine.tree();
    let mut out = String::new();
    for (di, dir) in tree.dirs.iter().enumerate() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (sn, e) in &tree.names {
            let n = e.files.iter().filter(|f| f.dir == di && !f.hidden).count();
            let keep = filters.is_empty()
                || filters
                    .iter()
                    .any(|p| sn.to_lowercase().contains(&p.to_lowercase()));
            if n > 0 && keep {
                counts.push((sn.clone(), n));
            }
        }
        if counts.is_empty() {
            continue;
        }
        counts.sort_by(|a, b| format!("{}/", a.0).cmp(&format!("{}/", b.0)));
        out += &dir_header(dir);
        let items: Vec<String> = counts.iter().map(|(n, c)| format!("{n} ({c})")).collect();
        out += &columns(&items, 0);
    }
    out
}

fn is_default(tree: &Tree, f: &ModuleFile) -> bool {
    tree.names
        .get(&f.sn)
        .and_then(|e| e.default_file())
        .is_some_and(|d| d.path == f.path)
}

/// The description Lmod shows for a module: the text after `Description:` in its
/// whatis lines, else its first whatis line.
fn description(engine: &Engine, f: &ModuleFile) -> String {
    raw_description(engine, f)
}

fn raw_description(engine: &Engine, f: &ModuleFile) -> String {
    raw_description_of(&engine.whatis_lines(f).0)
}

/// [`description`] from whatis lines already at hand.
fn description_of(whatis: &[String]) -> String {
    raw_description_of(whatis)
}

/// The `Description` of whatis lines as Lmod's spider reads it (MC_Spider.lua): a line
/// `KEY: VALUE` (`^%s*([^: ]+)%s*:%s*(.*)`) whose key is exactly `Description`; the
/// last such line wins; none gives an empty description (Spack's
/// `Short description : ...` is not one).
fn raw_description_of(w: &[String]) -> String {
    let mut found = String::new();
    for l in w {
        let t = l.trim_start();
        let key_len = t.find([':', ' ']).unwrap_or(t.len());
        if &t[..key_len] != "Description" {
            continue;
        }
        if let Some(value) = t[key_len..].trim_start().strip_prefix(':') {
            found = value.trim_start().to_string();
        }
    }
    found
}

const RULE: &str = "----------------------------------------------------------------------------";

fn spider(
    engine: &Engine,
    rest: &[String],
    opts: &Opts,
    show_hidden: bool,
) -> Result<String, ModError> {
    let terse = opts.terse;
    let (tree, needs) = engine.hierarchy();
    // Every visible version of every name (hidden ones too with `--show_hidden`),
    // across the hierarchy, without repeats.
    let mut by_name: std::collections::BTreeMap<String, Vec<&ModuleFile>> = Default::default();
    let listed = tree
        .names
        .values()
        .flat_map(|e| e.files.iter())
        .filter(|f| show_hidden || !f.hidden);
    for f in listed {
        let v = by_name.entry(format!("{}/", f.sn)).or_default();
        if !v.iter().any(|g| g.full_name() == f.full_name()) {
            v.push(f);
        }
    }
    for v in by_name.values_mut() {
        sort_files(v);
    }
    if rest.is_empty() {
        let mut out = String::new();
        if terse {
            // Lmod sorts a name's own line by the name and each version by
            // `name/version-key`, so `Boost/` comes before `Boost.MPI/...` but
            // `Boost/1.55.0` after them.
            let mut lines: Vec<(String, String)> = Vec::new();
            for files in by_name.values() {
                if files[0].version.is_some() {
                    lines.push((files[0].sn.clone(), format!("{}/", files[0].sn)));
                }
                for f in files {
                    let key = match &f.version {
                        Some(_) => format!("{}/{}", f.sn, f.key),
                        None => f.sn.clone(),
                    };
                    lines.push((key, f.full_name()));
                }
            }
            lines.sort();
            for (_, l) in lines {
                out += &l;
                out.push('\n');
            }
            return Ok(out);
        }
        out += &format!("\n{RULE}\nThe following is a list of the modules and extensions currently available:\n{RULE}\n");
        // Lmod lists names in plain string order here (`Boost` before `Boost.MPI`).
        let mut names: Vec<&Vec<&ModuleFile>> = by_name.values().collect();
        names.sort_by(|a, b| a[0].sn.cmp(&b[0].sn));
        for files in names {
            let names: Vec<String> = files.iter().map(|f| f.full_name()).collect();
            out += &versions_line(&files[0].sn, &names);
            // Lmod takes it from the version whose file path sorts first.
            let first = files
                .iter()
                .min_by(|a, b| a.path.cmp(&b.path))
                .unwrap_or(&files[0]);
            let d = description(engine, first);
            if !d.is_empty() {
                out += &fill_words(&d, "    ", 76);
                out.push('\n');
            }
            out.push('\n');
        }
        out += &spider_footer();
        return Ok(with_spider_tail(out, false));
    }
    // `-r`: every name the Lua pattern finds, each reported as if named, in name
    // order (Lmod's `-r spider` matches with Lua's string.find).
    // A pattern that is exactly a name or full name is searched as a name, as Lmod
    // does (`-r spider ord1` still lists ord10 among the other matches).
    let is_name = |p: &String| {
        by_name.contains_key(&format!("{p}/"))
            || by_name.values().flatten().any(|f| f.full_name() == *p)
    };
    if opts.regex && !rest.iter().all(is_name) {
        let pattern = LuaPattern::new()?;
        let mut out = String::new();
        let mut found = false;
        for key in by_name.keys() {
            let sn = key.trim_end_matches('/');
            let mut hit = false;
            for p in rest {
                hit |= pattern.finds(sn, p)?;
            }
            if hit {
                found = true;
                let sn = sn.to_string();
                out += &spider_name(engine, &tree, &needs, &by_name, &sn, terse, false)?;
            }
        }
        if !found {
            return Err(ModError::Rule(format!(
                "Unable to find: \"{}\".",
                rest.join(" ")
            )));
        }
        return Ok(with_spider_tail(out, terse));
    }
    // Several names: each one's report, one tail, as Lmod; a name not found fails
    // the command.
    let mut out = String::new();
    for name in rest {
        out += &spider_name(engine, &tree, &needs, &by_name, name, terse, true)?;
    }
    Ok(with_spider_tail(out, terse))
}

/// `spider NAME` for one of the names: its report without the tail.
fn spider_name(
    engine: &Engine,
    tree: &Tree,
    needs: &[Vec<String>],
    by_name: &std::collections::BTreeMap<String, Vec<&ModuleFile>>,
    name: &String,
    terse: bool,
    list_others: bool,
) -> Result<String, ModError> {
    // Lmod's words (messageDir/en.lua, `e_Failed_2_Find`).
    let unable = || ModError::Rule(format!("Unable to find: \"{name}\"."));
    // Lmod's search (Spider.lua, spiderSearch): a name is shown whole; a full name
    // in detail; any other text is searched, ignoring case, in every full name, and
    // a name with one matching version shows it in detail, with several its versions.
    let exact_name = by_name.contains_key(&format!("{name}/"));
    let exact_full = by_name
        .values()
        .flatten()
        .find(|f| f.full_name() == *name)
        .copied();
    let mut out = String::new();
    if exact_name || exact_full.is_some() {
        let f = match exact_full {
            Some(f) => f,
            None => tree.resolve(name).ok_or_else(unable)?,
        };
        let files = &by_name[&format!("{}/", f.sn)];
        // For a name, the other names that contain it (Lmod: possibleA).
        // Not for the names a `-r` pattern found: Lmod lists each alone.
        let others: Others = if list_others && exact_name && exact_full.is_none() {
            let needle = name.to_ascii_lowercase();
            let mut v: Vec<String> = by_name
                .values()
                .map(|fs| fs[0].sn.clone())
                .filter(|sn| sn != name && contains_ascii_ci(sn, &needle))
                .collect();
            v.sort();
            (!v.is_empty()).then_some((v, name.as_str()))
        } else {
            None
        };
        if exact_full.is_some() || files.len() == 1 {
            out += &spider_detail(engine, tree, needs, f, &others);
        } else {
            out += &spider_versions(engine, &f.sn, files, terse, &others);
        }
        return Ok(out);
    }
    // Lmod's `caseIndependent` escapes the pattern characters, so the search is
    // plain text, ignoring ASCII case.
    let needle = name.to_ascii_lowercase();
    let mut names: Vec<(&String, &Vec<&ModuleFile>)> = by_name.iter().collect();
    // Lmod visits names in plain string order (`Boost` before `Boost.MPI`).
    names.sort_by(|a, b| a.1[0].sn.cmp(&b.1[0].sn));
    let hits: Vec<bool> = names
        .iter()
        .flat_map(|(_, files)| {
            files
                .iter()
                .map(|f| contains_ascii_ci(&f.full_name(), &needle))
        })
        .collect();
    let mut at = 0;
    for (_, files) in names {
        let matching: Vec<&ModuleFile> = files
            .iter()
            .zip(&hits[at..at + files.len()])
            .filter(|(_, hit)| **hit)
            .map(|(f, _)| *f)
            .collect();
        at += files.len();
        // One matching version is shown in detail; several show the name with all
        // its versions, as Lmod's level 1 does.
        match matching.as_slice() {
            [] => {}
            [one] => out += &spider_detail(engine, tree, needs, one, &None),
            _ => out += &spider_versions(engine, &files[0].sn, files, terse, &None),
        }
    }
    if out.is_empty() {
        return Err(unable());
    }
    Ok(out)
}

/// Lmod ends a `spider NAME` report with a line holding one space between blank
/// lines, and a terse one with a blank line.
fn with_spider_tail(mut out: String, terse: bool) -> String {
    out += if terse { "\n" } else { "\n \n\n" };
    out
}

/// The footer Lmod prints after `spider` (without a name) and `keyword`
/// (messageDir/en.lua, `m_Spider_Tail`).
fn spider_footer() -> String {
    format!("{RULE}\n\nTo learn more about a package execute:\n\n   $ module spider Foo\n\nwhere \"Foo\" is the name of a module.\n\nTo find detailed information about a particular package you\nmust specify the version if there is more than one version:\n\n   $ module spider Foo/11.1\n\n{RULE}\n")
}

/// `text` filled into lines as Lmod's `string.fillWords(indent, width)` does
/// (tools/string_utils.lua): words split on runs of spaces and newlines; a word that
/// would reach `width` bytes starts a new line with `indent`; no trailing spaces.
fn fill_words(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::from(indent);
    let mut len = indent.len();
    let mut line_start = true;
    // Lmod's split on `[ \n]+`: a run of separators splits once, and the pieces before
    // a leading run and after a trailing run are kept (empty).
    let pieces: Vec<&str> = text.split([' ', '\n']).collect();
    let last = pieces.len() - 1;
    for word in pieces
        .iter()
        .enumerate()
        .filter(|(i, w)| *i == 0 || *i == last || !w.is_empty())
        .map(|(_, w)| *w)
    {
        if word.len() + len >= width {
            // Lmod trims the last piece only: the space after the previous word, or
            // the indent itself when the line has no word yet.
            if line_start {
                out.truncate(out.len() - indent.len());
            } else {
                out.pop();
            }
            out.push('\n');
            out.push_str(indent);
            len = indent.len();
        }
        out.push_str(word);
        out.push(' ');
        len += word.len() + 1;
        line_start = false;
    }
    out.pop();
    out
}

/// A name and its versions on one line, as `spider` (without a name) and `keyword`
/// list them: `  NAME: NAME/V1, NAME/V2, ...`. Like Lmod (Spider.lua, Level0Helper)
/// the list stops with `...` at the version that takes it past 76 columns (its
/// 80-column width less 4), counting each version with its separator.
fn versions_line(sn: &str, names: &[String]) -> String {
    const WIDTH: usize = 80 - 4;
    let mut line = format!("  {sn}:");
    let mut len = line.len();
    for (i, n) in names.iter().enumerate() {
        len += n.len() + 2;
        if i > 0 {
            line.push(',');
        }
        if len > WIDTH {
            line.push_str(" ...");
            break;
        }
        line.push(' ');
        line.push_str(n);
    }
    line.push('\n');
    line
}

/// `spider` for a name with several versions (Lmod's level 1): the description and
/// the versions; with `-t` only the versions, one per line.
fn spider_versions(
    engine: &Engine,
    sn: &str,
    files: &[&ModuleFile],
    terse: bool,
    others: &Others,
) -> String {
    let mut out = String::new();
    if terse {
        for g in files {
            out += &g.full_name();
            out.push('\n');
        }
        return out;
    }
    out += &format!("\n{RULE}\n  {sn}:\n{RULE}\n");
    // Lmod takes it from the version whose file path sorts last.
    let by_path = files
        .iter()
        .max_by(|a, b| a.path.cmp(&b.path))
        .unwrap_or(&files[0]);
    let d = description(engine, by_path);
    if !d.is_empty() {
        out += &format!("    Description:\n{}\n\n", fill_words(&d, "      ", 76));
    }
    out += "     Versions:\n";
    for g in files {
        out += &format!("        {}\n", g.full_name());
    }
    if let Some((names, _)) = others {
        out += &format!(
            "     Other possible modules matches:\n        {}\n",
            cut_list(names, 76, "  ")
        );
    }
    out.push('\n');
    if let Some((_, name)) = others {
        out += &regex_hint(name);
    }
    out += &format!("{RULE}\n  For detailed information about a specific \"{sn}\" package (including how to load the modules) use the module's full name.\n  Note that names that have a trailing (E) are extensions provided by other modules.\n  For example:\n\n     $ module spider {}\n{RULE}\n", files[files.len() - 1].full_name());
    out
}

/// `spider` for one module (Lmod's level 2): its description and how to reach it.
fn spider_detail(
    engine: &Engine,
    tree: &Tree,
    needs: &[Vec<String>],
    f: &ModuleFile,
    others: &Others,
) -> String {
    let mut out = format!("\n{RULE}\n  {}: {}\n{RULE}\n", f.sn, f.full_name());
    let d = description(engine, f);
    if !d.is_empty() {
        out += &format!("    Description:\n{}\n\n", fill_words(&d, "      ", 76));
    }
    if let Some((names, _)) = others {
        out += &format!(
            "\n     Other possible modules matches:\n        {}\n",
            cut_list(names, 76 - 7, ", ")
        );
    }
    // Every folder that holds this module, with what must be loaded to reach it.
    let reach: Vec<&Vec<String>> = tree
        .names
        .get(&f.sn)
        .map(|e| {
            e.files
                .iter()
                .filter(|g| g.full_name() == f.full_name())
                .map(|g| &needs[g.dir])
                .collect()
        })
        .unwrap_or_default();
    if reach.iter().any(|n| n.is_empty()) {
        out += &format!(
            "\n    This module can be loaded directly: module load {}\n",
            f.full_name()
        );
    } else {
        out += &format!("\n    You will need to load all module(s) on any one of the lines below before the \"{}\" module is available to load.\n\n", f.full_name());
        // Each way once, sorted, as Lmod prints them (Spider.lua, _Level2).
        let mut lines: Vec<String> = reach
            .iter()
            .map(|n| format!("      {}", n.join("  ")))
            .collect();
        lines.sort();
        lines.dedup();
        for l in lines {
            out += &l;
            out.push('\n');
        }
        // Lmod ends the list with a line holding one space (its newline comes next).
        out += " ";
    }
    // The help text, each line indented, as Lmod's spider shows it.
    let help = engine.help_of(f, &f.full_name());
    if !help.is_empty() {
        out += "\n    Help:\n";
        for l in help.split('\n') {
            out += "      ";
            out += l;
            out.push('\n');
        }
    }
    out.push('\n');
    if let Some((_, name)) = others {
        out += &regex_hint(name);
    }
    out
}

/// Other names that contain an exact name searched for, and that name: Lmod's
/// "Other possible modules matches".
type Others<'a> = Option<(Vec<String>, &'a str)>;

/// `names` joined by `sep`, cut with `...` as Lmod cuts them (Spider.lua): a running
/// sum from 17 grows by each name's length plus 2, and once past `width` (and not
/// near the last name) the list ends.
fn cut_list(names: &[String], width: usize, sep: &str) -> String {
    let mut shown: Vec<&str> = Vec::new();
    let mut sum = 17;
    for (j, n) in names.iter().enumerate() {
        shown.push(n);
        sum += n.len() + 2;
        // Lmod's `ja < num - 1`, with ja counted from 1.
        if sum > width && j + 2 < names.len() {
            shown.push("...");
            break;
        }
    }
    shown.join(sep)
}

/// Lmod's pointer to a regular-expression search (`m_Regex_Spider`).
fn regex_hint(name: &str) -> String {
    format!("{RULE}\n  To find other possible module matches execute:\n\n      $ module -r spider '.*{name}.*'\n\n")
}

/// What `keyword` learned from one modulefile's text.
enum Scan {
    /// Neither its name nor its text holds a word.
    Miss,
    /// A candidate, with its whatis lines read off the text.
    Whatis(Vec<String>),
    /// A candidate whose whatis lines only evaluating it can tell.
    Eval,
}

/// Whether `hay` contains `needle` (already lowercase), ignoring ASCII case as Lmod's
/// `string.lower` does, without allocating.
fn contains_ascii_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    if h.len() < n.len() {
        return false;
    }
    let upper = first.to_ascii_uppercase();
    (0..=h.len() - n.len()).any(|i| {
        (h[i] == first || h[i] == upper)
            && h[i + 1..i + n.len()]
                .iter()
                .zip(rest)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// `module keyword`: modules whose short name or whatis text contains any of the
/// words (case-insensitive; Lmod's Spider.lua searchSpiderDB: the version is not
/// searched), grouped by name as Lmod prints them, with each name's
/// description.
fn keyword(engine: &Engine, typed: &[String], terse: bool) -> String {
    // Lmod lowercases with Lua's string.lower: ASCII letters only.
    let words: Vec<String> = typed.iter().map(|w| w.to_ascii_lowercase()).collect();
    let any_word = |hay: &str| words.iter().any(|w| contains_ascii_ci(hay, w));
    // Only files whose name or text holds a word can match (documented in compat.md):
    // evaluating every modulefile would cost as much as Lmod without its cache. Each
    // text is looked at on the reader threads as the hierarchy walk reads it: files
    // whose whatis lines are literals are read there, the rest are evaluated here.
    let (tree, _, scanned) = engine.hierarchy_scan(|sn, text| {
        if !any_word(sn) && !any_word(text) {
            return Scan::Miss;
        }
        match crate::literal::literal_whatis(text) {
            Some(w) => Scan::Whatis(w),
            None => Scan::Eval,
        }
    });
    let matches =
        |f: &ModuleFile, whatis: &[String]| any_word(&f.sn) || whatis.iter().any(|l| any_word(l));
    // (position in the listing, file, whatis lines)
    let mut matched: Vec<(usize, &ModuleFile, Vec<String>)> = Vec::new();
    let mut to_eval: Vec<(usize, &ModuleFile)> = Vec::new();
    let mut scanned = scanned;
    for (i, f) in tree.visible().enumerate() {
        match scanned.remove(f.path.as_os_str()) {
            Some(Scan::Miss) => {}
            Some(Scan::Whatis(w)) => matched.push((i, f, w)),
            Some(Scan::Eval) => to_eval.push((i, f)),
            // Unreadable: only its name can match; evaluating reports the error.
            None => {
                if any_word(&f.sn) {
                    to_eval.push((i, f))
                }
            }
        }
    }
    let owned: Vec<ModuleFile> = to_eval.iter().map(|(_, f)| (*f).clone()).collect();
    let evaluated = engine.whatis_many(&owned);
    matched.extend(
        to_eval
            .into_iter()
            .zip(evaluated)
            .map(|((i, f), w)| (i, f, w)),
    );
    // Per name: the matching files, and the description of the one whose path sorts
    // first (Lmod builds the list from its files in path order).
    type Hit<'a> = (Vec<&'a ModuleFile>, Option<(&'a std::path::Path, String)>);
    let mut hits: std::collections::BTreeMap<String, Hit> = Default::default();
    // In listing order, so that each name's description comes from its first match.
    matched.sort_by_key(|m| m.0);
    for (_, f, whatis) in matched {
        if !matches(f, &whatis) {
            continue;
        }
        // Lmod lists the names in plain string order (`Perl` before `Perl-bundle-CPAN`).
        let e = hits.entry(f.sn.clone()).or_default();
        if !e.0.iter().any(|g| g.version == f.version) {
            e.0.push(f);
        }
        if e.1.as_ref().is_none_or(|(p, _)| f.path.as_path() < *p) {
            e.1 = Some((f.path.as_path(), description_of(&whatis)));
        }
    }
    if terse {
        // Lmod's `-t keyword`: each name (`NAME/`) and its matching versions, one a
        // line, with no newline after the last.
        let mut lines: Vec<String> = Vec::new();
        for (_, (mut files, _)) in hits {
            sort_files(&mut files);
            if files[0].version.is_some() {
                lines.push(format!("{}/", files[0].sn));
            }
            lines.extend(files.iter().map(|f| f.full_name()));
        }
        return lines.join("\n");
    }
    // The words as typed, as Lmod's header shows them; no match lists nothing.
    let quoted: Vec<String> = typed.iter().map(|w| format!("\"{w}\"")).collect();
    let quoted = if quoted.is_empty() {
        "\"\"".to_string()
    } else {
        quoted.join(", ")
    };
    let mut out =
        format!("{RULE}\n\nThe following modules match your search criteria: {quoted}\n{RULE}\n\n");
    for (_, (mut files, desc)) in hits {
        sort_files(&mut files);
        let names: Vec<String> = files.iter().map(|f| f.full_name()).collect();
        out += &versions_line(&files[0].sn, &names);
        let desc = desc.map(|d| d.1).unwrap_or_default();
        if !desc.is_empty() {
            out += &fill_words(&desc, "    ", 76);
            out.push('\n');
        }
        out.push('\n');
    }
    out += &spider_footer();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand from Lmod's `string.fillWords` (tools/string_utils.lua).
    #[test]
    fn fill_words_as_lmod() {
        // "a" (2+1 < 6), "b" (4+1 < 6), "c" (6+1 >= 6: new line).
        assert_eq!(fill_words("a b c", "  ", 6), "  a b\n  c");
        // A trailing space leaves an empty last word: the space after "x" stays.
        assert_eq!(fill_words("x ", "  ", 76), "  x ");
        // A first word too long for the line: Lmod trims the indent to nothing.
        assert_eq!(fill_words("abcdefgh", "  ", 6), "\n  abcdefgh");
        // Runs of spaces and newlines split once.
        assert_eq!(fill_words("a  \n b", "", 76), "a b");
    }

    /// Worked by hand from Lmod's Level0Helper: "  Perl:" is 7 columns, each version
    /// adds its length plus 2; the third would reach 91 > 76.
    #[test]
    fn version_lists_are_cut_as_lmod_cuts_them() {
        let v: Vec<String> = [
            "5.32.0-GCCcore-10.2.0",
            "5.32.1-GCCcore-10.3.0",
            "5.34.0-GCCcore-11.2.0",
        ]
        .iter()
        .map(|x| format!("Perl/{x}"))
        .collect();
        assert_eq!(
            versions_line("Perl", &v),
            "  Perl: Perl/5.32.0-GCCcore-10.2.0, Perl/5.32.1-GCCcore-10.3.0, ...\n"
        );
        assert_eq!(
            versions_line("x", &v[..1]),
            "  x: Perl/5.32.0-GCCcore-10.2.0\n"
        );
        // 17 + 8 + 8 + 8 = 41 > 40 at the third name, the 3rd of 6 (Lmod cuts while
        // `ja < num - 1`, ja from 1).
        let names: Vec<String> = (0..6).map(|i| format!("name{i:02}")).collect();
        assert_eq!(cut_list(&names, 40, "  "), "name00  name01  name02  ...");
        // With 4 names the third is the last but one: no cut, all are shown.
        assert_eq!(
            cut_list(&names[..4], 40, ", "),
            "name00, name01, name02, name03"
        );
    }

    #[test]
    fn prefixes_and_spellings() {
        assert_eq!(canonical("av"), Some("avail"));
        assert_eq!(canonical("ava"), Some("avail"));
        assert_eq!(canonical("add"), Some("load"));
        assert_eq!(canonical("rm"), Some("unload"));
        assert_eq!(canonical("sp"), Some("spider"));
        assert_eq!(canonical("s"), Some("save")); // Lmod: "save | s"
        assert_eq!(canonical("sh"), Some("show"));
        assert_eq!(canonical("r"), Some("restore"));
        assert_eq!(canonical("nope"), None);
    }
}

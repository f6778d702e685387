//! The environment as a transaction: reads see earlier writes of the same command;
//! nothing reaches the shell until the command succeeds.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Name of the environment variable that holds mlmod's state.
pub const STATE_VAR: &str = "_MLMOD_STATE";

/// Version of the state format; a state of another version is ignored with a warning.
pub const STATE_FORMAT: u32 = 1;

/// One change for the shell to apply, in the order the renderer emits them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// `export NAME=value`.
    Set {
        /// Variable.
        name: String,
        /// Value.
        value: String,
    },
    /// `unset NAME`.
    Unset {
        /// Variable.
        name: String,
    },
    /// `alias NAME=value`.
    Alias {
        /// Alias name.
        name: String,
        /// Its expansion.
        value: String,
    },
    /// `unalias NAME`.
    Unalias {
        /// Alias name.
        name: String,
    },
    /// A shell function.
    Function {
        /// Function name.
        name: String,
        /// Body for Bourne shells.
        bash: String,
        /// Body for csh (as an alias).
        csh: String,
    },
    /// Removes a shell function.
    UnsetFunction {
        /// Function name.
        name: String,
    },
}

/// A loaded module, as remembered in the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// Short name.
    pub sn: String,
    /// Version, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The modulefile.
    pub file: String,
    /// Loaded by the user (not only as a dependency).
    #[serde(default)]
    pub user: bool,
    /// Number of `depends_on` that hold it.
    #[serde(default)]
    pub refs: u32,
    /// The name the user asked for (`myModuleUsrName`).
    #[serde(default)]
    pub usr_name: String,
    /// Properties from `add_property`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, Vec<String>>,
}

impl Loaded {
    /// `NAME/VERSION` or `NAME`.
    pub fn full_name(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/{}", self.sn, v),
            None => self.sn.clone(),
        }
    }
}

/// mlmod's state, kept in [`STATE_VAR`] as JSON so that every call is stateless.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version, [`STATE_FORMAT`].
    pub v: u32,
    /// Loaded modules in load order.
    #[serde(default)]
    pub loaded: Vec<Loaded>,
    /// Reference counts of path entries, per variable: `entry -> count`. Entries of a
    /// variable not listed count 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: BTreeMap<String, BTreeMap<String, u32>>,
    /// Priorities of path entries, per variable: `entry -> p`, positive for an entry
    /// prepended with `priority = p` (kept in front of lower ones), negative for one
    /// appended with `priority = -p` (kept behind lower ones).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prio: BTreeMap<String, BTreeMap<String, i64>>,
    /// Values saved by `pushenv`, per variable (innermost last; `None` = was unset).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pushenv: BTreeMap<String, Vec<Option<String>>>,
    /// Module families: family -> short name of the module that holds it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub families: BTreeMap<String, String>,
    /// Modules unloaded because MODULEPATH no longer offers them (Lmod's "inactive"
    /// modules): the names the user asked for, reloaded when they come back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inactive: Vec<String>,
}

/// The environment of one command: the process environment plus this command's edits.
#[derive(Clone, Debug, Default)]
pub struct Env {
    base: HashMap<String, String>,
    vars: BTreeMap<String, Option<String>>,
    aliases: BTreeMap<String, Option<String>>,
    functions: BTreeMap<String, Option<(String, String)>>,
    /// The state, as edited by this command.
    pub state: State,
}

impl Env {
    /// Starts from `base` (the process environment); reads the state from it.
    ///
    /// # Errors
    /// A message if the state variable is present but unreadable or of another format.
    pub fn new(base: HashMap<String, String>) -> Result<Self, String> {
        let state = match base.get(STATE_VAR) {
            None => State {
                v: STATE_FORMAT,
                ..State::default()
            },
            Some(s) => {
                let st: State = serde_json::from_str(s).map_err(|e| {
                    format!("{STATE_VAR} is not readable ({e}); run `module purge` or unset it")
                })?;
                if st.v != STATE_FORMAT {
                    return Err(format!(
                        "{STATE_VAR} has format {} but this mlmod reads format {STATE_FORMAT}; unset it",
                        st.v
                    ));
                }
                st
            }
        };
        Ok(Env {
            base,
            state,
            ..Env::default()
        })
    }

    /// The current value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.vars.get(name) {
            Some(v) => v.as_deref(),
            None => self.base.get(name).map(String::as_str),
        }
    }

    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), Some(value.to_string()));
    }

    /// Unsets a variable.
    pub fn unset(&mut self, name: &str) {
        self.vars.insert(name.to_string(), None);
    }

    /// Defines an alias.
    pub fn set_alias(&mut self, name: &str, value: &str) {
        self.aliases
            .insert(name.to_string(), Some(value.to_string()));
    }

    /// Removes an alias.
    pub fn unset_alias(&mut self, name: &str) {
        self.aliases.insert(name.to_string(), None);
    }

    /// Defines a shell function.
    pub fn set_function(&mut self, name: &str, bash: &str, csh: &str) {
        self.functions
            .insert(name.to_string(), Some((bash.to_string(), csh.to_string())));
    }

    /// Removes a shell function.
    pub fn unset_function(&mut self, name: &str) {
        self.functions.insert(name.to_string(), None);
    }

    /// The entries of a path variable, each once: Lmod collapses duplicates (keeping
    /// the first) when it changes a path (`LMOD_DUPLICATE_PATHS` unset).
    fn entries(&self, name: &str, delim: &str) -> Vec<String> {
        match self.get(name) {
            None | Some("") => Vec::new(),
            Some(v) => {
                let mut seen = std::collections::HashSet::new();
                v.split(delim)
                    .filter(|e| seen.insert(*e))
                    .map(str::to_string)
                    .collect()
            }
        }
    }

    fn count(&self, name: &str, entry: &str) -> u32 {
        self.state
            .refs
            .get(name)
            .and_then(|m| m.get(entry))
            .copied()
            .unwrap_or(1)
    }

    fn write_entries(
        &mut self,
        name: &str,
        delim: &str,
        entries: Vec<String>,
        counts: BTreeMap<String, u32>,
    ) {
        if entries.is_empty() {
            self.unset(name);
        } else {
            self.set(name, &entries.join(delim));
        }
        let counts: BTreeMap<String, u32> = counts
            .into_iter()
            .filter(|(e, c)| *c != 1 && entries.contains(e))
            .collect();
        if counts.is_empty() {
            self.state.refs.remove(name);
        } else {
            self.state.refs.insert(name.to_string(), counts);
        }
    }

    fn counts(&self, name: &str, entries: &[String]) -> BTreeMap<String, u32> {
        entries
            .iter()
            .map(|e| (e.clone(), self.count(name, e)))
            .collect()
    }

    /// Lmod's path clean-up of an entry: `//` becomes `/`, `/./` becomes `/`, and a
    /// trailing `/` goes (except for `/` itself).
    pub fn clean_entry(e: &str) -> String {
        let mut s = e.to_string();
        while s.contains("//") {
            s = s.replace("//", "/");
        }
        while s.contains("/./") {
            s = s.replace("/./", "/");
        }
        while s.len() > 1 && s.ends_with('/') {
            s.pop();
        }
        s
    }

    /// Adds `value`'s entries (split on `delim`) at the front (`front`) or the back of
    /// variable `name`, with Lmod's `priority` (0 for none); an entry already there
    /// moves and its reference count grows. A prepended entry goes behind those
    /// prepended with a higher priority; an appended one in front of those appended
    /// with a higher priority.
    pub fn add_path(&mut self, name: &str, value: &str, delim: &str, front: bool, priority: i64) {
        let mut entries = self.entries(name, delim);
        let mut counts = self.counts(name, &entries);
        let mut prio = self.state.prio.get(name).cloned().unwrap_or_default();
        let new: Vec<String> = value.split(delim).map(Self::clean_entry).collect();
        let iter: Box<dyn Iterator<Item = &String>> = if front {
            Box::new(new.iter().rev())
        } else {
            Box::new(new.iter())
        };
        for e in iter {
            let e = e.as_str();
            let c = if let Some(i) = entries.iter().position(|x| x == e) {
                entries.remove(i);
                counts.get(e).copied().unwrap_or(1) + 1
            } else {
                1
            };
            prio.remove(e);
            if front {
                let at = entries
                    .iter()
                    .take_while(|x| prio.get(*x).copied().unwrap_or(0) > priority)
                    .count();
                entries.insert(at, e.to_string());
                if priority > 0 {
                    prio.insert(e.to_string(), priority);
                }
            } else {
                let behind = entries
                    .iter()
                    .rev()
                    .take_while(|x| -prio.get(*x).copied().unwrap_or(0) > priority)
                    .count();
                let at = entries.len() - behind;
                entries.insert(at, e.to_string());
                if priority > 0 {
                    prio.insert(e.to_string(), -priority);
                }
            }
            counts.insert(e.to_string(), c);
        }
        self.write_prio(name, &entries, prio);
        self.write_entries(name, delim, entries, counts);
    }

    fn write_prio(&mut self, name: &str, entries: &[String], prio: BTreeMap<String, i64>) {
        let prio: BTreeMap<String, i64> = prio
            .into_iter()
            .filter(|(e, _)| entries.contains(e))
            .collect();
        if prio.is_empty() {
            self.state.prio.remove(name);
        } else {
            self.state.prio.insert(name.to_string(), prio);
        }
    }

    /// Removes `value`'s entries from variable `name`: each entry's reference count
    /// drops by one and the entry goes when it reaches zero (all at once if `force`).
    pub fn remove_path(&mut self, name: &str, value: &str, delim: &str, force: bool) {
        let mut entries = self.entries(name, delim);
        let mut counts = self.counts(name, &entries);
        for e in value.split(delim).map(Self::clean_entry) {
            let e = e.as_str();
            if let Some(i) = entries.iter().position(|x| x == e) {
                let c = counts.get(e).copied().unwrap_or(1);
                if c <= 1 || force {
                    entries.remove(i);
                    counts.remove(e);
                    if let Some(p) = self.state.prio.get_mut(name) {
                        p.remove(e);
                    }
                } else {
                    counts.insert(e.to_string(), c - 1);
                }
            }
        }
        self.write_entries(name, delim, entries, counts);
    }

    /// The changes to hand to the shell: variables that differ from the base
    /// environment (the state variable last), then aliases and functions.
    pub fn changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        let mut vars = self.vars.clone();
        let state = serde_json::to_string(&self.state).expect("state serialises");
        if self.state.loaded.is_empty()
            && self.state.refs.is_empty()
            && self.state.pushenv.is_empty()
            && self.state.families.is_empty()
            && self.state.inactive.is_empty()
            && self.state.prio.is_empty()
        {
            vars.insert(STATE_VAR.to_string(), None);
        } else {
            vars.insert(STATE_VAR.to_string(), Some(state));
        }
        for (name, v) in &vars {
            let before = self.base.get(name);
            match v {
                Some(v) if before != Some(v) => out.push(Change::Set {
                    name: name.clone(),
                    value: v.clone(),
                }),
                None if before.is_some() => out.push(Change::Unset { name: name.clone() }),
                _ => {}
            }
        }
        for (name, v) in &self.aliases {
            out.push(match v {
                Some(v) => Change::Alias {
                    name: name.clone(),
                    value: v.clone(),
                },
                None => Change::Unalias { name: name.clone() },
            });
        }
        for (name, v) in &self.functions {
            out.push(match v {
                Some((b, c)) => Change::Function {
                    name: name.clone(),
                    bash: b.clone(),
                    csh: c.clone(),
                },
                None => Change::UnsetFunction { name: name.clone() },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn reference_counted_paths() {
        let mut e = env(&[("PATH", "/usr/bin:/bin")]);
        e.add_path("PATH", "/a/bin", ":", true, 0);
        e.add_path("PATH", "/a/bin", ":", true, 0);
        assert_eq!(e.get("PATH"), Some("/a/bin:/usr/bin:/bin"));
        e.remove_path("PATH", "/a/bin", ":", false);
        assert_eq!(e.get("PATH"), Some("/a/bin:/usr/bin:/bin"));
        e.remove_path("PATH", "/a/bin", ":", false);
        assert_eq!(e.get("PATH"), Some("/usr/bin:/bin"));
        e.add_path("X", "/p:/q", ":", true, 0);
        assert_eq!(e.get("X"), Some("/p:/q"));
        e.add_path("X", "/r", ":", false, 0);
        assert_eq!(e.get("X"), Some("/p:/q:/r"));
        e.remove_path("X", "/p:/q:/r", ":", false);
        assert_eq!(e.get("X"), None);
    }

    #[test]
    fn priorities_keep_entries_in_front_or_behind() {
        // As Lmod 8.6 orders them (crates/mlmod/tests/data/scenarios.txt, path-priority).
        let mut e = env(&[("PATH", "/usr/bin:/bin")]);
        e.add_path("PATH", "/opt/prio/high", ":", true, 100);
        e.add_path("PATH", "/opt/prio/normal", ":", true, 0);
        e.add_path("PATH", "/opt/prio/last", ":", false, 100);
        e.add_path("PATH", "/opt/prio/tail", ":", false, 0);
        assert_eq!(
            e.get("PATH"),
            Some("/opt/prio/high:/opt/prio/normal:/usr/bin:/bin:/opt/prio/tail:/opt/prio/last")
        );
        e.add_path("PATH", "/opt/prio2/bin", ":", true, 0);
        e.add_path("PATH", "/opt/prio2/tail", ":", false, 0);
        assert_eq!(
            e.get("PATH"),
            Some("/opt/prio/high:/opt/prio2/bin:/opt/prio/normal:/usr/bin:/bin:/opt/prio/tail:/opt/prio2/tail:/opt/prio/last")
        );
    }

    #[test]
    fn changes_are_a_diff_against_the_base() {
        let mut e = env(&[("A", "1"), ("B", "2")]);
        e.set("A", "1");
        e.set("B", "3");
        e.unset("C");
        e.set("D", "4");
        let ch = e.changes();
        assert_eq!(
            ch,
            vec![
                Change::Set {
                    name: "B".into(),
                    value: "3".into()
                },
                Change::Set {
                    name: "D".into(),
                    value: "4".into()
                },
            ]
        );
    }
}

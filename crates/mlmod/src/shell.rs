//! Rendering changes as code for a shell to `eval`, and the `init` code per shell.
//!
//! Each renderer only knows its shell's quoting and export syntax; the changes arrive
//! as one ordered list, so output is deterministic.

use crate::env::Change;

/// A shell mlmod can speak to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// A POSIX sh (dash, ksh, busybox sh).
    Sh,
    /// fish.
    Fish,
    /// csh and tcsh.
    Csh,
    /// JSON for programs.
    Json,
}

impl Shell {
    /// Parses a shell name as Lmod's `$LMOD_CMD <shell>` takes it.
    pub fn parse(s: &str) -> Option<Shell> {
        Some(match s {
            "bash" => Shell::Bash,
            "zsh" => Shell::Zsh,
            "sh" | "ksh" | "dash" => Shell::Sh,
            "fish" => Shell::Fish,
            "csh" | "tcsh" => Shell::Csh,
            "json" => Shell::Json,
            _ => return None,
        })
    }

    /// The shell's name.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Sh => "sh",
            Shell::Fish => "fish",
            Shell::Csh => "csh",
            Shell::Json => "json",
        }
    }
}

/// Quotes for Bourne shells: `'...'` with `'` written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn csh_quote(s: &str) -> String {
    // csh has no escape inside quotes: close, add a double-quoted quote, reopen; `!`
    // needs a backslash even in quotes.
    format!("'{}'", s.replace('\'', "'\"'\"'").replace('!', "\\!"))
}

/// Variables fish keeps as lists split on `:`.
const FISH_PATH_VARS: &[&str] = &["PATH", "CDPATH", "MANPATH"];

/// Renders `changes` for `shell`. `ok = false` appends a command that fails, so that
/// `module ...` returns a non-zero status, as Lmod does.
pub fn render(shell: Shell, changes: &[Change], messages: &[String], ok: bool) -> String {
    let mut out = String::new();
    match shell {
        Shell::Json => {
            let v = serde_json::json!({ "ok": ok, "changes": changes, "messages": messages });
            out.push_str(&v.to_string());
            out.push('\n');
            return out;
        }
        Shell::Bash | Shell::Zsh | Shell::Sh => {
            for c in changes {
                match c {
                    Change::Set { name, value } => {
                        out += &format!("{name}={};\nexport {name};\n", sh_quote(value));
                    }
                    Change::Unset { name } => out += &format!("unset {name};\n"),
                    Change::Alias { name, value } => {
                        out += &format!("alias {name}={};\n", sh_quote(value))
                    }
                    Change::Unalias { name } => {
                        out += &format!("unalias {name} 2> /dev/null || true;\n")
                    }
                    Change::Function { name, bash, .. } => {
                        out += &format!(
                            "{name} () {{\n{}\n}};\n",
                            bash.trim_end_matches(['\n', ';'])
                        );
                    }
                    Change::UnsetFunction { name } => {
                        out += &format!("unset -f {name} 2> /dev/null || true;\n")
                    }
                }
            }
        }
        Shell::Fish => {
            for c in changes {
                match c {
                    Change::Set { name, value } => {
                        if FISH_PATH_VARS.contains(&name.as_str()) {
                            let parts: Vec<String> = value.split(':').map(fish_quote).collect();
                            out += &format!("set -gx {name} {};\n", parts.join(" "));
                        } else {
                            out += &format!("set -gx {name} {};\n", fish_quote(value));
                        }
                    }
                    Change::Unset { name } => out += &format!("set -e {name};\n"),
                    Change::Alias { name, value } => {
                        out += &format!("alias {name} {};\n", fish_quote(value))
                    }
                    Change::Unalias { name } | Change::UnsetFunction { name } => {
                        out += &format!("functions -e {name};\n")
                    }
                    Change::Function { name, bash, .. } => {
                        out += &format!(
                            "function {name}\n{}\nend;\n",
                            bash.trim_end_matches(['\n', ';'])
                        );
                    }
                }
            }
        }
        Shell::Csh => {
            for c in changes {
                match c {
                    Change::Set { name, value } => {
                        out += &format!("setenv {name} {};\n", csh_quote(value))
                    }
                    Change::Unset { name } => out += &format!("unsetenv {name};\n"),
                    Change::Alias { name, value } => {
                        out += &format!("alias {name} {};\n", csh_quote(value))
                    }
                    Change::Unalias { name } | Change::UnsetFunction { name } => {
                        out += &format!("unalias {name};\n")
                    }
                    Change::Function { name, csh, .. } => {
                        out += &format!("alias {name} {};\n", csh_quote(csh))
                    }
                }
            }
        }
    }
    if !ok {
        out.push_str("false;\n");
    }
    out
}

/// The code that `eval "$(mlmod init SHELL)"` runs: defines `module` and `ml` to call
/// `exe`, and sets `MLMOD_CMD`.
pub fn init(shell: Shell, exe: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh | Shell::Sh => {
            let q = sh_quote(exe);
            let mut s = format!(
                "MLMOD_CMD={q};\nexport MLMOD_CMD;\n\
                 module() {{ eval \"$(\"$MLMOD_CMD\" {sh} \"$@\")\"; }};\n\
                 ml() {{ eval \"$(\"$MLMOD_CMD\" {sh} ml \"$@\")\"; }};\n",
                sh = shell.name()
            );
            if shell == Shell::Bash {
                s.push_str("export -f module ml 2> /dev/null || true;\n");
            }
            s
        }
        Shell::Fish => format!(
            "set -gx MLMOD_CMD {q};\n\
             function module; $MLMOD_CMD fish $argv | source; end;\n\
             function ml; $MLMOD_CMD fish ml $argv | source; end;\n",
            q = fish_quote(exe)
        ),
        // The command substitution is double-quoted so that csh neither splits nor
        // globs (braces!) the generated code before `eval` parses it.
        Shell::Csh => format!(
            "setenv MLMOD_CMD {q};\n\
             alias module 'eval \"`$MLMOD_CMD csh \\!*`\"';\n\
             alias ml 'eval \"`$MLMOD_CMD csh ml \\!*`\"';\n",
            q = csh_quote(exe)
        ),
        Shell::Json => serde_json::json!({ "cmd": exe }).to_string() + "\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: &str, v: &str) -> Change {
        Change::Set {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn bash_quotes_single_quotes() {
        let out = render(Shell::Bash, &[set("A", "it's $HOME")], &[], true);
        assert_eq!(out, "A='it'\\''s $HOME';\nexport A;\n");
    }

    #[test]
    fn fish_splits_path() {
        let out = render(
            Shell::Fish,
            &[set("PATH", "/a:/b"), set("X", "/a:/b")],
            &[],
            true,
        );
        assert_eq!(out, "set -gx PATH '/a' '/b';\nset -gx X '/a:/b';\n");
    }

    #[test]
    fn errors_end_with_false() {
        assert_eq!(render(Shell::Sh, &[], &[], false), "false;\n");
        assert_eq!(
            render(Shell::Csh, &[Change::Unset { name: "A".into() }], &[], true),
            "unsetenv A;\n"
        );
    }
}

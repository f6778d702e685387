//! Reading a modulefile's whatis lines without running it, when that is certain to
//! give what running it in whatis mode gives.
//!
//! `module keyword` needs the whatis lines of every modulefile whose text holds the
//! word; evaluating thousands of files in Lua costs more than reading them. Most
//! modulefiles (all that EasyBuild and Spack write) call `whatis` at the top level
//! with string literals, so the lines can be read off the tokens. The rule is
//! conservative: [`literal_whatis`] answers only when every `whatis` in the file is a
//! call at the outermost block with literal strings (joined by `..`) and the file has
//! nothing that could end it early (`return`, `goto`, `break`, `error`, `LmodError`)
//! or print (`LmodMessage`, `LmodWarning`). Otherwise it answers `None` and the file
//! is evaluated. A test checks it against Lua evaluation on every modulefile of the
//! test trees and of `../shared/data/modulefiles`.
//!
//! Lua's lexical rules: <https://www.lua.org/manual/5.4/manual.html#3.1>.

/// A token, as far as this reader needs to tell them apart.
#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Name(&'a str),
    /// A string literal's value (`None` if it has escapes this reader does not decode).
    Str(Option<&'a str>),
    /// Punctuation or a number: its text.
    Other(&'a str),
}

/// The whatis lines of a modulefile read from its text, or `None` if only evaluating
/// it can tell (see the module documentation for the rule).
pub fn literal_whatis(text: &str) -> Option<Vec<String>> {
    let toks = lex(text)?;
    let mut out = Vec::new();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Name(n) => match *n {
                "do" | "if" | "function" | "repeat" => depth += 1,
                "end" | "until" => depth = depth.checked_sub(1)?,
                "return" | "goto" | "break" | "error" | "LmodError" | "LmodMessage"
                | "LmodWarning" => return None,
                "whatis" => {
                    if depth != 0 || i > 0 && matches!(toks[i - 1], Tok::Other("." | ":")) {
                        return None;
                    }
                    let (line, next) = call_of_literals(&toks, i + 1)?;
                    out.push(line);
                    i = next;
                    continue;
                }
                _ => {}
            },
            Tok::Str(_) | Tok::Other(_) => {}
        }
        i += 1;
    }
    (depth == 0).then_some(out)
}

/// `( "a" .. "b" .. ... )` starting at `toks[i]`: the joined text and the index after
/// the closing parenthesis.
fn call_of_literals(toks: &[Tok], mut i: usize) -> Option<(String, usize)> {
    if toks.get(i)? != &Tok::Other("(") {
        return None;
    }
    i += 1;
    let mut s = String::new();
    loop {
        match toks.get(i)? {
            Tok::Str(Some(v)) => s.push_str(v),
            _ => return None,
        }
        i += 1;
        match toks.get(i)? {
            Tok::Other("..") => i += 1,
            Tok::Other(")") => return Some((s, i + 1)),
            _ => return None,
        }
    }
}

/// Splits Lua source into tokens, dropping comments; `None` where the text is not
/// well-formed Lua at the lexical level (an unfinished string or comment).
fn lex(text: &str) -> Option<Vec<Tok<'_>>> {
    let b = text.as_bytes();
    // About one token per six bytes in modulefiles; growing the vector costs more.
    let mut toks = Vec::with_capacity(text.len() / 6 + 8);
    let mut i = 0;
    // A first line starting with '#' is skipped by Lua's loader.
    if b.first() == Some(&b'#') {
        i = text.find('\n').unwrap_or(b.len());
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"--") {
            i += 2;
            if let Some((_, end)) = long_bracket(text, i) {
                i = end;
            } else {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            toks.push(Tok::Name(&text[start..i]));
        } else if c == b'"' || c == b'\'' {
            let start = i + 1;
            i += 1;
            let mut plain = true;
            loop {
                match *b.get(i)? {
                    b'\\' => {
                        plain = false;
                        i += 2;
                    }
                    b'\n' => return None,
                    q if q == c => break,
                    _ => i += 1,
                }
            }
            let v = plain.then(|| &text[start..i]);
            toks.push(Tok::Str(v));
            i += 1;
        } else if c == b'[' && matches!(b.get(i + 1), Some(b'[' | b'=')) {
            match long_bracket(text, i) {
                Some((v, end)) => {
                    toks.push(Tok::Str(Some(v)));
                    i = end;
                }
                None if b.get(i + 1) == Some(&b'[') => return None,
                None => {
                    toks.push(Tok::Other("["));
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            toks.push(Tok::Other(&text[start..i]));
        } else {
            let n = if b[i..].starts_with(b"...") {
                3
            } else if [
                &b".."[..],
                b"==",
                b"~=",
                b"<=",
                b">=",
                b"::",
                b"//",
                b"<<",
                b">>",
            ]
            .iter()
            .any(|p| b[i..].starts_with(p))
            {
                2
            } else {
                text[i..].chars().next().map_or(1, char::len_utf8)
            };
            toks.push(Tok::Other(&text[i..i + n]));
            i += n;
        }
    }
    Some(toks)
}

/// A long bracket `[==[ ... ]==]` opening at byte `i`: its contents (without a first
/// newline, as Lua drops it) and the index after it. `None` if there is no opening
/// long bracket at `i` or it is never closed.
fn long_bracket(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    if b.get(j) != Some(&b'[') {
        return None;
    }
    let level = j - i - 1;
    let close = format!("]{}]", "=".repeat(level));
    let body_start = j + 1;
    let end = text[body_start..].find(&close)? + body_start;
    let mut body = &text[body_start..end];
    if let Some(rest) = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
    {
        body = rest;
    }
    Some((body, end + close.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Option<Vec<String>> {
        literal_whatis(s)
    }

    #[test]
    fn top_level_literals_are_read() {
        let text = "-- a comment with whatis(\"no\")\n\
                    --[[ and a block comment whatis(\"no\") ]]\n\
                    whatis(\"Name: zlib\")\n\
                    whatis([==[Description: a \"library\"]==])\n\
                    whatis('Ver' .. \"sion: 1.3\")\n\
                    local root = \"/apps/zlib\"\n\
                    if not isloaded(\"gcc\") then load(\"gcc\") end\n\
                    prepend_path(\"PATH\", pathJoin(root, \"bin\"))\n";
        assert_eq!(
            w(text),
            Some(vec![
                "Name: zlib".to_string(),
                "Description: a \"library\"".to_string(),
                "Version: 1.3".to_string(),
            ])
        );
        // Lua drops a newline right after the opening long bracket.
        assert_eq!(w("whatis([[\nx]])"), Some(vec!["x".to_string()]));
        assert_eq!(w("setenv('A', 'b')"), Some(vec![]));
    }

    #[test]
    fn anything_dynamic_is_left_to_lua() {
        assert_eq!(w("whatis(\"Name: \" .. myModuleName())"), None);
        assert_eq!(w("if mode() == 'whatis' then whatis('x') end"), None);
        assert_eq!(w("local function f() whatis('x') end f()"), None);
        assert_eq!(w("local w = whatis w('x')"), None);
        assert_eq!(w("whatis 'x'"), None);
        assert_eq!(w("whatis('a\\tb')"), None);
        assert_eq!(w("whatis('x') LmodError('no')"), None);
        assert_eq!(w("whatis('x') return"), None);
        assert_eq!(w("whatis('x'"), None);
        assert_eq!(w("whatis([[x"), None);
        assert_eq!(w("for i = 1, 2 do whatis('x') end"), None);
        assert_eq!(w("m.whatis('x')"), None);
    }

    #[test]
    fn blocks_are_counted() {
        // A whatis after a finished block is at the top level again.
        let t = "for i = 1, 2 do setenv('A', 'b') end\nwhile false do end\n\
                 repeat local x = 1 until true\nwhatis('ok')";
        assert_eq!(w(t), Some(vec!["ok".to_string()]));
        assert_eq!(w("end whatis('x')"), None);
        assert_eq!(w("if true then"), None);
    }
}

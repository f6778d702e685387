//! Lmod's version ordering.
//!
//! Lmod sorts versions by a string key (the algorithm of Lmod's `parseVersion.lua`,
//! after Python's `pkg_resources.parse_version`; see
//! <https://lmod.readthedocs.io/en/latest/060_locating.html>). The lower-cased version
//! is cut into parts: runs of digits (zero-padded to 9 places), runs of letters
//! (`*word`, with `pre`, `preview` and `rc` read as `c`, `dev` as `@`, and `p` as a
//! patch marker), `-` and `-p` (a patch marker, `*zfinal-`), `/`, and any other single
//! character (`*_`, `*+`); `.` separates. A final `*zfinal` ends the key. A patch marker
//! right before a word is dropped, and so are zero parts before a word or the end.
//! Keys compare as strings, which gives
//!
//! `2.4dev1 < 2.4a1 < 2.4rc1 < 2.4 = 2.4.0 < 2.4-1 < 2.4.1 < 10.0`, and
//! `2.69-GCCcore-8.3.0 < 2.69`, `3.8.1_Linux < 3.8.1-foss` (as Lmod lists them).

/// The kind of a part of the key, for the dropping rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A number that is zero.
    Zero,
    /// Another number.
    Number,
    /// `*zfinal-`.
    Patch,
    /// `*zfinal`.
    End,
    /// Any other `*` part or `/`.
    Other,
}

/// The sort key of a version string. Equal keys mean equal versions (`2.4` and `2.4.0`).
///
/// Built in one string: each part is appended (`.`-separated) and remembered by its
/// start, so the dropping rules truncate instead of re-allocating.
pub fn version_key(version: &str) -> String {
    let v = version.to_lowercase();
    let b = v.as_bytes();
    let mut out = String::with_capacity(16 + 4 * v.len());
    let mut parts: Vec<(usize, Kind)> = Vec::with_capacity(8);
    let push = |out: &mut String,
                parts: &mut Vec<(usize, Kind)>,
                kind: Kind,
                text: &dyn Fn(&mut String)| {
        // Dropping rules apply when a `*` part arrives (words, markers, the end).
        if matches!(kind, Kind::Patch | Kind::End | Kind::Other) {
            let drop_patch = |out: &mut String, parts: &mut Vec<(usize, Kind)>| {
                while parts.last().is_some_and(|p| p.1 == Kind::Patch) {
                    let (at, _) = parts.pop().expect("non-empty");
                    out.truncate(at);
                }
            };
            if kind != Kind::End {
                drop_patch(out, parts);
            }
            while parts.last().is_some_and(|p| p.1 == Kind::Zero) {
                let (at, _) = parts.pop().expect("non-empty");
                out.truncate(at);
            }
            if kind == Kind::End {
                drop_patch(out, parts);
            }
        }
        let start = out.len();
        if !out.is_empty() {
            out.push('.');
        }
        text(out);
        parts.push((start, kind));
    };
    let mut i = 0;
    loop {
        if i < b.len() && b[i] == b'.' {
            if i == 0 {
                push(&mut out, &mut parts, Kind::Zero, &|o| {
                    o.push_str("000000000")
                });
            }
            i += 1;
        }
        if i >= b.len() {
            push(&mut out, &mut parts, Kind::End, &|o| o.push_str("*zfinal"));
            break;
        }
        let c = b[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = v[start..i].trim_start_matches('0');
            let kind = if digits.is_empty() {
                Kind::Zero
            } else {
                Kind::Number
            };
            push(&mut out, &mut parts, kind, &|o| {
                for _ in digits.len()..9 {
                    o.push('0');
                }
                o.push_str(digits);
            });
        } else if c == b'/' {
            push(&mut out, &mut parts, Kind::Other, &|o| o.push('/'));
            i += 1;
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &v[start..i];
            match w {
                "p" => push(&mut out, &mut parts, Kind::Patch, &|o| {
                    o.push_str("*zfinal-")
                }),
                _ => push(&mut out, &mut parts, Kind::Other, &|o| {
                    o.push('*');
                    o.push_str(match w {
                        "pre" | "preview" | "rc" => "c",
                        "dev" => "@",
                        w => w,
                    });
                }),
            }
        } else if c == b'-' {
            // `-` and `-p` are both a patch marker.
            i += if b.get(i + 1) == Some(&b'p') { 2 } else { 1 };
            push(&mut out, &mut parts, Kind::Patch, &|o| {
                o.push_str("*zfinal-")
            });
        } else {
            // Any other single character (possibly a multi-byte one).
            let ch = v[i..].chars().next().expect("in bounds");
            let len = ch.len_utf8();
            let text = &v[i..i + len];
            push(&mut out, &mut parts, Kind::Other, &|o| {
                o.push('*');
                o.push_str(text);
            });
            i += len;
        }
    }
    out.replace("./.", "/")
}

/// Compares two versions by Lmod's ordering.
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    version_key(a).cmp(&version_key(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn lmod_documented_order() {
        // The order stated in Lmod's documentation and the issue.
        let ordered = [
            "2.4dev1", "2.4a1", "2.4rc1", "2.4", "2.4-1", "2.4.1", "10.0",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("2.4", "2.4.0"), Equal);
        assert_eq!(compare("9.0", "10.0"), Less);
        assert_eq!(compare("1.8.0_181", "1.8.0_92"), Greater);
        assert_eq!(compare("4.1.1-foss-2020b", "4.1.2-foss-2021b"), Less);
        // As Lmod 8.6 lists the easybuild tree.
        assert_eq!(compare("2.69-GCCcore-8.3.0", "2.69"), Less);
        assert_eq!(compare("2.69-GCCcore-10.2.0", "2.69"), Less);
        assert_eq!(compare("2.69-GCCcore-8.3.0", "2.69-GCCcore-10.2.0"), Less);
        assert_eq!(
            compare(
                "3.8.1_Linux_x86_64_CUDA-11",
                "3.8.1-foss-2019b-CUDA-10.2.89"
            ),
            Less
        );
        assert_eq!(compare("3.2-p0", "3.2"), Equal);
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(version_key("1.0RC1"), version_key("1.0rc1"));
    }
}

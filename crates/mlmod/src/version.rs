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

const ZERO: &str = "000000000";
const PATCH: &str = "*zfinal-";
const END: &str = "*zfinal";

/// The sort key of a version string. Equal keys mean equal versions (`2.4` and `2.4.0`).
pub fn version_key(version: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in raw_parts(&version.to_lowercase()) {
        if part.starts_with('*') {
            if part != END {
                while parts.last().is_some_and(|p| p == PATCH) {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p == ZERO) {
                parts.pop();
            }
            if part == END {
                while parts.last().is_some_and(|p| p == PATCH) {
                    parts.pop();
                }
            }
        }
        parts.push(part);
    }
    parts.join(".").replace("./.", "/")
}

/// Splits a lower-cased version into marked parts, ending with `*zfinal`.
fn raw_parts(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i < b.len() && b[i] == b'.' {
            if i == 0 {
                out.push(ZERO.to_string());
            }
            i += 1;
        }
        if i >= b.len() {
            out.push(END.to_string());
            return out;
        }
        let c = b[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = v[start..i].trim_start_matches('0');
            out.push(format!("{digits:0>9}"));
        } else if c == b'/' {
            out.push("/".to_string());
            i += 1;
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(marked(&v[start..i]));
        } else if c == b'-' && b.get(i + 1) == Some(&b'p') {
            out.push(PATCH.to_string());
            i += 2;
        } else {
            // Any other single character (possibly a multi-byte one).
            let ch = v[i..].chars().next().expect("in bounds");
            out.push(marked(&v[i..i + ch.len_utf8()]));
            i += ch.len_utf8();
        }
    }
}

fn marked(word: &str) -> String {
    let w = match word {
        "pre" | "preview" | "rc" => "c",
        "dev" => "@",
        "-" | "p" => "zfinal-",
        w => w,
    };
    format!("*{w}")
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

//! Lmod's version ordering.
//!
//! Lmod sorts versions with a key built like Python's `pkg_resources.parse_version`
//! (Lmod's `parseVersion.lua`, <https://lmod.readthedocs.io/en/latest/060_locating.html>):
//! the lower-cased string is cut into runs of digits, runs of letters, and `-`
//! separators; numbers are zero-padded, words are marked with `*` (with `dev` → `@`,
//! `pre`/`preview`/`rc` → `c`, `-` → `final-`), a final `*final` is appended, and
//! trailing zero numbers before a word are dropped. Keys compare as strings, which gives
//!
//! `2.4dev1 < 2.4a1 < 2.4rc1 < 2.4 = 2.4.0 < 2.4-1 < 2.4.1 < 10.0`.

/// The sort key of a version string. Equal keys mean equal versions (`2.4` and `2.4.0`).
pub fn version_key(version: &str) -> String {
    let v = version.to_ascii_lowercase();
    let mut parts: Vec<String> = Vec::new();
    for part in raw_parts(&v)
        .into_iter()
        .chain(std::iter::once("*final".to_string()))
    {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p.bytes().all(|b| b == b'0')) {
                parts.pop();
            }
        }
        parts.push(part);
    }
    parts.join(".")
}

/// Splits into marked parts: zero-padded numbers, `*word`s, `*final-` for `-`.
fn raw_parts(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = v[start..i].trim_start_matches('0');
            out.push(format!("{:0>9}", digits));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &v[start..i];
            let w = match w {
                "pre" | "preview" | "rc" => "c",
                "dev" => "@",
                w => w,
            };
            out.push(format!("*{w}"));
        } else {
            if c == b'-' {
                out.push("*final-".to_string());
            }
            i += 1;
        }
    }
    out
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
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(version_key("1.0RC1"), version_key("1.0rc1"));
    }
}

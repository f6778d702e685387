//! What to run, as a command line names it: comma-separated lists (policies here,
//! sharing modes in [`crate::sharing::parse_modes`]) and the seeds.
//!
//! Errors do not name the flag; the caller does (`--policy: ...`).

use mlplane_policies::Policy;

/// The first seed of `--seeds N` (the FGD paper's experiments use 42..=51).
pub const FIRST_SEED: u64 = 42;

/// Seeds run when none are chosen.
pub const DEFAULT_SEED_COUNT: u64 = 3;

/// A list or count that names nothing valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectError(pub String);

/// The items of a comma-separated list, trimmed. An empty item (`a,,b`, `a,`, `,`) or
/// an empty list is an error: it usually means a name was lost (an unset shell
/// variable).
///
/// # Errors
/// [`SelectError`] saying which item is empty.
pub fn split_list(list: &str) -> Result<Vec<&str>, SelectError> {
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.iter().all(|i| i.is_empty()) {
        return Err(SelectError(format!("{list:?} names nothing")));
    }
    if let Some(k) = items.iter().position(|i| i.is_empty()) {
        return Err(SelectError(format!(
            "item {} of {list:?} is empty (a stray comma?)",
            k + 1
        )));
    }
    Ok(items)
}

/// Parses `all` or a comma-separated list of policy names (case, `-` and `_`
/// ignored); repeats are dropped, the order is kept.
///
/// # Errors
/// [`SelectError`] for an unknown name or an empty item.
pub fn parse_policies(list: &str) -> Result<Vec<Policy>, SelectError> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(Policy::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in split_list(list)? {
        let p: Policy = name.parse().map_err(|e| SelectError(format!("{e}")))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The seeds to run: `one` alone if given, else `count` seeds from [`FIRST_SEED`]
/// (default [`DEFAULT_SEED_COUNT`]).
///
/// # Errors
/// [`SelectError`] for a count of 0.
pub fn seeds(one: Option<u64>, count: Option<u64>) -> Result<Vec<u64>, SelectError> {
    match (one, count.unwrap_or(DEFAULT_SEED_COUNT)) {
        (Some(s), _) => Ok(vec![s]),
        (None, 0) => Err(SelectError("must be at least 1, got 0".into())),
        (None, n) => Ok((FIRST_SEED..FIRST_SEED + n).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_refuse_empty_items() {
        assert_eq!(split_list(" a , b ").unwrap(), ["a", "b"]);
        assert_eq!(split_list("one").unwrap(), ["one"]);
        assert_eq!(
            split_list("FGD,,BestFit").unwrap_err().0,
            "item 2 of \"FGD,,BestFit\" is empty (a stray comma?)"
        );
        assert_eq!(
            split_list(",a").unwrap_err().0,
            "item 1 of \",a\" is empty (a stray comma?)"
        );
        assert_eq!(
            split_list("a,b,").unwrap_err().0,
            "item 3 of \"a,b,\" is empty (a stray comma?)"
        );
        assert_eq!(split_list(",").unwrap_err().0, "\",\" names nothing");
        assert_eq!(split_list("").unwrap_err().0, "\"\" names nothing");
        assert_eq!(
            split_list(" , , ").unwrap_err().0,
            "\" , , \" names nothing"
        );
    }

    #[test]
    fn policies_parse_by_name_or_all() {
        assert_eq!(parse_policies("all").unwrap(), Policy::ALL.to_vec());
        assert_eq!(parse_policies(" ALL ").unwrap().len(), 8);
        assert_eq!(
            parse_policies("fgd,best-fit,FGD").unwrap(),
            [Policy::Fgd, Policy::BestFit]
        );
        let e = parse_policies("FGD,Tetris").unwrap_err().0;
        assert!(
            e.starts_with("unknown policy \"Tetris\"; expected one of: Random,"),
            "{e}"
        );
        assert!(parse_policies("FGD,,BestFit")
            .unwrap_err()
            .0
            .starts_with("item 2 of"));
        assert!(parse_policies(",").is_err());
    }

    #[test]
    fn seeds_count_from_42_or_are_one() {
        assert_eq!(seeds(None, None).unwrap(), [42, 43, 44]);
        assert_eq!(seeds(None, Some(1)).unwrap(), [42]);
        assert_eq!(
            seeds(None, Some(10)).unwrap(),
            (42..=51).collect::<Vec<_>>()
        );
        assert_eq!(seeds(Some(7), None).unwrap(), [7]);
        assert_eq!(
            seeds(None, Some(0)).unwrap_err().0,
            "must be at least 1, got 0"
        );
    }
}

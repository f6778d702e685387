//! Node constraints in Kubernetes' terms: taints and tolerations, node selectors and
//! required node affinity, with upstream's matching rules.
//!
//! Sources: <https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/>,
//! <https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/>, and
//! upstream's `Toleration.ToleratesTaint` (`k8s.io/api/core/v1/toleration.go`) and
//! `nodeSelectorRequirementsAsSelector` (`k8s.io/component-helpers/scheduling/corev1/nodeaffinity`).

use std::collections::BTreeMap;

/// What a taint does to pods that do not tolerate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    /// New pods are not scheduled on the node.
    NoSchedule,
    /// The scheduler tries to avoid the node (a score, not a filter).
    PreferNoSchedule,
    /// New pods are not scheduled and running ones are evicted.
    NoExecute,
}

impl TaintEffect {
    /// The effect as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// A node taint `key=value:effect`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Taint {
    /// Key, e.g. `gpu`.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// Effect.
    pub effect: TaintEffect,
}

/// How a toleration matches a taint's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TolerationOperator {
    /// The values must be equal (Kubernetes' default).
    #[default]
    Equal,
    /// Any value.
    Exists,
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Toleration {
    /// Taint key; empty with [`TolerationOperator::Exists`] tolerates every taint.
    pub key: String,
    /// Operator.
    pub operator: TolerationOperator,
    /// Value, for [`TolerationOperator::Equal`].
    pub value: String,
    /// Effect to match; `None` matches every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Upstream's `ToleratesTaint`: the effect matches (or is unset), the key matches
    /// (or is empty), and the value is equal (`Equal`) or anything (`Exists`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Equal => self.value == taint.value,
            TolerationOperator::Exists => true,
        }
    }
}

/// True if some toleration in `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| t.tolerates(taint))
}

/// The operator of a node selector requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelectorOperator {
    /// The label is set to one of the values.
    In,
    /// The label is not set, or set to none of the values.
    NotIn,
    /// The label is set.
    Exists,
    /// The label is not set.
    DoesNotExist,
    /// The label is set to an integer greater than the one value.
    Gt,
    /// The label is set to an integer less than the one value.
    Lt,
}

/// One requirement of a node selector term: `key operator values`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: SelectorOperator,
    /// Values: one or more for `In`/`NotIn`, none for `Exists`/`DoesNotExist`, exactly
    /// one integer for `Gt`/`Lt`.
    pub values: Vec<String>,
}

impl SelectorRequirement {
    /// True if `labels` satisfy the requirement. A malformed requirement (`In` without
    /// values, `Gt` with a value that is not one integer, `Exists` with values) matches
    /// no node, as upstream turns it into an error that fails the term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => {
                !self.values.is_empty() && v.is_some_and(|v| self.values.contains(v))
            }
            SelectorOperator::NotIn => {
                !self.values.is_empty() && v.is_none_or(|v| !self.values.contains(v))
            }
            SelectorOperator::Exists => self.values.is_empty() && v.is_some(),
            SelectorOperator::DoesNotExist => self.values.is_empty() && v.is_none(),
            SelectorOperator::Gt | SelectorOperator::Lt => {
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let (Ok(want), Some(Ok(have))) = (want.parse::<i64>(), v.map(|v| v.parse::<i64>()))
                else {
                    return false;
                };
                if self.operator == SelectorOperator::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// A node selector term: the AND of its requirements. An empty term matches no node
/// (upstream: "a null or empty node selector term matches no objects").
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SelectorTerm {
    /// `matchExpressions`.
    pub match_expressions: Vec<SelectorRequirement>,
}

impl SelectorTerm {
    /// True if every requirement matches (and there is at least one).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.match_expressions.is_empty()
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// `requiredDuringSchedulingIgnoredDuringExecution` of a pod's node affinity: the OR
/// of its terms (no term: no node matches).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RequiredAffinity {
    /// `nodeSelectorTerms`.
    pub terms: Vec<SelectorTerm>,
}

impl RequiredAffinity {
    /// True if some term matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| t.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: SelectorOperator, values: &[&str]) -> SelectorRequirement {
        SelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    #[test]
    fn tolerations_follow_upstream() {
        let t = taint("gpu", "shared", TaintEffect::NoSchedule);
        let tol = |key: &str, op, value: &str, effect| Toleration {
            key: key.into(),
            operator: op,
            value: value.into(),
            effect,
        };
        use TolerationOperator::*;
        // Equal needs the same key and value; an unset effect matches any effect.
        assert!(tol("gpu", Equal, "shared", None).tolerates(&t));
        assert!(!tol("gpu", Equal, "other", None).tolerates(&t));
        assert!(tol("gpu", Equal, "shared", Some(TaintEffect::NoSchedule)).tolerates(&t));
        assert!(!tol("gpu", Equal, "shared", Some(TaintEffect::NoExecute)).tolerates(&t));
        // Exists ignores the value; an empty key with Exists tolerates everything.
        assert!(tol("gpu", Exists, "", None).tolerates(&t));
        assert!(!tol("other", Exists, "", None).tolerates(&t));
        assert!(tol("", Exists, "", None).tolerates(&t));
        assert!(!tol("", Exists, "", Some(TaintEffect::PreferNoSchedule)).tolerates(&t));
    }

    #[test]
    fn selector_operators_follow_upstream() {
        use SelectorOperator::*;
        let l = labels(&[("zone", "a"), ("gpus", "8")]);
        assert!(req("zone", In, &["a", "b"]).matches(&l));
        assert!(!req("zone", In, &["b"]).matches(&l));
        assert!(!req("missing", In, &["a"]).matches(&l));
        assert!(!req("zone", NotIn, &["a"]).matches(&l));
        assert!(req("zone", NotIn, &["b"]).matches(&l));
        assert!(
            req("missing", NotIn, &["b"]).matches(&l),
            "NotIn matches an absent label"
        );
        assert!(req("zone", Exists, &[]).matches(&l));
        assert!(!req("missing", Exists, &[]).matches(&l));
        assert!(req("missing", DoesNotExist, &[]).matches(&l));
        assert!(!req("zone", DoesNotExist, &[]).matches(&l));
        assert!(req("gpus", Gt, &["4"]).matches(&l));
        assert!(!req("gpus", Gt, &["8"]).matches(&l), "Gt is strict");
        assert!(req("gpus", Lt, &["9"]).matches(&l));
        assert!(!req("gpus", Lt, &["8"]).matches(&l), "Lt is strict");
        assert!(
            !req("zone", Gt, &["1"]).matches(&l),
            "a label that is not an integer"
        );
        assert!(
            !req("gpus", Gt, &["x"]).matches(&l),
            "a value that is not an integer"
        );
        assert!(
            !req("gpus", Gt, &["1", "2"]).matches(&l),
            "Gt takes one value"
        );
        assert!(
            !req("missing", Lt, &["9"]).matches(&l),
            "Lt needs the label"
        );
    }

    #[test]
    fn terms_and_within_or_across() {
        use SelectorOperator::*;
        let l = labels(&[("zone", "a"), ("gpu", "h100")]);
        let both = SelectorTerm {
            match_expressions: vec![req("zone", In, &["a"]), req("gpu", In, &["h100"])],
        };
        let wrong = SelectorTerm {
            match_expressions: vec![req("zone", In, &["a"]), req("gpu", In, &["t4"])],
        };
        assert!(both.matches(&l));
        assert!(!wrong.matches(&l), "the requirements of a term are ANDed");
        assert!(
            !SelectorTerm::default().matches(&l),
            "an empty term matches nothing"
        );
        let aff = RequiredAffinity {
            terms: vec![wrong.clone(), both],
        };
        assert!(aff.matches(&l), "terms are ORed");
        assert!(!RequiredAffinity { terms: vec![wrong] }.matches(&l));
        assert!(!RequiredAffinity::default().matches(&l), "no term: no node");
    }
}

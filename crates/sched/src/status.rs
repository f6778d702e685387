//! kube-scheduler's status vocabulary: a [`Code`] that says what happens next, the
//! plugin that said it, and reasons in kube's words.
//!
//! Source: `k8s.io/kube-scheduler/framework/interface.go` (`Code`, `Status`) and
//! `pkg/scheduler/framework/types.go` (`FitError`, `Diagnosis`).

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

/// What a plugin's answer means for the pod (kube-scheduler's `Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The plugin ran and the pod may go on.
    Success,
    /// An internal error: the cycle stops and the pod is retried later.
    Error,
    /// The pod does not fit the node now; preemption (PostFilter) may make it fit.
    Unschedulable,
    /// The pod does not fit and preemption cannot change that (taints, affinity,
    /// a throttle): PostFilter skips such nodes.
    UnschedulableAndUnresolvable,
    /// A Permit plugin holds the pod before binding.
    Wait,
    /// The plugin does not apply: at PreScore its Score is skipped; at Bind the next
    /// binder is asked.
    Skip,
}

impl Code {
    /// kube's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
        }
    }
}

/// A reason in words, cheap to clone: a static text or a shared one (for texts made
/// once per resource name, e.g. `Insufficient nvidia.com/mig-1g.10gb`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A text known at compile time.
    Static(&'static str),
    /// A text made at run time.
    Shared(Arc<str>),
}

impl Reason {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Static(s) => s,
            Reason::Shared(s) => s,
        }
    }
}

impl From<&'static str> for Reason {
    fn from(s: &'static str) -> Self {
        Reason::Static(s)
    }
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason::Shared(s.into())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin's answer other than plain success: code, plugin name and reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// What happens next.
    pub code: Code,
    /// The plugin that answered (kube's `plugin`), empty when the framework did.
    pub plugin: &'static str,
    /// Reasons, each counted on its own in a diagnosis ("Insufficient cpu",
    /// "Insufficient memory").
    pub reasons: SmallVec<[Reason; 2]>,
}

impl Status {
    /// A status with one reason.
    pub fn new(code: Code, plugin: &'static str, reason: impl Into<Reason>) -> Self {
        let mut reasons = SmallVec::new();
        reasons.push(reason.into());
        Status {
            code,
            plugin,
            reasons,
        }
    }

    /// [`Code::Unschedulable`] with one reason.
    pub fn unschedulable(plugin: &'static str, reason: impl Into<Reason>) -> Self {
        Self::new(Code::Unschedulable, plugin, reason)
    }

    /// [`Code::UnschedulableAndUnresolvable`] with one reason.
    pub fn unresolvable(plugin: &'static str, reason: impl Into<Reason>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, plugin, reason)
    }

    /// [`Code::Error`] with one reason.
    pub fn error(plugin: &'static str, reason: impl Into<Reason>) -> Self {
        Self::new(Code::Error, plugin, reason)
    }

    /// [`Code::Skip`] without reasons.
    pub fn skip(plugin: &'static str) -> Self {
        Status {
            code: Code::Skip,
            plugin,
            reasons: SmallVec::new(),
        }
    }

    /// The reasons joined by `", "` (kube's `Status.Message()`).
    pub fn message(&self) -> String {
        self.reasons
            .iter()
            .map(Reason::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True for the two unschedulable codes.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plugin.is_empty() {
            write!(f, "{}: {}", self.code.as_str(), self.message())
        } else {
            write!(
                f,
                "{} ({}): {}",
                self.code.as_str(),
                self.plugin,
                self.message()
            )
        }
    }
}

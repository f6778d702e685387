//! Profiles by name: plugins chosen by name with typed arguments, as a
//! `KubeSchedulerConfiguration` profile lists `plugins` and `pluginConfig`
//! (<https://kubernetes.io/docs/reference/scheduling/config/>).
//!
//! A [`Registry`] maps plugin names to factories; a [`ProfileConfig`] names the plugins
//! in order (each enabled at every extension point it implements, as kube's
//! `multiPoint`) with score weights, names plugins to leave out, and gives each plugin
//! its typed arguments. The default filters are entries of the profile like any other
//! ([`ProfileConfig::with_default_filters`]), not hard-wired.
//!
//! Arguments are typed values (`Arc<dyn Any>` of the plugin's own args struct, e.g.
//! `FgdArgs`): the configuration file's edge parses YAML into them; the core sees no
//! serialisation format.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use mlplane_model::Cluster;

use crate::framework::{Plugin, Profile};
use crate::plugins::{self, DEFAULT_FILTERS};

/// A plugin's typed arguments (kube's `pluginConfig[].args`).
pub type PluginArgs = Arc<dyn Any + Send + Sync>;

/// What a factory gets: the cluster and the plugin's arguments, if the profile has any.
pub struct FactoryInput<'a> {
    /// The cluster the profile will schedule on.
    pub cluster: &'a Cluster,
    /// The plugin's arguments.
    pub args: Option<&'a PluginArgs>,
}

impl FactoryInput<'_> {
    /// The arguments as `T`, or `None` if none were given.
    ///
    /// # Errors
    /// A message naming the expected type if arguments of another type were given.
    pub fn args<T: Any + Send + Sync>(&self) -> Result<Option<&T>, String> {
        match self.args {
            None => Ok(None),
            Some(a) => a
                .downcast_ref::<T>()
                .map(Some)
                .ok_or_else(|| format!("pluginConfig args must be {}", std::any::type_name::<T>())),
        }
    }
}

/// Makes a plugin from its arguments.
pub type Factory = Arc<dyn Fn(&FactoryInput<'_>) -> Result<Arc<dyn Plugin>, String> + Send + Sync>;

/// Plugin factories by name.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, Factory>,
}

impl Registry {
    /// The built-in plugins of this crate: the default filters, PrioritySort,
    /// DefaultPreemption, Throttles and the
    /// device allocators `GpuSelectBestFit`, `GpuSelectBestFitMemory`,
    /// `GpuSelectWorstFit` and `GpuSelectRandom`.
    pub fn builtin() -> Self {
        use plugins::*;
        let mut r = Registry::default();
        r.register("PrioritySort", |_| Ok(Arc::new(PrioritySort)));
        r.register("DefaultPreemption", |i| {
            let p = match i.args::<crate::preemption::PreemptionArgs>()? {
                Some(a) if a.fair_share => {
                    let p = crate::preemption::DefaultPreemption::with_fair_share(
                        a.tenant_weights.clone(),
                    );
                    if a.reclaim {
                        p
                    } else {
                        p.without_reclaim()
                    }
                }
                _ => crate::preemption::DefaultPreemption::new(),
            };
            Ok(Arc::new(p))
        });
        r.register("NodeUnschedulable", |_| Ok(Arc::new(NodeUnschedulable)));
        r.register("Throttles", |i| {
            let a = i
                .args::<crate::throttle::ThrottleArgs>()?
                .cloned()
                .unwrap_or_default();
            Ok(Arc::new(crate::throttle::Throttles::new(
                a.throttles,
                a.namespaces,
            )))
        });
        r.register("TaintToleration", |_| Ok(Arc::new(TaintToleration)));
        r.register("NodeAffinity", |_| Ok(Arc::new(NodeAffinity)));
        r.register("NodeResourcesFit", |i| {
            Ok(Arc::new(NodeResourcesFit::new(i.cluster)))
        });
        r.register("GpuModelFit", |_| Ok(Arc::new(GpuModelFit)));
        r.register("DeviceFit", |i| Ok(Arc::new(DeviceFit::new(i.cluster))));
        for mode in [
            GpuSelectMode::BestFit,
            GpuSelectMode::BestFitMemory,
            GpuSelectMode::WorstFit,
            GpuSelectMode::Random,
        ] {
            let name = GpuSelector(mode).name();
            r.register(name, move |_| Ok(Arc::new(GpuSelector(mode))));
        }
        r
    }

    /// Adds (or replaces) a factory.
    pub fn register(
        &mut self,
        name: &'static str,
        factory: impl Fn(&FactoryInput<'_>) -> Result<Arc<dyn Plugin>, String> + Send + Sync + 'static,
    ) {
        self.factories.insert(name, Arc::new(factory));
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// Builds the profile `config` describes for `cluster`.
    ///
    /// # Errors
    /// [`ProfileError`] for an unknown plugin name (in `plugins`, `disabled` or
    /// `plugin_config`), a weight below 1, a plugin listed twice, arguments for a
    /// plugin the profile does not enable, or a factory's refusal of its arguments.
    pub fn build(
        &self,
        config: &ProfileConfig,
        cluster: &Cluster,
    ) -> Result<Profile, ProfileError> {
        let err = |field: String, why: String| ProfileError {
            profile: config.name.clone(),
            field,
            why,
        };
        let known = |name: &str| self.factories.contains_key(name);
        for (k, d) in config.disabled.iter().enumerate() {
            if !known(d) {
                return Err(err(format!("disabled[{k}]"), self.unknown(d)));
            }
        }
        let enabled: Vec<&PluginRef> = config
            .plugins
            .iter()
            .filter(|p| !config.disabled.contains(&p.name))
            .collect();
        for (k, (name, _)) in config.plugin_config.iter().enumerate() {
            if !known(name) {
                return Err(err(format!("pluginConfig[{k}].name"), self.unknown(name)));
            }
            if !enabled.iter().any(|p| &p.name == name) {
                return Err(err(
                    format!("pluginConfig[{k}].name"),
                    format!("{name} has arguments but is not enabled in this profile"),
                ));
            }
        }
        let mut profile = Profile::new(config.name.clone());
        for (k, p) in config.plugins.iter().enumerate() {
            if config.disabled.contains(&p.name) {
                continue;
            }
            let field = format!("plugins[{k}]");
            let factory = self
                .factories
                .get(p.name.as_str())
                .ok_or_else(|| err(format!("{field}.name"), self.unknown(&p.name)))?;
            if p.weight < 1 {
                return Err(err(
                    format!("{field}.weight"),
                    format!("must be at least 1, got {}", p.weight),
                ));
            }
            if config.plugins[..k].iter().any(|q| q.name == p.name) {
                return Err(err(
                    format!("{field}.name"),
                    format!("{} is listed twice", p.name),
                ));
            }
            let args = config
                .plugin_config
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, a)| a);
            let plugin = factory(&FactoryInput { cluster, args })
                .map_err(|why| err(format!("{field} ({})", p.name), why))?;
            profile = profile.with(plugin, p.weight);
        }
        Ok(profile)
    }

    fn unknown(&self, name: &str) -> String {
        format!(
            "unknown plugin {name:?}; known: {}",
            self.names().collect::<Vec<_>>().join(", ")
        )
    }
}

/// One enabled plugin and its score weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRef {
    /// Registered name.
    pub name: String,
    /// Score weight (`>= 1`; ignored for plugins that do not score).
    pub weight: i64,
}

/// A profile by name (see the module documentation).
#[derive(Clone, Default)]
pub struct ProfileConfig {
    /// `schedulerName` of the profile.
    pub name: String,
    /// Plugins in the order they run.
    pub plugins: Vec<PluginRef>,
    /// Plugins left out (e.g. a default filter).
    pub disabled: Vec<String>,
    /// Typed arguments by plugin name.
    pub plugin_config: Vec<(String, PluginArgs)>,
}

impl ProfileConfig {
    /// An empty profile named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ProfileConfig {
            name: name.into(),
            ..ProfileConfig::default()
        }
    }

    /// This profile with [`DEFAULT_FILTERS`] appended.
    pub fn with_default_filters(mut self) -> Self {
        for f in DEFAULT_FILTERS {
            self = self.plugin(f, 1);
        }
        self
    }

    /// This profile with `name` appended at `weight`.
    pub fn plugin(mut self, name: &str, weight: i64) -> Self {
        self.plugins.push(PluginRef {
            name: name.to_string(),
            weight,
        });
        self
    }

    /// This profile with `name` disabled.
    pub fn disable(mut self, name: &str) -> Self {
        self.disabled.push(name.to_string());
        self
    }

    /// This profile with arguments for `name`.
    pub fn args(mut self, name: &str, args: PluginArgs) -> Self {
        self.plugin_config.retain(|(n, _)| n != name);
        self.plugin_config.push((name.to_string(), args));
        self
    }
}

impl fmt::Debug for ProfileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileConfig")
            .field("name", &self.name)
            .field("plugins", &self.plugins)
            .field("disabled", &self.disabled)
            .field(
                "plugin_config",
                &self
                    .plugin_config
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A profile that cannot be built: which profile, which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("profile {profile:?}: {field}: {why}")]
pub struct ProfileError {
    /// The profile's name.
    pub profile: String,
    /// The field, e.g. `plugins[3].weight`.
    pub field: String,
    /// What is wrong.
    pub why: String,
}

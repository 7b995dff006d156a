//! The environment registry: names, facts for `mbrl-cli envs`, and construction from config.

use std::sync::Arc;

use mbrl_core::env::{Env, EnvFactory, TimeLimit};
use serde::{Deserialize, Serialize};

use crate::backend::{make_mujoco, PhysicsBackend};
use crate::{Error, Result};

/// The `[env]` table of a run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvConfig {
    /// Registry name (`mbrl-cli envs` lists them). Default `point2d`.
    pub name: String,
    /// Episode length; `None` keeps the environment's own horizon. Default none.
    pub max_episode_steps: Option<usize>,
    /// Task family to activate (meta-RL goals, perturbations); `None` for the plain
    /// environment. Default none.
    pub task_family: Option<String>,
    /// Physics engine of the robots: `rapier` or `mujoco` (cargo feature `mujoco`; see
    /// [`crate::backend`]). Default `rapier`.
    pub backend: PhysicsBackend,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            name: "point2d".into(),
            max_episode_steps: None,
            task_family: None,
            backend: PhysicsBackend::Rapier,
        }
    }
}

/// A registered environment.
pub struct EnvEntry {
    /// Registry name.
    pub name: &'static str,
    /// One-line description with the thesis section it comes from.
    pub description: &'static str,
    /// Default episode length.
    pub horizon: usize,
    /// Names of the task families it supports.
    pub task_families: &'static [&'static str],
    /// Builds the bare environment (no time limit) with an optional task family active.
    pub make: fn(task_family: Option<&str>) -> Result<Box<dyn Env>>,
}

/// Facts about an environment, as `mbrl-cli envs` prints them.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvInfo {
    /// Registry name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Observation width.
    pub obs_dim: usize,
    /// Action width.
    pub act_dim: usize,
    /// Default episode length.
    pub horizon: usize,
    /// Task families.
    pub task_families: Vec<String>,
}

/// Every registered environment.
pub fn registry() -> &'static [EnvEntry] {
    &[
        crate::point2d::ENTRY,
        crate::point_corners::ENTRY,
        crate::point1d_goal::ENTRY,
        crate::double_integrator::ENTRY,
        crate::pendulum::ENTRY,
        crate::mountain_car_continuous::ENTRY,
        crate::cartpole_swingup::ENTRY,
        crate::robots::half_cheetah::ENTRY,
        crate::robots::half_cheetah::ENTRY_V5,
        crate::robots::hopper::ENTRY,
        crate::robots::hopper::ENTRY_V5,
        crate::robots::walker2d::ENTRY,
        crate::robots::walker2d::ENTRY_V5,
        crate::robots::swimmer::ENTRY,
        crate::robots::swimmer::ENTRY_V5,
        crate::robots::ant::ENTRY,
        crate::robots::ant::ENTRY_V5,
        crate::robots::arm7dof::ENTRY,
    ]
}

/// The names of every registered environment.
pub fn env_names() -> Vec<String> {
    registry().iter().map(|e| e.name.to_string()).collect()
}

fn entry(name: &str) -> Result<&'static EnvEntry> {
    registry()
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownEnv {
            name: name.to_string(),
            valid: env_names(),
        })
}

/// Checks that a task family exists for an environment.
pub fn check_task_family(entry: &EnvEntry, family: Option<&str>) -> Result<()> {
    match family {
        Some(f) if !entry.task_families.contains(&f) => Err(Error::UnknownTaskFamily {
            env: entry.name.to_string(),
            family: f.to_string(),
            valid: entry.task_families.iter().map(|s| s.to_string()).collect(),
        }),
        _ => Ok(()),
    }
}

/// A factory of time-limited copies of the configured environment. Unknown names and task
/// families are errors that list the valid choices.
pub fn make_factory(config: &EnvConfig) -> Result<EnvFactory> {
    let entry = entry(&config.name)?;
    check_task_family(entry, config.task_family.as_deref())?;
    let horizon = config.max_episode_steps.unwrap_or(entry.horizon);
    let family = config.task_family.clone();
    let (backend, name, rapier_make) = (config.backend, config.name.clone(), entry.make);
    let make = move |family: Option<&str>| match backend {
        PhysicsBackend::Rapier => rapier_make(family),
        PhysicsBackend::Mujoco => make_mujoco(&name, family),
    };
    // Build one copy now so construction errors surface here, not inside a worker.
    make(family.as_deref())?;
    Ok(Arc::new(move || {
        let env = make(family.as_deref()).map_err(|e| match e {
            Error::Core(core) => core,
            other => mbrl_core::Error::InvalidArgument(other.to_string()),
        })?;
        Ok(Box::new(TimeLimit::new(env, horizon)) as Box<dyn Env>)
    }))
}

/// Facts about every registered environment.
pub fn env_infos() -> Result<Vec<EnvInfo>> {
    registry()
        .iter()
        .map(|e| {
            let env = (e.make)(None)?;
            Ok(EnvInfo {
                name: e.name.to_string(),
                description: e.description.to_string(),
                obs_dim: env.observation_space().flat_dim(),
                act_dim: env.action_space().flat_dim(),
                horizon: e.horizon,
                task_families: e.task_families.iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = make_factory(&EnvConfig {
            name: "pendulm".into(),
            ..EnvConfig::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("unknown env `pendulm`") && err.contains("point2d"),
            "{err}"
        );
    }

    #[test]
    fn unknown_task_family_is_an_error() {
        let err = make_factory(&EnvConfig {
            task_family: Some("nope".into()),
            ..EnvConfig::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("no task family `nope`"), "{err}");
    }

    #[test]
    fn factory_applies_the_horizon() {
        let f = make_factory(&EnvConfig {
            max_episode_steps: Some(7),
            ..EnvConfig::default()
        })
        .unwrap();
        assert_eq!(f().unwrap().spec().max_episode_steps, Some(7));
        let default = make_factory(&EnvConfig::default()).unwrap();
        assert_eq!(default().unwrap().spec().max_episode_steps, Some(30));
    }

    #[test]
    fn every_entry_has_consistent_info() {
        let infos = env_infos().unwrap();
        assert_eq!(infos.len(), registry().len());
        let mut names: Vec<_> = infos.iter().map(|i| i.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), infos.len());
    }
}

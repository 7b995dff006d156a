//! Which physics engine runs the robots (`[env] backend`): rapier3d, pure Rust and the
//! default, or MuJoCo 3.17.0 when the crate is built with the cargo feature `mujoco`
//! (issue 7; `scripts/setup_mujoco.sh` installs the library). Both build the same
//! environments under the same names, observations, rewards and task families.

use mbrl_core::env::Env;
use serde::{Deserialize, Serialize};

use crate::robots::RobotEnv;
#[cfg(not(feature = "mujoco"))]
use crate::Error;
use crate::Result;

/// The physics engine of the robot environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhysicsBackend {
    /// rapier3d (`crates/mbrl-envs/src/robots/sim.rs`). The default.
    #[default]
    Rapier,
    /// MuJoCo through `mujoco-rs` (cargo feature `mujoco`).
    Mujoco,
}

/// Config names of the backends, as `[env] backend` takes them.
pub const BACKENDS: &[&str] = &["rapier", "mujoco"];

impl PhysicsBackend {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            PhysicsBackend::Rapier => "rapier",
            PhysicsBackend::Mujoco => "mujoco",
        }
    }

    /// Whether this binary can run the backend (MuJoCo needs the `mujoco` feature).
    pub fn available(self) -> bool {
        match self {
            PhysicsBackend::Rapier => true,
            PhysicsBackend::Mujoco => cfg!(feature = "mujoco"),
        }
    }
}

/// Builds the robot `name` with `family` active on MuJoCo (no time limit); an error when
/// the binary was built without the `mujoco` feature or the robot has no MuJoCo model.
pub(crate) fn make_mujoco(name: &str, family: Option<&str>) -> Result<Box<dyn Env>> {
    let env: Box<dyn Env> = make_mujoco_robot(name, family)?;
    Ok(env)
}

/// [`make_mujoco`] as a [`RobotEnv`], whose rapier scene mirrors MuJoCo's body poses (for
/// drawing).
pub(crate) fn make_mujoco_robot(name: &str, family: Option<&str>) -> Result<Box<dyn RobotEnv>> {
    #[cfg(feature = "mujoco")]
    {
        crate::robots::mujoco::make_robot(name, family)
    }
    #[cfg(not(feature = "mujoco"))]
    {
        let _ = family;
        Err(Error::Backend {
            backend: "mujoco".into(),
            message: format!(
                "env `{name}` cannot run on MuJoCo: this binary was built without the \
                 `mujoco` cargo feature; run `eval \"$(scripts/setup_mujoco.sh)\"` and rebuild \
                 with `--features mbrl-envs/mujoco`, or set `backend = \"rapier\"`"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backends_list_the_valid_ones() {
        let err = serde_json::from_str::<PhysicsBackend>("\"bullet\"")
            .unwrap_err()
            .to_string();
        for name in BACKENDS {
            assert!(err.contains(name), "{err}");
        }
        let parsed: Vec<PhysicsBackend> = BACKENDS
            .iter()
            .map(|b| serde_json::from_str(&format!("\"{b}\"")).unwrap())
            .collect();
        assert_eq!(parsed, [PhysicsBackend::Rapier, PhysicsBackend::Mujoco]);
        assert_eq!(parsed[1].name(), "mujoco");
    }

    #[cfg(not(feature = "mujoco"))]
    #[test]
    fn mujoco_without_the_feature_says_how_to_get_it() {
        let err = make_mujoco("half-cheetah", None).err().unwrap().to_string();
        assert!(err.contains("--features mbrl-envs/mujoco"), "{err}");
        assert!(!PhysicsBackend::Mujoco.available());
    }
}

//! Locomotion robots on rapier3d, MuJoCo-like enough that the thesis's experiments carry
//! over: the bodies, masses, joint ranges, gears, springs, damping and armature follow
//! Gymnasium's MJCF models, physics runs at `dt = 0.01` with Gymnasium's frame skip, and
//! observations are Gymnasium v5's.
//!
//! - [`sim`]: the shared rapier machinery (robot description, build, step with joint
//!   torques, snapshot reset);
//! - [`env_core`]: the `Env` plumbing (reset, step, spaces, rendering access) every robot
//!   shares, with a [`env_core::RobotModel`] per robot for what differs;
//! - [`half_cheetah`]: `half-cheetah` (thesis Appendix A.2 reward) and `half-cheetah-v5`
//!   (Gymnasium's reward), with the `forward-backward`, `disabled-joint`, `sloped-terrain`
//!   and `pier` task families (Sec. 9.4), whose hill and floating blocks are in [`terrain`];
//! - [`hopper`]: `hopper` (A.2 soft-constraint reward) and `hopper-v5` (Gymnasium's reward
//!   and early termination), with the `random-dynamics` task family ([`random_dynamics`]);
//! - [`walker2d`]: `walker2d` (A.2 hopper-style soft-constraint reward) and `walker2d-v5`,
//!   with the `forward-backward` and `random-dynamics` task families;
//! - [`swimmer`]: `swimmer` (A.2 reward) and `swimmer-v5`, in MuJoCo's fluid-drag model;
//! - [`ant`]: `ant` (A.2 reward, early stop) and `ant-v5`, on a free root, with the
//!   `forward-backward`, `random-direction`, `random-goal` and `crippled-leg` task families;
//! - [`arm7dof`]: a torque-controlled 7-joint PR2-like reaching arm (Appendix B.3), with the
//!   `random-goal` task family.
//!
//! [`make_robot`] builds a robot by registry name as a [`RobotEnv`]: an [`Env`] that also
//! exposes its [`SimState`] for [`crate::render`]. `docs/robots.md` lists the constants, the
//! reward choices and the benchmark numbers.

pub mod ant;
pub mod arm7dof;
mod common;
pub mod env_core;
pub mod half_cheetah;
pub mod hopper;
mod legged_planar;
#[cfg(feature = "mujoco")]
pub mod mujoco;
pub mod random_dynamics;
pub mod sim;
pub mod swimmer;
pub mod terrain;
pub mod walker2d;

pub use half_cheetah::{HalfCheetah, HalfCheetahConfig};
pub use sim::{Sim, SimState};

use mbrl_core::env::Env;

use crate::render::View;

/// A robot environment whose simulation state can be drawn.
pub trait RobotEnv: Env {
    /// The current simulation state (clone it to keep a frame).
    fn sim_state(&self) -> &SimState;
    /// The projection that shows the robot best.
    fn default_view(&self) -> View;
}

/// Registry names of the robots [`make_robot`] builds.
pub const ROBOT_NAMES: &[&str] = &[
    half_cheetah::NAME,
    half_cheetah::NAME_V5,
    hopper::NAME,
    hopper::NAME_V5,
    walker2d::NAME,
    walker2d::NAME_V5,
    swimmer::NAME,
    swimmer::NAME_V5,
    ant::NAME,
    ant::NAME_V5,
    arm7dof::NAME,
];

/// Builds the robot registered as `name` with `family` active (no time limit), as a
/// [`RobotEnv`]; unknown names and families are errors listing the valid ones.
pub fn make_robot(name: &str, family: Option<&str>) -> crate::Result<Box<dyn RobotEnv>> {
    let reward = if name.ends_with("-v5") {
        RewardKind::GymnasiumV5
    } else {
        RewardKind::MeTrpo
    };
    match name {
        ant::NAME | ant::NAME_V5 => {
            let config = ant::AntConfig {
                reward,
                ..ant::AntConfig::default()
            };
            return Ok(Box::new(ant::Ant::new(config, family)?));
        }
        arm7dof::NAME => return Ok(Box::new(arm7dof::Arm7Dof::new(family)?)),
        hopper::NAME | hopper::NAME_V5 => {
            return Ok(Box::new(hopper::Hopper::with_family(reward, family)?))
        }
        walker2d::NAME | walker2d::NAME_V5 => {
            return Ok(Box::new(walker2d::Walker2d::new(reward, family)?))
        }
        swimmer::NAME | swimmer::NAME_V5 => {
            crate::registry::check_task_family(&swimmer::ENTRY, family)?;
            return Ok(Box::new(swimmer::Swimmer::new(reward)?));
        }
        _ => {}
    }
    let config = match name {
        half_cheetah::NAME => HalfCheetahConfig::default(),
        half_cheetah::NAME_V5 => HalfCheetahConfig {
            reward: RewardKind::GymnasiumV5,
            ..HalfCheetahConfig::default()
        },
        _ => {
            return Err(crate::Error::UnknownEnv {
                name: name.to_string(),
                valid: ROBOT_NAMES.iter().map(|s| s.to_string()).collect(),
            })
        }
    };
    Ok(Box::new(HalfCheetah::new(config, family)?))
}

/// Builds the robot of an `[env]` config as [`make_factory`](crate::make_factory) would (same
/// name, task family, backend and checks), but as a [`RobotEnv`] so its simulation state can
/// be drawn; returns it with the episode length the factory's time limit would apply
/// (`max_episode_steps`, else the registry horizon). Names that are not robots are errors
/// listing [`ROBOT_NAMES`].
pub fn make_robot_with(config: &crate::EnvConfig) -> crate::Result<(Box<dyn RobotEnv>, usize)> {
    let Some(entry) = crate::registry()
        .iter()
        .find(|e| e.name == config.name && ROBOT_NAMES.contains(&e.name))
    else {
        return Err(crate::Error::UnknownEnv {
            name: config.name.clone(),
            valid: ROBOT_NAMES.iter().map(|s| s.to_string()).collect(),
        });
    };
    crate::registry::check_task_family(entry, config.task_family.as_deref())?;
    let family = config.task_family.as_deref();
    let robot = match config.backend {
        crate::PhysicsBackend::Rapier => make_robot(&config.name, family)?,
        crate::PhysicsBackend::Mujoco => crate::backend::make_mujoco_robot(&config.name, family)?,
    };
    Ok((robot, config.max_episode_steps.unwrap_or(entry.horizon)))
}

/// Which reward a robot returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RewardKind {
    /// Thesis Appendix A.2 (ME-TRPO): forward velocity minus a control cost.
    #[default]
    MeTrpo,
    /// Gymnasium v5's reward (weights of the v5 environment).
    GymnasiumV5,
}

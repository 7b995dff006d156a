//! `hopper`: Gymnasium's Hopper (MJCF `hopper.xml`) on rapier3d.
//!
//! - 4 capsule bodies (torso, thigh, leg, foot), density 1000; planar root and 3 hinges about
//!   `-y` with ranges `[-150, 0]`, `[-150, 0]`, `[-45, 45]` degrees, `armature = 1`,
//!   `damping = 1`, gear 200; friction 0.9 (foot 2.0) against a floor of friction 1
//!   (combined with `Max`);
//! - `dt = 0.002`, frame skip 4 (control step 0.008 s), as Gymnasium (the MJCF time step);
//! - observation (11, Gymnasium v5): torso height `z` (absolute, MJCF `ref = 1.25`), torso
//!   pitch, 3 joint angles, then `clip(qvel, -10, 10)` (6);
//! - action (3) in `[-1, 1]`; reset noise `U(-0.005, 0.005)` on `qpos` and `qvel`.
//!
//! Rewards use the end-of-step root x velocity `v = next_obs[5]` (see `half_cheetah`):
//! - `hopper` (default, thesis Appendix A.2, ME-TRPO): the early stop relaxed into a soft
//!   constraint, `r = v - 0.005 ||a||^2 - 10 max(0.45 - z, 0) - 10 sum(max(s' - 100, 0))`
//!   over the next observation `s'`; never terminates; horizon 100;
//! - `hopper-v5` (Gymnasium v5): `r = healthy + v - 0.001 ||a||^2`, terminated when not
//!   healthy; healthy means `z > 0.7`, `|pitch| < 0.2` and every `|s'[1..]| < 100` (Gymnasium
//!   checks unclipped velocities there); horizon 1000.
//!
//! Task family: `random-dynamics` ([`super::random_dynamics`]: random masses, inertias,
//! joint damping and friction); switching the task takes effect at the next step.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::EnvSpec;
use mbrl_core::task::{Task, TaskDistribution, TaskFunctions};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::common::{column, parse_family, uniform_noise, variant_spec};
use super::env_core::{Outcome, Robot, RobotModel};
use super::legged_planar::{self, LeggedTask};
pub use super::legged_planar::{PITCH_INDEX, VEL_CLIP, Z_INDEX};
use super::random_dynamics::{self, RandomDynamics, RandomDynamicsConfig};
use super::sim::{BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use super::RewardKind;
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name of the thesis (Appendix A.2) variant.
pub const NAME: &str = "hopper";
/// Registry name of the Gymnasium v5 variant.
pub const NAME_V5: &str = "hopper-v5";
/// Horizon of Appendix A.2.
pub const HORIZON: usize = 100;
/// Horizon of Gymnasium's Hopper-v5.
pub const HORIZON_V5: usize = 1000;
/// Observation width.
pub const OBS_DIM: usize = 11;
/// Action width.
pub const ACT_DIM: usize = 3;
/// Index of the root x velocity in the observation.
pub const VX_INDEX: usize = 5;
/// Initial torso height (MJCF `ref` of `rootz`).
pub const INIT_Z: f32 = 1.25;
/// Scale of the uniform reset noise.
pub const RESET_NOISE: f32 = 5e-3;
/// Task family: random masses, inertias, damping and friction.
pub const FAMILY_RANDOM_DYNAMICS: &str = random_dynamics::FAMILY;
/// Every task family.
pub const FAMILIES: &[&str] = &[FAMILY_RANDOM_DYNAMICS];

/// Registry entry of the thesis variant.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "hopper on rapier3d, A.2 soft-constraint reward, no termination (Appendix A.2)",
    horizon: HORIZON,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY, family)?;
        Ok(Box::new(Hopper::with_family(RewardKind::MeTrpo, family)?))
    },
};

/// Registry entry of the Gymnasium v5 variant.
pub const ENTRY_V5: EnvEntry = EnvEntry {
    name: NAME_V5,
    description: "hopper on rapier3d, Gymnasium v5 reward and early termination",
    horizon: HORIZON_V5,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY_V5, family)?;
        Ok(Box::new(Hopper::with_family(
            RewardKind::GymnasiumV5,
            family,
        )?))
    },
};

/// The robot, in MJCF terms (Gymnasium's `hopper.xml`, converted to body-local positions).
pub fn spec() -> RobotSpec {
    let deg = std::f32::consts::PI / 180.0;
    let hinge = |range: [f32; 2]| HingeSpec {
        axis: [0.0, -1.0, 0.0],
        range: Some([range[0] * deg, range[1] * deg]),
        stiffness: 0.0,
        damping: 1.0,
        armature: 1.0,
        gear: 200.0,
    };
    RobotSpec {
        bodies: vec![
            BodySpec {
                name: "torso",
                parent: None,
                pos: [0.0, 0.0, INIT_Z],
                geoms: vec![
                    CapsuleSpec::fromto([0.0, 0.0, 0.2], [0.0, 0.0, -0.2], 0.05).with_friction(0.9)
                ],
                hinge: None,
            },
            BodySpec {
                name: "thigh",
                parent: Some(0),
                pos: [0.0, 0.0, -0.2],
                geoms: vec![
                    CapsuleSpec::fromto([0.0; 3], [0.0, 0.0, -0.45], 0.05).with_friction(0.9)
                ],
                hinge: Some(hinge([-150.0, 0.0])),
            },
            BodySpec {
                name: "leg",
                parent: Some(1),
                pos: [0.0, 0.0, -0.45],
                geoms: vec![
                    CapsuleSpec::fromto([0.0; 3], [0.0, 0.0, -0.5], 0.04).with_friction(0.9)
                ],
                hinge: Some(hinge([-150.0, 0.0])),
            },
            BodySpec {
                name: "foot",
                parent: Some(2),
                pos: [0.0, 0.0, -0.5],
                geoms: vec![
                    CapsuleSpec::fromto([-0.13, 0.0, 0.0], [0.26, 0.0, 0.0], 0.06)
                        .with_friction(2.0),
                ],
                hinge: Some(hinge([-45.0, 45.0])),
            },
        ],
        root: RootJoint::Planar,
        mass: MassSpec::Density(1000.0),
        friction: 1.0,
        ground_friction: 1.0,
        dt: 0.002,
        frame_skip: 4,
        solver_iterations: 4,
    }
}

/// The hopper's part of its [`Hopper`] environment: the variant and the dynamics task.
pub struct HopperModel {
    reward: RewardKind,
    /// Whether the `random-dynamics` family is active.
    random_family: bool,
    dynamics: RandomDynamics,
}

/// The hopper environment.
pub type Hopper = Robot<HopperModel>;

impl Hopper {
    /// A new environment with the given reward and no task family.
    pub fn new(reward: RewardKind) -> crate::Result<Self> {
        Self::with_family(reward, None)
    }

    /// A new environment with the given reward and `family` (one of [`FAMILIES`]) active, or
    /// none. Until `set_task` the hopper has its as-built dynamics.
    pub fn with_family(reward: RewardKind, family: Option<&str>) -> crate::Result<Self> {
        let random_family = parse_family(NAME, family, &[(FAMILY_RANDOM_DYNAMICS, ())])?.is_some();
        let sim = Sim::new(&spec());
        let model = HopperModel {
            reward,
            random_family,
            dynamics: RandomDynamics::nominal(&sim),
        };
        Robot::build(sim, model, OBS_DIM, ACT_DIM)
    }

    /// The same environment with another range for the `random-dynamics` tasks.
    pub fn with_random_dynamics(mut self, config: RandomDynamicsConfig) -> Self {
        self.model.dynamics.config = config;
        self
    }
}

/// Gymnasium v5's health test on an observation.
fn healthy(obs: &[f32]) -> bool {
    obs[Z_INDEX] > 0.7 && obs[PITCH_INDEX].abs() < 0.2 && obs[1..].iter().all(|v| v.abs() < 100.0)
}

/// `1.0` where `next_obs` is healthy (Gymnasium v5), as `[B]` `f32`.
fn healthy_batch(next_obs: &Tensor) -> candle_core::Result<Tensor> {
    let z_ok = column(next_obs, Z_INDEX)?.gt(0.7)?;
    let pitch_ok = column(next_obs, PITCH_INDEX)?.abs()?.lt(0.2)?;
    let rest = next_obs.narrow(1, 1, OBS_DIM - 1)?;
    let bounded = rest.abs()?.max(1)?.lt(100.0)?;
    z_ok.mul(&pitch_ok)?
        .mul(&bounded)?
        .to_dtype(candle_core::DType::F32)
}

impl RobotModel for HopperModel {
    const NAME: &'static str = NAME;

    fn spec(&self) -> EnvSpec {
        variant_spec(self.reward, (NAME, HORIZON), (NAME_V5, HORIZON_V5))
    }

    fn reset_noise(&mut self, ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let dq = uniform_noise(rng, ndofs, RESET_NOISE);
        (dq, uniform_noise(rng, ndofs, RESET_NOISE))
    }

    fn observe(&self, sim: &Sim) -> Vec<f32> {
        legged_planar::observe(sim, INIT_Z)
    }

    fn outcome(&self, sim: &Sim, _qpos_before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome {
        let healthy = healthy(obs);
        legged_planar::outcome(self.reward, sim, ctrl, obs, (VX_INDEX, 1.0), healthy)
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(LeggedTask {
            reward: self.reward,
            vx_index: VX_INDEX,
            direction: 1.0,
            healthy: healthy_batch,
        })
    }

    fn view(&self) -> View {
        View::Side
    }

    fn task_distribution(env: &mut Hopper) -> Option<&mut dyn TaskDistribution> {
        if env.model.random_family {
            Some(env)
        } else {
            None
        }
    }
}

impl TaskDistribution for Hopper {
    fn family(&self) -> &str {
        FAMILY_RANDOM_DYNAMICS
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        self.model.dynamics.sample_tasks(&self.sim, n, rng)
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        self.model.dynamics.set_task(&mut self.sim, task, NAME)
    }

    fn current_task(&self) -> Task {
        self.model.dynamics.current_task()
    }
}

//! `walker2d`: Gymnasium's Walker2d (MJCF `walker2d_v5.xml`) on rapier3d, a hopper with two
//! legs.
//!
//! - 7 capsule bodies (torso; right and left thigh, leg, foot), density 1000; planar root and
//!   6 hinges about `-y` with ranges `[-150, 0]`, `[-150, 0]`, `[-45, 45]` degrees per leg,
//!   `armature = 0.01`, `damping = 0.1`, gear 100; friction 0.9 (both feet 1.9, v5) against a
//!   floor of friction 0.7 (the MJCF default, combined with `Max`);
//! - `dt = 0.002`, frame skip 4 (control step 0.008 s), as Gymnasium;
//! - observation (17, Gymnasium v5): torso height `z` (absolute, MJCF `ref = 1.25`), torso
//!   pitch, 6 joint angles, then `clip(qvel, -10, 10)` (9);
//! - action (6) in `[-1, 1]`, right leg then left leg; reset noise `U(-0.005, 0.005)` on
//!   `qpos` and `qvel`.
//!
//! Rewards use the end-of-step root x velocity `v = next_obs[8]` times the direction `d` of the
//! `forward-backward` family (`+1` otherwise):
//! - `walker2d` (default): thesis Appendix A.2 has no walker row, so the walker takes A.2's
//!   rule for its one-legged sibling, the hopper (same torso and leg lengths): the early stop
//!   relaxed into a soft constraint,
//!   `r = d v - 0.005 ||a||^2 - 10 max(0.45 - z, 0) - 10 sum(max(s' - 100, 0))`; never
//!   terminates; horizon 200, the thesis's walker horizon (MB-MPO Sec. B.3 and ProMP's
//!   WalkerFwdBack / WalkerRandParams, Appendix C.4.2);
//! - `walker2d-v5` (Gymnasium v5): `r = healthy + d v - 0.001 ||a||^2`, terminated when not
//!   healthy; healthy means `0.8 < z < 2` and `-1 < pitch < 1`; horizon 1000.
//!
//! Task families: `forward-backward` (`d = ±1`) and `random-dynamics`
//! ([`super::random_dynamics`]). Switching the task takes effect at the next step.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::EnvSpec;
use mbrl_core::task::{Task, TaskDistribution, TaskFunctions};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::common::{
    column, direction_task, parse_direction, parse_family, sample_direction, uniform_noise,
    variant_spec,
};
use super::env_core::{Outcome, Robot, RobotModel};
use super::legged_planar::{self, LeggedTask};
pub use super::legged_planar::{PITCH_INDEX, VEL_CLIP, Z_INDEX};
use super::random_dynamics::{self, RandomDynamics, RandomDynamicsConfig};
use super::sim::{BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use super::RewardKind;
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name of the thesis variant.
pub const NAME: &str = "walker2d";
/// Registry name of the Gymnasium v5 variant.
pub const NAME_V5: &str = "walker2d-v5";
/// Horizon of the thesis's walker experiments.
pub const HORIZON: usize = 200;
/// Horizon of Gymnasium's Walker2d-v5.
pub const HORIZON_V5: usize = 1000;
/// Observation width.
pub const OBS_DIM: usize = 17;
/// Action width.
pub const ACT_DIM: usize = 6;
/// Index of the root x velocity in the observation.
pub const VX_INDEX: usize = 8;
/// Initial torso height (MJCF `ref` of `rootz`).
pub const INIT_Z: f32 = 1.25;
/// Scale of the uniform reset noise.
pub const RESET_NOISE: f32 = 5e-3;
/// Task family: walk forward or backward.
pub const FAMILY_FORWARD_BACKWARD: &str = "forward-backward";
/// Task family: random masses, inertias, damping and friction.
pub const FAMILY_RANDOM_DYNAMICS: &str = random_dynamics::FAMILY;
/// Every task family.
pub const FAMILIES: &[&str] = &[FAMILY_FORWARD_BACKWARD, FAMILY_RANDOM_DYNAMICS];

/// Registry entry of the thesis variant.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "walker2d on rapier3d, A.2 hopper-style soft-constraint reward, H = 200 \
                  (Sec. 5.5, C.4.2 families)",
    horizon: HORIZON,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY, family)?;
        Ok(Box::new(Walker2d::new(RewardKind::MeTrpo, family)?))
    },
};

/// Registry entry of the Gymnasium v5 variant.
pub const ENTRY_V5: EnvEntry = EnvEntry {
    name: NAME_V5,
    description: "walker2d on rapier3d, Gymnasium v5 reward and early termination",
    horizon: HORIZON_V5,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY_V5, family)?;
        Ok(Box::new(Walker2d::new(RewardKind::GymnasiumV5, family)?))
    },
};

/// The robot, in MJCF terms (Gymnasium's `walker2d_v5.xml`, converted to body frames whose
/// origins are the hinges).
pub fn spec() -> RobotSpec {
    let deg = std::f32::consts::PI / 180.0;
    let hinge = |range: [f32; 2]| HingeSpec {
        axis: [0.0, -1.0, 0.0],
        range: Some([range[0] * deg, range[1] * deg]),
        stiffness: 0.0,
        damping: 0.1,
        armature: 0.01,
        gear: 100.0,
    };
    let mut bodies = vec![BodySpec {
        name: "torso",
        parent: None,
        pos: [0.0, 0.0, INIT_Z],
        geoms: vec![CapsuleSpec::fromto([0.0, 0.0, 0.2], [0.0, 0.0, -0.2], 0.05)],
        hinge: None,
    }];
    for names in [
        ["thigh", "leg", "foot"],
        ["thigh_left", "leg_left", "foot_left"],
    ] {
        let thigh = bodies.len();
        bodies.extend([
            BodySpec {
                name: names[0],
                parent: Some(0),
                pos: [0.0, 0.0, -0.2],
                geoms: vec![CapsuleSpec::fromto([0.0; 3], [0.0, 0.0, -0.45], 0.05)],
                hinge: Some(hinge([-150.0, 0.0])),
            },
            BodySpec {
                name: names[1],
                parent: Some(thigh),
                pos: [0.0, 0.0, -0.45],
                geoms: vec![CapsuleSpec::fromto([0.0; 3], [0.0, 0.0, -0.5], 0.04)],
                hinge: Some(hinge([-150.0, 0.0])),
            },
            BodySpec {
                name: names[2],
                parent: Some(thigh + 1),
                pos: [0.0, 0.0, -0.5],
                geoms: vec![CapsuleSpec::fromto([0.0; 3], [0.2, 0.0, 0.0], 0.06).with_friction(1.9)],
                hinge: Some(hinge([-45.0, 45.0])),
            },
        ]);
    }
    RobotSpec {
        bodies,
        root: RootJoint::Planar,
        mass: MassSpec::Density(1000.0),
        friction: 0.9,
        ground_friction: 0.7,
        dt: 0.002,
        frame_skip: 4,
        solver_iterations: 4,
    }
}

/// The active task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    ForwardBackward,
    RandomDynamics,
}

/// The walker's part of its [`Walker2d`] environment: the variant and the task.
pub struct Walker2dModel {
    reward: RewardKind,
    family: Option<Family>,
    direction: f32,
    dynamics: RandomDynamics,
}

/// The walker environment.
pub type Walker2d = Robot<Walker2dModel>;

impl Walker2d {
    /// A new environment with the given reward and `family` (one of [`FAMILIES`]) active, or
    /// none. Until `set_task` the walker walks forward with its as-built dynamics.
    pub fn new(reward: RewardKind, family: Option<&str>) -> crate::Result<Self> {
        let family = parse_family(
            NAME,
            family,
            &[
                (FAMILY_FORWARD_BACKWARD, Family::ForwardBackward),
                (FAMILY_RANDOM_DYNAMICS, Family::RandomDynamics),
            ],
        )?;
        let sim = Sim::new(&spec());
        let model = Walker2dModel {
            reward,
            family,
            direction: 1.0,
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
    obs[Z_INDEX] > 0.8 && obs[Z_INDEX] < 2.0 && obs[PITCH_INDEX] > -1.0 && obs[PITCH_INDEX] < 1.0
}

/// `1.0` where `next_obs` is healthy (Gymnasium v5), as `[B]` `f32`.
fn healthy_batch(next_obs: &Tensor) -> candle_core::Result<Tensor> {
    let z = column(next_obs, Z_INDEX)?;
    let pitch = column(next_obs, PITCH_INDEX)?;
    z.gt(0.8)?
        .mul(&z.lt(2.0)?)?
        .mul(&pitch.gt(-1.0)?)?
        .mul(&pitch.lt(1.0)?)?
        .to_dtype(candle_core::DType::F32)
}

impl RobotModel for Walker2dModel {
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
        let run = (VX_INDEX, self.direction);
        legged_planar::outcome(self.reward, sim, ctrl, obs, run, healthy)
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(LeggedTask {
            reward: self.reward,
            vx_index: VX_INDEX,
            direction: self.direction,
            healthy: healthy_batch,
        })
    }

    fn view(&self) -> View {
        View::Side
    }

    fn task_distribution(env: &mut Walker2d) -> Option<&mut dyn TaskDistribution> {
        if env.model.family.is_some() {
            Some(env)
        } else {
            None
        }
    }
}

impl TaskDistribution for Walker2d {
    fn family(&self) -> &str {
        match self.model.family {
            Some(Family::ForwardBackward) | None => FAMILY_FORWARD_BACKWARD,
            Some(Family::RandomDynamics) => FAMILY_RANDOM_DYNAMICS,
        }
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        match self.model.family {
            Some(Family::ForwardBackward) | None => (0..n)
                .map(|_| direction_task(sample_direction(rng)))
                .collect(),
            Some(Family::RandomDynamics) => self.model.dynamics.sample_tasks(&self.sim, n, rng),
        }
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        match self.model.family {
            Some(Family::ForwardBackward) | None => match parse_direction(&task.params) {
                Some(d) => self.model.direction = d,
                None => {
                    return Err(mbrl_core::Error::InvalidArgument(format!(
                        "{NAME} {FAMILY_FORWARD_BACKWARD} task needs one parameter, the \
                         direction +1 or -1; got {:?}",
                        task.params
                    )))
                }
            },
            Some(Family::RandomDynamics) => {
                self.model.dynamics.set_task(&mut self.sim, task, NAME)?;
            }
        }
        Ok(())
    }

    fn current_task(&self) -> Task {
        match self.model.family {
            Some(Family::ForwardBackward) | None => direction_task(self.model.direction),
            Some(Family::RandomDynamics) => self.model.dynamics.current_task(),
        }
    }
}

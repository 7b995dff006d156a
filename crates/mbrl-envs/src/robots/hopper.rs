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
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::common::{column, ctrl_sq, ctrl_sq_batch, read_ctrl, unit_box};
use super::random_dynamics::{self, RandomDynamicsConfig};
use super::sim::{
    BodySpec, CapsuleSpec, DynamicsScale, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim, SimState,
};
use super::RewardKind;
use crate::common::unbounded;
use crate::registry::{check_task_family, EnvEntry};

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
/// Index of the torso height in the observation.
pub const Z_INDEX: usize = 0;
/// Index of the torso pitch in the observation.
pub const PITCH_INDEX: usize = 1;
/// Index of the root x velocity in the observation.
pub const VX_INDEX: usize = 5;
/// Initial torso height (MJCF `ref` of `rootz`).
pub const INIT_Z: f32 = 1.25;
/// Observed velocities are clipped to `±VEL_CLIP` (Gymnasium v5).
pub const VEL_CLIP: f32 = 10.0;
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

/// The hopper environment.
pub struct Hopper {
    sim: Sim,
    reward: RewardKind,
    /// Whether the `random-dynamics` family is active.
    random_family: bool,
    dynamics: DynamicsScale,
    random_dynamics: RandomDynamicsConfig,
    obs_space: Space,
    act_space: Space,
    rng: ChaCha8Rng,
}

impl Hopper {
    /// A new environment with the given reward and no task family.
    pub fn new(reward: RewardKind) -> crate::Result<Self> {
        Self::with_family(reward, None)
    }

    /// A new environment with the given reward and `family` (one of [`FAMILIES`]) active, or
    /// none. Until `set_task` the hopper has its as-built dynamics.
    pub fn with_family(reward: RewardKind, family: Option<&str>) -> crate::Result<Self> {
        let random_family = match family {
            None => false,
            Some(FAMILY_RANDOM_DYNAMICS) => true,
            Some(other) => {
                return Err(crate::Error::UnknownTaskFamily {
                    env: NAME.to_string(),
                    family: other.to_string(),
                    valid: FAMILIES.iter().map(|s| s.to_string()).collect(),
                })
            }
        };
        let sim = Sim::new(&spec());
        Ok(Self {
            dynamics: DynamicsScale::nominal(sim.dynamics_layout()),
            sim,
            reward,
            random_family,
            random_dynamics: RandomDynamicsConfig::default(),
            obs_space: unbounded(OBS_DIM)?,
            act_space: unit_box(ACT_DIM)?,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The same environment with another range for the `random-dynamics` tasks.
    pub fn with_random_dynamics(mut self, config: RandomDynamicsConfig) -> Self {
        self.random_dynamics = config;
        self
    }

    /// Generalized coordinates: root x, z (relative to 1.25), pitch, 3 joint angles.
    pub fn qpos(&self) -> Vec<f32> {
        self.sim.qpos()
    }

    /// Body masses (torso, thigh, leg, foot).
    pub fn body_masses(&self) -> Vec<f32> {
        self.sim.body_masses()
    }

    fn observation(&self) -> Vec<f32> {
        let mut obs = self.sim.qpos();
        obs.remove(0);
        obs[0] += INIT_Z;
        obs.extend(self.sim.qvel().iter().map(|v| v.clamp(-VEL_CLIP, VEL_CLIP)));
        obs
    }
}

/// Gymnasium v5's health test on an observation.
fn healthy(obs: &[f32]) -> bool {
    obs[Z_INDEX] > 0.7 && obs[PITCH_INDEX].abs() < 0.2 && obs[1..].iter().all(|v| v.abs() < 100.0)
}

impl Env for Hopper {
    fn spec(&self) -> EnvSpec {
        let (name, horizon) = match self.reward {
            RewardKind::MeTrpo => (NAME, HORIZON),
            RewardKind::GymnasiumV5 => (NAME_V5, HORIZON_V5),
        };
        EnvSpec {
            name: name.into(),
            max_episode_steps: Some(horizon),
        }
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(&mut self, seed: Option<u64>) -> mbrl_core::Result<(Tensor, Info)> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let n = self.sim.ndofs();
        let noise = |rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..n)
                .map(|_| rng.random_range(-RESET_NOISE..=RESET_NOISE))
                .collect()
        };
        let dq = noise(&mut self.rng);
        let v = noise(&mut self.rng);
        self.sim.reset(&dq, &v);
        Ok((vector(&self.observation())?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let ctrl = read_ctrl(action, ACT_DIM, NAME)?;
        self.sim.step(&ctrl);
        let obs = self.observation();
        if obs.iter().any(|v| !v.is_finite()) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME}: the simulation diverged (non-finite state {obs:?})"
            )));
        }
        let velocity = obs[VX_INDEX];
        let (reward, terminated) = match self.reward {
            RewardKind::MeTrpo => {
                let height = 10.0 * (0.45 - obs[Z_INDEX]).max(0.0);
                let bounds: f32 = obs.iter().map(|s| (s - 100.0).max(0.0)).sum();
                (
                    velocity - 0.005 * ctrl_sq(&ctrl) - height - 10.0 * bounds,
                    false,
                )
            }
            RewardKind::GymnasiumV5 => {
                let ok = healthy(&obs);
                (
                    f32::from(u8::from(ok)) + velocity - 1e-3 * ctrl_sq(&ctrl),
                    !ok,
                )
            }
        };
        let info = Info::from([
            ("x_position".to_string(), self.sim.qpos()[0] as f64),
            ("x_velocity".to_string(), velocity as f64),
            ("z".to_string(), obs[Z_INDEX] as f64),
        ]);
        Ok(Step {
            obs: vector(&obs)?,
            reward: reward as f64,
            terminated,
            truncated: false,
            info,
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(HopperTask {
            reward: self.reward,
        })
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        if self.random_family {
            Some(self)
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
        let layout = self.sim.dynamics_layout();
        (0..n)
            .map(|_| self.random_dynamics.sample(layout, rng))
            .collect()
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        let scale = random_dynamics::scale(self.sim.dynamics_layout(), task, NAME)?;
        self.sim.set_dynamics(&scale)?;
        self.dynamics = scale;
        Ok(())
    }

    fn current_task(&self) -> Task {
        random_dynamics::task(&self.dynamics)
    }
}

impl super::RobotEnv for Hopper {
    fn sim_state(&self) -> &SimState {
        self.sim.state()
    }

    fn default_view(&self) -> crate::render::View {
        crate::render::View::Side
    }
}

/// Batched rewards and termination of both variants.
struct HopperTask {
    reward: RewardKind,
}

impl HopperTask {
    /// `1.0` where `next_obs` is healthy (Gymnasium v5), as `[B]` `f32`.
    fn healthy(next_obs: &Tensor) -> candle_core::Result<Tensor> {
        let z_ok = column(next_obs, Z_INDEX)?.gt(0.7)?;
        let pitch_ok = column(next_obs, PITCH_INDEX)?.abs()?.lt(0.2)?;
        let rest = next_obs.narrow(1, 1, OBS_DIM - 1)?;
        let bounded = rest.abs()?.max(1)?.lt(100.0)?;
        z_ok.mul(&pitch_ok)?
            .mul(&bounded)?
            .to_dtype(candle_core::DType::F32)
    }
}

impl TaskFunctions for HopperTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let velocity = column(next_obs, VX_INDEX)?;
        Ok(match self.reward {
            RewardKind::MeTrpo => {
                let ctrl = ctrl_sq_batch(act)?.affine(0.005, 0.0)?;
                let height = column(next_obs, Z_INDEX)?
                    .affine(-1.0, 0.45)?
                    .relu()?
                    .affine(10.0, 0.0)?;
                let bounds = next_obs
                    .affine(1.0, -100.0)?
                    .relu()?
                    .sum(1)?
                    .affine(10.0, 0.0)?;
                velocity.sub(&ctrl)?.sub(&height)?.sub(&bounds)?
            }
            RewardKind::GymnasiumV5 => {
                let ctrl = ctrl_sq_batch(act)?.affine(1e-3, 0.0)?;
                Self::healthy(next_obs)?.add(&velocity)?.sub(&ctrl)?
            }
        })
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        match self.reward {
            RewardKind::MeTrpo => never_terminated(next_obs),
            RewardKind::GymnasiumV5 => Ok(Self::healthy(next_obs)?.affine(-1.0, 1.0)?),
        }
    }
}

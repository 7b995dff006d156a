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
/// Index of the torso height in the observation.
pub const Z_INDEX: usize = 0;
/// Index of the torso pitch in the observation.
pub const PITCH_INDEX: usize = 1;
/// Index of the root x velocity in the observation.
pub const VX_INDEX: usize = 8;
/// Initial torso height (MJCF `ref` of `rootz`).
pub const INIT_Z: f32 = 1.25;
/// Observed velocities are clipped to `±VEL_CLIP` (Gymnasium v5).
pub const VEL_CLIP: f32 = 10.0;
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

/// The walker environment.
pub struct Walker2d {
    sim: Sim,
    reward: RewardKind,
    family: Option<Family>,
    direction: f32,
    dynamics: DynamicsScale,
    random_dynamics: RandomDynamicsConfig,
    obs_space: Space,
    act_space: Space,
    rng: ChaCha8Rng,
}

impl Walker2d {
    /// A new environment with the given reward and `family` (one of [`FAMILIES`]) active, or
    /// none. Until `set_task` the walker walks forward with its as-built dynamics.
    pub fn new(reward: RewardKind, family: Option<&str>) -> crate::Result<Self> {
        let family = match family {
            None => None,
            Some(FAMILY_FORWARD_BACKWARD) => Some(Family::ForwardBackward),
            Some(FAMILY_RANDOM_DYNAMICS) => Some(Family::RandomDynamics),
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
            family,
            direction: 1.0,
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

    /// Generalized coordinates: root x, z (relative to 1.25), pitch, 6 joint angles.
    pub fn qpos(&self) -> Vec<f32> {
        self.sim.qpos()
    }

    /// Body masses (torso, thigh, leg, foot, then the left leg's).
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
    obs[Z_INDEX] > 0.8 && obs[Z_INDEX] < 2.0 && obs[PITCH_INDEX] > -1.0 && obs[PITCH_INDEX] < 1.0
}

impl Env for Walker2d {
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
        let run = self.direction * velocity;
        let (reward, terminated) = match self.reward {
            RewardKind::MeTrpo => {
                let height = 10.0 * (0.45 - obs[Z_INDEX]).max(0.0);
                let bounds: f32 = obs.iter().map(|s| (s - 100.0).max(0.0)).sum();
                (run - 0.005 * ctrl_sq(&ctrl) - height - 10.0 * bounds, false)
            }
            RewardKind::GymnasiumV5 => {
                let ok = healthy(&obs);
                (f32::from(u8::from(ok)) + run - 1e-3 * ctrl_sq(&ctrl), !ok)
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
        Arc::new(WalkerTask {
            reward: self.reward,
            direction: self.direction,
        })
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        if self.family.is_some() {
            Some(self)
        } else {
            None
        }
    }
}

fn direction_task(d: f32) -> Task {
    Task::new(if d > 0.0 { "forward" } else { "backward" }, vec![d as f64])
}

impl TaskDistribution for Walker2d {
    fn family(&self) -> &str {
        match self.family {
            Some(Family::ForwardBackward) | None => FAMILY_FORWARD_BACKWARD,
            Some(Family::RandomDynamics) => FAMILY_RANDOM_DYNAMICS,
        }
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| match self.family {
                Some(Family::ForwardBackward) | None => {
                    direction_task(if rng.random_bool(0.5) { 1.0 } else { -1.0 })
                }
                Some(Family::RandomDynamics) => {
                    self.random_dynamics.sample(self.sim.dynamics_layout(), rng)
                }
            })
            .collect()
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        match (self.family, task.params.as_slice()) {
            (Some(Family::ForwardBackward) | None, [d]) if *d == 1.0 || *d == -1.0 => {
                self.direction = *d as f32;
            }
            (Some(Family::ForwardBackward) | None, _) => {
                return Err(mbrl_core::Error::InvalidArgument(format!(
                    "{NAME} {FAMILY_FORWARD_BACKWARD} task needs one parameter, the direction \
                     +1 or -1; got {:?}",
                    task.params
                )))
            }
            (Some(Family::RandomDynamics), _) => {
                let scale = random_dynamics::scale(self.sim.dynamics_layout(), task, NAME)?;
                self.sim.set_dynamics(&scale)?;
                self.dynamics = scale;
            }
        }
        Ok(())
    }

    fn current_task(&self) -> Task {
        match self.family {
            Some(Family::ForwardBackward) | None => direction_task(self.direction),
            Some(Family::RandomDynamics) => random_dynamics::task(&self.dynamics),
        }
    }
}

impl super::RobotEnv for Walker2d {
    fn sim_state(&self) -> &SimState {
        self.sim.state()
    }

    fn default_view(&self) -> crate::render::View {
        crate::render::View::Side
    }
}

/// Batched rewards and termination of both variants.
struct WalkerTask {
    reward: RewardKind,
    direction: f32,
}

impl WalkerTask {
    /// `1.0` where `next_obs` is healthy (Gymnasium v5), as `[B]` `f32`.
    fn healthy(next_obs: &Tensor) -> candle_core::Result<Tensor> {
        let z = column(next_obs, Z_INDEX)?;
        let pitch = column(next_obs, PITCH_INDEX)?;
        z.gt(0.8)?
            .mul(&z.lt(2.0)?)?
            .mul(&pitch.gt(-1.0)?)?
            .mul(&pitch.lt(1.0)?)?
            .to_dtype(candle_core::DType::F32)
    }
}

impl TaskFunctions for WalkerTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let run = column(next_obs, VX_INDEX)?.affine(self.direction as f64, 0.0)?;
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
                run.sub(&ctrl)?.sub(&height)?.sub(&bounds)?
            }
            RewardKind::GymnasiumV5 => {
                let ctrl = ctrl_sq_batch(act)?.affine(1e-3, 0.0)?;
                Self::healthy(next_obs)?.add(&run)?.sub(&ctrl)?
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

//! `mountain-car-continuous`: Gymnasium's `MountainCarContinuous-v0`, reproduced exactly (the
//! fixtures in `tests/fixtures/mountain_car_continuous.json` come from Gymnasium itself).
//!
//! - state `(position, velocity)`; observation the same two numbers as `f32`, in
//!   `[-1.2, 0.6] x [-0.07, 0.07]`;
//! - action force `a`, `A = [-1, 1]`; the dynamics use `clip(a, -1, 1)`:
//!   `v' = clip(v + clip(a) * 0.0015 - 0.0025 cos(3 p), -0.07, 0.07)`,
//!   `p' = clip(p + v', -1.2, 0.6)`, and `v' = 0` when `p' = -1.2` and `v' < 0`;
//! - terminated when `p' >= 0.45` and `v' >= 0`;
//! - `r = 100 [terminated] - 0.1 a^2`, with the *unclipped* action (as Gymnasium computes it);
//! - `p0 ~ U(-0.6, -0.4)`, `v0 = 0`; `H = 999`.
//!
//! Gymnasium stores the state as `f32` after every step (`np.array(..., dtype=np.float32)`);
//! this implementation computes each step in `f64` and rounds the stored state to `f32` the
//! same way, so the two stay within `f32` rounding of each other. Only the reset state is
//! kept in full `f64` precision, as in Gymnasium.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::TaskFunctions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{box_space, column, family_active, finite_action};
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "mountain-car-continuous";
/// Smallest force.
pub const MIN_ACTION: f64 = -1.0;
/// Largest force.
pub const MAX_ACTION: f64 = 1.0;
/// Left wall.
pub const MIN_POSITION: f64 = -1.2;
/// Right wall.
pub const MAX_POSITION: f64 = 0.6;
/// Largest speed.
pub const MAX_SPEED: f64 = 0.07;
/// Position of the flag.
pub const GOAL_POSITION: f64 = 0.45;
/// Smallest velocity that counts as reaching the flag.
pub const GOAL_VELOCITY: f64 = 0.0;
/// Force multiplier.
pub const POWER: f64 = 0.0015;
/// Gravity term coefficient (`0.0025 cos(3 p)`).
pub const GRAVITY: f64 = 0.0025;
/// Bonus for reaching the flag.
pub const GOAL_REWARD: f64 = 100.0;
/// Action cost coefficient (`0.1 a^2`).
pub const ACTION_COST: f64 = 0.1;
/// Initial position interval.
pub const INIT_POSITION: (f64, f64) = (-0.6, -0.4);
/// Episode length (Gymnasium's `max_episode_steps`).
pub const HORIZON: usize = 999;

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "Gymnasium MountainCarContinuous-v0, exact (drive an underpowered car up a hill)",
    horizon: HORIZON,
    task_families: &[],
    make,
};

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    family_active(&ENTRY, family)?;
    Ok(Box::new(MountainCarContinuous::new()?))
}

/// The continuous mountain-car environment.
pub struct MountainCarContinuous {
    obs_space: Space,
    act_space: Space,
    state: [f64; 2],
    rng: ChaCha8Rng,
}

impl MountainCarContinuous {
    /// A new environment (call `reset` before stepping).
    pub fn new() -> mbrl_core::Result<Self> {
        Ok(Self {
            obs_space: box_space(
                vec![MIN_POSITION as f32, -MAX_SPEED as f32],
                vec![MAX_POSITION as f32, MAX_SPEED as f32],
            )?,
            act_space: box_space(vec![MIN_ACTION as f32], vec![MAX_ACTION as f32])?,
            state: [0.0; 2],
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The exact internal state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the exact internal state `[position, velocity]` (e.g. to replay a Gymnasium
    /// episode) and returns the matching observation; it must lie within the walls and the
    /// speed limit.
    pub fn set_state(&mut self, state: [f64; 2]) -> mbrl_core::Result<Tensor> {
        let [p, v] = state;
        if !((MIN_POSITION..=MAX_POSITION).contains(&p) && v.abs() <= MAX_SPEED) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME}: state {state:?} needs position in [{MIN_POSITION}, {MAX_POSITION}] and \
                 |velocity| <= {MAX_SPEED}"
            )));
        }
        self.state = state;
        self.obs()
    }

    fn obs(&self) -> mbrl_core::Result<Tensor> {
        vector(&[self.state[0] as f32, self.state[1] as f32])
    }
}

/// Whether a stored state has reached the flag. The comparison is in `f32`, as NumPy 2 makes
/// it for Gymnasium's `float32` state and as the task functions make it on `f32` tensors.
fn at_goal(position: f64, velocity: f64) -> bool {
    position as f32 >= GOAL_POSITION as f32 && velocity as f32 >= GOAL_VELOCITY as f32
}

impl Env for MountainCarContinuous {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: NAME.into(),
            max_episode_steps: Some(HORIZON),
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
        self.state = [self.rng.random_range(INIT_POSITION.0..INIT_POSITION.1), 0.0];
        Ok((self.obs()?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let a = finite_action(action, 1, NAME)?[0] as f64;
        let [mut position, mut velocity] = self.state;
        let force = a.clamp(MIN_ACTION, MAX_ACTION);
        velocity += force * POWER - GRAVITY * (3.0 * position).cos();
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        // Gymnasium keeps its state as float32.
        self.state = [position as f32 as f64, velocity as f32 as f64];
        let terminated = at_goal(self.state[0], self.state[1]);
        let bonus = if terminated { GOAL_REWARD } else { 0.0 };
        Ok(Step {
            obs: self.obs()?,
            reward: bonus - ACTION_COST * a * a,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(MountainCarTask)
    }
}

/// Reward `100 [p' >= 0.45 and v' >= 0] - 0.1 a^2` and that termination.
struct MountainCarTask;

impl MountainCarTask {
    fn goal_mask(next_obs: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = next_obs.dtype();
        let reached = column(next_obs, 0)?.ge(GOAL_POSITION)?.to_dtype(dtype)?;
        let moving_on = column(next_obs, 1)?.ge(GOAL_VELOCITY)?.to_dtype(dtype)?;
        reached * moving_on
    }
}

impl TaskFunctions for MountainCarTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let bonus = Self::goal_mask(next_obs)?.affine(GOAL_REWARD, 0.0)?;
        let cost = column(act, 0)?.sqr()?.affine(ACTION_COST, 0.0)?;
        Ok((bonus - cost)?)
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        Ok(Self::goal_mask(next_obs)?)
    }
}

//! `point2d`: the 2D point of thesis Appendix B.3, used for the plasticity-vs-uncertainty
//! study (Sec. 5.5.4).
//!
//! `S = R^2`, `A = [-0.1, 0.1]^2` (actions are clipped into it), `s0 ~ U([-2, 2]^2)`,
//! `s' = s + a`, `r(s, a) = -||s||^2` (the state *before* the step), `H = 30`, no termination.
//! The optimal policy moves straight to the origin at full speed.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{read_action, vector, Env, EnvSpec, Info, Step};
use mbrl_core::policy::Policy;
use mbrl_core::space::{BoxSpace, Space};
use mbrl_core::task::{never_terminated, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::registry::EnvEntry;

/// Largest action magnitude per coordinate.
pub const MAX_ACTION: f32 = 0.1;
/// Half-width of the initial-state square.
pub const INIT_RANGE: f32 = 2.0;
/// Episode length.
pub const HORIZON: usize = 30;

/// The optimal `point2d` policy: full speed towards the origin, `a = clip(-s, -0.1, 0.1)`
/// (the reference return of the learning tests).
pub struct OptimalPolicy;

impl Policy for OptimalPolicy {
    fn act(&self, obs: &Tensor, _: bool, _: &mut dyn RngCore) -> mbrl_core::Result<Tensor> {
        Ok(obs.neg()?.clamp(-MAX_ACTION, MAX_ACTION)?)
    }
}

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: "point2d",
    description: "2D point to the origin, r = -||s||^2 (Appendix B.3, Sec. 5.5.4)",
    horizon: HORIZON,
    task_families: &[],
    make: |_| Ok(Box::new(Point2d::new())),
};

/// The 2D point environment.
pub struct Point2d {
    obs_space: Space,
    act_space: Space,
    state: [f32; 2],
    rng: ChaCha8Rng,
}

impl Point2d {
    /// A new environment (call `reset` before stepping).
    pub fn new() -> Self {
        Self {
            obs_space: Space::Box(
                BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, 2).expect("valid bounds"),
            ),
            act_space: Space::Box(
                BoxSpace::uniform(-MAX_ACTION, MAX_ACTION, 2).expect("valid bounds"),
            ),
            state: [0.0; 2],
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }
}

impl Default for Point2d {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Point2d {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: "point2d".into(),
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
        self.state = [
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
        ];
        Ok((vector(&self.state)?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let a = read_action(action, 2)?;
        let [x, y] = self.state;
        let reward = -((x * x + y * y) as f64);
        self.state = [
            x + a[0].clamp(-MAX_ACTION, MAX_ACTION),
            y + a[1].clamp(-MAX_ACTION, MAX_ACTION),
        ];
        Ok(Step {
            obs: vector(&self.state)?,
            reward,
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(Point2dTask)
    }
}

/// `r = -||obs||^2`, never terminates.
struct Point2dTask;

impl TaskFunctions for Point2dTask {
    fn reward(&self, obs: &Tensor, _act: &Tensor, _next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        Ok(obs.sqr()?.sum(1)?.neg()?)
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        never_terminated(next_obs)
    }
}

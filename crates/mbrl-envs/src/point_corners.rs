//! `point-corners`: the 2D point mass of thesis Appendix C.4.2 ("PointEnv"), used to compare
//! the pre-update exploration of meta-RL objectives (Sec. 6.7.3).
//!
//! Each task is one corner of the arena; the reward is informative only within a radius of
//! the corner, so an agent must explore to find out which corner is active. Constants follow
//! ProMP's `MetaPointEnvCorner` (sparse reward):
//!
//! - `S = R^2`, `A = [-0.2, 0.2]^2` (actions are clipped into it), `s' = s + clip(a)`;
//! - `s0 ~ U([-0.2, 0.2]^2)`;
//! - goals (task family `corner-goals`, uniform over the four): `(-2,-2)`, `(2,-2)`, `(-2,2)`,
//!   `(2,2)`; without the family the goal is `(2, 2)`;
//! - `r(s, a, s') = -min(||s' - g||, 0.5)`: minus the distance to the goal inside the radius
//!   `0.5`, the constant `-0.5` everywhere else (no signal outside the radius);
//! - `H = 100` (Appendix C.4.2), no termination.
//!
//! The task-function reward is `-(d * m + 0.5 * (1 - m))` with `d = ||s' - g||` and the mask
//! `m = [d < 0.5]`: the mask has no gradient, the distance does.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{box_space, column, family_active, finite_action, unbounded};
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "point-corners";
/// Largest action magnitude per coordinate.
pub const MAX_ACTION: f32 = 0.2;
/// Half-width of the initial-state square.
pub const INIT_RANGE: f32 = 0.2;
/// The four goals, in the order of ProMP's `corners`.
pub const CORNERS: [[f32; 2]; 4] = [[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]];
/// The goal when no task family is active.
pub const DEFAULT_GOAL: [f32; 2] = [2.0, 2.0];
/// Radius around the goal inside which the reward carries a signal.
pub const GOAL_RADIUS: f32 = 0.5;
/// Episode length.
pub const HORIZON: usize = 100;
/// Name of the task family over the corners.
pub const FAMILY: &str = "corner-goals";

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description:
        "2D point, one task per corner goal, reward only near the goal (Appendix C.4.2, Sec. 6.7.3)",
    horizon: HORIZON,
    task_families: &[FAMILY],
    make,
};

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    let active = family_active(&ENTRY, family)?;
    Ok(Box::new(PointCorners::new(active)?))
}

/// The corner-goal point environment.
pub struct PointCorners {
    obs_space: Space,
    act_space: Space,
    state: [f32; 2],
    goal: [f32; 2],
    family_active: bool,
    rng: ChaCha8Rng,
}

impl PointCorners {
    /// A new environment with goal [`DEFAULT_GOAL`]; `family_active` exposes the
    /// `corner-goals` task family through `task_distribution`.
    pub fn new(family_active: bool) -> mbrl_core::Result<Self> {
        Ok(Self {
            obs_space: unbounded(2)?,
            act_space: box_space(vec![-MAX_ACTION; 2], vec![MAX_ACTION; 2])?,
            state: [0.0; 2],
            goal: DEFAULT_GOAL,
            family_active,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The active goal.
    pub fn goal(&self) -> [f32; 2] {
        self.goal
    }
}

/// `-min(||s' - g||, GOAL_RADIUS)`, in `f64`.
fn reward(next: [f32; 2], goal: [f32; 2]) -> f64 {
    let dx = (next[0] - goal[0]) as f64;
    let dy = (next[1] - goal[1]) as f64;
    -(dx * dx + dy * dy).sqrt().min(GOAL_RADIUS as f64)
}

impl Env for PointCorners {
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
        self.state = [
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
        ];
        Ok((vector(&self.state)?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let a = finite_action(action, 2, NAME)?;
        self.state = [
            self.state[0] + a[0].clamp(-MAX_ACTION, MAX_ACTION),
            self.state[1] + a[1].clamp(-MAX_ACTION, MAX_ACTION),
        ];
        Ok(Step {
            obs: vector(&self.state)?,
            reward: reward(self.state, self.goal),
            terminated: false,
            truncated: false,
            info: Info::from([
                ("goal_x".to_string(), self.goal[0] as f64),
                ("goal_y".to_string(), self.goal[1] as f64),
            ]),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(PointCornersTask { goal: self.goal })
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        if self.family_active {
            Some(self)
        } else {
            None
        }
    }
}

/// The task of a goal, as the family labels it.
fn corner_task(goal: [f32; 2]) -> Task {
    Task::new(
        format!("corner=({:+},{:+})", goal[0], goal[1]),
        vec![goal[0] as f64, goal[1] as f64],
    )
}

impl TaskDistribution for PointCorners {
    fn family(&self) -> &str {
        FAMILY
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| corner_task(CORNERS[rng.random_range(0..CORNERS.len())]))
            .collect()
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        let goal = CORNERS
            .iter()
            .find(|c| task.params == [c[0] as f64, c[1] as f64])
            .ok_or_else(|| {
                mbrl_core::Error::InvalidArgument(format!(
                    "{FAMILY} task needs the goal of one corner, one of {CORNERS:?}; got params {:?}",
                    task.params
                ))
            })?;
        self.goal = *goal;
        Ok(())
    }

    fn current_task(&self) -> Task {
        corner_task(self.goal)
    }
}

/// Reward `-min(||s' - g||, GOAL_RADIUS)`; never terminates.
struct PointCornersTask {
    goal: [f32; 2],
}

impl TaskFunctions for PointCornersTask {
    fn reward(&self, _obs: &Tensor, _act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let dx = column(next_obs, 0)?.affine(1.0, -(self.goal[0] as f64))?;
        let dy = column(next_obs, 1)?.affine(1.0, -(self.goal[1] as f64))?;
        let dist = (dx.sqr()? + dy.sqr()?)?.sqrt()?;
        let inside = dist.lt(GOAL_RADIUS as f64)?.to_dtype(dist.dtype())?;
        let outside = inside.affine(-1.0, 1.0)?;
        let clipped = ((&dist * &inside)? + outside.affine(GOAL_RADIUS as f64, 0.0)?)?;
        Ok(clipped.neg()?)
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

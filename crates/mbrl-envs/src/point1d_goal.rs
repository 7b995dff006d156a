//! `point1d-goal`: the 1D goal-reaching task of thesis Sec. 6.7.4, used to visualise the
//! meta-gradient directions of the two meta-RL formulations with a two-parameter policy.
//!
//! - `S = R`, `A = [-0.5, 0.5]` (actions are clipped into it), `s' = s + clip(a)`;
//! - `s0 ~ U([-2, 2])` (a random position on the line);
//! - goal `g = +1` or `g = -1` (task family `goal-sign`, each with probability 1/2); without
//!   the family the goal is `+1`;
//! - `r(s, a, s') = -(s' - g)^2`;
//! - `H = 10`, no termination.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{box_space, family_active, finite_action, unbounded};
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "point1d-goal";
/// Largest action magnitude.
pub const MAX_ACTION: f32 = 0.5;
/// Half-width of the initial-position interval.
pub const INIT_RANGE: f32 = 2.0;
/// The goal when no task family is active.
pub const DEFAULT_GOAL: f32 = 1.0;
/// Episode length.
pub const HORIZON: usize = 10;
/// Name of the task family over the goal's sign.
pub const FAMILY: &str = "goal-sign";

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "1D point to a goal at +1 or -1, r = -(s' - g)^2 (Sec. 6.7.4)",
    horizon: HORIZON,
    task_families: &[FAMILY],
    make,
};

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    let active = family_active(&ENTRY, family)?;
    Ok(Box::new(Point1dGoal::new(active)?))
}

/// The 1D goal environment.
pub struct Point1dGoal {
    obs_space: Space,
    act_space: Space,
    state: f32,
    goal: f32,
    family_active: bool,
    rng: ChaCha8Rng,
}

impl Point1dGoal {
    /// A new environment with goal `+1`; `family_active` exposes the `goal-sign` family.
    pub fn new(family_active: bool) -> mbrl_core::Result<Self> {
        Ok(Self {
            obs_space: unbounded(1)?,
            act_space: box_space(vec![-MAX_ACTION], vec![MAX_ACTION])?,
            state: 0.0,
            goal: DEFAULT_GOAL,
            family_active,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The active goal.
    pub fn goal(&self) -> f32 {
        self.goal
    }
}

impl Env for Point1dGoal {
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
        self.state = self.rng.random_range(-INIT_RANGE..=INIT_RANGE);
        Ok((vector(&[self.state])?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let a = finite_action(action, 1, NAME)?[0];
        self.state += a.clamp(-MAX_ACTION, MAX_ACTION);
        let reward = -((self.state - self.goal) as f64).powi(2);
        Ok(Step {
            obs: vector(&[self.state])?,
            reward,
            terminated: false,
            truncated: false,
            info: Info::from([("goal".to_string(), self.goal as f64)]),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(Point1dGoalTask { goal: self.goal })
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        if self.family_active {
            Some(self)
        } else {
            None
        }
    }
}

fn goal_task(goal: f32) -> Task {
    Task::new(format!("goal={goal:+}"), vec![goal as f64])
}

impl TaskDistribution for Point1dGoal {
    fn family(&self) -> &str {
        FAMILY
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| goal_task(if rng.random_bool(0.5) { 1.0 } else { -1.0 }))
            .collect()
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        match task.params.as_slice() {
            [g] if *g == 1.0 || *g == -1.0 => {
                self.goal = *g as f32;
                Ok(())
            }
            other => Err(mbrl_core::Error::InvalidArgument(format!(
                "{FAMILY} task needs one parameter, the goal +1 or -1; got {other:?}"
            ))),
        }
    }

    fn current_task(&self) -> Task {
        goal_task(self.goal)
    }
}

/// Reward `-(s' - g)^2`; never terminates.
struct Point1dGoalTask {
    goal: f32,
}

impl TaskFunctions for Point1dGoalTask {
    fn reward(&self, _obs: &Tensor, _act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        Ok(next_obs
            .affine(1.0, -(self.goal as f64))?
            .sqr()?
            .neg()?
            .squeeze(1)?)
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

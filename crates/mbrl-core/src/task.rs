//! Task functions and task distributions.
//!
//! [`TaskFunctions`] give the reward and termination of the active task as batched,
//! differentiable functions of candle tensors `(obs, act, next_obs)`, so a learned model can be
//! used as an environment (MBRL-Lib's `reward_fns` / `termination_fns`) and gradients can flow
//! through the reward (MAAC, BPTT). They must agree with what `Env::step` returns; `check_env`
//! verifies it.
//!
//! A [`TaskDistribution`] samples tasks of a family (goals, directions, dynamics
//! perturbations) and switches the environment's active task, immediately, also in the middle
//! of an episode.

use candle_core::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Batched reward and termination of one task.
///
/// All arguments are `[B, dim]` `f32` tensors; results are `[B]` `f32` tensors.
pub trait TaskFunctions: Send + Sync {
    /// Reward of each transition; differentiable in all three arguments where the reward is.
    fn reward(&self, obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> Result<Tensor>;
    /// `1.0` where the transition ends in a terminal state, `0.0` elsewhere.
    fn terminated(&self, obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> Result<Tensor>;
}

/// Termination function of environments that never terminate (only time limits end episodes).
pub fn never_terminated(next_obs: &Tensor) -> Result<Tensor> {
    Ok(Tensor::zeros(
        next_obs.dim(0)?,
        candle_core::DType::F32,
        next_obs.device(),
    )?)
}

/// One task of a family: a label for logs and the numbers that define it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Human-readable description, e.g. `goal=+1` or `disabled_joint=3`.
    pub label: String,
    /// The task's parameters, interpreted by its family (goal coordinates, scale factors...).
    pub params: Vec<f64>,
}

impl Task {
    /// A task with a label and parameters.
    pub fn new(label: impl Into<String>, params: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            params,
        }
    }
}

/// A family of tasks an environment can switch between.
pub trait TaskDistribution {
    /// The family's name, e.g. `goal-direction`.
    fn family(&self) -> &str;
    /// Draws `n` training tasks.
    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task>;
    /// Held-out test tasks, for families that separate them (e.g. a crippled leg never seen
    /// in training). Empty when train and test tasks come from the same distribution.
    fn test_tasks(&self) -> Vec<Task> {
        Vec::new()
    }
    /// Makes `task` active. Takes effect at the next step, also in the middle of an episode.
    fn set_task(&mut self, task: &Task) -> Result<()>;
    /// The active task.
    fn current_task(&self) -> Task;
}

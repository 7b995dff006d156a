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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{vector, Env};
    use crate::testing::Drift;
    use rand::SeedableRng;

    #[test]
    fn switching_the_task_mid_episode_changes_the_next_reward() {
        let mut env = Drift::new();
        env.reset(Some(0)).unwrap();
        let a = vector(&[0.0]).unwrap();
        let before = env.step(&a).unwrap().reward;
        let tasks = env.task_distribution().unwrap();
        assert_eq!(tasks.current_task().params, vec![1.0]);
        tasks.set_task(&Task::new("goal=-1", vec![-1.0])).unwrap();
        let after = env.step(&a).unwrap().reward;
        let s = env.state() as f64;
        assert!((before + (s - 1.0).powi(2)).abs() < 1e-6);
        assert!((after + (s + 1.0).powi(2)).abs() < 1e-6);
        let fns = env.task_functions();
        let t = vector(&[s as f32]).unwrap().unsqueeze(0).unwrap();
        let r = fns.reward(&t, &t, &t).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
        assert!(
            (r - after).abs() < 1e-5,
            "task functions follow the active task"
        );
    }

    #[test]
    fn sampled_tasks_cover_the_family_and_bad_tasks_are_rejected() {
        let mut env = Drift::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let tasks = env.task_distribution().unwrap();
        let sampled = tasks.sample_tasks(20, &mut rng);
        assert!(sampled.iter().any(|t| t.params == [1.0]));
        assert!(sampled.iter().any(|t| t.params == [-1.0]));
        assert!(tasks.test_tasks().is_empty());
        assert!(tasks.set_task(&Task::new("bad", vec![])).is_err());
    }

    #[test]
    fn never_terminated_is_zero_per_row() {
        let x =
            candle_core::Tensor::ones((3, 2), candle_core::DType::F32, &candle_core::Device::Cpu)
                .unwrap();
        assert_eq!(
            never_terminated(&x).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0; 3]
        );
    }
}

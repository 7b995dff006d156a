//! The environment interface, with Gymnasium's semantics, and the `TimeLimit` wrapper.
//!
//! Observations and actions cross the trait boundary as rank-1 `f32` tensors on the CPU.
//! `reset(Some(seed))` reseeds the environment's random generator; `reset(None)` continues
//! its stream. Bootstrapping code must use `terminated` only; `truncated` marks a time limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::space::Space;
use crate::task::{TaskDistribution, TaskFunctions};
use crate::{Error, Result};

/// Extra per-step or per-reset information (Gymnasium's `info` dict), e.g. reward terms.
pub type Info = BTreeMap<String, f64>;

/// The outcome of one environment step.
#[derive(Debug, Clone)]
pub struct Step {
    /// The observation after the step (rank-1 `f32`).
    pub obs: Tensor,
    /// The reward of the transition.
    pub reward: f64,
    /// The episode ended in a terminal state (no bootstrapping past it).
    pub terminated: bool,
    /// The episode was cut by a time limit (bootstrapping past it is valid).
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

/// Static facts about an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// Registry name, e.g. `pendulum`.
    pub name: String,
    /// Episode length enforced by [`TimeLimit`], if any.
    pub max_episode_steps: Option<usize>,
}

/// A reinforcement-learning environment (Gymnasium semantics).
pub trait Env: Send {
    /// Name and time limit.
    fn spec(&self) -> EnvSpec;
    /// The space observations live in.
    fn observation_space(&self) -> &Space;
    /// The space actions live in.
    fn action_space(&self) -> &Space;
    /// Starts a new episode; reseeds the environment when `seed` is given.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)>;
    /// Advances one step with a rank-1 `f32` action.
    fn step(&mut self, action: &Tensor) -> Result<Step>;
    /// Batched, differentiable reward and termination of the active task, for planning and
    /// learning in a model.
    fn task_functions(&self) -> Arc<dyn TaskFunctions>;
    /// The environment's task family, if it has one (meta-RL goals, perturbations).
    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        None
    }
}

/// Makes fresh copies of one environment (used by `VecEnv`, evaluation and `check_env`).
pub type EnvFactory = Arc<dyn Fn() -> Result<Box<dyn Env>> + Send + Sync>;

/// Converts a flat `f32` slice into a rank-1 CPU tensor.
pub fn vector(values: &[f32]) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, values.len(), &Device::Cpu)?)
}

/// Reads a rank-1 `f32` action and checks its length.
pub fn read_action(action: &Tensor, expected_dim: usize) -> Result<Vec<f32>> {
    let values = action
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    if values.len() != expected_dim {
        return Err(Error::shape(
            "Env::step action",
            format!("{expected_dim} elements"),
            format!("{} elements (shape {:?})", values.len(), action.dims()),
        ));
    }
    Ok(values)
}

/// Ends episodes after `max_episode_steps` steps by setting `truncated`.
pub struct TimeLimit<E> {
    inner: E,
    max_episode_steps: usize,
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `inner`, truncating after `max_episode_steps` steps.
    pub fn new(inner: E, max_episode_steps: usize) -> Self {
        Self {
            inner,
            max_episode_steps,
            elapsed: 0,
        }
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            max_episode_steps: Some(self.max_episode_steps),
            ..self.inner.spec()
        }
    }

    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
        self.elapsed = 0;
        self.inner.reset(seed)
    }

    fn step(&mut self, action: &Tensor) -> Result<Step> {
        let mut step = self.inner.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            step.truncated = true;
        }
        Ok(step)
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        self.inner.task_functions()
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        self.inner.task_distribution()
    }
}

impl Env for Box<dyn Env> {
    fn spec(&self) -> EnvSpec {
        (**self).spec()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &Tensor) -> Result<Step> {
        (**self).step(action)
    }
    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        (**self).task_functions()
    }
    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        (**self).task_distribution()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Drift;

    #[test]
    fn time_limit_truncates_at_the_limit_and_resets_its_counter() {
        let mut env = TimeLimit::new(Drift::new(), 3);
        assert_eq!(env.spec().max_episode_steps, Some(3));
        env.reset(Some(0)).unwrap();
        let a = vector(&[0.1]).unwrap();
        assert!(!env.step(&a).unwrap().truncated);
        assert!(!env.step(&a).unwrap().truncated);
        let last = env.step(&a).unwrap();
        assert!(last.truncated && !last.terminated);
        env.reset(None).unwrap();
        assert_eq!(env.elapsed_steps(), 0);
        assert!(!env.step(&a).unwrap().truncated);
    }

    #[test]
    fn read_action_rejects_a_wrong_length() {
        let err = read_action(&vector(&[1.0, 2.0]).unwrap(), 3).unwrap_err();
        assert!(err.to_string().contains("expected 3 elements"), "{err}");
        assert_eq!(read_action(&vector(&[1.0]).unwrap(), 1).unwrap(), vec![1.0]);
    }
}

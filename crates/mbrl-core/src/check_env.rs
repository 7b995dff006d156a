//! `check_env`: the properties every environment must have (Gymnasium's `env_checker`, plus
//! the model-based requirement that task functions agree with `step`).
//!
//! Checked on two fresh copies driven by the same seeded random actions:
//! - `reset(Some(seed))` is deterministic, and reseeding reproduces the first observation;
//! - `step` is deterministic (observations, rewards, flags bit for bit);
//! - observations lie in the observation space and rewards are finite;
//! - the batched task functions reproduce `step`'s reward (within a tolerance relative to the
//!   reward's size) and termination flag on every collected transition;
//! - task-function rewards are differentiable in their inputs, with finite gradients.

use candle_core::{Device, Tensor, Var};

use crate::env::{Env, EnvFactory};
use crate::seeding::{stream_rng, Stream};
use crate::{Error, Result};

/// What `check_env` runs.
#[derive(Debug, Clone)]
pub struct CheckEnvOptions {
    /// Seed of the resets and of the random actions.
    pub seed: u64,
    /// Number of random steps.
    pub steps: usize,
    /// Allowed `|r_fn - r| / (1 + |r|)` between task-function and `step` rewards.
    pub reward_tolerance: f64,
}

impl Default for CheckEnvOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            steps: 500,
            reward_tolerance: 1e-4,
        }
    }
}

/// What `check_env` saw.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Steps taken.
    pub steps: usize,
    /// Episodes started.
    pub episodes: usize,
    /// Largest relative reward difference between task functions and `step`.
    pub max_reward_error: f64,
}

/// Runs the checks on two environments built by `factory`.
pub fn check_env(factory: &EnvFactory, options: &CheckEnvOptions) -> Result<CheckReport> {
    let mut a = factory()?;
    let mut b = factory()?;
    let name = a.spec().name;
    let fail = |reason: String| Error::EnvCheck {
        env: name.clone(),
        reason,
    };
    let obs_dim = a.observation_space().flat_dim();
    let act_dim = a.action_space().flat_dim();
    let mut action_rng = stream_rng(options.seed, Stream::Policy);

    let (first_a, _) = a.reset(Some(options.seed))?;
    let (first_b, _) = b.reset(Some(options.seed))?;
    let first = first_a.to_vec1::<f32>()?;
    if first != first_b.to_vec1::<f32>()? {
        return Err(fail(
            "reset with the same seed gave different observations".into(),
        ));
    }
    if !a.observation_space().contains(&first) {
        return Err(fail(format!(
            "reset observation {first:?} outside the observation space"
        )));
    }

    let (mut obs_buf, mut act_buf, mut next_buf) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rewards, mut terms) = (Vec::new(), Vec::new());
    let mut obs = first.clone();
    let mut episodes = 1;
    for t in 0..options.steps {
        let action = a.action_space().sample(&mut action_rng);
        let action_t = crate::env::vector(&action)?;
        let sa = a.step(&action_t)?;
        let sb = b.step(&action_t)?;
        let next = sa.obs.to_vec1::<f32>()?;
        if next != sb.obs.to_vec1::<f32>()?
            || sa.reward.to_bits() != sb.reward.to_bits()
            || (sa.terminated, sa.truncated) != (sb.terminated, sb.truncated)
        {
            return Err(fail(format!(
                "step {t} is not deterministic under the same seed and actions"
            )));
        }
        if !a.observation_space().contains(&next) {
            return Err(fail(format!(
                "step {t}: observation {next:?} outside the observation space"
            )));
        }
        if !sa.reward.is_finite() {
            return Err(fail(format!(
                "step {t}: reward {} is not finite",
                sa.reward
            )));
        }
        obs_buf.extend_from_slice(&obs);
        act_buf.extend_from_slice(&action);
        next_buf.extend_from_slice(&next);
        rewards.push(sa.reward);
        terms.push(sa.terminated);
        obs = next;
        if sa.terminated || sa.truncated {
            let seed = options.seed.wrapping_add(episodes as u64);
            obs = a.reset(Some(seed))?.0.to_vec1::<f32>()?;
            b.reset(Some(seed))?;
            episodes += 1;
        }
    }

    let n = rewards.len();
    let dev = Device::Cpu;
    let obs_var = Var::from_tensor(&Tensor::from_vec(obs_buf, (n, obs_dim), &dev)?)?;
    let act_var = Var::from_tensor(&Tensor::from_vec(act_buf, (n, act_dim), &dev)?)?;
    let next_var = Var::from_tensor(&Tensor::from_vec(next_buf, (n, obs_dim), &dev)?)?;
    let task = a.task_functions();
    let reward_fn = task.reward(
        obs_var.as_tensor(),
        act_var.as_tensor(),
        next_var.as_tensor(),
    )?;
    let term_fn = task.terminated(
        obs_var.as_tensor(),
        act_var.as_tensor(),
        next_var.as_tensor(),
    )?;
    let reward_fn_values = reward_fn
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let term_fn_values = term_fn.to_vec1::<f32>()?;
    let mut max_err: f64 = 0.0;
    for i in 0..n {
        let err = (reward_fn_values[i] - rewards[i]).abs() / (1.0 + rewards[i].abs());
        max_err = max_err.max(err);
        if err > options.reward_tolerance {
            return Err(fail(format!(
                "transition {i}: task-function reward {} differs from step reward {}",
                reward_fn_values[i], rewards[i]
            )));
        }
        if (term_fn_values[i] > 0.5) != terms[i] {
            return Err(fail(format!(
                "transition {i}: task-function termination {} differs from step's {}",
                term_fn_values[i], terms[i]
            )));
        }
    }
    if n > 0 {
        check_reward_gradient(&reward_fn, &[&obs_var, &act_var, &next_var]).map_err(fail)?;
    }

    let (again, _) = a.reset(Some(options.seed))?;
    if again.to_vec1::<f32>()? != first {
        return Err(fail(
            "reseeding did not reproduce the first observation".into(),
        ));
    }
    Ok(CheckReport {
        steps: n,
        episodes,
        max_reward_error: max_err,
    })
}

/// The reward must have a gradient with respect to at least one of its inputs (what a
/// model-based learner differentiates through), and every gradient must be finite.
fn check_reward_gradient(reward: &Tensor, inputs: &[&Var]) -> std::result::Result<(), String> {
    let grads = reward
        .sum_all()
        .and_then(|s| s.backward())
        .map_err(|e| e.to_string())?;
    let mut any = false;
    for var in inputs {
        if let Some(g) = grads.get(var.as_tensor()) {
            any = true;
            let total = g
                .abs()
                .and_then(|g| g.sum_all())
                .and_then(|s| s.to_scalar::<f32>())
                .map_err(|e| e.to_string())?;
            if !total.is_finite() {
                return Err(format!("reward gradient is not finite ({total})"));
            }
        }
    }
    if any {
        Ok(())
    } else {
        Err("the task-function reward has no gradient w.r.t. obs, action or next_obs".into())
    }
}

/// Wraps a concrete environment constructor as an [`EnvFactory`].
pub fn factory<E: Env + 'static>(make: impl Fn() -> E + Send + Sync + 'static) -> EnvFactory {
    std::sync::Arc::new(move || Ok(Box::new(make()) as Box<dyn Env>))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::{Info, Step, TimeLimit};
    use crate::testing::Drift;

    #[test]
    fn the_reference_env_passes() {
        let report = check_env(
            &factory(|| TimeLimit::new(Drift::new(), 20)),
            &CheckEnvOptions::default(),
        )
        .unwrap();
        assert_eq!(report.steps, 500);
        assert!(report.episodes > 1);
        assert!(report.max_reward_error < 1e-6);
    }

    /// Drift whose `step` reward is off by one: the task functions disagree with it.
    struct WrongReward(Drift);

    impl Env for WrongReward {
        fn spec(&self) -> crate::env::EnvSpec {
            self.0.spec()
        }
        fn observation_space(&self) -> &crate::space::Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> &crate::space::Space {
            self.0.action_space()
        }
        fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
            self.0.reset(seed)
        }
        fn step(&mut self, action: &Tensor) -> Result<Step> {
            let mut s = self.0.step(action)?;
            s.reward += 1.0;
            Ok(s)
        }
        fn task_functions(&self) -> Arc<dyn crate::task::TaskFunctions> {
            self.0.task_functions()
        }
    }

    #[test]
    fn a_reward_mismatch_is_reported() {
        let err = check_env(
            &factory(|| TimeLimit::new(WrongReward(Drift::new()), 20)),
            &CheckEnvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("differs from step reward"), "{err}");
    }

    /// Drift whose reset ignores the seed: not reproducible.
    struct Unseeded(Drift, u64);

    impl Env for Unseeded {
        fn spec(&self) -> crate::env::EnvSpec {
            self.0.spec()
        }
        fn observation_space(&self) -> &crate::space::Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> &crate::space::Space {
            self.0.action_space()
        }
        fn reset(&mut self, _seed: Option<u64>) -> Result<(Tensor, Info)> {
            self.1 += 1;
            self.0.reset(Some(self.1))
        }
        fn step(&mut self, action: &Tensor) -> Result<Step> {
            self.0.step(action)
        }
        fn task_functions(&self) -> Arc<dyn crate::task::TaskFunctions> {
            self.0.task_functions()
        }
    }

    #[test]
    fn ignoring_the_reset_seed_is_reported() {
        let counter = std::sync::atomic::AtomicU64::new(0);
        let make = move || {
            let start = counter.fetch_add(100, std::sync::atomic::Ordering::SeqCst);
            Unseeded(Drift::new(), start)
        };
        let err = check_env(&factory(make), &CheckEnvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("same seed"), "{err}");
    }
}

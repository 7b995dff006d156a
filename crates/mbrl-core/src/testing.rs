//! Tiny reference implementations of the core traits, for tests and examples.
//!
//! [`Drift`] is a one-dimensional environment `s' = s + a` with reward `-(s' - goal)^2`,
//! termination when `|s'| > 5`, and a task family over the goal `{-1, +1}`. It is small enough
//! to check every generic piece (wrappers, vectorisation, rollouts, `check_env`) against hand
//! computations.

use std::sync::Arc;

use candle_core::Tensor;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{read_action, vector, Env, EnvSpec, Info, Step};
use crate::space::{BoxSpace, Space};
use crate::task::{Task, TaskDistribution, TaskFunctions};
use crate::{Error, Result};

/// The position beyond which [`Drift`] terminates.
pub const DRIFT_BOUND: f32 = 5.0;

/// One-dimensional drift environment with a goal task family.
pub struct Drift {
    obs_space: Space,
    act_space: Space,
    state: f32,
    goal: f32,
    rng: ChaCha8Rng,
}

impl Drift {
    /// A drift environment with goal `+1`.
    pub fn new() -> Self {
        Self {
            obs_space: Space::Box(BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, 1).unwrap()),
            act_space: Space::Box(BoxSpace::uniform(-1.0, 1.0, 1).unwrap()),
            state: 0.0,
            goal: 1.0,
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }

    /// The current position.
    pub fn state(&self) -> f32 {
        self.state
    }
}

impl Default for Drift {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Drift {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: "drift".into(),
            max_episode_steps: None,
        }
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.state = self.rng.random_range(-1.0..1.0);
        Ok((vector(&[self.state])?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> Result<Step> {
        let a = read_action(action, 1)?[0].clamp(-1.0, 1.0);
        self.state += a;
        let reward = -((self.state - self.goal) as f64).powi(2);
        Ok(Step {
            obs: vector(&[self.state])?,
            reward,
            terminated: self.state.abs() > DRIFT_BOUND,
            truncated: false,
            info: Info::from([("goal".to_string(), self.goal as f64)]),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(DriftTask { goal: self.goal })
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        Some(self)
    }
}

impl TaskDistribution for Drift {
    fn family(&self) -> &str {
        "goal"
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| {
                let goal = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                Task::new(format!("goal={goal:+}"), vec![goal])
            })
            .collect()
    }

    fn set_task(&mut self, task: &Task) -> Result<()> {
        match task.params.as_slice() {
            [goal] => {
                self.goal = *goal as f32;
                Ok(())
            }
            other => Err(Error::InvalidArgument(format!(
                "drift task needs one parameter (the goal), got {other:?}"
            ))),
        }
    }

    fn current_task(&self) -> Task {
        Task::new(format!("goal={:+}", self.goal), vec![self.goal as f64])
    }
}

/// Reward `-(s' - goal)^2` and termination `|s'| > 5` of [`Drift`].
struct DriftTask {
    goal: f32,
}

impl TaskFunctions for DriftTask {
    fn reward(&self, _obs: &Tensor, _act: &Tensor, next_obs: &Tensor) -> Result<Tensor> {
        Ok(next_obs
            .affine(1.0, -(self.goal as f64))?
            .sqr()?
            .neg()?
            .squeeze(1)?)
    }

    fn terminated(&self, _obs: &Tensor, _act: &Tensor, next_obs: &Tensor) -> Result<Tensor> {
        Ok(next_obs
            .abs()?
            .gt(DRIFT_BOUND as f64)?
            .to_dtype(candle_core::DType::F32)?
            .squeeze(1)?)
    }
}

/// A linear Gaussian policy `a ~ N(obs W + b, exp(log_std)^2)`, the smallest
/// [`GaussianPolicy`](crate::policy::GaussianPolicy).
pub struct LinearGaussianPolicy {
    params: Vec<candle_core::Var>,
}

impl LinearGaussianPolicy {
    /// Zero weights and bias, constant `init_log_std`; parameters are `[W, b, log_std]`.
    pub fn new(obs_dim: usize, act_dim: usize, init_log_std: f32) -> Result<Self> {
        use candle_core::{DType, Device, Var};
        let dev = Device::Cpu;
        let w = Var::from_tensor(
            &Tensor::arange(0u32, (obs_dim * act_dim) as u32, &dev)?
                .to_dtype(DType::F32)?
                .affine(0.1, -0.05)?
                .reshape((obs_dim, act_dim))?,
        )?;
        let b = Var::zeros(act_dim, DType::F32, &dev)?;
        let log_std = Var::from_tensor(&Tensor::full(init_log_std, act_dim, &dev)?)?;
        Ok(Self {
            params: vec![w, b, log_std],
        })
    }
}

impl crate::policy::Policy for LinearGaussianPolicy {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        use crate::policy::GaussianPolicy;
        let dist = self.distribution(obs)?;
        if deterministic {
            Ok(dist.mode())
        } else {
            dist.sample(rng)
        }
    }
}

impl crate::policy::GaussianPolicy for LinearGaussianPolicy {
    fn parameters(&self) -> &[candle_core::Var] {
        &self.params
    }

    fn distribution_with(
        &self,
        params: &[Tensor],
        obs: &Tensor,
    ) -> Result<crate::policy::DiagGaussian> {
        let [w, b, log_std] = params else {
            return Err(Error::InvalidArgument(format!(
                "linear policy takes 3 parameter tensors, got {}",
                params.len()
            )));
        };
        let mean = obs.matmul(w)?.broadcast_add(b)?;
        crate::policy::DiagGaussian::new(mean, log_std.clone())
    }
}

/// A known ensemble for [`Drift`]: member `k` predicts `s' = s + (1 + 0.1 k) a`, optionally
/// with a constant log-variance (a probabilistic member).
pub struct ScaledDriftEnsemble {
    members: usize,
    log_var: Option<f32>,
}

impl ScaledDriftEnsemble {
    /// `members` members; `log_var` makes them probabilistic.
    pub fn new(members: usize, log_var: Option<f32>) -> Self {
        Self { members, log_var }
    }
}

impl crate::model::DynamicsModel for ScaledDriftEnsemble {
    fn ensemble_size(&self) -> usize {
        self.members
    }

    fn predict_members(
        &self,
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<crate::model::MemberPredictions> {
        use crate::model::broadcast_to_members;
        let k = self.members;
        let obs = broadcast_to_members(obs, k)?;
        let act = broadcast_to_members(act, k)?;
        let scales: Vec<f32> = (0..k).map(|i| 1.0 + 0.1 * i as f32).collect();
        let scales = Tensor::from_vec(scales, (k, 1, 1), obs.device())?;
        let mean = (obs + act.broadcast_mul(&scales)?)?;
        let log_var = match self.log_var {
            Some(v) => Some(Tensor::full(v, mean.dims(), mean.device())?),
            None => None,
        };
        Ok(crate::model::MemberPredictions { mean, log_var })
    }
}

/// Trains `algo` for `iterations` iterations and evaluates its policy after each on the
/// episodes of `seeds` in an environment of `factory`: `(real steps, mean return)` per
/// iteration, each also printed to stderr (the learning tests' curves).
pub fn learning_curve(
    algo: &mut dyn crate::algorithm::Algorithm,
    factory: &crate::env::EnvFactory,
    seeds: &[u64],
    iterations: u64,
) -> Result<Vec<(u64, f64)>> {
    (1..=iterations)
        .map(|i| {
            let stats = algo.train_iteration(i)?;
            let ret =
                crate::rollout::evaluate(factory()?.as_mut(), algo.policy(), seeds)?.mean_return();
            eprintln!(
                "{} iteration {i}: {} real steps, return {ret:.3}, {:?}",
                algo.name(),
                stats.env_steps,
                stats.metrics
            );
            Ok((stats.env_steps, ret))
        })
        .collect()
}

/// The mean return of uniformly random actions on the episodes of `seeds` in an environment
/// of `factory`: the reference score the learning tests state next to their thresholds.
pub fn random_return(factory: &crate::env::EnvFactory, seeds: &[u64]) -> Result<f64> {
    let mut env = factory()?;
    let space = env
        .action_space()
        .as_box()
        .ok_or_else(|| Error::InvalidArgument("random actions need a box action space".into()))?
        .clone();
    let policy = crate::policy::RandomPolicy::new(space)?;
    Ok(crate::rollout::evaluate(env.as_mut(), &policy, seeds)?.mean_return())
}

/// The largest absolute elementwise difference of two tensors of one shape (for assertions).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_dtype(candle_core::DType::F32)?
        .to_scalar::<f32>()?)
}

//! [`ModelEnv`]: a dynamics model wrapped as a batched environment (MBRL-Lib's `ModelEnv`).
//! It lives in the shared layer because every model-based algorithm crate rolls out in it;
//! `mbrl-models` re-exports it.
//!
//! One call steps a whole batch of imagined states: the model predicts every member's next
//! state in one batched computation, the configured [`SamplingMode`] (thesis Appendix A.4.1)
//! turns those into one next state per row, and the task's
//! [`TaskFunctions`] give rewards and terminations. Everything is a tensor op over the batch,
//! differentiable with respect to `obs` and `act` wherever the mode is.

use std::sync::Arc;

use crate::model::{DynamicsModel, MemberPredictions};
use crate::policy::standard_normal;
use crate::task::TaskFunctions;
use candle_core::{Device, Tensor};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the ensemble's predictions become one next state (thesis Appendix A.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// (1) Each rollout uses a uniformly drawn member, drawn anew at every step (ME-TRPO).
    #[default]
    StepRand,
    /// (2) A normal distribution fitted to the members' predictions: their mean plus their
    /// (population) standard deviation times standard-normal noise, per dimension.
    ModelMeanStd,
    /// (3) The mean of the members' predictions.
    ModelMean,
    /// (4) The per-dimension median of the members' predictions (mean of the two middle
    /// values for an even ensemble).
    ModelMed,
    /// (5) Each rollout uses one member, drawn uniformly at the start of the episode and kept
    /// for all of it: use [`ModelEnv::draw_episode_members`] and [`ModelEnv::step_episodes`].
    EpsRand,
    /// (6) Every rollout uses member 0.
    OneModel,
}

/// Options of a [`ModelEnv`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelEnvConfig {
    /// Ensemble sampling mode. Default `step_rand`.
    pub sampling: SamplingMode,
    /// Draw from probabilistic members' predictive Gaussians instead of using their means
    /// (no effect on deterministic members). Default `true`.
    pub sample_noise: bool,
    /// Clip every next-observation coordinate to `[-c, c]` (MB-MPO: 1000, MAAC: 100).
    /// Default none.
    pub obs_clip: Option<f32>,
    /// Clip rewards to `[-c, c]` (ME-TRPO half-cheetah: 10). Default none.
    pub reward_clip: Option<f32>,
}

impl Default for ModelEnvConfig {
    fn default() -> Self {
        Self {
            sampling: SamplingMode::StepRand,
            sample_noise: true,
            obs_clip: None,
            reward_clip: None,
        }
    }
}

/// The result of stepping a batch of imagined states.
#[derive(Debug, Clone)]
pub struct ModelStep {
    /// `[B, obs_dim]` next observations.
    pub next_obs: Tensor,
    /// `[B]` rewards of the transitions.
    pub reward: Tensor,
    /// `[B]` `1.0` where the transition ends in a terminal state.
    pub terminated: Tensor,
}

/// A dynamics model used as a batched environment.
pub struct ModelEnv<M> {
    model: M,
    task: Arc<dyn TaskFunctions>,
    config: ModelEnvConfig,
}

impl<M: DynamicsModel> ModelEnv<M> {
    /// Wraps `model` with the task's reward and termination functions.
    pub fn new(model: M, task: Arc<dyn TaskFunctions>, config: ModelEnvConfig) -> Result<Self> {
        for (key, clip) in [
            ("obs_clip", config.obs_clip),
            ("reward_clip", config.reward_clip),
        ] {
            if let Some(c) = clip {
                if c.is_nan() || c <= 0.0 {
                    return Err(Error::InvalidArgument(format!(
                        "`{key}` must be a positive bound, got {c}"
                    )));
                }
            }
        }
        if model.ensemble_size() == 0 {
            return Err(Error::InvalidArgument(
                "a model environment needs at least one ensemble member".into(),
            ));
        }
        Ok(Self {
            model,
            task,
            config,
        })
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The options.
    pub fn config(&self) -> &ModelEnvConfig {
        &self.config
    }

    /// Replaces the task functions (e.g. after switching the task of a meta-RL family).
    pub fn set_task(&mut self, task: Arc<dyn TaskFunctions>) {
        self.task = task;
    }

    /// One uniformly drawn member per rollout, for [`SamplingMode::EpsRand`] episodes.
    pub fn draw_episode_members(&self, rollouts: usize, rng: &mut dyn RngCore) -> Vec<usize> {
        let k = self.model.ensemble_size();
        (0..rollouts).map(|_| rng.random_range(0..k)).collect()
    }

    /// Steps `obs` `[B, obs_dim]` with `act` `[B, act_dim]` in the configured mode.
    /// [`SamplingMode::EpsRand`] needs the episode's members: use
    /// [`ModelEnv::step_episodes`].
    pub fn step(&self, obs: &Tensor, act: &Tensor, rng: &mut dyn RngCore) -> Result<ModelStep> {
        let next = match self.config.sampling {
            SamplingMode::EpsRand => {
                return Err(Error::InvalidArgument(
                    "sampling mode eps_rand keeps one member per episode: draw them with \
                     draw_episode_members and step with step_episodes"
                        .into(),
                ))
            }
            SamplingMode::StepRand => {
                let members = self.draw_episode_members(obs.dim(0)?, rng);
                self.member_rows(obs, act, &members, rng)?
            }
            SamplingMode::OneModel => self.predictions(obs, act, rng)?.get(0)?,
            SamplingMode::ModelMean => self.predictions(obs, act, rng)?.mean(0)?,
            SamplingMode::ModelMed => median_over_members(&self.predictions(obs, act, rng)?)?,
            SamplingMode::ModelMeanStd => {
                let all = self.predictions(obs, act, rng)?;
                let mean = all.mean_keepdim(0)?;
                let std = all.broadcast_sub(&mean)?.sqr()?.mean(0)?.sqrt()?;
                let mean = mean.squeeze(0)?;
                let eps = standard_normal(mean.dims(), rng, mean.device())?;
                (mean + (std * eps)?)?
            }
        };
        self.finish(obs, act, next)
    }

    /// Steps a batch of episodes: in [`SamplingMode::EpsRand`] row `i` uses member
    /// `episode_members[i]` (from [`ModelEnv::draw_episode_members`] at the episode's start);
    /// every other mode ignores `episode_members` and behaves as [`ModelEnv::step`].
    pub fn step_episodes(
        &self,
        obs: &Tensor,
        act: &Tensor,
        episode_members: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<ModelStep> {
        match self.config.sampling {
            SamplingMode::EpsRand => self.step_members(obs, act, episode_members, rng),
            _ => self.step(obs, act, rng),
        }
    }

    /// Steps with row `i` predicted by member `members[i]`, whatever the mode (e.g. MB-MPO's
    /// rollouts per model).
    pub fn step_members(
        &self,
        obs: &Tensor,
        act: &Tensor,
        members: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<ModelStep> {
        let next = self.member_rows(obs, act, members, rng)?;
        self.finish(obs, act, next)
    }

    /// Every member's next state for every row, `[K, B, obs_dim]`, sampled if configured.
    fn predictions(&self, obs: &Tensor, act: &Tensor, rng: &mut dyn RngCore) -> Result<Tensor> {
        check_batch(obs, act)?;
        let all = self.model.predict_members(obs, act)?;
        self.draw(all, rng)
    }

    fn draw(&self, all: MemberPredictions, rng: &mut dyn RngCore) -> Result<Tensor> {
        Ok(if self.config.sample_noise {
            all.sample(rng)?
        } else {
            all.mean
        })
    }

    /// Row `i` from member `members[i]`. Rows are grouped by member and padded to equal
    /// counts, so the model evaluates each row once (plus padding) rather than `K` times.
    fn member_rows(
        &self,
        obs: &Tensor,
        act: &Tensor,
        members: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let b = check_batch(obs, act)?;
        let k = self.model.ensemble_size();
        if members.len() != b {
            return Err(Error::InvalidArgument(format!(
                "{} members given for a batch of {b} rows",
                members.len()
            )));
        }
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (i, &m) in members.iter().enumerate() {
            let group = rows.get_mut(m).ok_or_else(|| {
                Error::InvalidArgument(format!("member {m} requested from an ensemble of {k}"))
            })?;
            group.push(i as u32);
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut gather = Vec::with_capacity(k * width);
        let mut scatter = vec![0u32; b];
        for (m, group) in rows.iter().enumerate() {
            for j in 0..width {
                let row = group.get(j).copied().unwrap_or(0);
                if j < group.len() {
                    scatter[row as usize] = (m * width + j) as u32;
                }
                gather.push(row);
            }
        }
        let gather = Tensor::from_vec(gather, k * width, &Device::Cpu)?;
        let per_member = |t: &Tensor| -> Result<Tensor> {
            Ok(t.index_select(&gather, 0)?.reshape((k, width, t.dim(1)?))?)
        };
        let all = self
            .model
            .predict_members(&per_member(obs)?, &per_member(act)?)?;
        let drawn = self.draw(all, rng)?;
        let d = drawn.dim(2)?;
        let scatter = Tensor::from_vec(scatter, b, &Device::Cpu)?;
        Ok(drawn.reshape((k * width, d))?.index_select(&scatter, 0)?)
    }

    /// Clipping, rewards and terminations of the chosen next states.
    fn finish(&self, obs: &Tensor, act: &Tensor, next_obs: Tensor) -> Result<ModelStep> {
        let next_obs = match self.config.obs_clip {
            Some(c) => next_obs.clamp(-c, c)?,
            None => next_obs,
        };
        let reward = self.task.reward(obs, act, &next_obs)?;
        let reward = match self.config.reward_clip {
            Some(c) => reward.clamp(-c, c)?,
            None => reward,
        };
        let terminated = self.task.terminated(obs, act, &next_obs)?;
        Ok(ModelStep {
            next_obs,
            reward,
            terminated,
        })
    }
}

/// Checks `[B, dim]` inputs with equal `B` and returns `B`.
fn check_batch(obs: &Tensor, act: &Tensor) -> Result<usize> {
    if obs.rank() != 2 || act.rank() != 2 || obs.dim(0)? != act.dim(0)? {
        return Err(Error::InvalidArgument(format!(
            "ModelEnv steps [B, obs_dim] observations with [B, act_dim] actions, got {:?} and {:?}",
            obs.dims(),
            act.dims()
        )));
    }
    Ok(obs.dim(0)?)
}

/// Per-dimension median over the leading member dimension of `[K, B, D]`; differentiable
/// (a sort followed by a gather).
fn median_over_members(all: &Tensor) -> Result<Tensor> {
    let k = all.dim(0)?;
    let last = all.permute((1, 2, 0))?.contiguous()?;
    let order = last.arg_sort_last_dim(true)?;
    let sorted = last.gather(&order, 2)?;
    let median = if k % 2 == 1 {
        sorted.narrow(2, k / 2, 1)?
    } else {
        (sorted.narrow(2, k / 2 - 1, 2)?.sum_keepdim(2)? * 0.5)?
    };
    Ok(median.squeeze(2)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_ensembles() {
        let odd = Tensor::new(&[[[3.0f32]], [[1.0]], [[2.0]]], &Device::Cpu).unwrap();
        let m = median_over_members(&odd).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(m, vec![vec![2.0]]);
        let even = Tensor::new(&[[[4.0f32]], [[1.0]], [[2.0]], [[10.0]]], &Device::Cpu).unwrap();
        let m = median_over_members(&even)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m, vec![vec![3.0]]);
    }
}

//! The configuration tables of SAC, MBPO and MAAC (besides `[actor]` and `[sac]`, which live
//! with the learner): real-data collection, imagined data, and MAAC's objective.

use mbrl_core::model_env::{ModelEnvConfig, SamplingMode};
use mbrl_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::imagined::RolloutSchedule;

/// The `[off_policy]` table: real data and update frequency (all three algorithms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffPolicyConfig {
    /// Real steps per training iteration, in whole episodes (an iteration ends with the
    /// episode that reaches it). Default `1000`.
    pub steps_per_iteration: usize,
    /// Uniformly random actions for the first steps; gradient updates (and, for MBPO/MAAC,
    /// the first model fit) start after them. Default `5000`.
    pub random_steps: usize,
    /// Real replay-buffer capacity (FIFO). Default `1000000`.
    pub buffer_capacity: usize,
    /// Gradient steps per real step. Default `1` (SAC; MBPO used 20, MAAC 8).
    pub updates_per_step: usize,
}

impl Default for OffPolicyConfig {
    fn default() -> Self {
        Self {
            steps_per_iteration: 1000,
            random_steps: 5000,
            buffer_capacity: 1_000_000,
            updates_per_step: 1,
        }
    }
}

impl OffPolicyConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("off_policy.steps_per_iteration", self.steps_per_iteration),
            ("off_policy.buffer_capacity", self.buffer_capacity),
            ("off_policy.updates_per_step", self.updates_per_step),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// The `[imagination]` table: the model and the imagined data of MBPO and MAAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImaginationConfig {
    /// Refit the model every this many real steps (after the random phase). Default `250`
    /// (MBPO; MAAC's reference: 1000).
    pub model_train_every: usize,
    /// Generate imagined data every this many real steps. Default `250`.
    pub rollout_every: usize,
    /// Start states (real, uniformly from the buffer) per generation. Default `100000`.
    pub rollout_batch: usize,
    /// Rollout length schedule `[first, last, k_first, k_last]` over iterations. Default
    /// `[20, 100, 1, 1]` (one-step rollouts; MBPO HalfCheetah `[20, 150, 1, 1]`, Hopper
    /// `[20, 150, 1, 15]`).
    pub rollout_schedule: RolloutSchedule,
    /// Imagined-buffer capacity; default MBPO's rule, `rollout_batch * length *
    /// (steps_per_iteration / rollout_every) * retain_iterations` (MAAC's reference: 2000000).
    pub model_buffer_capacity: Option<usize>,
    /// Iterations of imagined data kept by MBPO's capacity rule. Default `1`.
    pub retain_iterations: usize,
    /// Share of real transitions in each minibatch. Default `0.05`.
    pub real_ratio: f64,
    /// Roll out in the members with the lowest validation loss only (MBPO's elites: 5 of 7);
    /// default all members.
    pub elites: Option<usize>,
    /// How imagined steps use the ensemble. Default `step_rand` with predictive noise and
    /// observations clipped to `[-100, 100]` (MAAC's reference).
    pub model_env: ModelEnvConfig,
}

impl Default for ImaginationConfig {
    fn default() -> Self {
        Self {
            model_train_every: 250,
            rollout_every: 250,
            rollout_batch: 100_000,
            rollout_schedule: RolloutSchedule([20, 100, 1, 1]),
            model_buffer_capacity: None,
            retain_iterations: 1,
            real_ratio: 0.05,
            elites: None,
            model_env: ModelEnvConfig {
                sampling: SamplingMode::StepRand,
                sample_noise: true,
                obs_clip: Some(100.0),
                reward_clip: None,
            },
        }
    }
}

impl ImaginationConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("imagination.model_train_every", self.model_train_every),
            ("imagination.rollout_every", self.rollout_every),
            ("imagination.rollout_batch", self.rollout_batch),
            ("imagination.retain_iterations", self.retain_iterations),
            (
                "imagination.model_buffer_capacity",
                self.model_buffer_capacity.unwrap_or(1),
            ),
            ("imagination.elites", self.elites.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{key} must be at least 1")));
            }
        }
        if !(0.0..=1.0).contains(&self.real_ratio) {
            return Err(Error::InvalidArgument(format!(
                "imagination.real_ratio must be in [0, 1], got {}",
                self.real_ratio
            )));
        }
        if matches!(self.model_env.sampling, SamplingMode::EpsRand) {
            return Err(Error::InvalidArgument(
                "imagination.model_env.sampling = \"eps_rand\" needs whole episodes; use \
                 step_rand (MBPO, MAAC) or a deterministic mode"
                    .into(),
            ));
        }
        self.rollout_schedule
            .validate("imagination.rollout_schedule")
    }
}

/// How the critics' targets are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticTargets {
    /// STEVE's inverse-variance mix of horizons `0..=target_horizon` (MAAC).
    Steve,
    /// One-step soft Bellman targets (SAC; the "-STEVE" ablation of Fig. 21).
    OneStep,
}

/// The `[maac]` table: MAAC's objective and targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaacConfig {
    /// Model steps `H` of the actor's objective before the terminal critic; `0` is the "H = 0"
    /// ablation (SAC's actor loss). Default `3` (HalfCheetah, Hopper, Ant; Walker 1).
    pub horizon: usize,
    /// Actions averaged in the terminal critic; `1` is the "single sample" ablation.
    /// Default `5`.
    pub action_samples: usize,
    /// Critic targets. Default `steve`.
    pub targets: CriticTargets,
    /// Largest horizon of the STEVE targets. Default `2`.
    pub target_horizon: usize,
}

impl Default for MaacConfig {
    fn default() -> Self {
        Self {
            horizon: 3,
            action_samples: 5,
            targets: CriticTargets::Steve,
            target_horizon: 2,
        }
    }
}

impl MaacConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        if self.action_samples == 0 {
            return Err(Error::InvalidArgument(
                "maac.action_samples must be at least 1".into(),
            ));
        }
        if self.horizon > 50 || self.target_horizon > 50 {
            return Err(Error::InvalidArgument(format!(
                "maac.horizon ({}) and maac.target_horizon ({}) are model steps and at most 50 \
                 (the thesis uses 1-3)",
                self.horizon, self.target_horizon
            )));
        }
        Ok(())
    }
}

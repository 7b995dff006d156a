//! ME-TRPO, Model-Ensemble Trust-Region Policy Optimisation (thesis Ch. 4, Algorithm 2).
//!
//! Each iteration, in order:
//! 1. **Data** — collect real steps with the exploration policy of Appendix A.1.1: per
//!    rollout a fixed action std drawn from `U(0, exploration_max_std)` and Gaussian parameter
//!    noise with std `parameter_noise_scale * |last policy change|`. The first third of the new
//!    transitions (trajectory order) go to the validation buffer, the rest to training.
//! 2. **Model** — fit the ensemble (`TrainableModel::fit`, early stopping on the validation
//!    buffer, Appendix A.1.2).
//! 3. **Policy** — TRPO (or PPO: ME-PPO) on imagined rollouts from real start states, the
//!    ensemble sampled per `model_env.sampling` (`step_rand` by default). Every
//!    `validate_every` updates the deterministic policy is scored in every member from fixed
//!    start states; a check passes when at least `improvement_ratio` of the members improved on
//!    the previous check; the phase stops `patience` updates after the last passing check (or
//!    at `max_policy_iterations`) and the policy of the last passing check is restored.
//!    `validation` selects the judge of Appendix A.4.2's study instead ([`PolicyValidation`]):
//!    one member, the TRPO batches' mean imagined return, the real environment (an oracle), or
//!    none (a fixed `max_policy_iterations`).
//!
//! A single-model ensemble (`model.members = 1`) is the single-model TRPO baseline of Ch. 4.
//! `model_bias_max` trains on deliberately biased, noisy models (the robustness comparison
//! with MB-MPO of Sec. 5.5.3, Fig. 10; `mbrl_core::biased_model`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use mbrl_core::algorithm::{
    Algorithm, AlgorithmEntry, BuildContext, IterationStats, PlanningParts,
};
use mbrl_core::biased_model::{check_bias_settings, maybe_biased};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::data::Trajectory;
use mbrl_core::env::Env;
use mbrl_core::model::TrainableModel;
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::policy::{standard_normal, DiagGaussian, GaussianPolicy, Policy};
use mbrl_core::rollout::{evaluate, rollout_episode, DEFAULT_MAX_EPISODE_STEPS};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::advantages::AdvantageConfig;
use crate::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use crate::imagination::{imagine_members, returns_per_member};
use crate::imagined_update::{draw_rows, ImaginedUpdate};
use crate::learner_rngs::{LearnerProgress, LearnerRngs};
use crate::model_data::{
    env_and_model, fit_metrics, learner_tensors, load_learner_tensors, mean, mean_finished_return,
    model_and_policy_planning_parts, real_start_states, with_fit_columns, ModelData,
};
use crate::model_free::{table, POLICY_ADAM};
use crate::ppo::PpoConfig;
use crate::trpo::TrpoConfig;

/// What judges a policy phase's progress (thesis Appendix A.4.2). Every `validate_every`
/// updates the judges score the policy; a check passes when at least `improvement_ratio` of
/// them improved on the previous check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyValidation {
    /// Each member of the ensemble, deterministic policy from fixed start states (`ensemble`,
    /// ME-TRPO).
    Ensemble,
    /// The first member only (`one_model`).
    OneModel,
    /// The mean imagined return of the latest TRPO batch (`trpo_mean`).
    TrpoMean,
    /// An oracle: the deterministic policy's mean return over `oracle_episodes` real episodes
    /// from fixed seeds (`real`). Those steps are not added to the data or to `env_steps`.
    Real,
    /// No judge: every phase runs `max_policy_iterations` updates (`no_early_N`).
    None,
}

/// The policy optimiser used in imagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImaginedOptimiser {
    /// TRPO (ME-TRPO).
    Trpo,
    /// PPO (ME-PPO, used in Ch. 8).
    Ppo,
}

/// The `[me_trpo]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeTrpoConfig {
    /// Real environment steps per iteration. Default 3000 (Appendix A.1.1).
    pub steps_per_iteration: usize,
    /// Upper end of the per-rollout exploration std `U(0, max)`. Default 3.0.
    pub exploration_max_std: f64,
    /// Parameter noise std as a multiple of the last policy change. Default 3.0.
    pub parameter_noise_scale: f64,
    /// Share of each iteration's new transitions sent to the validation buffer. Default 1/3.
    pub validation_share: f64,
    /// Capacity of the training and the validation buffer. Default 1000000.
    pub buffer_capacity: usize,
    /// Imagined rollouts per policy update. Default 500 (50k steps at horizon 100).
    pub imagined_rollouts: usize,
    /// Imagined rollout length; default the environment's horizon.
    pub imagined_horizon: Option<usize>,
    /// Size of the pool of real start states drawn at each policy phase. Default 5000.
    pub start_state_pool: usize,
    /// Policy optimiser in imagination. Default `trpo`.
    pub optimiser: ImaginedOptimiser,
    /// Judge of policy phases. Default `ensemble`.
    pub validation: PolicyValidation,
    /// Real episodes per check of the `real` (oracle) judge. Default 5.
    pub oracle_episodes: usize,
    /// Policy updates between validations. Default 5.
    pub validate_every: usize,
    /// Fixed start states of each validation. Default 500.
    pub validation_rollouts: usize,
    /// Share of members that must improve for a validation to pass. Default 0.7.
    pub improvement_ratio: f64,
    /// Updates after the last passing validation before the phase stops. Default 25.
    pub patience: usize,
    /// Maximum policy updates per phase. Default 400.
    pub max_policy_iterations: usize,
    /// Reset the policy's log-std to `policy.init_log_std` at the start of each policy phase
    /// (Appendix A.1.3: std 1). Default true.
    pub reset_log_std: bool,
    /// Biased, noisy models for the robustness study (Sec. 5.5.3, Fig. 10): `N(b_k, std^2)`
    /// added to every predicted next state, `b_k ~ U(0, model_bias_max)` per member, redrawn
    /// every iteration. Default none (off).
    pub model_bias_max: Option<f64>,
    /// Std of the added noise when `model_bias_max` is set. Default 0.1.
    pub model_noise_std: f64,
    /// How imagined steps use the ensemble.
    pub model_env: ModelEnvConfig,
}

impl Default for MeTrpoConfig {
    fn default() -> Self {
        Self {
            steps_per_iteration: 3000,
            exploration_max_std: 3.0,
            parameter_noise_scale: 3.0,
            validation_share: 1.0 / 3.0,
            buffer_capacity: 1_000_000,
            imagined_rollouts: 500,
            imagined_horizon: None,
            start_state_pool: 5000,
            optimiser: ImaginedOptimiser::Trpo,
            validation: PolicyValidation::Ensemble,
            oracle_episodes: 5,
            validate_every: 5,
            validation_rollouts: 500,
            improvement_ratio: 0.7,
            patience: 25,
            max_policy_iterations: 400,
            reset_log_std: true,
            model_bias_max: None,
            model_noise_std: 0.1,
            model_env: ModelEnvConfig::default(),
        }
    }
}

/// Registry entry of ME-TRPO (and ME-PPO / single-model TRPO through its configuration).
pub const ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "me-trpo",
    description: "model-ensemble TRPO: TRPO in an ensemble of learned models",
    reference: "thesis Ch. 4, Algorithm 2",
    build,
};

fn build(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let settings = Settings {
        me_trpo: table(&ctx.config, "me_trpo")?,
        policy: table(&ctx.config, "policy")?,
        advantage: table(&ctx.config, "advantage")?,
        trpo: table(&ctx.config, "trpo")?,
        ppo: table(&ctx.config, "ppo")?,
    };
    let (env, model, model_rng) = env_and_model(&ctx, "me-trpo")?;
    Ok(Box::new(MeTrpo::new(
        env, model, model_rng, ctx.seed, settings,
    )?))
}

/// Every table ME-TRPO reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `[me_trpo]`.
    pub me_trpo: MeTrpoConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[advantage]`.
    pub advantage: AdvantageConfig,
    /// `[trpo]`.
    pub trpo: TrpoConfig,
    /// `[ppo]`.
    pub ppo: PpoConfig,
}

/// ME-TRPO state.
pub struct MeTrpo {
    settings: Settings,
    env: Box<dyn Env>,
    horizon: usize,
    model: Box<dyn TrainableModel>,
    policy: GaussianMlpPolicy,
    update: ImaginedUpdate,
    data: ModelData,
    /// `|theta_after - theta_before|` of the last policy phase (parameter-noise scale).
    last_change: Option<Tensor>,
    rngs: LearnerRngs,
    env_steps: u64,
}

/// The exploration policy of Appendix A.1.1: perturbed parameters, fixed action std.
struct ExplorationPolicy<'a> {
    policy: &'a GaussianMlpPolicy,
    params: Vec<Tensor>,
    std: f32,
}

impl Policy for ExplorationPolicy<'_> {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let mean = self.policy.distribution_with(&self.params, obs)?.mean;
        if deterministic || self.std == 0.0 {
            return Ok(mean);
        }
        let log_std = Tensor::full(self.std.ln(), mean.dims(), mean.device())?;
        DiagGaussian::new(mean, log_std)?.sample(rng)
    }
}

impl MeTrpo {
    /// ME-TRPO on `env` with `model` (fresh, from the caller's model factory).
    pub fn new(
        env: Box<dyn Env>,
        model: Box<dyn TrainableModel>,
        model_rng: ChaCha8Rng,
        seed: u64,
        settings: Settings,
    ) -> Result<Self> {
        let c = &settings.me_trpo;
        if c.steps_per_iteration == 0 || c.imagined_rollouts == 0 || c.validate_every == 0 {
            return Err(Error::InvalidArgument(
                "me_trpo.steps_per_iteration, imagined_rollouts and validate_every must be positive".into(),
            ));
        }
        if !(0.0..1.0).contains(&c.validation_share) {
            return Err(Error::InvalidArgument(
                "me_trpo.validation_share must be in [0, 1)".into(),
            ));
        }
        check_bias_settings(
            "me_trpo",
            c.model_bias_max,
            c.model_noise_std,
            c.model_env.sample_noise,
        )?;
        let (obs_dim, act_dim) = (
            env.observation_space().flat_dim(),
            env.action_space().flat_dim(),
        );
        let horizon = c
            .imagined_horizon
            .or(env.spec().max_episode_steps)
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let mut policy_rng = stream_rng(seed, Stream::Policy);
        let policy =
            GaussianMlpPolicy::new(obs_dim, act_dim, settings.policy.clone(), &mut policy_rng)?;
        let update = ImaginedUpdate::new(
            &policy,
            c.optimiser,
            (&settings.advantage, &settings.trpo, &settings.ppo),
            horizon,
        )?;
        Ok(Self {
            horizon,
            data: ModelData::new(c.buffer_capacity, obs_dim, act_dim, c.validation_share)?,
            settings,
            env,
            model,
            policy,
            update,
            last_change: None,
            rngs: LearnerRngs {
                env: stream_rng(seed, Stream::Env),
                policy: policy_rng,
                model: model_rng,
                sampler: stream_rng(seed, Stream::Sampler),
            },
            env_steps: 0,
        })
    }

    /// Step 1: real data with the exploration policy; returns the trajectories.
    fn collect(&mut self) -> Result<Vec<Trajectory>> {
        let c = &self.settings.me_trpo;
        let max_steps = self
            .env
            .spec()
            .max_episode_steps
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let mut trajectories = Vec::new();
        let mut steps = 0;
        while steps < c.steps_per_iteration {
            let mut params = self.policy.parameter_tensors();
            if let Some(change) = &self.last_change {
                let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.dims().to_vec()).collect();
                let noise = standard_normal(change.dims(), &mut self.rngs.policy, &Device::Cpu)?;
                let flat =
                    (self.policy.flat_params()? + (noise * change)? * c.parameter_noise_scale)?;
                params = mbrl_core::policy::unflatten(&flat, &shapes)?;
            }
            let std = self.rngs.policy.random_range(0.0..=c.exploration_max_std) as f32;
            let explorer = ExplorationPolicy {
                policy: &self.policy,
                params,
                std,
            };
            let budget = (c.steps_per_iteration - steps).min(max_steps);
            let seed = self.rngs.env.next_u64();
            let traj = rollout_episode(
                self.env.as_mut(),
                &explorer,
                Some(seed),
                false,
                budget,
                &mut self.rngs.policy,
            )?;
            steps += traj.len();
            trajectories.push(traj);
        }
        self.env_steps += steps as u64;
        self.data.add(&trajectories)?;
        Ok(trajectories)
    }

    /// Real reset observations: a pool of `n` start states, `[n, obs_dim]`.
    fn start_states(&mut self, n: usize) -> Result<Tensor> {
        real_start_states(self.env.as_mut(), &mut self.rngs.env, n)
    }

    /// Step 3: policy optimisation in the ensemble. Returns (updates, last imagined return,
    /// last validation pass ratio).
    fn improve_policy(&mut self, task: Arc<dyn TaskFunctions>) -> Result<(usize, f64, f64)> {
        let c = self.settings.me_trpo.clone();
        let model = maybe_biased(
            self.model.frozen()?,
            c.model_bias_max,
            c.model_noise_std,
            &mut self.rngs.sampler,
        )?;
        let model_env = ModelEnv::new(model, task, c.model_env.clone())?;
        if c.reset_log_std {
            self.policy
                .reset_log_std(self.settings.policy.init_log_std)?;
        }
        let pool = self.start_states(c.start_state_pool.max(c.imagined_rollouts))?;
        let validation_starts = pool.narrow(0, 0, c.validation_rollouts.min(pool.dim(0)?))?;
        let before = self.policy.flat_params()?.copy()?;
        let mut best = before.clone();
        let oracle_seeds: Vec<u64> = match c.validation {
            PolicyValidation::Real => (0..c.oracle_episodes)
                .map(|_| self.rngs.env.random())
                .collect(),
            _ => Vec::new(),
        };
        let judges = Judges {
            rule: c.validation,
            model_env: &model_env,
            starts: &validation_starts,
            oracle_seeds: &oracle_seeds,
        };
        let mut previous = self.validation_scores(&judges, f64::NEG_INFINITY)?;
        let (mut last_pass, mut last_ratio, mut imagined_return) = (0, f64::NAN, f64::NAN);
        let mut updates = 0;
        for i in 1..=c.max_policy_iterations {
            let starts = draw_rows(&pool, c.imagined_rollouts, &mut self.rngs.sampler)?;
            imagined_return =
                self.update
                    .step(&model_env, &self.policy, &starts, &mut self.rngs.sampler)?;
            updates = i;
            if c.validation == PolicyValidation::None || i % c.validate_every != 0 {
                continue;
            }
            let returns = self.validation_scores(&judges, imagined_return)?;
            let improved = returns
                .iter()
                .zip(&previous)
                .filter(|(now, then)| now > then)
                .count();
            last_ratio = improved as f64 / returns.len() as f64;
            previous = returns;
            if last_ratio >= c.improvement_ratio {
                best = self.policy.flat_params()?.copy()?;
                last_pass = i;
            } else if i - last_pass >= c.patience {
                break;
            }
        }
        if c.validation != PolicyValidation::None {
            self.policy.set_flat_params(&best)?;
        }
        self.last_change = Some((self.policy.flat_params()? - before)?.abs()?);
        Ok((updates, imagined_return, last_ratio))
    }
}

/// What [`MeTrpo::validation_scores`] needs besides the trainer: the rule and its inputs.
struct Judges<'a, M: mbrl_core::model::DynamicsModel> {
    rule: PolicyValidation,
    model_env: &'a ModelEnv<M>,
    /// Fixed imagined start states (`ensemble`, `one_model`).
    starts: &'a Tensor,
    /// Fixed real-episode seeds (`real`).
    oracle_seeds: &'a [u64],
}

impl MeTrpo {
    /// One score per judge of `judges.rule` for the current policy; `batch_return` is the
    /// latest TRPO batch's mean imagined return (the `trpo_mean` judge; `-inf` before any).
    fn validation_scores<M: mbrl_core::model::DynamicsModel>(
        &mut self,
        judges: &Judges<'_, M>,
        batch_return: f64,
    ) -> Result<Vec<f64>> {
        Ok(match judges.rule {
            PolicyValidation::Ensemble => returns_per_member(
                judges.model_env,
                &self.policy,
                judges.starts,
                self.horizon,
                &mut self.rngs.sampler,
            )?,
            PolicyValidation::OneModel => {
                let first_member = vec![0; judges.starts.dim(0)?];
                let trajectories = imagine_members(
                    judges.model_env,
                    &self.policy,
                    judges.starts,
                    self.horizon,
                    true,
                    &first_member,
                    &mut self.rngs.sampler,
                )?;
                vec![mean(
                    &trajectories
                        .iter()
                        .map(Trajectory::total_return)
                        .collect::<Vec<_>>(),
                )]
            }
            PolicyValidation::TrpoMean => vec![batch_return],
            PolicyValidation::Real => {
                vec![evaluate(self.env.as_mut(), &self.policy, judges.oracle_seeds)?.mean_return()]
            }
            PolicyValidation::None => Vec::new(),
        })
    }
}

impl Algorithm for MeTrpo {
    fn name(&self) -> &str {
        ENTRY.name
    }

    fn metric_columns(&self) -> Vec<String> {
        with_fit_columns(&[
            "train_return",
            "policy_updates",
            "imagined_return",
            "validation_ratio",
            "data_time_s",
            "model_time_s",
            "policy_time_s",
        ])
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let clock = Instant::now();
        let trajectories = self.collect()?;
        let data_time = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let fit = self.model.fit(
            &self.data.train,
            Some(&self.data.validation),
            &mut self.rngs.model,
        )?;
        let model_time = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let (updates, imagined_return, ratio) = self.improve_policy(self.env.task_functions())?;
        let policy_time = clock.elapsed().as_secs_f64();
        let train_return = mean_finished_return(&trajectories);
        let mut metrics = fit_metrics(&fit);
        metrics.extend([
            ("policy_updates".to_string(), updates as f64),
            ("imagined_return".to_string(), imagined_return),
            ("data_time_s".to_string(), data_time),
            ("model_time_s".to_string(), model_time),
            ("policy_time_s".to_string(), policy_time),
        ]);
        if ratio.is_finite() {
            metrics.insert("validation_ratio".into(), ratio);
        }
        if let Some(r) = train_return {
            metrics.insert("train_return".into(), r);
        }
        Ok(IterationStats {
            env_steps: self.env_steps,
            metrics,
            train_return,
        })
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn planning_parts(&self) -> Result<Option<PlanningParts>> {
        model_and_policy_planning_parts(self.model.as_ref(), &self.policy, self.env_steps > 0)
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = learner_tensors(&self.policy, self.model.as_ref(), &self.data)?;
        if let Some(change) = &self.last_change {
            tensors.insert("last_change".into(), change.clone());
        }
        if let Some(ppo) = self.update.ppo() {
            tensors.extend(ppo.adam().state_tensors(POLICY_ADAM)?);
        }
        let progress = LearnerProgress::capture(self.env_steps, &self.rngs);
        Ok((tensors, state_to_json(&progress)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        load_learner_tensors(&self.policy, self.model.as_mut(), &mut self.data, &tensors)?;
        self.last_change = tensors.get("last_change").cloned();
        if let Some(ppo) = self.update.ppo_mut() {
            ppo.adam_mut().load_state_tensors(POLICY_ADAM, &tensors)?;
        }
        let progress: LearnerProgress = state_from_json(state)?;
        self.env_steps = progress.restore(&mut self.rngs);
        Ok(())
    }
}

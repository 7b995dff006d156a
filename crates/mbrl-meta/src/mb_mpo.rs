//! MB-MPO, model-based RL via meta-policy optimisation (thesis Ch. 5, Algorithm 3).
//!
//! The tasks of the meta-learning problem are the members of a learned dynamics ensemble:
//! the policy is meta-trained so that one VPG step adapts it to any member. Each iteration:
//! 1. **Data** (first iteration only) — `initial_random_steps` real steps with uniformly random
//!    actions.
//! 2. **Model** — fit the ensemble on all real data (`TrainableModel::fit`, early stopping on
//!    the validation buffer; each iteration's new transitions are split 1:2 into validation
//!    and training, as ME-TRPO).
//! 3. **Meta-policy** — `meta_steps` times (Algorithm 3, lines 5-10): per task (member `k`,
//!    `tasks_per_model` tasks per member) imagine `rollouts_per_task` rollouts with `theta` in
//!    member `k` from real start states, take the inner VPG step `theta'_k = theta + alpha grad
//!    J_k(theta)`, imagine post-update rollouts with `theta'_k` in the same member, then one
//!    MAML-TRPO step on `1/K sum_k J_k(theta'_k)` (KL constraint on the post-update policies).
//! 4. **Data** — `steps_per_iteration` real steps with the adapted policies `theta'_k`, one
//!    member's adapted policy per episode in turn (tailored exploration, Appendix B.1), or with
//!    the pre-update policy (`tailored_exploration = false`).
//!
//! `inner_step_size = 0` is the no-adaptation ablation (Fig. 9: a robust policy over the
//! ensemble). `model_bias_max` turns on the biased, noisy models of Sec. 5.5.3
//! ([`mbrl_core::biased_model`]), biases redrawn per member every iteration. The policy evaluated
//! by the runner is the pre-update policy, as the thesis reports (Sec. 5.5).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext, IterationStats};
use mbrl_core::biased_model::{check_bias_settings, maybe_biased};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::data::Trajectory;
use mbrl_core::env::Env;
use mbrl_core::model::{DynamicsModel, TrainableModel};
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::policy::{GaussianPolicy, Policy, RandomPolicy};
use mbrl_core::rollout::{rollout_episode, DEFAULT_MAX_EPISODE_STEPS};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use mbrl_policy_opt::learner_rngs::{LearnerProgress, LearnerRngs};
use mbrl_policy_opt::model_data::{
    env_and_model, fit_metrics, learner_tensors, load_learner_tensors, mean, mean_finished_return,
    real_start_states, with_fit_columns, ModelData,
};
use mbrl_policy_opt::model_free::table;
use mbrl_policy_opt::trpo::TrpoConfig;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::adaptation::InnerStepSize;
use crate::estimators::Estimator;
use crate::meta_step::{Imagined, MetaStep};
use crate::samples::{snapshot, ParamsPolicy};
use mbrl_core::higher_order;

/// The `[mb_mpo]` table (defaults: thesis Appendix B.3 and ALGORITHM_NOTES).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MbMpoConfig {
    /// Real steps with uniformly random actions before the first model fit. Default 5000.
    pub initial_random_steps: usize,
    /// Real steps per iteration (Appendix B.3: 20 trajectories of 200 steps). Default 4000.
    pub steps_per_iteration: usize,
    /// Meta-optimisation steps per iteration (Appendix B.3). Default 30.
    pub meta_steps: usize,
    /// Tasks per ensemble member in each meta-batch (reference: 20 tasks for 5 models).
    /// Default 4.
    pub tasks_per_model: usize,
    /// Imagined rollouts per task, before and after adaptation (reference: 1000 parallel
    /// rollouts over 20 tasks). Default 50.
    pub rollouts_per_task: usize,
    /// Inner step size `alpha` (Appendix B.3); 0 is the no-adaptation ablation (Fig. 9).
    /// Default 0.001.
    pub inner_step_size: f64,
    /// Meta-gradient estimator of the inner step. Default `maml` (the original MAML surrogate,
    /// as the MB-MPO reference).
    pub estimator: Estimator,
    /// Finite-difference step of MAML-TRPO's Fisher-vector products, per unit direction.
    /// Default 1e-3.
    pub fvp_epsilon: f64,
    /// Collect real data with the adapted policies, one member's per episode in turn
    /// (Appendix B.1); `false` uses the pre-update policy. Default true.
    pub tailored_exploration: bool,
    /// Imagined rollout length; default the environment's horizon.
    pub imagined_horizon: Option<usize>,
    /// Real start states drawn each iteration; imagined rollouts start from them. Default 5000.
    pub start_state_pool: usize,
    /// Share of each iteration's new transitions sent to the validation buffer. Default 1/3.
    pub validation_share: f64,
    /// Capacity of the training and the validation buffer. Default 1000000.
    pub buffer_capacity: usize,
    /// Biased, noisy models (Sec. 5.5.3): add `N(b, noise^2)` to every predicted next state,
    /// `b ~ U(0, model_bias_max)` per member and iteration. Default none (off).
    pub model_bias_max: Option<f64>,
    /// Std of the added noise when `model_bias_max` is set (Sec. 5.5.3). Default 0.1.
    pub model_noise_std: f64,
    /// Imagined-step options; the members are fixed per task, so `sampling` is not used.
    /// Default: next observations and rewards clipped to 1000 (the reference).
    pub model_env: ModelEnvConfig,
}

impl Default for MbMpoConfig {
    fn default() -> Self {
        Self {
            initial_random_steps: 5000,
            steps_per_iteration: 4000,
            meta_steps: 30,
            tasks_per_model: 4,
            rollouts_per_task: 50,
            inner_step_size: 0.001,
            estimator: Estimator::Maml,
            fvp_epsilon: 1e-3,
            tailored_exploration: true,
            imagined_horizon: None,
            start_state_pool: 5000,
            validation_share: 1.0 / 3.0,
            buffer_capacity: 1_000_000,
            model_bias_max: None,
            model_noise_std: 0.1,
            model_env: ModelEnvConfig {
                obs_clip: Some(1000.0),
                reward_clip: Some(1000.0),
                ..ModelEnvConfig::default()
            },
        }
    }
}

impl MbMpoConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("mb_mpo.steps_per_iteration", self.steps_per_iteration),
            ("mb_mpo.meta_steps", self.meta_steps),
            ("mb_mpo.tasks_per_model", self.tasks_per_model),
            ("mb_mpo.rollouts_per_task", self.rollouts_per_task),
            ("mb_mpo.start_state_pool", self.start_state_pool),
            ("mb_mpo.buffer_capacity", self.buffer_capacity),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{key} must be at least 1")));
            }
        }
        if !(self.inner_step_size.is_finite() && self.inner_step_size >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "mb_mpo.inner_step_size must be a non-negative number, got {}",
                self.inner_step_size
            )));
        }
        if !(self.fvp_epsilon.is_finite() && self.fvp_epsilon > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "mb_mpo.fvp_epsilon must be a positive number, got {}",
                self.fvp_epsilon
            )));
        }
        if !(0.0..1.0).contains(&self.validation_share) {
            return Err(Error::InvalidArgument(format!(
                "mb_mpo.validation_share must be in [0, 1), got {}",
                self.validation_share
            )));
        }
        check_bias_settings(
            "mb_mpo",
            self.model_bias_max,
            self.model_noise_std,
            self.model_env.sample_noise,
        )
    }
}

/// Registry entry of MB-MPO.
pub const ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "mb-mpo",
    description: "model-based meta-policy optimisation: MAML-TRPO over the ensemble's members",
    reference: "thesis Ch. 5, Algorithm 3",
    build,
};

/// Every table MB-MPO reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `[mb_mpo]`.
    pub mb_mpo: MbMpoConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[advantage]`.
    pub advantage: AdvantageConfig,
    /// `[trpo]` (the outer trust region).
    pub trpo: TrpoConfig,
}

fn build(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let settings = Settings {
        mb_mpo: table(&ctx.config, "mb_mpo")?,
        policy: table(&ctx.config, "policy")?,
        advantage: table(&ctx.config, "advantage")?,
        trpo: table(&ctx.config, "trpo")?,
    };
    let (env, model, model_rng) = env_and_model(&ctx, "mb-mpo")?;
    Ok(Box::new(MbMpo::new(
        env, model, model_rng, ctx.seed, settings,
    )?))
}

/// MB-MPO state.
pub struct MbMpo {
    settings: Settings,
    env: Box<dyn Env>,
    horizon: usize,
    model: Box<dyn TrainableModel>,
    policy: GaussianMlpPolicy,
    alpha: InnerStepSize,
    data: ModelData,
    rngs: LearnerRngs,
    env_steps: u64,
}

impl MbMpo {
    /// MB-MPO on `env` with `model` (fresh, from the caller's model factory).
    pub fn new(
        env: Box<dyn Env>,
        model: Box<dyn TrainableModel>,
        model_rng: ChaCha8Rng,
        seed: u64,
        settings: Settings,
    ) -> Result<Self> {
        let c = &settings.mb_mpo;
        c.validate()?;
        // Before any backward pass of this thread; meta-updates run on their own threads.
        higher_order::enable();
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
        let alpha = InnerStepSize::uniform(&policy, c.inner_step_size, false)?;
        Ok(Self {
            horizon,
            data: ModelData::new(c.buffer_capacity, obs_dim, act_dim, c.validation_share)?,
            settings,
            env,
            model,
            policy,
            alpha,
            rngs: LearnerRngs {
                env: stream_rng(seed, Stream::Env),
                policy: policy_rng,
                model: model_rng,
                sampler: stream_rng(seed, Stream::Sampler),
            },
            env_steps: 0,
        })
    }

    /// The pre-update (meta-learned) policy.
    pub fn meta_policy(&self) -> &GaussianMlpPolicy {
        &self.policy
    }

    /// The dynamics ensemble whose members are the tasks (as last fitted).
    pub fn model(&self) -> &dyn TrainableModel {
        self.model.as_ref()
    }

    /// The meta-policy adapted to every member `k` of the current ensemble by the inner step
    /// (Algorithm 3, lines 5-7): `theta'_k` from imagined pre-update rollouts in member `k`
    /// that start at `starts` (`[B, obs_dim]`, the same states for every member). For
    /// analyses such as the plasticity study of Sec. 5.5.4: the members are unbiased (no
    /// `model_bias_max`), and `rng` draws the imagined actions, so training's random streams
    /// are untouched. Parameters are in the order of `meta_policy().parameters()`.
    pub fn adapt_to_each_member(
        &self,
        starts: &Tensor,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<Vec<Tensor>>> {
        let model: Arc<dyn DynamicsModel + Sync> = self.model.frozen()?;
        let members: Vec<usize> = (0..model.ensemble_size()).collect();
        let env = ModelEnv::new(
            model,
            self.env.task_functions(),
            self.settings.mb_mpo.model_env.clone(),
        )?;
        let starts = Tensor::cat(&vec![starts.clone(); members.len()], 0)?;
        Ok(self.meta_step().adapt_from(&env, &starts, &members, rng)?.1)
    }

    /// The meta step over this learner's policy and settings.
    fn meta_step(&self) -> MetaStep<'_> {
        MetaStep::new(&self.policy, &self.alpha, &self.settings, self.horizon)
    }

    /// Adds `trajectories` to the buffers and counts their steps.
    fn record(&mut self, trajectories: &[Trajectory]) -> Result<()> {
        self.env_steps += trajectories.iter().map(Trajectory::len).sum::<usize>() as u64;
        self.data.add(trajectories)
    }

    /// The frozen ensemble as an imagined environment, with freshly drawn biases if the
    /// robustness study is on.
    fn imagined_env(&mut self) -> Result<Imagined> {
        let c = &self.settings.mb_mpo;
        let model = maybe_biased(
            self.model.frozen()?,
            c.model_bias_max,
            c.model_noise_std,
            &mut self.rngs.sampler,
        )?;
        ModelEnv::new(model, self.env.task_functions(), c.model_env.clone())
    }
}

/// Real episodes until `steps` transitions, episode `j` acting with `policies[j % len]`.
fn real_episodes(
    env: &mut dyn Env,
    env_rng: &mut ChaCha8Rng,
    policy_rng: &mut ChaCha8Rng,
    policies: &[&dyn Policy],
    steps: usize,
) -> Result<Vec<Trajectory>> {
    let max_steps = env
        .spec()
        .max_episode_steps
        .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
    let mut trajectories = Vec::new();
    let mut taken = 0;
    while taken < steps {
        let actor = policies[trajectories.len() % policies.len()];
        let seed = env_rng.next_u64();
        let traj = rollout_episode(
            env,
            actor,
            Some(seed),
            false,
            (steps - taken).min(max_steps),
            policy_rng,
        )?;
        taken += traj.len();
        trajectories.push(traj);
    }
    Ok(trajectories)
}

impl Algorithm for MbMpo {
    fn name(&self) -> &str {
        ENTRY.name
    }

    fn metric_columns(&self) -> Vec<String> {
        with_fit_columns(&[
            "train_return",
            "pre_update_imagined_return",
            "post_update_imagined_return",
            "meta_kl",
            "policy_std",
            "data_time_s",
            "model_time_s",
            "policy_time_s",
            "imagination_time_s",
            "meta_update_time_s",
        ])
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let c = self.settings.mb_mpo.clone();
        let mut data_time = 0.0;
        // 1. Initial random data.
        if self.data.train.is_empty() && c.initial_random_steps > 0 {
            let clock = Instant::now();
            let space = self.env.action_space().as_box().cloned().ok_or_else(|| {
                Error::InvalidArgument("mb-mpo needs a continuous (box) action space".into())
            })?;
            let random = RandomPolicy::new(space)?;
            let trajectories = real_episodes(
                self.env.as_mut(),
                &mut self.rngs.env,
                &mut self.rngs.policy,
                &[&random],
                c.initial_random_steps,
            )?;
            self.record(&trajectories)?;
            data_time += clock.elapsed().as_secs_f64();
        }

        // 2. Fit the ensemble on all real data.
        let clock = Instant::now();
        let fit = self.model.fit(
            &self.data.train,
            Some(&self.data.validation),
            &mut self.rngs.model,
        )?;
        let model_time = clock.elapsed().as_secs_f64();

        // 3. Meta-optimise over the members (tasks) in imagination.
        let clock = Instant::now();
        let env = self.imagined_env()?;
        let pool = real_start_states(self.env.as_mut(), &mut self.rngs.env, c.start_state_pool)?;
        let (mut pre_return, mut post_return, mut kls) = (f64::NAN, f64::NAN, Vec::new());
        let (mut imagination_time, mut meta_update_time) = (0.0, 0.0);
        for _ in 0..c.meta_steps {
            let imagination = Instant::now();
            let meta = MetaStep::new(&self.policy, &self.alpha, &self.settings, self.horizon);
            let batch = meta.imagine_tasks(&env, &pool, &mut self.rngs.sampler)?;
            imagination_time += imagination.elapsed().as_secs_f64();
            let update = Instant::now();
            kls.push(meta.meta_update(&batch)?);
            meta_update_time += update.elapsed().as_secs_f64();
            (pre_return, post_return) = (batch.pre_return, batch.post_return);
        }
        let policy_time = clock.elapsed().as_secs_f64();

        // 4. Real data with the adapted policies (one member's per episode) or theta.
        let clock = Instant::now();
        let adapted = if c.tailored_exploration {
            let members: Vec<usize> = (0..env.model().ensemble_size()).collect();
            let meta = MetaStep::new(&self.policy, &self.alpha, &self.settings, self.horizon);
            meta.adapt_to_members(&env, &pool, &members, &mut self.rngs.sampler)?
                .1
        } else {
            vec![snapshot(&self.policy.parameter_tensors())?]
        };
        let actors: Vec<ParamsPolicy<'_, GaussianMlpPolicy>> = adapted
            .iter()
            .map(|p| ParamsPolicy::new(&self.policy, p))
            .collect();
        let actors: Vec<&dyn Policy> = actors.iter().map(|a| a as &dyn Policy).collect();
        let trajectories = real_episodes(
            self.env.as_mut(),
            &mut self.rngs.env,
            &mut self.rngs.policy,
            &actors,
            c.steps_per_iteration,
        )?;
        self.record(&trajectories)?;
        let data_time = data_time + clock.elapsed().as_secs_f64();

        let train_return = mean_finished_return(&trajectories);
        let log_std = self
            .policy
            .parameters()
            .last()
            .expect("log-std parameter")
            .as_tensor();
        let mut metrics = fit_metrics(&fit);
        metrics.extend([
            ("pre_update_imagined_return".to_string(), pre_return),
            ("post_update_imagined_return".to_string(), post_return),
            ("meta_kl".to_string(), mean(&kls)),
            (
                "policy_std".to_string(),
                log_std.exp()?.mean_all()?.to_scalar::<f32>()? as f64,
            ),
            ("data_time_s".to_string(), data_time),
            ("model_time_s".to_string(), model_time),
            ("policy_time_s".to_string(), policy_time),
            ("imagination_time_s".to_string(), imagination_time),
            ("meta_update_time_s".to_string(), meta_update_time),
        ]);
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

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let tensors = learner_tensors(&self.policy, self.model.as_ref(), &self.data)?;
        let progress = LearnerProgress::capture(self.env_steps, &self.rngs);
        Ok((tensors, state_to_json(&progress)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        load_learner_tensors(&self.policy, self.model.as_mut(), &mut self.data, &tensors)?;
        let progress: LearnerProgress = state_from_json(state)?;
        self.env_steps = progress.restore(&mut self.rngs);
        Ok(())
    }
}

//! SAC, MBPO and MAAC: one off-policy training loop, three ways of using a model.
//!
//! Each iteration collects whole real episodes (at least `off_policy.steps_per_iteration`
//! steps) and, after every real step (thesis Algorithm 5; Janner et al. 2019, Algorithm 2):
//! 1. **model** (MBPO, MAAC): every `imagination.model_train_every` steps after the random
//!    phase, refit the probabilistic ensemble on the real buffer (early stopping on its own
//!    hold-out); MBPO then keeps its `elites` best members;
//! 2. **imagined data** (MBPO, MAAC): every `imagination.rollout_every` steps, roll the policy
//!    `k` steps from `rollout_batch` real states into the imagined buffer ([`crate::imagined`]);
//! 3. **updates**: `off_policy.updates_per_step` gradient steps of the soft actor-critic on
//!    minibatches mixing real and imagined transitions by `imagination.real_ratio` (SAC: real
//!    only). Critic targets: one-step (SAC, MBPO) or STEVE (MAAC, [`crate::targets`]); actor
//!    loss: SAC's (SAC, MBPO) or MAAC's model-augmented objective ([`crate::objective`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use mbrl_core::algorithm::{
    Algorithm, AlgorithmEntry, BuildContext, IterationStats, OwnedValueFunction, PlanningParts,
};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::data::{ReplayBuffer, TransitionBatch};
use mbrl_core::env::{vector, Env};
use mbrl_core::model::{DynamicsModel, FitSummary, TrainableModel};
use mbrl_core::model_env::ModelEnv;
use mbrl_core::policy::Policy;
use mbrl_core::rollout::DEFAULT_MAX_EPISODE_STEPS;
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::space::BoxSpace;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::model_data::{fit_metrics, with_prefix, FIT_COLUMNS};
use mbrl_policy_opt::model_free::table;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::actor::ActorConfig;
use crate::agent::{SacConfig, SoftActorCritic, UpdateStats};
use crate::config::{CriticTargets, ImaginationConfig, MaacConfig, OffPolicyConfig};
use crate::critic::CriticWeights;
use crate::imagined::{rollout_into, Elites};
use crate::objective::{maac_actor_loss, sac_actor_loss, LookAhead};
use crate::targets::{one_step_targets, steve_targets, ModelExpansion};

/// Which algorithm the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Soft actor-critic on real data (Haarnoja et al. 2018).
    Sac,
    /// SAC on model-generated data (Janner et al. 2019).
    Mbpo,
    /// Model-augmented actor-critic (thesis Ch. 7).
    Maac,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Sac => "sac",
            Variant::Mbpo => "mbpo",
            Variant::Maac => "maac",
        }
    }

    fn uses_model(self) -> bool {
        self != Variant::Sac
    }
}

/// Registry entry of SAC.
pub const SAC_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "sac",
    description: "soft actor-critic, model-free (the baseline of Fig. 19)",
    reference: "Haarnoja et al. 2018; thesis Sec. 7.4.1",
    build: build_sac,
};

/// Registry entry of MBPO.
pub const MBPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "mbpo",
    description: "SAC on short model rollouts from real states (model-based baseline)",
    reference: "Janner et al. 2019; thesis Sec. 7.4.1",
    build: build_mbpo,
};

/// Registry entry of MAAC.
pub const MAAC_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "maac",
    description: "model-augmented actor-critic: pathwise gradients through the model + twin Q",
    reference: "thesis Ch. 7, Algorithm 5",
    build: build_maac,
};

fn build_sac(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    build(ctx, Variant::Sac)
}

fn build_mbpo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    build(ctx, Variant::Mbpo)
}

fn build_maac(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    build(ctx, Variant::Maac)
}

/// Every table the loop reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `[actor]`.
    pub actor: ActorConfig,
    /// `[sac]`.
    pub sac: SacConfig,
    /// `[off_policy]`.
    pub off_policy: OffPolicyConfig,
    /// `[imagination]` (MBPO, MAAC).
    pub imagination: ImaginationConfig,
    /// `[maac]` (MAAC).
    pub maac: MaacConfig,
}

impl Settings {
    /// Reads the tables from a run configuration (missing tables take their defaults).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Self {
            actor: table(config, "actor")?,
            sac: table(config, "sac")?,
            off_policy: table(config, "off_policy")?,
            imagination: table(config, "imagination")?,
            maac: table(config, "maac")?,
        })
    }

    /// Checks every table.
    pub fn validate(&self) -> Result<()> {
        self.actor.validate()?;
        self.sac.validate()?;
        self.off_policy.validate()?;
        self.imagination.validate()?;
        self.maac.validate()
    }
}

fn build(ctx: BuildContext, variant: Variant) -> Result<Box<dyn Algorithm>> {
    let settings = Settings::from_config(&ctx.config)?;
    let env = (ctx.env_factory)()?;
    let model = match variant {
        Variant::Sac => None,
        _ => {
            let make = ctx.model_factory.clone().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} needs a dynamics model ([model] table)",
                    variant.name()
                ))
            })?;
            let mut rng = stream_rng(ctx.seed, Stream::Model);
            let model = make(
                env.observation_space().flat_dim(),
                env.action_space().flat_dim(),
                &mut rng,
            )?;
            Some((model, rng))
        }
    };
    Ok(Box::new(OffPolicyTrainer::new(
        variant, env, model, ctx.seed, settings,
    )?))
}

/// The random streams of the loop.
struct Rngs {
    /// Real-environment reset seeds.
    env: ChaCha8Rng,
    /// Actions in the real environment.
    policy: ChaCha8Rng,
    /// Model initialisation and fitting.
    model: ChaCha8Rng,
    /// Imagined rollouts and the noise of every gradient step.
    sampler: ChaCha8Rng,
    /// Minibatch and start-state sampling.
    data: ChaCha8Rng,
}

/// What a checkpoint stores besides tensors.
#[derive(Serialize, Deserialize)]
struct Progress {
    env_steps: u64,
    model_fitted: bool,
    elites: Option<Vec<usize>>,
    rngs: [RngState; 5],
}

/// The model and what was last made of it.
struct ModelState {
    trainable: Box<dyn TrainableModel>,
    /// The imagination environment of the last fit (elites only for MBPO).
    env: Option<ModelEnv<Arc<dyn DynamicsModel + Sync>>>,
    elites: Option<Vec<usize>>,
    last_fit: Option<FitSummary>,
}

/// Sums of one iteration's update statistics.
#[derive(Default)]
struct UpdateTotals {
    count: usize,
    sum: UpdateStats,
    steve_weights: Vec<f64>,
}

/// The SAC / MBPO / MAAC trainer.
pub struct OffPolicyTrainer {
    variant: Variant,
    settings: Settings,
    env: Box<dyn Env>,
    action_space: BoxSpace,
    max_episode_steps: usize,
    agent: SoftActorCritic,
    real: ReplayBuffer,
    imagined: Option<ReplayBuffer>,
    model: Option<ModelState>,
    rngs: Rngs,
    env_steps: u64,
}

impl OffPolicyTrainer {
    /// A fresh trainer; `model` (with the stream it was initialised from) for MBPO and MAAC.
    pub fn new(
        variant: Variant,
        env: Box<dyn Env>,
        model: Option<(Box<dyn TrainableModel>, ChaCha8Rng)>,
        seed: u64,
        settings: Settings,
    ) -> Result<Self> {
        settings.validate()?;
        let action_space = env
            .action_space()
            .as_box()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} needs a continuous (box) action space",
                    variant.name()
                ))
            })?
            .clone();
        let obs_dim = env.observation_space().flat_dim();
        let mut policy_rng = stream_rng(seed, Stream::Policy);
        let agent = SoftActorCritic::new(
            obs_dim,
            &action_space,
            settings.actor.clone(),
            settings.sac.clone(),
            &mut policy_rng,
        )?;
        if variant.uses_model() != model.is_some() {
            return Err(Error::InvalidArgument(format!(
                "{} {} a dynamics model",
                variant.name(),
                if variant.uses_model() {
                    "needs"
                } else {
                    "takes no"
                }
            )));
        }
        let (model, model_rng) = match model {
            Some((trainable, rng)) => (
                Some(ModelState {
                    trainable,
                    env: None,
                    elites: None,
                    last_fit: None,
                }),
                rng,
            ),
            None => (None, stream_rng(seed, Stream::Model)),
        };
        let max_episode_steps = env
            .spec()
            .max_episode_steps
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let act_dim = action_space.flat_dim();
        Ok(Self {
            real: ReplayBuffer::new(settings.off_policy.buffer_capacity, obs_dim, act_dim)?,
            imagined: None,
            variant,
            settings,
            env,
            action_space,
            max_episode_steps,
            agent,
            model,
            rngs: Rngs {
                env: stream_rng(seed, Stream::Env),
                policy: policy_rng,
                model: model_rng,
                sampler: stream_rng(seed, Stream::Sampler),
                data: stream_rng(seed, Stream::Data),
            },
            env_steps: 0,
        })
    }

    /// The learner (actor, critics, temperature).
    pub fn agent(&self) -> &SoftActorCritic {
        &self.agent
    }

    /// The imagination environment of the last model fit, if any.
    pub fn model_env(&self) -> Option<&ModelEnv<Arc<dyn DynamicsModel + Sync>>> {
        self.model.as_ref().and_then(|m| m.env.as_ref())
    }

    /// Real steps taken.
    pub fn env_steps(&self) -> u64 {
        self.env_steps
    }

    /// Step 1: refit the model on the real buffer and rebuild the imagination environment.
    fn fit_model(&mut self) -> Result<()> {
        let Some(state) = self.model.as_mut() else {
            return Ok(());
        };
        let fit = state
            .trainable
            .fit(&self.real, None, &mut self.rngs.model)?;
        state.elites = match (self.settings.imagination.elites, &fit.validation_loss) {
            (Some(n), Some(losses)) if n < losses.len() => Some(
                Elites::best(state.trainable.frozen()?, losses, n)?
                    .members()
                    .to_vec(),
            ),
            _ => None,
        };
        state.last_fit = Some(fit);
        rebuild_model_env(state, self.env.as_ref(), &self.settings.imagination)
    }

    /// Step 2: a new batch of imagined transitions.
    fn imagine(&mut self, iteration: u64) -> Result<()> {
        let Some(model_env) = self.model.as_ref().and_then(|m| m.env.as_ref()) else {
            return Ok(());
        };
        let c = &self.settings.imagination;
        let length = c.rollout_schedule.length(iteration);
        let capacity = c.model_buffer_capacity.unwrap_or_else(|| {
            let per_iteration =
                (self.settings.off_policy.steps_per_iteration / c.rollout_every).max(1);
            c.rollout_batch * length * per_iteration * c.retain_iterations
        });
        let buffer = match self.imagined.take() {
            Some(b) if b.capacity() == capacity => b,
            Some(b) => resized(&b, capacity)?,
            None => ReplayBuffer::new(capacity, self.real.obs_dim(), self.real.act_dim())?,
        };
        let mut buffer = buffer;
        let starts = self
            .real
            .sample(c.rollout_batch, &mut self.rngs.data, &Device::Cpu)?
            .obs;
        rollout_into(
            &mut buffer,
            model_env,
            &self.agent.actor,
            &starts,
            length,
            &mut self.rngs.sampler,
        )?;
        self.imagined = Some(buffer);
        Ok(())
    }

    /// A minibatch: real transitions only for SAC (or before any imagined data), otherwise
    /// `real_ratio` real and the rest imagined.
    fn minibatch(&mut self) -> Result<TransitionBatch> {
        let b = self.settings.sac.batch_size;
        let imagined = match &self.imagined {
            Some(buffer) if !buffer.is_empty() && self.variant.uses_model() => buffer,
            _ => return self.real.sample(b, &mut self.rngs.data, &Device::Cpu),
        };
        let n_real = (self.settings.imagination.real_ratio * b as f64).round() as usize;
        let model_part = imagined.sample(b - n_real, &mut self.rngs.data, &Device::Cpu)?;
        if n_real == 0 {
            return Ok(model_part);
        }
        let real_part = self
            .real
            .sample(n_real, &mut self.rngs.data, &Device::Cpu)?;
        concat(&real_part, &model_part)
    }

    /// Step 3: one gradient step of each part of the learner.
    fn update(&mut self, totals: &mut UpdateTotals) -> Result<()> {
        let batch = self.minibatch()?;
        let model_env = self.model.as_ref().and_then(|m| m.env.as_ref());
        let maac = &self.settings.maac;
        let task = self.env.task_functions();
        let variant = self.variant;
        let targets = |agent: &SoftActorCritic, part: &TransitionBatch, rng: &mut ChaCha8Rng| match (
            variant,
            maac.targets,
            model_env,
        ) {
            (Variant::Maac, CriticTargets::Steve, Some(env)) => {
                let c = env.config();
                let expansion = ModelExpansion {
                    model: env.model().as_ref(),
                    task: task.as_ref(),
                    horizon: maac.target_horizon,
                    sample_noise: c.sample_noise,
                    obs_clip: c.obs_clip,
                };
                steve_targets(agent, part, &expansion, rng)
            }
            _ => Ok((one_step_targets(agent, part, rng)?, Vec::new())),
        };
        let look_ahead = LookAhead {
            horizon: maac.horizon,
            action_samples: maac.action_samples,
            gamma: self.settings.sac.gamma,
        };
        let actor_loss = |agent: &SoftActorCritic, obs: &Tensor, rng: &mut ChaCha8Rng| match (
            variant, model_env,
        ) {
            (Variant::Maac, Some(env)) => maac_actor_loss(agent, env, obs, look_ahead, rng),
            _ => sac_actor_loss(agent, obs, rng),
        };
        let stats = self
            .agent
            .update(&batch, &targets, &actor_loss, &mut self.rngs.sampler)?;
        accumulate(&mut totals.steve_weights, &stats.steve_weights);
        totals.count += 1;
        totals.sum.critic_loss += stats.critic_loss;
        totals.sum.actor_loss += stats.actor_loss;
        totals.sum.entropy += stats.entropy;
        totals.sum.alpha = stats.alpha;
        Ok(())
    }

    /// The action for `obs` in the real environment: uniform during the random phase.
    fn real_action(&mut self, obs: &Tensor) -> Result<Tensor> {
        if self.env_steps < self.settings.off_policy.random_steps as u64 {
            return vector(&self.action_space.sample(&mut self.rngs.policy));
        }
        let action = self
            .agent
            .actor
            .act(&obs.unsqueeze(0)?, false, &mut self.rngs.policy)?;
        Ok(action.squeeze(0)?)
    }

    /// Everything that happens after real step `self.env_steps` (module docs, steps 1-3).
    fn after_real_step(
        &mut self,
        iteration: u64,
        totals: &mut UpdateTotals,
        times: &mut [f64; 3],
    ) -> Result<()> {
        let random = self.settings.off_policy.random_steps as u64;
        if self.env_steps < random {
            return Ok(());
        }
        let since = self.env_steps - random;
        let (train_every, rollout_every) = (
            self.settings.imagination.model_train_every as u64,
            self.settings.imagination.rollout_every as u64,
        );
        if self.variant.uses_model() {
            if since.is_multiple_of(train_every) {
                let clock = Instant::now();
                self.fit_model()?;
                times[0] += clock.elapsed().as_secs_f64();
            }
            if since.is_multiple_of(rollout_every) {
                let clock = Instant::now();
                self.imagine(iteration)?;
                times[1] += clock.elapsed().as_secs_f64();
            }
        }
        let clock = Instant::now();
        for _ in 0..self.settings.off_policy.updates_per_step {
            self.update(totals)?;
        }
        times[2] += clock.elapsed().as_secs_f64();
        Ok(())
    }
}

/// The imagination environment of `state`'s current fit (its elites, if any).
fn rebuild_model_env(
    state: &mut ModelState,
    env: &dyn Env,
    config: &ImaginationConfig,
) -> Result<()> {
    let frozen = state.trainable.frozen()?;
    let model: Arc<dyn DynamicsModel + Sync> = match &state.elites {
        Some(members) => Arc::new(Elites::of(frozen, members.clone())?),
        None => frozen,
    };
    state.env = Some(ModelEnv::new(
        model,
        env.task_functions(),
        config.model_env.clone(),
    )?);
    Ok(())
}

/// `buffer`'s newest transitions in a buffer of `capacity`.
fn resized(buffer: &ReplayBuffer, capacity: usize) -> Result<ReplayBuffer> {
    let mut out = ReplayBuffer::new(capacity, buffer.obs_dim(), buffer.act_dim())?;
    let all = buffer.all(&Device::Cpu)?;
    let start = buffer.len().saturating_sub(capacity);
    let rows = |t: &Tensor| -> Result<Vec<Vec<f32>>> { Ok(t.to_vec2::<f32>()?) };
    let (obs, act, next) = (rows(&all.obs)?, rows(&all.act)?, rows(&all.next_obs)?);
    let reward = all.reward.to_vec1::<f32>()?;
    let done = all.terminated.to_vec1::<f32>()?;
    for i in start..buffer.len() {
        out.push(&obs[i], &act[i], &next[i], reward[i], done[i] > 0.5)?;
    }
    Ok(out)
}

/// Two minibatches as one.
fn concat(a: &TransitionBatch, b: &TransitionBatch) -> Result<TransitionBatch> {
    let cat = |x: &Tensor, y: &Tensor| Tensor::cat(&[x, y], 0);
    Ok(TransitionBatch {
        obs: cat(&a.obs, &b.obs)?,
        act: cat(&a.act, &b.act)?,
        next_obs: cat(&a.next_obs, &b.next_obs)?,
        reward: cat(&a.reward, &b.reward)?,
        terminated: cat(&a.terminated, &b.terminated)?,
    })
}

fn accumulate(sums: &mut Vec<f64>, values: &[f64]) {
    if sums.len() < values.len() {
        sums.resize(values.len(), 0.0);
    }
    for (s, v) in sums.iter_mut().zip(values) {
        *s += v;
    }
}

impl Algorithm for OffPolicyTrainer {
    fn name(&self) -> &str {
        self.variant.name()
    }

    fn metric_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = [
            "train_return",
            "updates",
            "critic_loss",
            "actor_loss",
            "alpha",
            "entropy",
            "data_time_s",
            "update_time_s",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        if self.variant.uses_model() {
            columns.extend(
                [
                    "rollout_length",
                    "imagined_transitions",
                    "model_time_s",
                    "imagination_time_s",
                ]
                .iter()
                .chain(FIT_COLUMNS.iter())
                .map(|c| c.to_string()),
            );
        }
        if self.variant == Variant::Maac && self.settings.maac.targets == CriticTargets::Steve {
            columns.extend(
                (0..=self.settings.maac.target_horizon).map(|h| format!("steve_weight_{h}")),
            );
        }
        columns
    }

    fn train_iteration(&mut self, iteration: u64) -> Result<IterationStats> {
        let clock = Instant::now();
        if let Some(state) = self.model.as_mut() {
            // Report only this iteration's fits (a resumed run has no earlier one to report).
            state.last_fit = None;
        }
        let mut totals = UpdateTotals::default();
        let mut times = [0.0; 3];
        let mut returns = Vec::new();
        let mut steps = 0;
        while steps < self.settings.off_policy.steps_per_iteration {
            let (mut obs, _) = self.env.reset(Some(self.rngs.env.next_u64()))?;
            let mut episode_return = 0.0;
            for _ in 0..self.max_episode_steps {
                let action = self.real_action(&obs)?;
                let step = self.env.step(&action)?;
                let flat =
                    |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
                self.real.push(
                    &flat(&obs)?,
                    &flat(&action)?,
                    &flat(&step.obs)?,
                    step.reward as f32,
                    step.terminated,
                )?;
                self.env_steps += 1;
                steps += 1;
                episode_return += step.reward;
                self.after_real_step(iteration, &mut totals, &mut times)?;
                if step.terminated || step.truncated {
                    break;
                }
                obs = step.obs;
            }
            returns.push(episode_return);
        }
        let total_time = clock.elapsed().as_secs_f64();
        let n = totals.count.max(1) as f64;
        let mut metrics = BTreeMap::from([
            ("updates".to_string(), totals.count as f64),
            ("alpha".to_string(), self.agent.alpha()?),
            (
                "data_time_s".to_string(),
                total_time - times.iter().sum::<f64>(),
            ),
            ("update_time_s".to_string(), times[2]),
        ]);
        if totals.count > 0 {
            metrics.insert("critic_loss".into(), totals.sum.critic_loss / n);
            metrics.insert("actor_loss".into(), totals.sum.actor_loss / n);
            metrics.insert("entropy".into(), totals.sum.entropy / n);
        }
        for (h, w) in totals.steve_weights.iter().enumerate() {
            metrics.insert(format!("steve_weight_{h}"), w / n);
        }
        if let Some(state) = &self.model {
            metrics.insert("model_time_s".into(), times[0]);
            metrics.insert("imagination_time_s".into(), times[1]);
            metrics.insert(
                "rollout_length".into(),
                self.settings.imagination.rollout_schedule.length(iteration) as f64,
            );
            metrics.insert(
                "imagined_transitions".into(),
                self.imagined.as_ref().map_or(0, ReplayBuffer::len) as f64,
            );
            if let Some(fit) = &state.last_fit {
                metrics.extend(fit_metrics(fit));
            }
        }
        let train_return = Some(returns.iter().sum::<f64>() / returns.len().max(1) as f64);
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
        &self.agent.actor
    }

    /// The fitted model (all members), the actor as proposal and `min(Q1, Q2)` at the actor's
    /// mean action as terminal value.
    fn planning_parts(&self) -> Result<Option<PlanningParts>> {
        let Some(state) = self.model.as_ref().filter(|m| m.env.is_some()) else {
            return Ok(None);
        };
        let (actor, critic) = (self.agent.actor.snapshot()?, self.agent.critic.snapshot()?);
        let proposal = self.agent.actor.snapshot()?;
        let terminal_value: OwnedValueFunction = Box::new(move |obs: &Tensor| {
            let act = actor.mode_with(&actor.net().detached(), obs)?;
            critic.min_q(CriticWeights::OnlineDetached, obs, &act)
        });
        Ok(Some(PlanningParts {
            model: state.trainable.frozen()?,
            terminal_value: Some(terminal_value),
            proposal: Some(Box::new(proposal)),
        }))
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = self.agent.named_tensors()?;
        for (name, t) in self.real.named_tensors()? {
            tensors.insert(format!("real_buffer.{name}"), t);
        }
        if let Some(buffer) = &self.imagined {
            for (name, t) in buffer.named_tensors()? {
                tensors.insert(format!("imagined_buffer.{name}"), t);
            }
        }
        let mut model_fitted = false;
        let mut elites = None;
        if let Some(state) = &self.model {
            for (name, t) in state.trainable.named_tensors()? {
                tensors.insert(format!("model.{name}"), t);
            }
            model_fitted = state.env.is_some();
            elites = state.elites.clone();
        }
        let r = &self.rngs;
        let progress = Progress {
            env_steps: self.env_steps,
            model_fitted,
            elites,
            rngs: [&r.env, &r.policy, &r.model, &r.sampler, &r.data].map(RngState::capture),
        };
        Ok((tensors, state_to_json(&progress)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        let progress: Progress = state_from_json(state)?;
        self.agent.load_named_tensors(&tensors)?;
        self.real = ReplayBuffer::from_named_tensors(&with_prefix(&tensors, "real_buffer."))?;
        let imagined = with_prefix(&tensors, "imagined_buffer.");
        self.imagined = if imagined.is_empty() {
            None
        } else {
            Some(ReplayBuffer::from_named_tensors(&imagined)?)
        };
        if let Some(model) = self.model.as_mut() {
            model
                .trainable
                .load_named_tensors(&with_prefix(&tensors, "model."))?;
            model.elites = progress.elites;
            model.env = None;
            if progress.model_fitted {
                rebuild_model_env(model, self.env.as_ref(), &self.settings.imagination)?;
            }
        }
        let [env, policy, model, sampler, data] = progress.rngs.map(|s| s.restore());
        self.rngs = Rngs {
            env,
            policy,
            model,
            sampler,
            data,
        };
        self.env_steps = progress.env_steps;
        Ok(())
    }
}

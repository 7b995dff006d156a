//! The model-free meta-RL trainer over an environment's task family: ProMP (Algorithm 4),
//! MAML-TRPO and MAML-VPG, with the meta-gradient estimator a config choice.
//!
//! Each iteration (Algorithm 4, lines 3-13):
//! 1. sample `meta_batch_size` tasks;
//! 2. per task, for each of the `num_inner_grad_steps` adaptation steps: roll out
//!    `rollouts_per_task` episodes with `theta_k`, fit the task's own baseline, adapt;
//!    then roll out the adapted policy `theta'`;
//! 3. the outer update, on a higher-order thread (second derivatives through the inner step).
//!
//! Metrics: `pre_update_return` (with `theta`) and `post_update_return` (with `theta'`); the
//! post-update return is the iteration's `train_return` (what the thesis's meta-learning curves
//! show).

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext, IterationStats};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::data::Trajectory;
use mbrl_core::env::EnvFactory;
use mbrl_core::policy::{GaussianPolicy, Policy};
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::task::Task;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use mbrl_policy_opt::model_free::{load_policy_tensors, policy_tensors, table};
use mbrl_policy_opt::trpo::TrpoConfig;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::adaptation::{adapt, InnerStepSize};
use crate::ascent::Ascent;
use crate::estimators::Estimator;
use crate::maml_trpo::maml_trpo_step;
use crate::maml_vpg::MamlVpg;
use crate::meta_objective::MetaTaskSamples;
use crate::promp::{ProMp, ProMpSettings};
use crate::samples::{snapshot, ParamsPolicy, TaskSamples};
use crate::task_sampler::TaskSampler;
use mbrl_core::higher_order;

/// The `[meta]` table: gradient-based meta-RL (defaults: thesis Table 3 and ALGORITHM_NOTES).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaConfig {
    /// Tasks per iteration. Default 40.
    pub meta_batch_size: usize,
    /// Episodes per task and adaptation step. Default 20.
    pub rollouts_per_task: usize,
    /// Inner VPG steps per task. Default 1.
    pub num_inner_grad_steps: usize,
    /// Inner step size `alpha`, the same for every parameter. Default 0.1 (ProMP).
    pub inner_step_size: f64,
    /// Learn per-parameter step sizes with the outer optimiser (not with `maml-trpo`).
    /// Default false.
    pub learn_inner_step_size: bool,
    /// Meta-gradient estimator: `lvc`, `dice`, `maml` or `e-maml`. Default: `lvc` for
    /// `promp`, `maml` for `maml-trpo` and `maml-vpg` (the original implementation).
    pub estimator: Option<Estimator>,
    /// Outer Adam learning rate `beta` of ProMP and MAML-VPG. Default 1e-3.
    pub outer_learning_rate: f64,
    /// ProMP gradient steps per batch. Default 5.
    pub promp_steps: usize,
    /// ProMP clip range `epsilon`. Default 0.3.
    pub clip: f64,
    /// ProMP KL-penalty coefficient `eta` (the initial one with `kl_target`). Default 5e-4.
    pub kl_penalty: f64,
    /// ProMP: adapt `eta` after each batch toward this pre-update KL (halve below
    /// `target / 1.5`, double above `1.5 target`). Default none (fixed `eta`).
    pub kl_target: Option<f64>,
    /// MAML-TRPO: finite-difference step of the Fisher-vector products, per unit direction.
    /// Default 1e-3 (the reference's 1e-5 is below `f32` resolution).
    pub fvp_epsilon: f64,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            meta_batch_size: 40,
            rollouts_per_task: 20,
            num_inner_grad_steps: 1,
            inner_step_size: 0.1,
            learn_inner_step_size: false,
            estimator: None,
            outer_learning_rate: 1e-3,
            promp_steps: 5,
            clip: 0.3,
            kl_penalty: 5e-4,
            kl_target: None,
            fvp_epsilon: 1e-3,
        }
    }
}

impl MetaConfig {
    /// Checks the ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("meta.meta_batch_size", self.meta_batch_size),
            ("meta.rollouts_per_task", self.rollouts_per_task),
            ("meta.promp_steps", self.promp_steps),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{key} must be at least 1")));
            }
        }
        for (key, value) in [
            ("meta.outer_learning_rate", self.outer_learning_rate),
            ("meta.clip", self.clip),
            ("meta.fvp_epsilon", self.fvp_epsilon),
            ("meta.kl_target", self.kl_target.unwrap_or(1.0)),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "{key} must be a positive number, got {value}"
                )));
            }
        }
        for (key, value) in [
            ("meta.inner_step_size", self.inner_step_size),
            ("meta.kl_penalty", self.kl_penalty),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "{key} must be a non-negative number, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// Registry entry of ProMP.
pub const PROMP_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "promp",
    description: "ProMP: clipped meta-objective with KL penalty and the LVC inner step",
    reference: "thesis Ch. 6, Algorithm 4 (Rothfuss et al., 2019)",
    build: |ctx| build(ctx, Outer::ProMp),
};

/// Registry entry of MAML-TRPO.
pub const MAML_TRPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "maml-trpo",
    description: "MAML with a TRPO outer step (KL on the post-update policies)",
    reference: "Finn et al., 2017; thesis Sec. 6.7.1",
    build: |ctx| build(ctx, Outer::Trpo),
};

/// Registry entry of MAML-VPG.
pub const MAML_VPG_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "maml-vpg",
    description: "MAML with a vanilla policy-gradient (Adam) outer step",
    reference: "thesis Sec. 6.7.2, Fig. 14",
    build: |ctx| build(ctx, Outer::Vpg),
};

/// Which outer optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    /// ProMP (Eq. 21).
    ProMp,
    /// TRPO with the KL on post-update policies.
    Trpo,
    /// Vanilla policy gradient with Adam.
    Vpg,
}

impl Outer {
    fn entry(self) -> &'static AlgorithmEntry {
        match self {
            Outer::ProMp => &PROMP_ENTRY,
            Outer::Trpo => &MAML_TRPO_ENTRY,
            Outer::Vpg => &MAML_VPG_ENTRY,
        }
    }

    fn default_estimator(self) -> Estimator {
        match self {
            Outer::ProMp => Estimator::Lvc,
            Outer::Trpo | Outer::Vpg => Estimator::Maml,
        }
    }
}

/// Every table the meta-RL trainer reads.
#[derive(Debug, Clone, Default)]
pub struct MetaSettings {
    /// `[meta]`.
    pub meta: MetaConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[advantage]`.
    pub advantage: AdvantageConfig,
    /// `[trpo]` (MAML-TRPO's trust region).
    pub trpo: TrpoConfig,
}

fn build(ctx: BuildContext, outer: Outer) -> Result<Box<dyn Algorithm>> {
    let settings = MetaSettings {
        meta: table(&ctx.config, "meta")?,
        policy: table(&ctx.config, "policy")?,
        advantage: table(&ctx.config, "advantage")?,
        trpo: table(&ctx.config, "trpo")?,
    };
    Ok(Box::new(MetaTrainer::new(
        &ctx.env_factory,
        ctx.seed,
        outer,
        settings,
    )?))
}

enum Optimiser {
    ProMp(Box<ProMp>),
    Trpo,
    Vpg(Box<MamlVpg>),
}

/// Checkpoint prefix of the outer Adam's state.
const OUTER_ADAM: &str = "outer_adam";

impl Optimiser {
    /// The outer Adam of ProMP and MAML-VPG (TRPO keeps no state between updates).
    fn ascent(&self) -> Option<&Ascent> {
        match self {
            Optimiser::ProMp(promp) => Some(promp.ascent()),
            Optimiser::Vpg(vpg) => Some(vpg.ascent()),
            Optimiser::Trpo => None,
        }
    }

    fn ascent_mut(&mut self) -> Option<&mut Ascent> {
        match self {
            Optimiser::ProMp(promp) => Some(promp.ascent_mut()),
            Optimiser::Vpg(vpg) => Some(vpg.ascent_mut()),
            Optimiser::Trpo => None,
        }
    }
}

/// The model-free meta-RL trainer.
pub struct MetaTrainer {
    outer: Outer,
    estimator: Estimator,
    settings: MetaSettings,
    policy: GaussianMlpPolicy,
    alpha: InnerStepSize,
    optimiser: Optimiser,
    sampler: TaskSampler,
    rng: ChaCha8Rng,
    task_rng: ChaCha8Rng,
    env_steps: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    env_steps: u64,
    policy_rng: RngState,
    task_rng: RngState,
    env_rng: RngState,
    /// ProMP's current KL coefficient (it adapts with `meta.kl_target`).
    #[serde(default)]
    kl_penalty: Option<f64>,
}

/// One task's rollouts and adaptation ([`MetaTrainer::adapt_to_task`]).
pub struct TaskAdaptation {
    /// The batches `D_0 .. D_{K-1}` and the post-update batch, as the outer step uses them.
    pub samples: MetaTaskSamples,
    /// The trajectories behind them: drawn with `theta_0` (pre-update) first, with the adapted
    /// `theta_K` (post-update) last.
    pub trajectories: Vec<Vec<Trajectory>>,
    /// The adapted parameters `theta_K` (detached), which drew the last batch.
    pub adapted: Vec<Tensor>,
}

/// One iteration's samples and returns.
pub struct MetaBatch {
    /// Per task: pre-update batches and the post-update batch.
    pub tasks: Vec<MetaTaskSamples>,
    /// Mean return before adaptation, then after each adaptation step.
    pub step_returns: Vec<f64>,
    /// Environment steps taken.
    pub env_steps: u64,
}

impl MetaTrainer {
    /// A trainer on `factory`'s task family.
    pub fn new(
        factory: &EnvFactory,
        seed: u64,
        outer: Outer,
        settings: MetaSettings,
    ) -> Result<Self> {
        settings.meta.validate()?;
        // Before any backward pass of this thread (PERFORMANCE_NOTES item 7); the meta-update
        // itself runs on its own thread regardless.
        higher_order::enable();
        let probe = factory()?;
        let (obs_dim, act_dim) = (
            probe.observation_space().flat_dim(),
            probe.action_space().flat_dim(),
        );
        let mut rng = stream_rng(seed, Stream::Policy);
        let policy = GaussianMlpPolicy::new(obs_dim, act_dim, settings.policy.clone(), &mut rng)?;
        let alpha = InnerStepSize::uniform(
            &policy,
            settings.meta.inner_step_size,
            settings.meta.learn_inner_step_size,
        )?;
        let optimiser = match outer {
            Outer::ProMp => Optimiser::ProMp(Box::new(ProMp::new(
                &policy,
                &alpha,
                ProMpSettings {
                    learning_rate: settings.meta.outer_learning_rate,
                    steps: settings.meta.promp_steps,
                    clip: settings.meta.clip,
                    kl_penalty: settings.meta.kl_penalty,
                    kl_target: settings.meta.kl_target,
                },
            )?)),
            Outer::Trpo => {
                if alpha.is_learnable() {
                    return Err(Error::InvalidArgument(
                        "maml-trpo cannot learn the inner step size; set \
                         meta.learn_inner_step_size = false"
                            .into(),
                    ));
                }
                Optimiser::Trpo
            }
            Outer::Vpg => Optimiser::Vpg(Box::new(MamlVpg::new(
                &policy,
                &alpha,
                settings.meta.outer_learning_rate,
            )?)),
        };
        Ok(Self {
            outer,
            estimator: settings
                .meta
                .estimator
                .unwrap_or_else(|| outer.default_estimator()),
            sampler: TaskSampler::new(factory, settings.meta.rollouts_per_task, seed)?,
            settings,
            policy,
            alpha,
            optimiser,
            rng,
            task_rng: stream_rng(seed, Stream::Custom(0)),
            env_steps: 0,
        })
    }

    /// The pre-update policy.
    pub fn meta_policy(&self) -> &GaussianMlpPolicy {
        &self.policy
    }

    /// The inner step sizes.
    pub fn inner_step_size(&self) -> &InnerStepSize {
        &self.alpha
    }

    /// The meta-gradient estimator in use.
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    fn task_samples(&self, trajectories: &[Trajectory], params: &[Tensor]) -> Result<TaskSamples> {
        TaskSamples::from_trajectories(
            trajectories,
            &self.policy,
            params,
            &mut LinearFeatureBaseline::new(),
            &self.settings.advantage,
        )
    }

    /// Algorithm 4, lines 5-10 for one task: rolls out `rollouts_per_task` episodes with
    /// `theta_k` and adapts, `num_inner_grad_steps` times, then rolls out the adapted policy,
    /// with the trainer's own sampler, streams and estimator (what each training iteration does
    /// per task; also the adaptation to a chosen task after training).
    pub fn adapt_to_task(&mut self, task: &Task) -> Result<TaskAdaptation> {
        let steps = self.settings.meta.num_inner_grad_steps;
        let alpha = self.alpha.tensors();
        self.sampler.set_task(task)?;
        let mut params = snapshot(&self.policy.parameter_tensors())?;
        let mut trajectories = Vec::with_capacity(steps + 1);
        let mut inner = Vec::with_capacity(steps);
        loop {
            let actor = ParamsPolicy::new(&self.policy, &params);
            let batch = self.sampler.rollouts(&actor, &mut self.rng)?;
            let samples = self.task_samples(&batch, &params)?;
            trajectories.push(batch);
            if inner.len() == steps {
                return Ok(TaskAdaptation {
                    samples: MetaTaskSamples {
                        inner,
                        post: samples,
                    },
                    trajectories,
                    adapted: params,
                });
            }
            params = snapshot(&adapt(
                &self.policy,
                &params,
                std::slice::from_ref(&samples),
                &alpha,
                self.estimator,
            )?)?;
            inner.push(samples);
        }
    }

    /// Algorithm 4, lines 3-12: tasks, pre-update rollouts, adaptation, post-update rollouts.
    pub fn collect(&mut self) -> Result<MetaBatch> {
        let meta = self.settings.meta.clone();
        let tasks = self
            .sampler
            .sample_tasks(meta.meta_batch_size, &mut self.task_rng)?;
        let mut batches = Vec::with_capacity(tasks.len());
        let mut step_returns = vec![0.0; meta.num_inner_grad_steps + 1];
        let mut env_steps = 0u64;
        for task in &tasks {
            let samples = self.adapt_to_task(task)?.samples;
            let all = samples.inner.iter().chain(std::iter::once(&samples.post));
            for (step_return, s) in step_returns.iter_mut().zip(all) {
                env_steps += s.steps as u64;
                *step_return += s.mean_return() / tasks.len() as f64;
            }
            batches.push(samples);
        }
        Ok(MetaBatch {
            tasks: batches,
            step_returns,
            env_steps,
        })
    }
}

impl Algorithm for MetaTrainer {
    fn name(&self) -> &str {
        self.outer.entry().name
    }

    fn metric_columns(&self) -> Vec<String> {
        [
            "train_return",
            "pre_update_return",
            "post_update_return",
            "meta_objective",
            "kl",
            "kl_penalty",
            "inner_step_size",
            "policy_std",
        ]
        .map(String::from)
        .to_vec()
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let batch = self.collect()?;
        self.env_steps += batch.env_steps;
        let (policy, alpha, estimator) = (&self.policy, &self.alpha, self.estimator);
        let (trpo, fvp_epsilon) = (&self.settings.trpo, self.settings.meta.fvp_epsilon);
        let tasks = &batch.tasks;
        let optimiser = &mut self.optimiser;
        let (objective, kl, kl_penalty) = higher_order::run(move || match optimiser {
            Optimiser::ProMp(promp) => {
                let s = promp.update(policy, alpha, tasks, estimator)?;
                Ok((s.objective_before, s.pre_update_kl, s.kl_penalty))
            }
            Optimiser::Trpo => {
                let s = maml_trpo_step(policy, alpha, tasks, estimator, trpo, fvp_epsilon)?;
                Ok((s.surrogate_before, s.kl, 0.0))
            }
            Optimiser::Vpg(vpg) => {
                let s = vpg.update(policy, alpha, tasks, estimator)?;
                Ok((s.objective, 0.0, 0.0))
            }
        })?;
        let pre = batch.step_returns[0];
        let post = *batch.step_returns.last().expect("at least two entries");
        let log_std = self
            .policy
            .parameters()
            .last()
            .expect("log-std parameter")
            .as_tensor();
        let policy_std = log_std.exp()?.mean_all()?.to_scalar::<f32>()? as f64;
        let metrics = BTreeMap::from([
            ("train_return".to_string(), post),
            ("pre_update_return".to_string(), pre),
            ("post_update_return".to_string(), post),
            ("meta_objective".to_string(), objective),
            ("kl".to_string(), kl),
            ("kl_penalty".to_string(), kl_penalty),
            ("inner_step_size".to_string(), self.alpha.mean()?),
            ("policy_std".to_string(), policy_std),
        ]);
        Ok(IterationStats {
            env_steps: self.env_steps,
            metrics,
            train_return: Some(post),
        })
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = policy_tensors(&self.policy);
        for (i, a) in self.alpha.vars().iter().enumerate() {
            tensors.insert(format!("inner_step_size.{i}"), a.as_tensor().clone());
        }
        if let Some(ascent) = self.optimiser.ascent() {
            tensors.extend(ascent.adam().state_tensors(OUTER_ADAM)?);
        }
        let state = SavedState {
            env_steps: self.env_steps,
            policy_rng: RngState::capture(&self.rng),
            task_rng: RngState::capture(&self.task_rng),
            env_rng: self.sampler.rng_state(),
            kl_penalty: match &self.optimiser {
                Optimiser::ProMp(promp) => Some(promp.kl_penalty()),
                _ => None,
            },
        };
        Ok((tensors, state_to_json(&state)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        load_policy_tensors(&self.policy, &tensors)?;
        for (i, a) in self.alpha.vars().iter().enumerate() {
            let name = format!("inner_step_size.{i}");
            let t = tensors.get(&name).ok_or_else(|| {
                Error::InvalidArgument(format!("checkpoint lacks tensor `{name}`"))
            })?;
            a.set(t)?;
        }
        if let Some(ascent) = self.optimiser.ascent_mut() {
            ascent.adam_mut().load_state_tensors(OUTER_ADAM, &tensors)?;
        }
        let state: SavedState = state_from_json(state)?;
        self.env_steps = state.env_steps;
        self.rng = state.policy_rng.restore();
        self.task_rng = state.task_rng.restore();
        self.sampler.restore_rng(&state.env_rng);
        if let (Optimiser::ProMp(promp), Some(eta)) = (&mut self.optimiser, state.kl_penalty) {
            promp.set_kl_penalty(eta);
        }
        Ok(())
    }
}

//! The training loop of `grbal`, `rebal`, `mb-mpc` and `mb-de` (thesis Algorithm 9 and
//! Sec. 9.4):
//! every iteration collects `rollouts_per_iteration` real episodes, each in a task drawn from
//! the environment's family, with the current adaptive controller (uniformly random actions
//! in the first iteration), adds them to the data and refits the model.
//!
//! - `grbal`: meta-learned model, one inner step on the last `M` transitions before each action;
//! - `rebal`: a GRU trained to predict `K` steps after reading `M`, its hidden state read from
//!   the last `M` transitions before each action;
//! - `mb-mpc`: the same model trained by plain supervised learning, no adaptation (MB);
//! - `mb-de`: MB's training, with dynamic evaluation while acting (MB+DE).
//!
//! All four plan with the `[adapt.planner]` MPC (MPPI by default) in the task's reward.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext, IterationStats};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::env::Env;
use mbrl_core::policy::{Policy, RandomPolicy};
use mbrl_core::rollout::{rollout_episode, DEFAULT_MAX_EPISODE_STEPS};
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::space::BoxSpace;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::model_free::table;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::adaptation::InnerLearningRate;
use crate::config::AdaptConfig;
use crate::controller::{AdaptiveController, OnlineUpdate};
use crate::model::DeltaModel;
use crate::recurrent::{GruDeltaModel, RecurrentLearner};
use crate::recurrent_controller::RecurrentController;
use crate::segments::{SegmentBuffer, SegmentLengths};
use crate::training::{FitReport, ModelLearner, Objective, WindowLearner};

/// The four methods of Sec. 9.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Gradient-based adaptive learner.
    Grbal,
    /// Recurrence-based adaptive learner.
    Rebal,
    /// Model-based RL without adaptation.
    MbMpc,
    /// Model-based RL with dynamic evaluation.
    MbDe,
}

impl Method {
    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Grbal => "grbal",
            Method::Rebal => "rebal",
            Method::MbMpc => "mb-mpc",
            Method::MbDe => "mb-de",
        }
    }

    /// Whether the method has a value for metric `key` (ReBAL has no inner step size).
    fn reports(self, key: &str) -> bool {
        self != Method::Rebal || key != "inner_learning_rate"
    }

    fn objective(self, config: &AdaptConfig) -> Objective {
        match self {
            Method::Grbal => Objective::MetaLearned {
                first_order: config.grbal.first_order,
            },
            _ => Objective::Supervised,
        }
    }

    fn online_update(self, config: &AdaptConfig, rates: &InnerLearningRate) -> OnlineUpdate {
        match self {
            Method::Grbal => OnlineUpdate::FromPrior {
                rates: rates.tensors().iter().map(Tensor::detach).collect(),
            },
            Method::MbMpc | Method::Rebal => OnlineUpdate::None,
            Method::MbDe => OnlineUpdate::Carried {
                learning_rate: config.dynamic_evaluation.learning_rate,
                steps: config.dynamic_evaluation.steps,
            },
        }
    }
}

/// `grbal` (thesis Ch. 9).
pub static GRBAL_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "grbal",
    description: "GrBAL: a meta-learned dynamics model adapted online by one gradient step on \
                  the last M transitions, with MPC",
    reference: "thesis Ch. 9 (Nagabandi, Clavera et al. 2019)",
    build: |ctx| build(ctx, Method::Grbal),
};

/// `rebal` (thesis Ch. 9).
pub static REBAL_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "rebal",
    description: "ReBAL: a GRU reads the last M transitions into a context that conditions \
                  the dynamics MLP (recurrent online adaptation), with MPC",
    reference: "thesis Ch. 9 (Nagabandi, Clavera et al. 2019)",
    build: |ctx| build(ctx, Method::Rebal),
};

/// `mb-mpc`: the MB baseline of Sec. 9.4.
pub static MB_MPC_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "mb-mpc",
    description: "MB: the same dynamics model trained without meta-learning, MPC without \
                  adaptation (GrBAL's baseline)",
    reference: "thesis Sec. 9.4 (Nagabandi et al. 2018)",
    build: |ctx| build(ctx, Method::MbMpc),
};

/// `mb-de`: the MB+DE baseline of Sec. 9.4.
pub static MB_DE_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "mb-de",
    description: "MB+DE: MB's model with dynamic evaluation (online gradient steps on the last \
                  M transitions while acting)",
    reference: "thesis Sec. 9.4 (Krause et al. 2017)",
    build: |ctx| build(ctx, Method::MbDe),
};

fn build(ctx: BuildContext, method: Method) -> Result<Box<dyn Algorithm>> {
    let config: AdaptConfig = table(&ctx.config, "adapt")?;
    let env = (ctx.env_factory)()?;
    Ok(Box::new(AdaptiveMbrl::new(env, method, config, ctx.seed)?))
}

/// Random streams of the loop.
struct Streams {
    tasks: ChaCha8Rng,
    resets: ChaCha8Rng,
    actions: ChaCha8Rng,
    windows: ChaCha8Rng,
}

/// What a checkpoint stores besides tensors.
#[derive(Serialize, Deserialize)]
struct SavedState {
    env_steps: u64,
    segments: SegmentLengths,
    tasks: RngState,
    resets: RngState,
    actions: RngState,
    windows: RngState,
}

/// The model being trained and its optimiser.
pub enum Learner {
    /// The state-change MLP of GrBAL, MB and MB+DE.
    Mlp(ModelLearner),
    /// ReBAL's GRU.
    Recurrent(RecurrentLearner),
}

impl Learner {
    fn window_learner(&mut self) -> &mut (dyn WindowLearner + Send) {
        match self {
            Learner::Mlp(l) => l,
            Learner::Recurrent(l) => l,
        }
    }
}

/// The controller of the current model.
pub enum Controller {
    /// Gradient adaptation (GrBAL, MB+DE) or none (MB).
    Gradient(AdaptiveController),
    /// ReBAL's hidden state.
    Recurrent(RecurrentController),
}

impl Controller {
    fn policy(&self) -> &dyn Policy {
        match self {
            Controller::Gradient(c) => c,
            Controller::Recurrent(c) => c,
        }
    }

    fn non_finite_adaptations(&self) -> u64 {
        match self {
            Controller::Gradient(c) => c.non_finite_adaptations(),
            Controller::Recurrent(c) => c.non_finite_adaptations(),
        }
    }
}

/// GrBAL, ReBAL, MB or MB+DE on one environment with a task family.
pub struct AdaptiveMbrl {
    method: Method,
    config: AdaptConfig,
    env: Box<dyn Env>,
    action_space: BoxSpace,
    max_steps: usize,
    learner: Learner,
    buffer: SegmentBuffer,
    controller: Controller,
    streams: Streams,
    env_steps: u64,
}

impl AdaptiveMbrl {
    /// `method` on `env` (which needs an active task family and a bounded action box), from
    /// the run seed's streams.
    pub fn new(
        mut env: Box<dyn Env>,
        method: Method,
        config: AdaptConfig,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let spec = env.spec();
        if env.task_distribution().is_none() {
            return Err(Error::InvalidArgument(format!(
                "{} trains on a task family: set env.task_family for `{}`",
                method.name(),
                spec.name
            )));
        }
        let action_space =
            env.action_space().as_box().cloned().ok_or_else(|| {
                Error::InvalidArgument("planning needs a box action space".into())
            })?;
        let obs_dim = env.observation_space().flat_dim();
        let act_dim = action_space.flat_dim();
        let learner = new_learner(method, &config, (obs_dim, act_dim), seed)?;
        let controller = controller(method, &config, &learner, &action_space, env.as_ref())?;
        Ok(Self {
            method,
            max_steps: spec.max_episode_steps.unwrap_or(DEFAULT_MAX_EPISODE_STEPS),
            buffer: SegmentBuffer::new(obs_dim, act_dim),
            streams: Streams {
                tasks: stream_rng(seed, Stream::Custom(0)),
                resets: stream_rng(seed, Stream::Env),
                actions: stream_rng(seed, Stream::Policy),
                windows: stream_rng(seed, Stream::Data),
            },
            config,
            env,
            action_space,
            learner,
            controller,
            env_steps: 0,
        })
    }

    /// The adaptive controller of the current model.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The model learner (model, optimiser and, for the MLP, the inner step sizes).
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// One real episode per rollout, each in a freshly drawn task; returns their returns.
    fn collect(&mut self, random: bool) -> Result<Vec<f64>> {
        let random_policy = RandomPolicy::new(self.action_space.clone())?;
        let mut returns = Vec::new();
        for _ in 0..self.config.rollouts_per_iteration {
            let family = self.env.task_distribution().ok_or_else(|| {
                Error::InvalidArgument("the environment lost its task family".into())
            })?;
            let task = family
                .sample_tasks(1, &mut self.streams.tasks)
                .pop()
                .ok_or_else(|| Error::InvalidArgument("the task family sampled no task".into()))?;
            family.set_task(&task)?;
            let policy: &dyn Policy = match random {
                true => &random_policy,
                false => self.controller.policy(),
            };
            let seed = self.streams.resets.next_u64();
            let traj = rollout_episode(
                self.env.as_mut(),
                policy,
                Some(seed),
                false,
                self.max_steps,
                &mut self.streams.actions,
            )?;
            self.buffer
                .add(&traj, self.config.window(), self.config.validation_share)?;
            self.env_steps += traj.len() as u64;
            returns.push(traj.total_return());
        }
        Ok(returns)
    }

    fn fit(&mut self) -> Result<FitReport> {
        self.learner
            .window_learner()
            .fit(&self.buffer, &self.config, &mut self.streams.windows)
    }

    fn rebuild_controller(&mut self) -> Result<()> {
        self.controller = controller(
            self.method,
            &self.config,
            &self.learner,
            &self.action_space,
            self.env.as_ref(),
        )?;
        Ok(())
    }
}

/// A fresh model of `method` for `(obs_dim, act_dim)` and its optimiser.
fn new_learner(
    method: Method,
    config: &AdaptConfig,
    (obs_dim, act_dim): (usize, usize),
    seed: u64,
) -> Result<Learner> {
    let mut model_rng = stream_rng(seed, Stream::Model);
    if method == Method::Rebal {
        let model = GruDeltaModel::new(
            obs_dim,
            act_dim,
            config.rebal.hidden_size,
            &config.hidden_sizes,
            &mut model_rng,
        )?;
        return Ok(Learner::Recurrent(RecurrentLearner::new(
            model,
            config.rebal.learning_rate,
        )?));
    }
    let model = DeltaModel::new(obs_dim, act_dim, &config.hidden_sizes, &mut model_rng)?;
    let rates = InnerLearningRate::new(
        model.mlp().vars().len(),
        config.grbal.inner_learning_rate,
        config.grbal.learn_inner_learning_rate,
    )?;
    Ok(Learner::Mlp(ModelLearner::new(
        model,
        rates,
        method.objective(config),
        config.learning_rate,
    )?))
}

/// The controller of `learner`'s current model (a snapshot).
fn controller(
    method: Method,
    config: &AdaptConfig,
    learner: &Learner,
    action_space: &BoxSpace,
    env: &dyn Env,
) -> Result<Controller> {
    let planner = config.planner.build(action_space)?;
    Ok(match learner {
        Learner::Mlp(l) => Controller::Gradient(AdaptiveController::new(
            l.model.snapshot()?,
            method.online_update(config, &l.rates),
            config.past_steps,
            planner,
            env.task_functions(),
        )?),
        Learner::Recurrent(l) => Controller::Recurrent(RecurrentController::new(
            l.model.snapshot()?,
            config.past_steps,
            planner,
            env.task_functions(),
        )?),
    })
}

const METRICS: [&str; 11] = [
    "collect_time_s",
    "fit_time_s",
    "fit_epochs",
    "fit_steps",
    "train_pre_adaptation_loss",
    "train_post_adaptation_loss",
    "validation_pre_adaptation_loss",
    "validation_post_adaptation_loss",
    "inner_learning_rate",
    "non_finite_adaptations",
    "data_transitions",
];

impl Algorithm for AdaptiveMbrl {
    fn name(&self) -> &str {
        self.method.name()
    }

    fn metric_columns(&self) -> Vec<String> {
        METRICS
            .iter()
            .filter(|k| self.method.reports(k))
            .map(|s| s.to_string())
            .collect()
    }

    fn train_iteration(&mut self, iteration: u64) -> Result<IterationStats> {
        let random = iteration == 1 && self.config.random_first_iteration;
        let start = Instant::now();
        let non_finite_before = self.controller.non_finite_adaptations();
        let returns = self.collect(random)?;
        let non_finite = self.controller.non_finite_adaptations() - non_finite_before;
        let collect_time = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let report = self.fit()?;
        let fit_time = start.elapsed().as_secs_f64();
        self.rebuild_controller()?;
        let validation = report.validation;
        let values = [
            collect_time,
            fit_time,
            report.epochs as f64,
            report.steps as f64,
            report.train.pre_adaptation,
            report.train.post_adaptation,
            validation.map_or(f64::NAN, |v| v.pre_adaptation),
            validation.map_or(f64::NAN, |v| v.post_adaptation),
            match &self.learner {
                Learner::Mlp(l) => l.rates.mean()?,
                Learner::Recurrent(_) => f64::NAN,
            },
            non_finite as f64,
            (self.buffer.train_transitions() + self.buffer.validation_transitions()) as f64,
        ];
        // Without validation data (short episodes) its two columns stay empty.
        let missing = |k: &str| {
            (validation.is_none() && k.starts_with("validation_")) || !self.method.reports(k)
        };
        let metrics: BTreeMap<String, f64> = METRICS
            .iter()
            .zip(values)
            .filter(|(k, _)| !missing(k))
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Ok(IterationStats {
            env_steps: self.env_steps,
            metrics,
            train_return: Some(returns.iter().sum::<f64>() / returns.len().max(1) as f64),
        })
    }

    fn policy(&self) -> &dyn Policy {
        self.controller.policy()
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = match &self.learner {
            Learner::Mlp(l) => {
                let mut t = l.model.named_tensors()?;
                t.extend(l.adam.state_tensors("adam")?);
                for (i, r) in l.rates.vars().iter().enumerate() {
                    t.insert(format!("inner_lr.{i}"), r.as_tensor().copy()?);
                }
                t
            }
            Learner::Recurrent(l) => {
                let mut t = l.model.named_tensors()?;
                t.extend(l.adam.state_tensors("adam")?);
                t
            }
        };
        let (data, segments) = self.buffer.to_checkpoint()?;
        tensors.extend(data);
        let s = &self.streams;
        let state = SavedState {
            env_steps: self.env_steps,
            segments,
            tasks: RngState::capture(&s.tasks),
            resets: RngState::capture(&s.resets),
            actions: RngState::capture(&s.actions),
            windows: RngState::capture(&s.windows),
        };
        Ok((tensors, state_to_json(&state)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        let state: SavedState = state_from_json(state)?;
        match &mut self.learner {
            Learner::Mlp(l) => {
                l.model.load_named_tensors(&tensors)?;
                l.adam.load_state_tensors("adam", &tensors)?;
                for (i, r) in l.rates.vars().iter().enumerate() {
                    let key = format!("inner_lr.{i}");
                    let value = tensors.get(&key).ok_or_else(|| {
                        Error::InvalidArgument(format!("the checkpoint has no tensor `{key}`"))
                    })?;
                    r.set(value)?;
                }
            }
            Learner::Recurrent(l) => {
                l.model.load_named_tensors(&tensors)?;
                l.adam.load_state_tensors("adam", &tensors)?;
            }
        }
        self.buffer.load_checkpoint(&tensors, &state.segments)?;
        self.env_steps = state.env_steps;
        self.streams = Streams {
            tasks: state.tasks.restore(),
            resets: state.resets.restore(),
            actions: state.actions.restore(),
            windows: state.windows.restore(),
        };
        self.rebuild_controller()
    }
}

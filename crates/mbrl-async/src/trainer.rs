//! The coordinator of an asynchronous run, as an `Algorithm` the run loop drives: it starts
//! the workers on threads, hands out the rollout budget one run iteration at a time, reads
//! every rollout (metrics, a copy of the real data for checkpoints), and keeps the newest
//! policy and model for evaluation, planning and checkpoints.
//!
//! An iteration ends when `async.rollouts_per_iteration` more rollouts have arrived; the
//! workers keep learning meanwhile, also while the run loop evaluates and checkpoints. A
//! resumed run restarts the workers from the checkpoint's policy, model and data; the optimiser
//! moments of the workers start over. Asynchronous runs are not bitwise reproducible: the
//! interleaving of the workers depends on the machine's scheduling.

use std::collections::{BTreeMap, HashMap};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use candle_core::Tensor;
use mbrl_core::algorithm::{
    Algorithm, AlgorithmEntry, BuildContext, IterationStats, PlanningParts,
};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::env::EnvFactory;
use mbrl_core::model::{ModelFactory, TrainableModel};
use mbrl_core::policy::Policy;
use mbrl_core::rollout::DEFAULT_MAX_EPISODE_STEPS;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::imagined_update::ImaginedUpdate;
use mbrl_policy_opt::me_trpo::{ImaginedOptimiser, Settings};
use mbrl_policy_opt::model_data::{
    learner_tensors, load_learner_tensors, mean_finished_return, model_and_policy_planning_parts,
    real_start_states, ModelData,
};
use mbrl_policy_opt::model_free::{load_policy_tensors, policy_tensors, table};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_tensors, encode_tensors, RolloutRecord};
use crate::config::AsyncConfig;
use crate::data_worker::DataWorker;
use crate::memory::memory_servers;
use crate::model_worker::ModelWorker;
use crate::policy_worker::{Imagination, PolicyWorker};
use crate::servers::Servers;
use crate::worker::{run_until_stopped, Worker, COORDINATOR_READER};

/// Registry entry of asynchronous ME-TRPO.
pub const ASYNC_ME_TRPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "async-me-trpo",
    description: "asynchronous ME-TRPO: data, model and policy workers in parallel threads",
    reference: "thesis Ch. 8, Algorithms 6-8",
    build: build_me_trpo,
};

/// Registry entry of asynchronous ME-PPO.
pub const ASYNC_ME_PPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "async-me-ppo",
    description: "asynchronous ME-PPO: data, model and policy (PPO) workers in parallel threads",
    reference: "thesis Ch. 8, Algorithms 6-8",
    build: build_me_ppo,
};

fn build_me_trpo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    Ok(Box::new(AsyncTrainer::new(
        ctx,
        &ASYNC_ME_TRPO_ENTRY,
        ImaginedOptimiser::Trpo,
    )?))
}

fn build_me_ppo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    Ok(Box::new(AsyncTrainer::new(
        ctx,
        &ASYNC_ME_PPO_ENTRY,
        ImaginedOptimiser::Ppo,
    )?))
}

/// What the workers are built from.
struct Recipe {
    env_factory: EnvFactory,
    model_factory: ModelFactory,
    seed: u64,
    settings: Settings,
    config: AsyncConfig,
}

impl Recipe {
    /// An independent random stream for worker slot `slot` (its own counter per role).
    fn rng(&self, slot: u32) -> ChaCha8Rng {
        stream_rng(self.seed, Stream::Custom(800 + slot))
    }

    fn fresh_model(
        &self,
        obs_dim: usize,
        act_dim: usize,
        slot: u32,
    ) -> Result<Box<dyn TrainableModel>> {
        (self.model_factory)(obs_dim, act_dim, &mut self.rng(slot))
    }
}

/// Counters a checkpoint carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    rollouts: u64,
    /// Rollouts received from each data worker.
    #[serde(default)]
    by_worker: Vec<u64>,
    env_steps: u64,
    model_fitted: bool,
}

/// The coordinator of one asynchronous run (threads backend).
pub struct AsyncTrainer {
    name: &'static str,
    recipe: Recipe,
    servers: Servers,
    workers: Vec<(String, JoinHandle<Result<()>>)>,
    started: bool,
    policy: GaussianMlpPolicy,
    policy_version: u64,
    model: Box<dyn TrainableModel>,
    model_version: u64,
    data: ModelData,
    progress: Progress,
    obs_dim: usize,
    act_dim: usize,
}

impl AsyncTrainer {
    /// The coordinator of `entry`, improving the policy by `optimiser` in imagination.
    pub fn new(
        ctx: BuildContext,
        entry: &'static AlgorithmEntry,
        optimiser: ImaginedOptimiser,
    ) -> Result<Self> {
        let config: AsyncConfig = table(&ctx.config, "async")?;
        config.validate()?;
        let mut settings = Settings {
            me_trpo: table(&ctx.config, "me_trpo")?,
            policy: table(&ctx.config, "policy")?,
            advantage: table(&ctx.config, "advantage")?,
            trpo: table(&ctx.config, "trpo")?,
            ppo: table(&ctx.config, "ppo")?,
        };
        settings.me_trpo.optimiser = optimiser;
        if settings.me_trpo.imagined_rollouts == 0 {
            return Err(Error::InvalidArgument(
                "me_trpo.imagined_rollouts must be at least 1".into(),
            ));
        }
        let model_factory = ctx.model_factory.clone().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} needs a dynamics model ([model] table)",
                entry.name
            ))
        })?;
        let probe = (ctx.env_factory)()?;
        let (obs_dim, act_dim) = (
            probe.observation_space().flat_dim(),
            probe.action_space().flat_dim(),
        );
        let recipe = Recipe {
            env_factory: ctx.env_factory.clone(),
            model_factory,
            seed: ctx.seed,
            settings,
            config,
        };
        let mut policy_rng = stream_rng(ctx.seed, Stream::Policy);
        let policy = GaussianMlpPolicy::new(
            obs_dim,
            act_dim,
            recipe.settings.policy.clone(),
            &mut policy_rng,
        )?;
        let model = recipe.fresh_model(obs_dim, act_dim, 0)?;
        let data = ModelData::new(
            recipe.config.buffer_capacity,
            obs_dim,
            act_dim,
            recipe.config.validation_share,
        )?;
        Ok(Self {
            name: entry.name,
            recipe,
            servers: memory_servers(),
            workers: Vec::new(),
            started: false,
            policy,
            policy_version: 0,
            model,
            model_version: 0,
            data,
            progress: Progress::default(),
            obs_dim,
            act_dim,
        })
    }

    /// Seeds the servers with the current policy (and model, once fitted) and starts every
    /// worker on its own thread.
    fn start(&mut self) -> Result<()> {
        let (obs_dim, act_dim) = (self.obs_dim, self.act_dim);
        let servers = self.servers.clone();
        self.policy_version = servers
            .policy
            .push(encode_tensors(&policy_tensors(&self.policy))?)?;
        let r = &self.recipe;
        let mut model = r.fresh_model(obs_dim, act_dim, 1)?;
        if self.progress.model_fitted {
            let tensors = self.model.named_tensors()?;
            model.load_named_tensors(&tensors)?;
            self.model_version = servers.model.push(encode_tensors(&tensors)?)?;
        }
        let mut workers: Vec<Box<dyn Worker>> = vec![Box::new(ModelWorker::new(
            model,
            self.data.clone(),
            r.config.moving_average_weight,
            r.rng(2),
            servers.clone(),
        )?)];

        let c = &r.settings.me_trpo;
        let mut env = (r.env_factory)()?;
        let horizon = c
            .imagined_horizon
            .or(env.spec().max_episode_steps)
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let mut pool_rng = r.rng(3);
        let imagination = Imagination {
            start_pool: real_start_states(
                env.as_mut(),
                &mut pool_rng,
                c.start_state_pool.max(c.imagined_rollouts),
            )?,
            rollouts: c.imagined_rollouts,
            task: env.task_functions(),
            model_env: c.model_env.clone(),
        };
        let policy = self.policy.snapshot()?;
        let s = &r.settings;
        let update = ImaginedUpdate::new(
            &policy,
            c.optimiser,
            (&s.advantage, &s.trpo, &s.ppo),
            horizon,
        )?;
        workers.push(Box::new(PolicyWorker::new(
            policy,
            update,
            r.fresh_model(obs_dim, act_dim, 4)?,
            imagination,
            r.rng(5),
            servers.clone(),
        )));
        for index in 0..r.config.data_workers as u32 {
            workers.push(Box::new(DataWorker::new(
                index as u64,
                (r.env_factory)()?,
                self.policy.snapshot()?,
                &r.config,
                (r.rng(100 + 2 * index), r.rng(101 + 2 * index)),
                servers.clone(),
            )?));
        }
        for worker in workers {
            let role = worker.role();
            let control = servers.control.clone();
            let handle = thread::Builder::new()
                .name(format!("mbrl-{role}"))
                .spawn(move || run_until_stopped(worker, control.as_ref()))
                .map_err(|e| {
                    Error::InvalidArgument(format!("cannot start the {role} worker: {e}"))
                })?;
            self.workers.push((role, handle));
        }
        self.started = true;
        Ok(())
    }

    /// The first worker that ended, with its error (a worker only ends early by failing).
    fn failed_worker(&mut self) -> Result<()> {
        let Some(i) = self.workers.iter().position(|(_, h)| h.is_finished()) else {
            return Ok(());
        };
        let (role, handle) = self.workers.remove(i);
        let _ = self.servers.control.request_stop();
        match handle.join() {
            Ok(Ok(())) => Err(Error::InvalidArgument(format!(
                "the {role} worker stopped before the run ended"
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::InvalidArgument(format!(
                "the {role} worker panicked"
            ))),
        }
    }

    /// Reads new rollouts until `target` have arrived in total; returns this call's.
    fn receive_until(&mut self, target: u64) -> Result<(Vec<RolloutRecord>, Vec<f64>)> {
        let (mut records, mut staleness) = (Vec::new(), Vec::new());
        while self.progress.rollouts < target {
            self.failed_worker()?;
            let new = self
                .servers
                .rollouts
                .take_new(COORDINATOR_READER, Duration::from_millis(100))?;
            let newest_policy = self.servers.policy.version()?;
            for bytes in new {
                let record = RolloutRecord::decode(&bytes)?;
                if record.policy_version > 0 {
                    staleness.push(newest_policy.saturating_sub(record.policy_version) as f64);
                }
                self.progress.rollouts += 1;
                let worker = record.worker as usize;
                if self.progress.by_worker.len() <= worker {
                    self.progress.by_worker.resize(worker + 1, 0);
                }
                self.progress.by_worker[worker] += 1;
                self.progress.env_steps += record.trajectory.len() as u64;
                self.data
                    .add_one_by_one(std::slice::from_ref(&record.trajectory))?;
                records.push(record);
            }
        }
        Ok((records, staleness))
    }

    /// Copies the newest policy and model from the servers.
    fn pull_newest(&mut self) -> Result<()> {
        if let Some(newest) = self.servers.policy.pull_newer(self.policy_version)? {
            load_policy_tensors(
                &self.policy,
                &decode_tensors(&newest.bytes, "the policy blob")?,
            )?;
            self.policy_version = newest.version;
        }
        if let Some(newest) = self.servers.model.pull_newer(self.model_version)? {
            self.model
                .load_named_tensors(&decode_tensors(&newest.bytes, "the model blob")?)?;
            self.model_version = newest.version;
            self.progress.model_fitted = true;
        }
        Ok(())
    }

    /// The workers' latest reports (`model_epochs`, `policy_steps`, ...), as they stand now.
    pub fn worker_reports(&self) -> Result<BTreeMap<String, f64>> {
        self.servers.control.reports()
    }

    /// Stops and joins every worker.
    fn stop_workers(&mut self) {
        let _ = self.servers.control.request_stop();
        for (role, handle) in self.workers.drain(..) {
            match handle.join() {
                Ok(Err(e)) => tracing::warn!("the {role} worker ended with: {e}"),
                Err(_) => tracing::warn!("the {role} worker panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for AsyncTrainer {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// Worker reports copied into the metrics.
const REPORTED: [&str; 8] = [
    "model_transitions",
    "model_epochs",
    "model_train_loss",
    "model_validation_loss",
    "model_active_members",
    "policy_steps",
    "imagined_return",
    "policy_model_version",
];

impl Algorithm for AsyncTrainer {
    fn name(&self) -> &str {
        self.name
    }

    fn metric_columns(&self) -> Vec<String> {
        [
            "train_return",
            "rollouts",
            "policy_version",
            "model_version",
            "staleness",
        ]
        .into_iter()
        .chain(REPORTED)
        .map(String::from)
        .chain((0..self.recipe.config.data_workers).map(|i| format!("data_{i}_rollouts")))
        .collect()
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        if !self.started {
            self.start()?;
        }
        let per_iteration = self.recipe.config.rollouts_per_iteration as u64;
        self.servers.control.add_budget(per_iteration)?;
        let target = self.progress.rollouts + per_iteration;
        let (records, staleness) = self.receive_until(target)?;
        self.pull_newest()?;
        let trajectories: Vec<_> = records.into_iter().map(|r| r.trajectory).collect();
        let train_return = mean_finished_return(&trajectories);
        let mut metrics = BTreeMap::new();
        metrics.insert("rollouts".to_string(), self.progress.rollouts as f64);
        metrics.insert("policy_version".into(), self.policy_version as f64);
        metrics.insert("model_version".into(), self.model_version as f64);
        if !staleness.is_empty() {
            metrics.insert(
                "staleness".into(),
                staleness.iter().sum::<f64>() / staleness.len() as f64,
            );
        }
        for (i, n) in self.progress.by_worker.iter().enumerate() {
            metrics.insert(format!("data_{i}_rollouts"), *n as f64);
        }
        let reports = self.servers.control.reports()?;
        for (key, value) in reports {
            if REPORTED.contains(&key.as_str()) {
                metrics.insert(key, value);
            }
        }
        if let Some(r) = train_return {
            metrics.insert("train_return".into(), r);
        }
        Ok(IterationStats {
            env_steps: self.progress.env_steps,
            metrics,
            train_return,
        })
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn planning_parts(&self) -> Result<Option<PlanningParts>> {
        model_and_policy_planning_parts(
            self.model.as_ref(),
            &self.policy,
            self.progress.model_fitted,
        )
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let tensors = learner_tensors(&self.policy, self.model.as_ref(), &self.data)?;
        Ok((tensors, state_to_json(&self.progress)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        if self.started {
            return Err(Error::InvalidArgument(
                "an asynchronous run restores its checkpoint before its workers start".into(),
            ));
        }
        load_learner_tensors(&self.policy, self.model.as_mut(), &mut self.data, &tensors)?;
        self.progress = state_from_json(state)?;
        Ok(())
    }
}

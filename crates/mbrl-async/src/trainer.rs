//! The coordinator of an asynchronous run, as an `Algorithm` the run loop drives: it starts
//! the workers on threads (or, for the partially-asynchronous variants of Sec. 8.4.2-8.4.3,
//! runs their steps itself in a fixed [`Schedule`]), hands out the rollout budget one run iteration at a time, reads
//! every rollout (metrics, a copy of the real data for checkpoints), and keeps the newest
//! policy and model for evaluation, planning and checkpoints.
//!
//! An iteration ends when `async.rollouts_per_iteration` more rollouts have arrived; the
//! workers keep learning meanwhile, also while the run loop evaluates and checkpoints. A
//! resumed run restarts the workers from the checkpoint's policy, model and data; the optimiser
//! moments of the workers start over. Asynchronous runs are not bitwise reproducible: the
//! interleaving of the workers depends on the machine's scheduling. The interleaved variants
//! run on one thread and are reproducible under a seed.

use std::collections::{BTreeMap, HashMap};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use mbrl_core::algorithm::{
    Algorithm, AlgorithmEntry, BuildContext, IterationStats, PlanningParts,
};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::model::TrainableModel;
use mbrl_core::policy::Policy;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::model_data::{
    learner_tensors, load_learner_tensors, mean_finished_return, model_and_policy_planning_parts,
    ModelData,
};
use mbrl_policy_opt::model_free::{load_policy_tensors, policy_tensors, table};
use serde::{Deserialize, Serialize};

use crate::codec::{decode_tensors, encode_tensors, RolloutRecord, StreamEntry};
use crate::config::{Backend, InterleavedConfig};
use crate::data_worker::DataWorker;
use crate::memory::memory_servers;
use crate::model_worker::ModelWorker;
use crate::policy_worker::PolicyWorker;
use crate::recipe::{Improvement, Recipe};
use crate::redis_backend::{RedisRun, RunMeta};
use crate::servers::Servers;
use crate::worker::{run_until_stopped, Outcome, Worker, COORDINATOR_READER};

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

/// Registry entry of asynchronous MB-MPO.
pub const ASYNC_MB_MPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "async-mb-mpo",
    description: "asynchronous MB-MPO: data, model and policy (meta-step) workers in parallel",
    reference: "thesis Ch. 8, Algorithms 6-8",
    build: build_mb_mpo,
};

/// Registry entry of the partially-asynchronous ME-TRPO of Sec. 8.4.2.
pub const INTERLEAVED_MODEL_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "me-trpo-interleaved-model",
    description: "partially asynchronous ME-TRPO: model epochs and policy steps interleaved",
    reference: "thesis Sec. 8.4.2",
    build: build_interleaved_model,
};

/// Registry entry of the partially-asynchronous ME-TRPO of Sec. 8.4.3.
pub const INTERLEAVED_DATA_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "me-trpo-interleaved-data",
    description: "partially asynchronous ME-TRPO: policy steps and real rollouts interleaved",
    reference: "thesis Sec. 8.4.3",
    build: build_interleaved_data,
};

fn build_me_trpo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let drive = Drive::Threads;
    let trainer = AsyncTrainer::new(ctx, &ASYNC_ME_TRPO_ENTRY, Improvement::Trpo, drive)?;
    Ok(Box::new(trainer))
}

fn build_me_ppo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let drive = Drive::Threads;
    let trainer = AsyncTrainer::new(ctx, &ASYNC_ME_PPO_ENTRY, Improvement::Ppo, drive)?;
    Ok(Box::new(trainer))
}

fn build_mb_mpo(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let trainer = AsyncTrainer::new(ctx, &ASYNC_MB_MPO_ENTRY, Improvement::MbMpo, Drive::Threads)?;
    Ok(Box::new(trainer))
}

fn build_interleaved_model(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let drive = Drive::Interleaved(Schedule::ModelWithPolicy(table(
        &ctx.config,
        "interleaved",
    )?));
    let trainer = AsyncTrainer::new(ctx, &INTERLEAVED_MODEL_ENTRY, Improvement::Trpo, drive)?;
    Ok(Box::new(trainer))
}

fn build_interleaved_data(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let drive = Drive::Interleaved(Schedule::PolicyWithData(table(&ctx.config, "interleaved")?));
    let trainer = AsyncTrainer::new(ctx, &INTERLEAVED_DATA_ENTRY, Improvement::Trpo, drive)?;
    Ok(Box::new(trainer))
}

/// How the workers run.
pub enum Drive {
    /// Each on its own thread, in parallel (the asynchronous framework).
    Threads,
    /// One after another on the caller's thread, in a fixed order (the partially-asynchronous
    /// variants): reproducible under a seed.
    Interleaved(Schedule),
}

/// The fixed orders of thesis Sec. 8.4.2-8.4.3, per run iteration of `N` =
/// `async.rollouts_per_iteration` rollouts.
pub enum Schedule {
    /// Sec. 8.4.2: `N` rollouts, then `rounds` times `model_epochs` model epochs followed by
    /// `policy_steps` policy steps in the updated model.
    ModelWithPolicy(InterleavedConfig),
    /// Sec. 8.4.3: model epochs until every member early-stopped (at most `max_model_epochs`),
    /// then `N` times `policy_steps` policy steps followed by one new rollout.
    PolicyWithData(InterleavedConfig),
}

/// The workers of one run.
struct Crew {
    model: ModelWorker,
    policy: PolicyWorker,
    data: Vec<DataWorker>,
}

impl Crew {
    /// One run iteration of `schedule` with `rollouts` new rollouts.
    fn run(&mut self, schedule: &Schedule, rollouts: usize) -> Result<()> {
        match schedule {
            Schedule::ModelWithPolicy(c) => {
                self.collect(rollouts)?;
                for _ in 0..c.rounds {
                    for _ in 0..c.model_epochs {
                        self.model.step()?;
                    }
                    for _ in 0..c.policy_steps {
                        self.policy.step()?;
                    }
                }
            }
            Schedule::PolicyWithData(c) => {
                for _ in 0..c.max_model_epochs {
                    if self.model.step()? == Outcome::Idle {
                        break;
                    }
                }
                for _ in 0..rollouts {
                    for _ in 0..c.policy_steps {
                        self.policy.step()?;
                    }
                    self.collect(1)?;
                }
            }
        }
        Ok(())
    }

    /// `n` rollouts by the first data worker.
    fn collect(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.data[0].step()?;
        }
        Ok(())
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
    /// The run on a Redis server (`redis` backend): its workers are other processes.
    redis: Option<RedisRun>,
    drive: Drive,
    workers: Vec<(String, JoinHandle<Result<()>>)>,
    crew: Option<Crew>,
    started: bool,
    policy: GaussianMlpPolicy,
    policy_version: u64,
    model: Box<dyn TrainableModel>,
    model_version: u64,
    data: ModelData,
    progress: Progress,
}

impl AsyncTrainer {
    /// The coordinator of `entry`, improving the policy by `improvement` in imagination, its
    /// workers run as `drive` says.
    pub fn new(
        ctx: BuildContext,
        entry: &'static AlgorithmEntry,
        improvement: Improvement,
        drive: Drive,
    ) -> Result<Self> {
        let recipe = Recipe::new(&ctx, entry.name, improvement)?;
        if let Drive::Interleaved(Schedule::ModelWithPolicy(c) | Schedule::PolicyWithData(c)) =
            &drive
        {
            c.validate()?;
            if recipe.config.data_workers != 1 {
                return Err(Error::InvalidArgument(format!(
                    "async.data_workers must be 1 for {}, got {}",
                    entry.name, recipe.config.data_workers
                )));
            }
        }
        let (servers, redis) = match recipe.config.backend {
            Backend::Threads => (memory_servers(), None),
            Backend::Redis => {
                let run = crate::remote::connect(&recipe)?;
                (run.servers(), Some(run))
            }
        };
        if redis.is_some() && matches!(drive, Drive::Interleaved(_)) {
            return Err(Error::InvalidArgument(format!(
                "{} runs its workers itself: async.backend must be \"threads\"",
                entry.name
            )));
        }
        Ok(Self {
            name: entry.name,
            servers,
            redis,
            drive,
            workers: Vec::new(),
            crew: None,
            started: false,
            policy: recipe.fresh_policy()?,
            policy_version: 0,
            model: recipe.fresh_model(0)?,
            model_version: 0,
            data: recipe.empty_data()?,
            progress: Progress::default(),
            recipe,
        })
    }

    /// Seeds the servers with the current policy (and model, once fitted) and starts every
    /// worker on its own thread.
    fn start(&mut self) -> Result<()> {
        let servers = self.servers.clone();
        if let Some(run) = &self.redis {
            run.create(&RunMeta {
                algo: self.name.to_string(),
                obs_dim: self.recipe.dims.0,
                act_dim: self.recipe.dims.1,
            })?;
        }
        self.policy_version = servers
            .policy
            .push(encode_tensors(&policy_tensors(&self.policy))?)?;
        let r = &self.recipe;
        let mut model = None;
        if self.progress.model_fitted {
            let tensors = self.model.named_tensors()?;
            self.model_version = servers.model.push(encode_tensors(&tensors)?)?;
            model = Some(tensors);
        }
        if self.redis.is_some() {
            // The workers are `mbrl-cli worker` processes; a resumed run's model worker takes
            // the checkpoint's data from the stream first.
            if self.progress.rollouts > 0 {
                let snapshot = StreamEntry::encode_snapshot(&self.data.named_tensors()?)?;
                servers.rollouts.push(snapshot)?;
            }
            self.started = true;
            return Ok(());
        }
        let crew = Crew {
            model: r.model_worker(self.data.clone(), model.as_ref(), servers.clone())?,
            policy: r.policy_worker(self.policy.snapshot()?, servers.clone())?,
            data: (0..r.config.data_workers as u32)
                .map(|index| r.data_worker(index, &self.policy, servers.clone()))
                .collect::<Result<Vec<_>>>()?,
        };
        self.started = true;
        if let Drive::Interleaved(_) = self.drive {
            self.crew = Some(crew);
            return Ok(());
        }
        let mut workers: Vec<Box<dyn Worker>> = vec![Box::new(crew.model), Box::new(crew.policy)];
        workers.extend(
            crew.data
                .into_iter()
                .map(|w| Box::new(w) as Box<dyn Worker>),
        );
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
        let timeout = Duration::from_secs_f64(self.recipe.config.worker_timeout_seconds);
        let mut last_arrival = Instant::now();
        while self.progress.rollouts < target {
            self.failed_worker()?;
            if last_arrival.elapsed() > timeout {
                let _ = self.servers.control.request_stop();
                return Err(Error::InvalidArgument(format!(
                    "no rollout arrived for {:.0} s (async.worker_timeout_seconds): are the data \
                     workers running? With async.backend = \"redis\" start them with \
                     `mbrl-cli worker --role data`",
                    timeout.as_secs_f64()
                )));
            }
            let new = self
                .servers
                .rollouts
                .take_new(COORDINATOR_READER, Duration::from_millis(100))?;
            if !new.is_empty() {
                last_arrival = Instant::now();
            }
            let newest_policy = self.servers.policy.version()?;
            for bytes in new {
                // A resumed run's data snapshot is already in `self.data`.
                let StreamEntry::Rollout(record) = StreamEntry::decode(&bytes)? else {
                    continue;
                };
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

    fn progress_keys(&self) -> Vec<String> {
        [
            "policy_version",
            "model_version",
            "staleness",
            "policy_steps",
            "model_epochs",
        ]
        .map(String::from)
        .to_vec()
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        if !self.started {
            self.start()?;
        }
        let per_iteration = self.recipe.config.rollouts_per_iteration as u64;
        self.servers.control.add_budget(per_iteration)?;
        if let (Drive::Interleaved(schedule), Some(crew)) = (&self.drive, &mut self.crew) {
            crew.run(schedule, per_iteration as usize)?;
        }
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

//! One worker in its own process against a run's Redis servers (`mbrl-cli worker --role`):
//! it checks that the run exists and matches its config, rebuilds its state from the servers
//! (the newest parameters, and for the model worker every rollout it took before a restart),
//! then loops until the coordinator asks to stop.

use std::fmt;
use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant};

use mbrl_core::algorithm::BuildContext;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::model_free::load_policy_tensors;

use crate::codec::decode_tensors;
use crate::config::Backend;
use crate::model_worker::apply_entries;
use crate::recipe::{Improvement, Recipe};
use crate::redis_backend::{RedisRun, RunMeta};
use crate::servers::Servers;
use crate::worker::{run_until_stopped, Worker, MODEL_READER};

/// A worker's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Collects real rollouts (Algorithm 6).
    Data,
    /// Trains the model (Algorithm 7).
    Model,
    /// Improves the policy (Algorithm 8).
    Policy,
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "data" => Ok(Role::Data),
            "model" => Ok(Role::Model),
            "policy" => Ok(Role::Policy),
            other => Err(Error::InvalidArgument(format!(
                "unknown worker role `{other}`; valid roles: data, model, policy"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Data => "data",
            Role::Model => "model",
            Role::Policy => "policy",
        })
    }
}

/// The policy step of a registered asynchronous algorithm.
pub fn improvement_of(algo: &str) -> Result<Improvement> {
    match algo {
        "async-me-trpo" => Ok(Improvement::Trpo),
        "async-me-ppo" => Ok(Improvement::Ppo),
        "async-mb-mpo" => Ok(Improvement::MbMpo),
        other => Err(Error::InvalidArgument(format!(
            "`{other}` has no remote workers; valid: async-me-trpo, async-me-ppo, async-mb-mpo"
        ))),
    }
}

/// Connects to the run's Redis servers, as the coordinator and the workers do.
pub fn connect(recipe: &Recipe) -> Result<RedisRun> {
    let c = &recipe.config;
    if c.backend != Backend::Redis {
        return Err(Error::InvalidArgument(
            "async.backend must be \"redis\" for separate worker processes".into(),
        ));
    }
    RedisRun::connect_with_tls(
        &c.redis_url,
        &c.tls_files(),
        &c.run_id,
        c.reconnect_patience(),
    )
}

/// Runs worker `role` (data worker number `index`) of `algo` until the run stops.
pub fn run_worker(ctx: BuildContext, algo: &str, role: Role, index: u32) -> Result<()> {
    let recipe = Recipe::new(&ctx, algo, improvement_of(algo)?)?;
    let run = connect(&recipe)?;
    run.join(&RunMeta {
        algo: algo.to_string(),
        obs_dim: recipe.dims.0,
        act_dim: recipe.dims.1,
    })?;
    let servers = run.servers();
    let worker: Box<dyn Worker> = match role {
        Role::Data => {
            let policy = recipe.fresh_policy()?;
            Box::new(recipe.data_worker(index, &policy, servers.clone())?)
        }
        Role::Model => {
            let mut data = recipe.empty_data()?;
            let taken = servers.rollouts.taken(MODEL_READER)?;
            apply_entries(&mut data, &taken)?;
            let model = match servers.model.pull_newer(0)? {
                Some(newest) => Some(decode_tensors(&newest.bytes, "the model server's blob")?),
                None => None,
            };
            tracing::info!(
                "model worker: {} stream entries taken before, model version {}",
                taken.len(),
                servers.model.version()?
            );
            Box::new(recipe.model_worker(data, model.as_ref(), servers.clone())?)
        }
        Role::Policy => {
            let policy = recipe.fresh_policy()?;
            let newest = wait_for_policy(&servers, recipe.config.reconnect_patience())?;
            load_policy_tensors(
                &policy,
                &decode_tensors(&newest, "the policy server's blob")?,
            )?;
            Box::new(recipe.policy_worker(policy, servers.clone())?)
        }
    };
    run_until_stopped(worker, servers.control.as_ref())
}

/// The newest policy blob, waiting up to `patience` for the coordinator's first push.
fn wait_for_policy(servers: &Servers, patience: Duration) -> Result<Vec<u8>> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(newest) = servers.policy.pull_newer(0)? {
            return Ok(newest.bytes.as_ref().clone());
        }
        if Instant::now() > deadline {
            return Err(Error::InvalidArgument(
                "the run has no policy on its server yet: is `mbrl-cli train` running?".into(),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

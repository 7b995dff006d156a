//! The data-collection worker (thesis Algorithm 6): pull the newest policy, collect one real
//! rollout with it (uniform random actions for the first ones), sleep until the rollout has
//! lasted its simulated real time, push it.

use std::time::Instant;

use mbrl_core::env::Env;
use mbrl_core::policy::{Policy, RandomPolicy};
use mbrl_core::rollout::{rollout_episode, DEFAULT_MAX_EPISODE_STEPS};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::model_free::load_policy_tensors;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::codec::{decode_tensors, RolloutRecord};
use crate::config::AsyncConfig;
use crate::servers::Servers;
use crate::worker::{sleep_unless_stopped, Outcome, Worker};

/// One data worker.
pub struct DataWorker {
    index: u64,
    env: Box<dyn Env>,
    policy: GaussianMlpPolicy,
    policy_version: u64,
    random: RandomPolicy,
    random_left: usize,
    config: AsyncConfig,
    env_rng: ChaCha8Rng,
    action_rng: ChaCha8Rng,
    servers: Servers,
}

impl DataWorker {
    /// Worker `index` acting in `env` with a local copy of `policy`'s architecture.
    pub fn new(
        index: u64,
        env: Box<dyn Env>,
        policy: GaussianMlpPolicy,
        config: &AsyncConfig,
        rngs: (ChaCha8Rng, ChaCha8Rng),
        servers: Servers,
    ) -> Result<Self> {
        let space = env.action_space().as_box().cloned().ok_or_else(|| {
            Error::InvalidArgument("asynchronous training needs a continuous action space".into())
        })?;
        Ok(Self {
            index,
            env,
            policy,
            policy_version: 0,
            random: RandomPolicy::new(space)?,
            random_left: config.initial_random_rollouts,
            config: config.clone(),
            env_rng: rngs.0,
            action_rng: rngs.1,
            servers,
        })
    }
}

impl Worker for DataWorker {
    fn role(&self) -> String {
        format!("data {}", self.index)
    }

    fn step(&mut self) -> Result<Outcome> {
        if !self.servers.control.reserve_rollout()? {
            return Ok(Outcome::Idle);
        }
        if let Some(newest) = self.servers.policy.pull_newer(self.policy_version)? {
            let tensors = decode_tensors(&newest.bytes, "the policy server's blob")?;
            load_policy_tensors(&self.policy, &tensors)?;
            self.policy_version = newest.version;
        }
        let clock = Instant::now();
        let (actor, version): (&dyn Policy, u64) = if self.random_left > 0 {
            self.random_left -= 1;
            (&self.random, 0)
        } else {
            (&self.policy, self.policy_version)
        };
        let max_steps = self
            .env
            .spec()
            .max_episode_steps
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let seed = self.env_rng.next_u64();
        let trajectory = rollout_episode(
            self.env.as_mut(),
            actor,
            Some(seed),
            false,
            max_steps,
            &mut self.action_rng,
        )?;
        let left = self.config.rollout_seconds(trajectory.len()) - clock.elapsed().as_secs_f64();
        sleep_unless_stopped(left, self.servers.control.as_ref())?;
        let record = RolloutRecord {
            trajectory,
            policy_version: version,
            worker: self.index,
        };
        self.servers.rollouts.push(record.encode()?)?;
        Ok(Outcome::Worked)
    }
}

//! Collecting a fixed number of whole episodes in one task of a task family.
//!
//! [`TaskSampler`] keeps one environment copy per rollout. For a task it sets the task in every
//! copy, resets them with seeds from its own `Env` stream and steps until each copy has finished
//! one episode (time limit or termination): exactly `rollouts_per_task` trajectories.

use mbrl_core::data::Trajectory;
use mbrl_core::env::EnvFactory;
use mbrl_core::policy::Policy;
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::task::Task;
use mbrl_core::vec_env::VecEnv;
use mbrl_core::{Error, Result};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// Episodes per task from N environment copies.
pub struct TaskSampler {
    venv: VecEnv,
    env_rng: ChaCha8Rng,
    max_steps: usize,
}

impl TaskSampler {
    /// `rollouts_per_task` copies from `factory`, which must have a time limit and an active
    /// task family (`env.task_family`). Reset seeds come from the `Env` stream of `seed`.
    pub fn new(factory: &EnvFactory, rollouts_per_task: usize, seed: u64) -> Result<Self> {
        let mut venv = VecEnv::new(factory, rollouts_per_task)?;
        let env = venv.env_mut(0);
        let spec = env.spec();
        let max_steps = spec.max_episode_steps.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "meta-RL needs episodes with a time limit; `{}` has none",
                spec.name
            ))
        })?;
        if env.task_distribution().is_none() {
            return Err(Error::InvalidArgument(format!(
                "meta-RL needs a task family: set env.task_family for `{}`",
                spec.name
            )));
        }
        Ok(Self {
            venv,
            env_rng: stream_rng(seed, Stream::Env),
            max_steps,
        })
    }

    /// Episode length limit.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    /// Draws `n` tasks from the family.
    pub fn sample_tasks(&mut self, n: usize, rng: &mut dyn RngCore) -> Result<Vec<Task>> {
        let family =
            self.venv.env_mut(0).task_distribution().ok_or_else(|| {
                Error::InvalidArgument("the environment lost its task family".into())
            })?;
        Ok(family.sample_tasks(n, rng))
    }

    /// Makes `task` active in every copy.
    pub fn set_task(&mut self, task: &Task) -> Result<()> {
        for i in 0..self.venv.num_envs() {
            self.venv
                .env_mut(i)
                .task_distribution()
                .ok_or_else(|| Error::InvalidArgument("the environment has no task family".into()))?
                .set_task(task)?;
        }
        Ok(())
    }

    /// One episode per copy with `policy` (stochastic actions from `rng`).
    pub fn rollouts(
        &mut self,
        policy: &dyn Policy,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<Trajectory>> {
        let n = self.venv.num_envs();
        let act_dim = self.venv.action_space().flat_dim();
        let (mut obs, _) = self.venv.reset(Some(self.env_rng.next_u64()))?;
        let mut trajectories: Vec<Trajectory> = obs
            .to_vec2::<f32>()?
            .into_iter()
            .map(|o| Trajectory::new(o, act_dim))
            .collect();
        let mut running = vec![true; n];
        for _ in 0..self.max_steps {
            let actions = policy.act(&obs, false, rng)?;
            let step = self.venv.step(&actions)?;
            let action_rows = actions.to_vec2::<f32>()?;
            let obs_rows = step.obs.to_vec2::<f32>()?;
            for i in 0..n {
                if !running[i] {
                    continue;
                }
                let next = match &step.final_obs[i] {
                    Some(last) => last.to_vec1::<f32>()?,
                    None => obs_rows[i].clone(),
                };
                trajectories[i].push(&action_rows[i], step.rewards[i], next)?;
                if step.done(i) {
                    running[i] = false;
                    trajectories[i].terminated = step.terminated[i];
                    trajectories[i].truncated = step.truncated[i];
                }
            }
            if !running.iter().any(|&r| r) {
                break;
            }
            obs = step.obs;
        }
        Ok(trajectories)
    }

    /// The position of the reset-seed stream (for checkpoints).
    pub fn rng_state(&self) -> RngState {
        RngState::capture(&self.env_rng)
    }

    /// Continues the reset-seed stream from a checkpoint.
    pub fn restore_rng(&mut self, state: &RngState) {
        self.env_rng = state.restore();
    }
}

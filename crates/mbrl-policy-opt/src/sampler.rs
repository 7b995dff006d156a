//! Collecting experience in the real environment.
//!
//! [`EpisodeSampler`] runs N copies of the environment in lockstep. Every call to
//! [`EpisodeSampler::collect`] starts fresh episodes (the copies are reseeded from the
//! sampler's own `Env` stream) and steps until at least the requested number of steps is
//! reached; episodes still running then are cut and marked truncated. Because nothing carries
//! over between calls, a run resumed from a checkpoint (which stores the stream position)
//! collects exactly what the uninterrupted run would have.

use mbrl_core::data::Trajectory;
use mbrl_core::env::EnvFactory;
use mbrl_core::policy::Policy;
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::vec_env::VecEnv;
use mbrl_core::Result;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// Trajectories from one call of [`EpisodeSampler::collect`].
#[derive(Debug, Clone)]
pub struct SampleBatch {
    /// Every trajectory: first the episodes that ended by termination or time limit, then
    /// the ones cut by the step budget (marked truncated).
    pub trajectories: Vec<Trajectory>,
    /// How many leading trajectories are complete episodes.
    pub completed: usize,
    /// Steps taken.
    pub env_steps: u64,
}

impl SampleBatch {
    /// Returns of the complete episodes.
    pub fn completed_returns(&self) -> Vec<f64> {
        self.trajectories[..self.completed]
            .iter()
            .map(Trajectory::total_return)
            .collect()
    }

    /// Mean return of the complete episodes, if any.
    pub fn mean_completed_return(&self) -> Option<f64> {
        let returns = self.completed_returns();
        (!returns.is_empty()).then(|| returns.iter().sum::<f64>() / returns.len() as f64)
    }
}

/// Collects fresh episodes from N environment copies.
pub struct EpisodeSampler {
    venv: VecEnv,
    env_rng: ChaCha8Rng,
}

impl EpisodeSampler {
    /// `num_envs` copies from `factory`; reset seeds come from the `Env` stream of `seed`.
    pub fn new(factory: &EnvFactory, num_envs: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            venv: VecEnv::new(factory, num_envs)?,
            env_rng: stream_rng(seed, Stream::Env),
        })
    }

    /// The position of the reset-seed stream (for checkpoints).
    pub fn rng_state(&self) -> RngState {
        RngState::capture(&self.env_rng)
    }

    /// Continues the reset-seed stream from a checkpoint.
    pub fn restore_rng(&mut self, state: &RngState) {
        self.env_rng = state.restore();
    }

    /// Steps `policy` (stochastic actions from `rng`) until at least `min_steps` steps.
    pub fn collect(
        &mut self,
        policy: &dyn Policy,
        min_steps: usize,
        rng: &mut dyn RngCore,
    ) -> Result<SampleBatch> {
        let n = self.venv.num_envs();
        let act_dim = self.venv.action_space().flat_dim();
        let (mut obs, _) = self.venv.reset(Some(self.env_rng.next_u64()))?;
        let mut running: Vec<Trajectory> = obs
            .to_vec2::<f32>()?
            .into_iter()
            .map(|o| Trajectory::new(o, act_dim))
            .collect();
        let mut done = Vec::new();
        let mut steps = 0usize;
        while steps < min_steps {
            let actions = policy.act(&obs, false, rng)?;
            let step = self.venv.step(&actions)?;
            let action_rows = actions.to_vec2::<f32>()?;
            let obs_rows = step.obs.to_vec2::<f32>()?;
            for i in 0..n {
                let next = match &step.final_obs[i] {
                    Some(last) => last.to_vec1::<f32>()?,
                    None => obs_rows[i].clone(),
                };
                running[i].push(&action_rows[i], step.rewards[i], next)?;
                if step.done(i) {
                    let mut finished = std::mem::replace(
                        &mut running[i],
                        Trajectory::new(obs_rows[i].clone(), act_dim),
                    );
                    finished.terminated = step.terminated[i];
                    finished.truncated = step.truncated[i];
                    done.push(finished);
                }
            }
            steps += n;
            obs = step.obs;
        }
        let completed = done.len();
        for traj in running.into_iter().filter(|t| !t.is_empty()) {
            done.push(Trajectory {
                truncated: true,
                ..traj
            });
        }
        Ok(SampleBatch {
            trajectories: done,
            completed,
            env_steps: steps as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::check_env::factory;
    use mbrl_core::env::TimeLimit;
    use mbrl_core::policy::RandomPolicy;
    use mbrl_core::testing::Drift;
    use mbrl_core::BoxSpace;

    fn sampler(seed: u64) -> EpisodeSampler {
        EpisodeSampler::new(&factory(|| TimeLimit::new(Drift::new(), 4)), 3, seed).unwrap()
    }

    fn policy() -> RandomPolicy {
        RandomPolicy::new(BoxSpace::uniform(-0.1, 0.1, 1).unwrap()).unwrap()
    }

    #[test]
    fn collects_at_least_the_budget_in_whole_and_cut_episodes() {
        let mut rng = stream_rng(0, Stream::Policy);
        let batch = sampler(0).collect(&policy(), 10, &mut rng).unwrap();
        // 3 copies step together: 4 rounds = 12 steps; every copy finishes one 4-step episode.
        assert_eq!(batch.env_steps, 12);
        assert_eq!(batch.completed, 3);
        assert_eq!(batch.trajectories.len(), 3);
        let total: usize = batch.trajectories.iter().map(|t| t.len()).sum();
        assert_eq!(total as u64, batch.env_steps);
        let batch = sampler(0).collect(&policy(), 15, &mut rng).unwrap();
        assert_eq!(
            (batch.env_steps, batch.completed, batch.trajectories.len()),
            (15, 3, 6)
        );
        assert!(batch.trajectories[3..]
            .iter()
            .all(|t| t.truncated && t.len() == 1));
    }

    #[test]
    fn trajectories_chain_observations() {
        let mut rng = stream_rng(1, Stream::Policy);
        let batch = sampler(1).collect(&policy(), 8, &mut rng).unwrap();
        for t in &batch.trajectories {
            for i in 0..t.len() {
                let expected = t.obs(i)[0] + t.actions[i];
                assert!((t.obs(i + 1)[0] - expected).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn same_seed_same_data_and_restored_stream_continues() {
        let run = |s: &mut EpisodeSampler| {
            let mut rng = stream_rng(2, Stream::Policy);
            s.collect(&policy(), 8, &mut rng).unwrap().trajectories
        };
        let mut a = sampler(5);
        let mut b = sampler(5);
        assert_eq!(run(&mut a), run(&mut b));
        let state = a.rng_state();
        let next_a = run(&mut a);
        let mut c = sampler(99);
        c.restore_rng(&state);
        assert_eq!(run(&mut c), next_a);
    }
}

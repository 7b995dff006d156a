//! `VecEnv`: N copies of an environment stepped as one batch, with automatic reset.
//!
//! Follows Gymnasium's `SyncVectorEnv` with same-step autoreset: when copy `i` ends an
//! episode, the returned observation row is already the first observation of its next
//! episode and the true last observation is kept in `final_obs[i]` (CleanRL's
//! `final_observation`). `reset(Some(seed))` seeds copy `i` with `seed + i`. Copies step in
//! parallel on rayon's threads, with results in copy order.

use candle_core::{Device, Tensor};

use rayon::prelude::*;

use crate::env::{Env, EnvFactory, Info, Step};
use crate::space::Space;
use crate::{Error, Result};

/// The result of stepping all copies once.
#[derive(Debug, Clone)]
pub struct VecStep {
    /// `[N, obs_dim]`: next observations (reset observations for copies that ended).
    pub obs: Tensor,
    /// Rewards per copy.
    pub rewards: Vec<f64>,
    /// Terminal flags per copy.
    pub terminated: Vec<bool>,
    /// Time-limit flags per copy.
    pub truncated: Vec<bool>,
    /// For copies whose episode ended: the last observation of that episode (rank-1).
    pub final_obs: Vec<Option<Tensor>>,
    /// Step info per copy.
    pub infos: Vec<Info>,
}

impl VecStep {
    /// Whether copy `i` ended an episode on this step.
    pub fn done(&self, i: usize) -> bool {
        self.terminated[i] || self.truncated[i]
    }
}

/// N copies of one environment.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
}

impl VecEnv {
    /// Builds `n` copies with `factory`.
    pub fn new(factory: &EnvFactory, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidArgument(
                "VecEnv needs at least one copy".into(),
            ));
        }
        let envs = (0..n).map(|_| factory()).collect::<Result<Vec<_>>>()?;
        Ok(Self { envs })
    }

    /// Number of copies.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// Observation space of each copy.
    pub fn observation_space(&self) -> &Space {
        self.envs[0].observation_space()
    }

    /// Action space of each copy.
    pub fn action_space(&self) -> &Space {
        self.envs[0].action_space()
    }

    /// Mutable access to copy `i` (e.g. to set its task).
    pub fn env_mut(&mut self, i: usize) -> &mut dyn Env {
        self.envs[i].as_mut()
    }

    /// Resets every copy; with a seed, copy `i` gets `seed + i`. Returns `[N, obs_dim]`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Vec<Info>)> {
        let mut rows = Vec::with_capacity(self.envs.len());
        let mut infos = Vec::with_capacity(self.envs.len());
        for (i, env) in self.envs.iter_mut().enumerate() {
            let (obs, info) = env.reset(seed.map(|s| s.wrapping_add(i as u64)))?;
            rows.push(obs);
            infos.push(info);
        }
        Ok((Tensor::stack(&rows, 0)?, infos))
    }

    /// Steps copy `i` with row `i` of `actions` (`[N, act_dim]`), resetting copies that end.
    pub fn step(&mut self, actions: &Tensor) -> Result<VecStep> {
        let n = self.envs.len();
        if actions.rank() != 2 || actions.dim(0)? != n {
            return Err(Error::shape(
                "VecEnv::step actions",
                format!("[{n}, act_dim]"),
                format!("{:?}", actions.dims()),
            ));
        }
        let rows: Vec<Tensor> = (0..n)
            .map(|i| actions.get(i))
            .collect::<candle_core::Result<_>>()?;
        // Copies are independent: step them on rayon's threads (a physics step is ~0.1-1 ms);
        // `collect` keeps the copies' order, so results do not depend on the thread count.
        let stepped: Vec<(Step, Option<Tensor>)> = self
            .envs
            .par_iter_mut()
            .zip(rows)
            .map(|(env, action)| {
                let step = env.step(&action)?;
                let next_start = if step.terminated || step.truncated {
                    Some(env.reset(None)?.0)
                } else {
                    None
                };
                Ok((step, next_start))
            })
            .collect::<Result<_>>()?;
        let mut out = VecStep {
            obs: Tensor::zeros(0, candle_core::DType::F32, &Device::Cpu)?,
            rewards: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            final_obs: Vec::with_capacity(n),
            infos: Vec::with_capacity(n),
        };
        let mut rows = Vec::with_capacity(n);
        for (step, next_start) in stepped {
            out.rewards.push(step.reward);
            out.terminated.push(step.terminated);
            out.truncated.push(step.truncated);
            out.infos.push(step.info);
            match next_start {
                Some(start) => {
                    out.final_obs.push(Some(step.obs));
                    rows.push(start);
                }
                None => {
                    out.final_obs.push(None);
                    rows.push(step.obs);
                }
            }
        }
        out.obs = Tensor::stack(&rows, 0)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::TimeLimit;
    use crate::testing::Drift;

    fn factory(limit: usize) -> EnvFactory {
        Arc::new(move || Ok(Box::new(TimeLimit::new(Drift::new(), limit)) as Box<dyn Env>))
    }

    #[test]
    fn seeds_copy_i_with_seed_plus_i() {
        let mut venv = VecEnv::new(&factory(10), 3).unwrap();
        let (obs, _) = venv.reset(Some(40)).unwrap();
        let mut single = Drift::new();
        for i in 0..3 {
            let expected = single.reset(Some(40 + i as u64)).unwrap().0;
            assert_eq!(
                obs.get(i).unwrap().to_vec1::<f32>().unwrap(),
                expected.to_vec1::<f32>().unwrap()
            );
        }
    }

    #[test]
    fn autoreset_keeps_the_final_observation() {
        let mut venv = VecEnv::new(&factory(2), 2).unwrap();
        let (obs0, _) = venv.reset(Some(1)).unwrap();
        let act = Tensor::new(&[[0.5f32], [-0.5]], &Device::Cpu).unwrap();
        let s1 = venv.step(&act).unwrap();
        assert!(!s1.done(0) && s1.final_obs[0].is_none());
        let s2 = venv.step(&act).unwrap();
        assert!(s2.done(0) && s2.truncated[1] && !s2.terminated[1]);
        let start = obs0.to_vec2::<f32>().unwrap();
        let last = s2.final_obs[0].as_ref().unwrap().to_vec1::<f32>().unwrap();
        assert!((last[0] - (start[0][0] + 1.0)).abs() < 1e-6);
        let next = s2.obs.to_vec2::<f32>().unwrap();
        assert!(
            next[0][0].abs() <= 1.0,
            "reset observation expected, got {next:?}"
        );
    }

    #[test]
    fn wrong_action_batch_is_an_error() {
        let mut venv = VecEnv::new(&factory(2), 2).unwrap();
        venv.reset(Some(0)).unwrap();
        let act = Tensor::new(&[[0.5f32]], &Device::Cpu).unwrap();
        assert!(venv.step(&act).is_err());
        assert!(VecEnv::new(&factory(2), 0).is_err());
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 8 copies with autoresets (time limit 3) stepped for 10 batches, on 1 and 2 threads.
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut venv = VecEnv::new(&factory(3), 8).unwrap();
                venv.reset(Some(5)).unwrap();
                let mut trace = Vec::new();
                for t in 0..10 {
                    let a: Vec<f32> = (0..8).map(|i| ((i + t) % 5) as f32 * 0.3 - 0.6).collect();
                    let step = venv.step(&Tensor::from_vec(a, (8, 1), &Device::Cpu).unwrap());
                    let step = step.unwrap();
                    trace.extend(step.obs.flatten_all().unwrap().to_vec1::<f32>().unwrap());
                    trace.extend(step.rewards.iter().map(|&r| r as f32));
                    trace.extend(
                        step.final_obs
                            .iter()
                            .flatten()
                            .map(|o| o.to_vec1::<f32>().unwrap()[0]),
                    );
                }
                trace
            })
        };
        assert_eq!(run(1), run(2));
    }
}

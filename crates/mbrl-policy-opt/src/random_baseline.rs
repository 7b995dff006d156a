//! The `random` baseline: a uniform random policy, the reference line of the thesis's
//! learning curves. Each iteration collects `steps_per_iteration` real steps (so the curve has
//! the same x-axis as every other algorithm) and reports the mean training return.

use std::collections::HashMap;

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext, IterationStats};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::policy::{Policy, RandomPolicy};
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::{Error, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sampler::EpisodeSampler;

/// The `[random]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomConfig {
    /// Real environment steps collected per iteration. Default 1000.
    pub steps_per_iteration: usize,
    /// Environment copies stepped in parallel. Default 1.
    pub num_envs: usize,
}

impl Default for RandomConfig {
    fn default() -> Self {
        Self {
            steps_per_iteration: 1000,
            num_envs: 1,
        }
    }
}

/// Registry entry of the random baseline.
pub const ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "random",
    description: "uniform random actions; the reference line of every learning curve",
    reference: "thesis Ch. 4-9 plots (random policy baseline)",
    build,
};

fn build(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let table = ctx
        .config
        .get("random")
        .cloned()
        .unwrap_or(serde_json::json!({}));
    let config: RandomConfig = serde_json::from_value(table)
        .map_err(|e| Error::InvalidArgument(format!("[random] table: {e}")))?;
    Ok(Box::new(RandomBaseline::new(
        &ctx.env_factory,
        ctx.seed,
        config,
    )?))
}

/// The random baseline algorithm.
pub struct RandomBaseline {
    config: RandomConfig,
    sampler: EpisodeSampler,
    policy: RandomPolicy,
    rng: ChaCha8Rng,
    env_steps: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    env_steps: u64,
    policy_rng: RngState,
    env_rng: RngState,
}

impl RandomBaseline {
    /// A random baseline on copies of `factory`'s environment.
    pub fn new(
        factory: &mbrl_core::env::EnvFactory,
        seed: u64,
        config: RandomConfig,
    ) -> Result<Self> {
        if config.steps_per_iteration == 0 {
            return Err(Error::InvalidArgument(
                "random.steps_per_iteration must be positive".into(),
            ));
        }
        let probe = factory()?;
        let space = probe.action_space().as_box().cloned().ok_or_else(|| {
            Error::InvalidArgument("the random baseline needs a continuous action space".into())
        })?;
        Ok(Self {
            sampler: EpisodeSampler::new(factory, config.num_envs, seed)?,
            policy: RandomPolicy::new(space)?,
            rng: stream_rng(seed, Stream::Policy),
            env_steps: 0,
            config,
        })
    }
}

impl Algorithm for RandomBaseline {
    fn name(&self) -> &str {
        ENTRY.name
    }

    fn metric_columns(&self) -> Vec<String> {
        vec!["train_return".into(), "train_episodes".into()]
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let batch =
            self.sampler
                .collect(&self.policy, self.config.steps_per_iteration, &mut self.rng)?;
        self.env_steps += batch.env_steps;
        let train_return = batch.mean_completed_return();
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("train_episodes".to_string(), batch.completed as f64);
        if let Some(r) = train_return {
            metrics.insert("train_return".to_string(), r);
        }
        Ok(IterationStats {
            env_steps: self.env_steps,
            metrics,
            train_return,
        })
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let state = SavedState {
            env_steps: self.env_steps,
            policy_rng: RngState::capture(&self.rng),
            env_rng: self.sampler.rng_state(),
        };
        Ok((HashMap::new(), state_to_json(&state)?))
    }

    fn load_state(
        &mut self,
        _tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        let state: SavedState = state_from_json(state)?;
        self.env_steps = state.env_steps;
        self.rng = state.policy_rng.restore();
        self.sampler.restore_rng(&state.env_rng);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::check_env::factory;
    use mbrl_core::env::TimeLimit;
    use mbrl_core::testing::Drift;

    fn baseline(seed: u64) -> RandomBaseline {
        let config = RandomConfig {
            steps_per_iteration: 20,
            num_envs: 2,
        };
        RandomBaseline::new(&factory(|| TimeLimit::new(Drift::new(), 5)), seed, config).unwrap()
    }

    #[test]
    fn counts_steps_and_reports_returns() {
        let mut algo = baseline(0);
        let s1 = algo.train_iteration(1).unwrap();
        let s2 = algo.train_iteration(2).unwrap();
        assert_eq!((s1.env_steps, s2.env_steps), (20, 40));
        assert_eq!(s1.metrics["train_episodes"], 4.0);
        assert!(s1.train_return.unwrap() < 0.0);
        assert_ne!(s1.train_return, s2.train_return);
    }

    #[test]
    fn restored_state_continues_identically() {
        let mut a = baseline(3);
        a.train_iteration(1).unwrap();
        let (tensors, state) = a.save_state().unwrap();
        let mut b = baseline(3);
        b.load_state(tensors, state).unwrap();
        let (sa, sb) = (a.train_iteration(2).unwrap(), b.train_iteration(2).unwrap());
        assert_eq!(sa.train_return, sb.train_return);
        assert_eq!(sa.env_steps, sb.env_steps);
    }

    #[test]
    fn rejects_a_zero_budget_and_unknown_config_keys() {
        let config = RandomConfig {
            steps_per_iteration: 0,
            num_envs: 1,
        };
        assert!(RandomBaseline::new(&factory(Drift::new), 0, config).is_err());
        let ctx = BuildContext {
            env_factory: factory(Drift::new),
            model_factory: None,
            seed: 0,
            config: serde_json::json!({"random": {"steps": 3}}),
        };
        let err = (ENTRY.build)(ctx).err().unwrap().to_string();
        assert!(err.contains("unknown field `steps`"), "{err}");
    }
}

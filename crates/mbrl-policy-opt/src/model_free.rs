//! Model-free policy-gradient trainers on the real environment (TRPO and PPO): the baselines
//! every thesis learning curve is compared with.
//!
//! Each iteration: collect `steps_per_iteration` real steps with the stochastic policy, fit the
//! linear baseline and compute GAE advantages, then one TRPO step or one PPO update.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext, IterationStats};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::env::EnvFactory;
use mbrl_core::policy::{GaussianPolicy, Policy};
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::{Error, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::advantages::{process_trajectories, AdvantageConfig};
use crate::baseline::LinearFeatureBaseline;
use crate::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use crate::ppo::{Ppo, PpoConfig};
use crate::sampler::EpisodeSampler;
use crate::trpo::{trpo_step, TrpoConfig};

/// The `[model_free]` table: data collection of the model-free trainers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelFreeConfig {
    /// Real environment steps per iteration (the batch size). Default 4000.
    pub steps_per_iteration: usize,
    /// Environment copies stepped in parallel. Default 1.
    pub num_envs: usize,
}

impl Default for ModelFreeConfig {
    fn default() -> Self {
        Self {
            steps_per_iteration: 4000,
            num_envs: 1,
        }
    }
}

/// Registry entry of model-free TRPO.
pub const TRPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "trpo",
    description: "model-free TRPO on the real environment",
    reference: "Schulman et al. 2015; thesis Ch. 4 baseline",
    build: |ctx| build(ctx, Method::Trpo),
};

/// Registry entry of model-free PPO.
pub const PPO_ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "ppo",
    description: "model-free PPO (clipped) on the real environment",
    reference: "Schulman et al. 2017; thesis Ch. 8 baseline",
    build: |ctx| build(ctx, Method::Ppo),
};

/// The policy update of a model-free trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One TRPO step per iteration (`[trpo]`).
    Trpo,
    /// One PPO update per iteration (`[ppo]`).
    Ppo,
}

/// Reads table `name` of a run configuration (missing tables take their defaults).
pub fn table<T: serde::de::DeserializeOwned + Default>(
    config: &serde_json::Value,
    name: &str,
) -> Result<T> {
    match config.get(name) {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| Error::InvalidArgument(format!("[{name}] table: {e}"))),
    }
}

fn build(ctx: BuildContext, method: Method) -> Result<Box<dyn Algorithm>> {
    let settings = ModelFreeSettings {
        data: table(&ctx.config, "model_free")?,
        policy: table(&ctx.config, "policy")?,
        advantage: table(&ctx.config, "advantage")?,
        trpo: table(&ctx.config, "trpo")?,
        ppo: table(&ctx.config, "ppo")?,
    };
    Ok(Box::new(ModelFree::new(
        &ctx.env_factory,
        ctx.seed,
        method,
        settings,
    )?))
}

/// Every table the model-free trainers read.
#[derive(Debug, Clone, Default)]
pub struct ModelFreeSettings {
    /// `[model_free]`.
    pub data: ModelFreeConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[advantage]`.
    pub advantage: AdvantageConfig,
    /// `[trpo]` (TRPO only).
    pub trpo: TrpoConfig,
    /// `[ppo]` (PPO only).
    pub ppo: PpoConfig,
}

enum Optimiser {
    Trpo(TrpoConfig),
    Ppo(Box<Ppo>),
}

/// Checkpoint prefix of a policy Adam state: PPO, ME-PPO and BPTT.
pub(crate) const POLICY_ADAM: &str = "policy_adam";

/// Model-free TRPO or PPO.
pub struct ModelFree {
    method: Method,
    settings: ModelFreeSettings,
    policy: GaussianMlpPolicy,
    optimiser: Optimiser,
    baseline: LinearFeatureBaseline,
    sampler: EpisodeSampler,
    rng: ChaCha8Rng,
    env_steps: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    env_steps: u64,
    policy_rng: RngState,
    env_rng: RngState,
}

impl ModelFree {
    /// A fresh trainer on environments of `factory` (`settings.data.num_envs` copies step in
    /// parallel), seeded by `seed`.
    pub fn new(
        factory: &EnvFactory,
        seed: u64,
        method: Method,
        settings: ModelFreeSettings,
    ) -> Result<Self> {
        if settings.data.steps_per_iteration == 0 {
            return Err(Error::InvalidArgument(
                "model_free.steps_per_iteration must be positive".into(),
            ));
        }
        let probe = factory()?;
        let (obs_dim, act_dim) = (
            probe.observation_space().flat_dim(),
            probe.action_space().flat_dim(),
        );
        let mut rng = stream_rng(seed, Stream::Policy);
        let policy = GaussianMlpPolicy::new(obs_dim, act_dim, settings.policy.clone(), &mut rng)?;
        let optimiser = match method {
            Method::Trpo => Optimiser::Trpo(settings.trpo.clone()),
            Method::Ppo => Optimiser::Ppo(Box::new(Ppo::new(
                policy.parameters().to_vec(),
                settings.ppo.clone(),
            )?)),
        };
        Ok(Self {
            method,
            sampler: EpisodeSampler::new(factory, settings.data.num_envs, seed)?,
            settings,
            policy,
            optimiser,
            baseline: LinearFeatureBaseline::new(),
            rng,
            env_steps: 0,
        })
    }
}

impl Algorithm for ModelFree {
    fn name(&self) -> &str {
        match self.method {
            Method::Trpo => TRPO_ENTRY.name,
            Method::Ppo => PPO_ENTRY.name,
        }
    }

    fn metric_columns(&self) -> Vec<String> {
        [
            "train_return",
            "train_episodes",
            "surrogate",
            "kl",
            "policy_std",
        ]
        .map(String::from)
        .to_vec()
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let batch = self.sampler.collect(
            &self.policy,
            self.settings.data.steps_per_iteration,
            &mut self.rng,
        )?;
        self.env_steps += batch.env_steps;
        let train_return = batch.mean_completed_return();
        let samples = process_trajectories(
            &batch.trajectories,
            &mut self.baseline,
            &self.settings.advantage,
        )?;
        let (surrogate, kl) = match &mut self.optimiser {
            Optimiser::Trpo(config) => {
                let s = trpo_step(&self.policy, &samples, config)?;
                (s.surrogate_after, s.kl)
            }
            Optimiser::Ppo(ppo) => {
                let s = ppo.update(&self.policy, &samples, &mut self.rng)?;
                (s.surrogate, s.approx_kl)
            }
        };
        let log_std = self
            .policy
            .parameters()
            .last()
            .expect("log-std parameter")
            .as_tensor();
        let policy_std = log_std.exp()?.mean_all()?.to_scalar::<f32>()? as f64;
        let mut metrics = BTreeMap::from([
            ("train_episodes".to_string(), batch.completed as f64),
            ("surrogate".to_string(), surrogate),
            ("kl".to_string(), kl),
            ("policy_std".to_string(), policy_std),
        ]);
        if let Some(r) = train_return {
            metrics.insert("train_return".into(), r);
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
        let mut tensors = policy_tensors(&self.policy);
        if let Optimiser::Ppo(ppo) = &self.optimiser {
            tensors.extend(ppo.adam().state_tensors(POLICY_ADAM)?);
        }
        let state = SavedState {
            env_steps: self.env_steps,
            policy_rng: RngState::capture(&self.rng),
            env_rng: self.sampler.rng_state(),
        };
        Ok((tensors, state_to_json(&state)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        load_policy_tensors(&self.policy, &tensors)?;
        if let Optimiser::Ppo(ppo) = &mut self.optimiser {
            ppo.adam_mut().load_state_tensors(POLICY_ADAM, &tensors)?;
        }
        let state: SavedState = state_from_json(state)?;
        self.env_steps = state.env_steps;
        self.rng = state.policy_rng.restore();
        self.sampler.restore_rng(&state.env_rng);
        Ok(())
    }
}

/// The policy's parameters as named tensors `policy.<index>`.
pub fn policy_tensors(policy: &dyn GaussianPolicy) -> HashMap<String, Tensor> {
    policy
        .parameter_tensors()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("policy.{i}"), t))
        .collect()
}

/// Restores what [`policy_tensors`] saved; missing or mis-shaped tensors are errors.
pub fn load_policy_tensors(
    policy: &dyn GaussianPolicy,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    for (i, var) in policy.parameters().iter().enumerate() {
        let name = format!("policy.{i}");
        let t = tensors
            .get(&name)
            .ok_or_else(|| Error::InvalidArgument(format!("checkpoint lacks tensor `{name}`")))?;
        if t.dims() != var.dims() {
            return Err(Error::shape(
                format!("checkpoint tensor `{name}`"),
                format!("{:?}", var.dims()),
                format!("{:?}", t.dims()),
            ));
        }
        var.set(t)?;
    }
    Ok(())
}

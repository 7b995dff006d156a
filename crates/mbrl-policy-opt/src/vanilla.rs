//! Vanilla model-based RL (thesis Ch. 2.2, Algorithm 1): one learned model, the policy trained
//! by backpropagation through time (BPTT) of imagined returns through the model.
//!
//! Each iteration: collect real steps with the current stochastic policy; fit the model;
//! then repeat Adam steps on `-mean_rollouts sum_t gamma^t r_t`, where every imagined action is
//! reparameterised (`mean + std * eps`) and every next state is the (frozen) model's prediction,
//! so gradients flow through the reward function, the model and the policy over the horizon.
//! Every `evaluate_every` steps the deterministic policy's imagined return on fixed start states
//! estimates `J(theta)`; the phase stops when it has not improved for `patience` steps and the
//! best policy is restored ("until the performance stops improving").
//!
//! With one model this is the baseline that overfits the model (model bias, Ch. 3); its
//! configuration uses `model.members = 1`, and with more members the steps follow
//! `bptt.model_env.sampling`.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use mbrl_core::adam::Adam;
use mbrl_core::algorithm::{
    Algorithm, AlgorithmEntry, BuildContext, IterationStats, PlanningParts,
};
use mbrl_core::checkpoint::{state_from_json, state_to_json};
use mbrl_core::env::{Env, EnvFactory};
use mbrl_core::model::{DynamicsModel, TrainableModel};
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig, SamplingMode};
use mbrl_core::policy::{standard_normal, GaussianPolicy, Policy};
use mbrl_core::rollout::DEFAULT_MAX_EPISODE_STEPS;
use mbrl_core::seeding::{stream_rng, RngState, Stream};
use mbrl_core::{Error, Result};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use crate::learner_rngs::{LearnerProgress, LearnerRngs};
use crate::model_data::{
    env_and_model, fit_metrics, learner_tensors, load_learner_tensors,
    model_and_policy_planning_parts, real_start_states, with_fit_columns, ModelData,
};
use crate::model_free::{table, POLICY_ADAM};
use crate::ppo::clip_grad_norm;
use crate::sampler::EpisodeSampler;

/// The `[bptt]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BpttConfig {
    /// Real environment steps per iteration. Default 3000.
    pub steps_per_iteration: usize,
    /// Share of new transitions sent to the validation buffer. Default 1/3.
    pub validation_share: f64,
    /// Capacity of each buffer. Default 1000000.
    pub buffer_capacity: usize,
    /// Imagined rollouts per gradient step. Default 100.
    pub imagined_rollouts: usize,
    /// Imagined horizon; default the environment's horizon.
    pub imagined_horizon: Option<usize>,
    /// Discount of the imagined return. Default 0.99.
    pub gamma: f64,
    /// Adam learning rate. Default 1e-3.
    pub learning_rate: f64,
    /// Global gradient-norm clip (BPTT gradients explode over long horizons). Default 10.
    pub max_grad_norm: f64,
    /// Maximum gradient steps per iteration. Default 200.
    pub max_policy_iterations: usize,
    /// Gradient steps between estimates of `J(theta)`. Default 5.
    pub evaluate_every: usize,
    /// Steps without improvement of the estimate before the phase stops. Default 25.
    pub patience: usize,
    /// Fixed start states of each estimate. Default 200.
    pub evaluation_rollouts: usize,
    /// How imagined steps use the model. Default `one_model` without noise.
    pub model_env: ModelEnvConfig,
}

impl Default for BpttConfig {
    fn default() -> Self {
        Self {
            steps_per_iteration: 3000,
            validation_share: 1.0 / 3.0,
            buffer_capacity: 1_000_000,
            imagined_rollouts: 100,
            imagined_horizon: None,
            gamma: 0.99,
            learning_rate: 1e-3,
            max_grad_norm: 10.0,
            max_policy_iterations: 200,
            evaluate_every: 5,
            patience: 25,
            evaluation_rollouts: 200,
            model_env: ModelEnvConfig {
                sampling: SamplingMode::OneModel,
                sample_noise: false,
                ..ModelEnvConfig::default()
            },
        }
    }
}

/// Registry entry of vanilla model-based RL with BPTT.
pub const ENTRY: AlgorithmEntry = AlgorithmEntry {
    name: "mb-bptt",
    description: "vanilla model-based RL: policy trained by BPTT through a learned model",
    reference: "thesis Ch. 2.2, Algorithm 1",
    build,
};

fn build(ctx: BuildContext) -> Result<Box<dyn Algorithm>> {
    let config: BpttConfig = table(&ctx.config, "bptt")?;
    let policy_config: PolicyConfig = table(&ctx.config, "policy")?;
    let (env, model, model_rng) = env_and_model(&ctx, "mb-bptt")?;
    Ok(Box::new(VanillaBptt::new(
        &ctx.env_factory,
        env,
        model,
        model_rng,
        ctx.seed,
        config,
        policy_config,
    )?))
}

/// Vanilla model-based RL state.
pub struct VanillaBptt {
    config: BpttConfig,
    env: Box<dyn Env>,
    sampler: EpisodeSampler,
    horizon: usize,
    model: Box<dyn TrainableModel>,
    policy: GaussianMlpPolicy,
    optimizer: Adam,
    data: ModelData,
    rngs: LearnerRngs,
    env_steps: u64,
}

/// The learner's progress plus the real-episode sampler's stream (nested: serde's flatten
/// cannot carry the streams' `u128` positions).
#[derive(Serialize, Deserialize)]
struct SavedState {
    progress: LearnerProgress,
    sampler_env_rng: RngState,
}

impl VanillaBptt {
    /// Vanilla MBRL on copies of `factory`'s environment with a fresh `model`.
    pub fn new(
        factory: &EnvFactory,
        env: Box<dyn Env>,
        model: Box<dyn TrainableModel>,
        model_rng: ChaCha8Rng,
        seed: u64,
        config: BpttConfig,
        policy_config: PolicyConfig,
    ) -> Result<Self> {
        if config.imagined_rollouts == 0
            || config.evaluate_every == 0
            || config.steps_per_iteration == 0
        {
            return Err(Error::InvalidArgument(
                "bptt.steps_per_iteration, imagined_rollouts and evaluate_every must be positive"
                    .into(),
            ));
        }
        let (obs_dim, act_dim) = (
            env.observation_space().flat_dim(),
            env.action_space().flat_dim(),
        );
        let horizon = config
            .imagined_horizon
            .or(env.spec().max_episode_steps)
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let mut policy_rng = stream_rng(seed, Stream::Policy);
        let policy = GaussianMlpPolicy::new(obs_dim, act_dim, policy_config, &mut policy_rng)?;
        let optimizer = Adam::new(policy.parameters().to_vec(), config.learning_rate)?;
        Ok(Self {
            sampler: EpisodeSampler::new(factory, 1, seed)?,
            data: ModelData::new(
                config.buffer_capacity,
                obs_dim,
                act_dim,
                config.validation_share,
            )?,
            horizon,
            config,
            env,
            model,
            policy,
            optimizer,
            rngs: LearnerRngs {
                env: stream_rng(seed, Stream::Custom(0)),
                policy: policy_rng,
                model: model_rng,
                sampler: stream_rng(seed, Stream::Sampler),
            },
            env_steps: 0,
        })
    }

    fn start_states(&mut self, n: usize) -> Result<Tensor> {
        real_start_states(self.env.as_mut(), &mut self.rngs.env, n)
    }

    /// Discounted imagined return per rollout, differentiable in the policy's parameters.
    /// `noise` holds the reparameterisation noise of each step (`None`: deterministic actions).
    fn imagined_return<M: DynamicsModel>(
        &self,
        env: &ModelEnv<M>,
        start: &Tensor,
        noise: Option<&[Tensor]>,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let b = start.dim(0)?;
        let params = self.policy.parameter_tensors();
        let mut obs = start.clone();
        let mut total = Tensor::zeros(b, candle_core::DType::F32, &Device::Cpu)?;
        let mut alive = Tensor::ones(b, candle_core::DType::F32, &Device::Cpu)?;
        for t in 0..self.horizon {
            let dist = self.policy.distribution_with(&params, &obs)?;
            let act = match noise {
                Some(eps) => dist.sample_with(&eps[t])?,
                None => dist.mean,
            };
            let step = env.step(&obs, &act, rng)?;
            let discount = self.config.gamma.powi(t as i32);
            total = (total + ((step.reward * &alive)? * discount)?)?;
            alive = (alive * (1.0 - step.terminated)?)?.detach();
            obs = step.next_obs;
        }
        Ok(total)
    }

    /// Step 3: BPTT updates until the estimated performance stops improving.
    fn improve_policy(&mut self) -> Result<(usize, f64)> {
        let c = self.config.clone();
        let env = ModelEnv::new(
            self.model.frozen()?,
            self.env.task_functions(),
            c.model_env.clone(),
        )?;
        let eval_starts = self.start_states(c.evaluation_rollouts)?;
        let estimate = |this: &Self| -> Result<f64> {
            let mut rng = stream_rng(0, Stream::Custom(1));
            Ok(this
                .imagined_return(&env, &eval_starts, None, &mut rng)?
                .mean_all()?
                .to_scalar::<f32>()? as f64)
        };
        let mut best = estimate(self)?;
        let mut best_params = self.policy.flat_params()?.copy()?;
        let (mut last_improvement, mut updates) = (0, 0);
        let act_dim = self.policy.act_dim();
        for i in 1..=c.max_policy_iterations {
            let starts = self.start_states(c.imagined_rollouts)?;
            let noise = (0..self.horizon)
                .map(|_| {
                    standard_normal(
                        &[c.imagined_rollouts, act_dim],
                        &mut self.rngs.sampler,
                        &Device::Cpu,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let mut rng =
                <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(self.rngs.sampler.random());
            let objective = self
                .imagined_return(&env, &starts, Some(&noise), &mut rng)?
                .mean_all()?;
            let loss = objective.neg()?;
            let mut grads = loss.backward()?;
            clip_grad_norm(&mut grads, self.policy.parameters(), c.max_grad_norm)?;
            self.optimizer.step(&grads)?;
            updates = i;
            if i % c.evaluate_every == 0 {
                let value = estimate(self)?;
                if value > best {
                    best = value;
                    best_params = self.policy.flat_params()?.copy()?;
                    last_improvement = i;
                } else if i - last_improvement >= c.patience {
                    break;
                }
            }
        }
        self.policy.set_flat_params(&best_params)?;
        Ok((updates, best))
    }
}

impl Algorithm for VanillaBptt {
    fn name(&self) -> &str {
        ENTRY.name
    }

    fn metric_columns(&self) -> Vec<String> {
        with_fit_columns(&[
            "train_return",
            "policy_updates",
            "imagined_return",
            "data_time_s",
            "model_time_s",
            "policy_time_s",
        ])
    }

    fn train_iteration(&mut self, _iteration: u64) -> Result<IterationStats> {
        let clock = Instant::now();
        let batch = self.sampler.collect(
            &self.policy,
            self.config.steps_per_iteration,
            &mut self.rngs.policy,
        )?;
        self.env_steps += batch.env_steps;
        self.data.add(&batch.trajectories)?;
        let data_time = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let fit = self.model.fit(
            &self.data.train,
            Some(&self.data.validation),
            &mut self.rngs.model,
        )?;
        let model_time = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let (updates, imagined) = self.improve_policy()?;
        let policy_time = clock.elapsed().as_secs_f64();
        let train_return = batch.mean_completed_return();
        let mut metrics = fit_metrics(&fit);
        metrics.extend([
            ("policy_updates".to_string(), updates as f64),
            ("imagined_return".to_string(), imagined),
            ("data_time_s".to_string(), data_time),
            ("model_time_s".to_string(), model_time),
            ("policy_time_s".to_string(), policy_time),
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

    fn planning_parts(&self) -> Result<Option<PlanningParts>> {
        model_and_policy_planning_parts(self.model.as_ref(), &self.policy, self.env_steps > 0)
    }

    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = learner_tensors(&self.policy, self.model.as_ref(), &self.data)?;
        tensors.extend(self.optimizer.state_tensors(POLICY_ADAM)?);
        let state = SavedState {
            progress: LearnerProgress::capture(self.env_steps, &self.rngs),
            sampler_env_rng: self.sampler.rng_state(),
        };
        Ok((tensors, state_to_json(&state)?))
    }

    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()> {
        load_learner_tensors(&self.policy, self.model.as_mut(), &mut self.data, &tensors)?;
        self.optimizer.load_state_tensors(POLICY_ADAM, &tensors)?;
        let state: SavedState = state_from_json(state)?;
        self.env_steps = state.progress.restore(&mut self.rngs);
        self.sampler.restore_rng(&state.sampler_env_rng);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::check_env::factory;
    use mbrl_core::env::TimeLimit;
    use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
    use mbrl_models::{ensemble_factory, EnsembleConfig};

    /// The BPTT gradient of the imagined return equals central finite differences of the same
    /// return (same start states, same reparameterisation noise) along a random direction.
    #[test]
    fn bptt_gradient_matches_finite_differences() {
        let make = factory(|| TimeLimit::new(Drift::new(), 8));
        let model_factory = ensemble_factory(EnsembleConfig {
            members: 1,
            hidden_sizes: vec![4],
            ..EnsembleConfig::default()
        })
        .unwrap();
        let mut model_rng = stream_rng(0, Stream::Model);
        let model = model_factory(1, 1, &mut model_rng).unwrap();
        let config = BpttConfig {
            imagined_rollouts: 16,
            ..BpttConfig::default()
        };
        let mut algo = VanillaBptt::new(
            &make,
            make().unwrap(),
            model,
            model_rng,
            0,
            config,
            PolicyConfig {
                hidden_sizes: vec![8],
                output_init_scale: 1.0,
                ..PolicyConfig::default()
            },
        )
        .unwrap();
        // A known model: member 0 of the scaled drift ensemble is s' = s + a.
        let env = ModelEnv::new(
            ScaledDriftEnsemble::new(1, None),
            make().unwrap().task_functions(),
            BpttConfig::default().model_env,
        )
        .unwrap();
        let start = algo.start_states(16).unwrap();
        let mut noise_rng = stream_rng(1, Stream::Sampler);
        let noise: Vec<Tensor> = (0..8)
            .map(|_| standard_normal(&[16, 1], &mut noise_rng, &Device::Cpu).unwrap())
            .collect();
        let value = |a: &VanillaBptt| {
            let mut rng = stream_rng(2, Stream::Sampler);
            a.imagined_return(&env, &start, Some(&noise), &mut rng)
                .unwrap()
                .mean_all()
                .unwrap()
        };
        let objective = value(&algo);
        let grads = objective.backward().unwrap();
        let grad: Vec<Tensor> = algo
            .policy
            .parameters()
            .iter()
            .map(|v| grads.get(v.as_tensor()).unwrap().clone())
            .collect();
        let grad = mbrl_core::policy::flatten(&grad).unwrap();
        let n = algo.policy.num_params();
        let direction = standard_normal(&[n], &mut noise_rng, &Device::Cpu).unwrap();
        let analytic = (&grad * &direction)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let base = algo.policy.flat_params().unwrap().copy().unwrap();
        let eps = 1e-3;
        let at = |a: &mut VanillaBptt, sign: f64| {
            a.policy
                .set_flat_params(&(&base + (&direction * (sign * eps)).unwrap()).unwrap())
                .unwrap();
            value(a).to_scalar::<f32>().unwrap() as f64
        };
        let numeric = (at(&mut algo, 1.0) - at(&mut algo, -1.0)) / (2.0 * eps);
        assert!(
            (analytic - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
            "autograd {analytic} vs finite differences {numeric}"
        );
    }
}

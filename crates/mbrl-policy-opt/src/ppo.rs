//! Proximal Policy Optimisation with the clipped surrogate (Schulman et al., 2017): several
//! epochs of Adam over shuffled minibatches, global gradient-norm clipping, and an optional
//! early stop when the approximate KL exceeds a target (CleanRL's `target_kl`).

use candle_core::{Tensor, Var};
use mbrl_core::adam::Adam;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::{Error, Result};
use rand::seq::SliceRandom;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::advantages::PolicyBatch;

/// The `[ppo]` optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Clip range of the probability ratio. Default 0.2.
    pub clip: f64,
    /// Passes over the batch per update. Default 10.
    pub epochs: usize,
    /// Minibatches per epoch. Default 32.
    pub num_minibatches: usize,
    /// Adam learning rate. Default 3e-4.
    pub learning_rate: f64,
    /// Global gradient-norm clip (0 disables). Default 0.5.
    pub max_grad_norm: f64,
    /// Stop the epochs early once the approximate KL exceeds this (0 disables). Default 0.
    pub target_kl: f64,
    /// Entropy bonus coefficient. Default 0.
    pub entropy_coef: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            clip: 0.2,
            epochs: 10,
            num_minibatches: 32,
            learning_rate: 3e-4,
            max_grad_norm: 0.5,
            target_kl: 0.0,
            entropy_coef: 0.0,
        }
    }
}

/// What one PPO update did.
#[derive(Debug, Clone, PartialEq)]
pub struct PpoStats {
    /// Clipped surrogate of the last minibatch.
    pub surrogate: f64,
    /// Approximate KL `mean((r - 1) - log r)` over the whole batch after the update.
    pub approx_kl: f64,
    /// Fraction of samples whose ratio left the clip range, after the update.
    pub clip_fraction: f64,
    /// Epochs run (fewer than configured after an early stop).
    pub epochs_run: usize,
}

/// The PPO optimiser: holds Adam's state across updates.
pub struct Ppo {
    config: PpoConfig,
    optimizer: Adam,
    vars: Vec<Var>,
}

impl Ppo {
    /// A PPO optimiser for `vars` (the policy's parameters).
    pub fn new(vars: Vec<Var>, config: PpoConfig) -> Result<Self> {
        if config.epochs == 0 || config.num_minibatches == 0 {
            return Err(Error::InvalidArgument(
                "ppo.epochs and ppo.num_minibatches must be at least 1".into(),
            ));
        }
        Ok(Self {
            optimizer: Adam::new(vars.clone(), config.learning_rate)?,
            config,
            vars,
        })
    }

    /// The Adam optimiser, whose state goes into checkpoints.
    pub fn adam(&self) -> &Adam {
        &self.optimizer
    }

    /// The Adam optimiser, to restore its state.
    pub fn adam_mut(&mut self) -> &mut Adam {
        &mut self.optimizer
    }

    /// Runs the configured epochs on `batch`.
    pub fn update(
        &mut self,
        policy: &dyn GaussianPolicy,
        batch: &PolicyBatch,
        rng: &mut dyn RngCore,
    ) -> Result<PpoStats> {
        let n = batch.len();
        let old_log_prob = policy.log_prob(&batch.obs, &batch.act)?.detach();
        let minibatch = n.div_ceil(self.config.num_minibatches).max(1);
        let mut indices: Vec<u32> = (0..n as u32).collect();
        let mut surrogate = 0.0;
        let mut epochs_run = 0;
        for _ in 0..self.config.epochs {
            indices.shuffle(&mut RngAdapter(rng));
            for chunk in indices.chunks(minibatch) {
                let idx = Tensor::from_slice(chunk, chunk.len(), batch.obs.device())?;
                let obs = batch.obs.index_select(&idx, 0)?;
                let act = batch.act.index_select(&idx, 0)?;
                let adv = batch.advantages.index_select(&idx, 0)?;
                let old = old_log_prob.index_select(&idx, 0)?;
                let dist = policy.distribution(&obs)?;
                let ratio = (dist.log_prob(&act)? - old)?.exp()?;
                let clipped = ratio.clamp(1.0 - self.config.clip, 1.0 + self.config.clip)?;
                let objective = (ratio * &adv)?.minimum(&(clipped * &adv)?)?.mean_all()?;
                let entropy = dist.entropy()?.mean_all()?;
                let loss = ((objective.neg()? - (entropy * self.config.entropy_coef)?)?).clone();
                surrogate = objective.to_scalar::<f32>()? as f64;
                let mut grads = loss.backward()?;
                clip_grad_norm(&mut grads, &self.vars, self.config.max_grad_norm)?;
                self.optimizer.step(&grads)?;
            }
            epochs_run += 1;
            if self.config.target_kl > 0.0
                && self.stats(policy, batch, &old_log_prob)?.0 > self.config.target_kl
            {
                break;
            }
        }
        let (approx_kl, clip_fraction) = self.stats(policy, batch, &old_log_prob)?;
        Ok(PpoStats {
            surrogate,
            approx_kl,
            clip_fraction,
            epochs_run,
        })
    }

    /// Approximate KL and clip fraction of the whole batch under the current parameters.
    fn stats(
        &self,
        policy: &dyn GaussianPolicy,
        batch: &PolicyBatch,
        old: &Tensor,
    ) -> Result<(f64, f64)> {
        let log_ratio = (policy.log_prob(&batch.obs, &batch.act)?.detach() - old)?;
        let ratio = log_ratio.exp()?;
        let kl = ((&ratio - 1.0)? - &log_ratio)?
            .mean_all()?
            .to_scalar::<f32>()? as f64;
        let outside = (ratio - 1.0)?
            .abs()?
            .gt(self.config.clip)?
            .to_dtype(candle_core::DType::F32)?;
        let frac = outside.mean_all()?.to_scalar::<f32>()? as f64;
        Ok((kl, frac))
    }
}

/// Scales the gradients of `vars` so their global norm is at most `max_norm` (no-op for
/// `max_norm <= 0`); returns the norm before clipping.
pub fn clip_grad_norm(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[Var],
    max_norm: f64,
) -> Result<f64> {
    let mut total = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Lets a `dyn RngCore` drive `SliceRandom::shuffle`.
struct RngAdapter<'a>(&'a mut dyn RngCore);

impl RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
    use candle_core::Device;
    use mbrl_core::policy::Policy;
    use mbrl_core::seeding::{stream_rng, Stream};

    #[test]
    fn ppo_increases_the_probability_of_advantageous_actions() {
        let mut rng = stream_rng(0, Stream::Policy);
        let policy = GaussianMlpPolicy::new(2, 1, PolicyConfig::default(), &mut rng).unwrap();
        let obs = mbrl_core::policy::standard_normal(&[512, 2], &mut rng, &Device::Cpu).unwrap();
        let act = policy.act(&obs, false, &mut rng).unwrap();
        let advantages = act.squeeze(1).unwrap();
        let batch = PolicyBatch {
            obs: obs.clone(),
            act,
            advantages,
            mean_return: 0.0,
        };
        let before = policy
            .distribution(&obs)
            .unwrap()
            .mean
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let mut ppo = Ppo::new(
            policy.parameters().to_vec(),
            PpoConfig {
                learning_rate: 1e-2,
                ..PpoConfig::default()
            },
        )
        .unwrap();
        let stats = ppo.update(&policy, &batch, &mut rng).unwrap();
        let after = policy
            .distribution(&obs)
            .unwrap()
            .mean
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(after > before + 0.05, "mean action {before} -> {after}");
        assert!(stats.approx_kl > 0.0 && stats.epochs_run == 10);
    }

    #[test]
    fn target_kl_stops_early_and_bad_config_is_an_error() {
        let mut rng = stream_rng(1, Stream::Policy);
        let policy = GaussianMlpPolicy::new(2, 1, PolicyConfig::default(), &mut rng).unwrap();
        let obs = mbrl_core::policy::standard_normal(&[256, 2], &mut rng, &Device::Cpu).unwrap();
        let act = policy.act(&obs, false, &mut rng).unwrap();
        let batch = PolicyBatch {
            obs,
            advantages: act.squeeze(1).unwrap(),
            act,
            mean_return: 0.0,
        };
        let config = PpoConfig {
            learning_rate: 5e-2,
            target_kl: 1e-4,
            ..PpoConfig::default()
        };
        let mut ppo = Ppo::new(policy.parameters().to_vec(), config).unwrap();
        assert!(ppo.update(&policy, &batch, &mut rng).unwrap().epochs_run < 10);
        assert!(Ppo::new(
            policy.parameters().to_vec(),
            PpoConfig {
                epochs: 0,
                ..PpoConfig::default()
            }
        )
        .is_err());
    }
}

//! The tanh-squashed Gaussian actor of SAC and MAAC (Haarnoja et al. 2018, Appendix C).
//!
//! An MLP maps an observation to the mean and the log-std of a Gaussian over pre-squash
//! actions `u`; the log-std is clipped to `[log_std_min, log_std_max]` (`[-20, 2]`). An action is
//! `a = c + h * tanh(u)` with `c` and `h` the centre and half-width of the action box, so its
//! log-density follows by the change of variables:
//! `log pi(a|s) = log N(u; mu, sigma) - sum_j log(h_j (1 - tanh(u_j)^2))`, with
//! `log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))` for numerical stability.
//! Samples are reparameterised (`u = mu + sigma * eps`), so they and their log-densities are
//! differentiable in the actor's parameters and in the observation: the pathwise estimator of
//! MAAC's objective runs through them.

use candle_core::{Device, Tensor, Var};
use mbrl_core::policy::{standard_normal, Policy};
use mbrl_core::space::BoxSpace;
use mbrl_core::{Error, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use mbrl_core::mlp::{Mlp, MlpShape};

/// The `[actor]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorConfig {
    /// Hidden layer widths (ReLU). Default `[256, 256]`.
    pub hidden_sizes: Vec<usize>,
    /// Lower clip of the state-dependent log-std. Default `-20`.
    pub log_std_min: f32,
    /// Upper clip of the state-dependent log-std. Default `2`.
    pub log_std_max: f32,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            hidden_sizes: vec![256, 256],
            log_std_min: -20.0,
            log_std_max: 2.0,
        }
    }
}

impl ActorConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        if self.hidden_sizes.is_empty() || self.hidden_sizes.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "actor.hidden_sizes must list at least one positive width, got {:?}",
                self.hidden_sizes
            )));
        }
        if self.log_std_min.partial_cmp(&self.log_std_max) != Some(std::cmp::Ordering::Less) {
            return Err(Error::InvalidArgument(format!(
                "actor.log_std_min ({}) must be below actor.log_std_max ({})",
                self.log_std_min, self.log_std_max
            )));
        }
        Ok(())
    }
}

/// A reparameterised sample: actions `[B, A]` in the action box and their log-densities `[B]`.
#[derive(Debug, Clone)]
pub struct ActionSample {
    /// Actions.
    pub action: Tensor,
    /// `log pi(action | obs)`.
    pub log_prob: Tensor,
}

/// The squashed Gaussian actor.
#[derive(Debug)]
pub struct SquashedGaussianActor {
    net: Mlp,
    config: ActorConfig,
    act_dim: usize,
    /// Centre `[A]` and half-width `[A]` of the action box.
    centre: Tensor,
    half_width: Tensor,
    /// `sum_j log h_j`, the box's contribution to every log-density.
    log_half_width_sum: f64,
}

impl SquashedGaussianActor {
    /// A fresh actor for `obs_dim` observations and actions in `action_space` (finite bounds).
    pub fn new(
        obs_dim: usize,
        action_space: &BoxSpace,
        config: ActorConfig,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        config.validate()?;
        let (low, high) = (action_space.low(), action_space.high());
        if low.iter().chain(high).any(|v| !v.is_finite())
            || low.iter().zip(high).any(|(l, h)| l >= h)
        {
            return Err(Error::InvalidArgument(format!(
                "a squashed Gaussian actor needs a bounded action box, got low {low:?}, high {high:?}"
            )));
        }
        let act_dim = low.len();
        let mut widths = vec![obs_dim];
        widths.extend(&config.hidden_sizes);
        widths.push(2 * act_dim);
        let net = Mlp::new(
            MlpShape {
                widths,
                stacked: None,
            },
            rng,
        )?;
        let centre: Vec<f32> = low.iter().zip(high).map(|(l, h)| 0.5 * (l + h)).collect();
        let half: Vec<f32> = low.iter().zip(high).map(|(l, h)| 0.5 * (h - l)).collect();
        let log_half_width_sum = half.iter().map(|h| (*h as f64).ln()).sum();
        Ok(Self {
            net,
            config,
            act_dim,
            centre: Tensor::from_vec(centre, act_dim, &Device::Cpu)?,
            half_width: Tensor::from_vec(half, act_dim, &Device::Cpu)?,
            log_half_width_sum,
        })
    }

    /// An independent copy (later updates of either leave the other unchanged).
    pub fn snapshot(&self) -> Result<Self> {
        Ok(Self {
            net: self.net.snapshot()?,
            config: self.config.clone(),
            act_dim: self.act_dim,
            centre: self.centre.clone(),
            half_width: self.half_width.clone(),
            log_half_width_sum: self.log_half_width_sum,
        })
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// The network (its variables are the actor's parameters).
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The actor's trainable variables.
    pub fn vars(&self) -> &[Var] {
        self.net.vars()
    }

    /// Mean and clipped log-std of the pre-squash Gaussian, `[B, A]` each, with `weights`.
    fn gaussian(&self, weights: &[Tensor], obs: &Tensor) -> Result<(Tensor, Tensor)> {
        let out = self.net.forward_with(weights, obs)?;
        let mean = out.narrow(1, 0, self.act_dim)?;
        let log_std = out
            .narrow(1, self.act_dim, self.act_dim)?
            .clamp(self.config.log_std_min, self.config.log_std_max)?;
        Ok((mean, log_std))
    }

    /// Maps pre-squash values `[B, A]` into the action box.
    fn squash(&self, u: &Tensor) -> Result<Tensor> {
        Ok(u.tanh()?
            .broadcast_mul(&self.half_width)?
            .broadcast_add(&self.centre)?)
    }

    /// A reparameterised sample with standard-normal noise `eps` `[B, A]`, using `weights`
    /// (tracked for training, detached for targets).
    pub fn sample_with(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        eps: &Tensor,
    ) -> Result<ActionSample> {
        let (mean, log_std) = self.gaussian(weights, obs)?;
        let u = (&mean + (log_std.exp()? * eps)?)?;
        // log N(u; mean, std) = -eps^2 / 2 - log_std - log(2 pi) / 2, per dimension.
        let gaussian = ((eps.sqr()? * -0.5)? - &log_std)?;
        // log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
        let log_jacobian =
            ((softplus(&(&u * -2.0)?)? + &u)? * -2.0)? + 2.0 * std::f64::consts::LN_2;
        let per_dim = (gaussian - log_jacobian?)?;
        let constant =
            0.5 * (2.0 * std::f64::consts::PI).ln() * self.act_dim as f64 + self.log_half_width_sum;
        let log_prob = (per_dim.sum(1)? - constant)?;
        Ok(ActionSample {
            action: self.squash(&u)?,
            log_prob,
        })
    }

    /// A reparameterised sample with fresh noise from `rng`.
    pub fn sample(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        rng: &mut dyn RngCore,
    ) -> Result<ActionSample> {
        let eps = standard_normal(&[obs.dim(0)?, self.act_dim], rng, obs.device())?;
        self.sample_with(weights, obs, &eps)
    }

    /// The deterministic action `c + h * tanh(mean)`.
    pub fn mode_with(&self, weights: &[Tensor], obs: &Tensor) -> Result<Tensor> {
        let (mean, _) = self.gaussian(weights, obs)?;
        self.squash(&mean)
    }
}

/// `log(1 + exp(x))` without overflow: `relu(x) + log(1 + exp(-|x|))`.
pub(crate) fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

impl Policy for SquashedGaussianActor {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let weights = self.net.detached();
        if deterministic {
            self.mode_with(&weights, obs)
        } else {
            Ok(self.sample(&weights, obs, rng)?.action)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn actor(low: f32, high: f32) -> SquashedGaussianActor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let space = BoxSpace::uniform(low, high, 1).unwrap();
        let config = ActorConfig {
            hidden_sizes: vec![8],
            ..Default::default()
        };
        SquashedGaussianActor::new(2, &space, config, &mut rng).unwrap()
    }

    /// The log-density of the squashed Gaussian against a numerical density: the histogram of
    /// many samples of one observation's action, in bins away from the box's edges (where the
    /// density changes too fast within a bin for its centre value to stand for it).
    #[test]
    fn log_density_matches_a_numerical_density() {
        let a = actor(-2.0, 2.0);
        let obs = Tensor::new(&[[0.3f32, -0.7]], &Device::Cpu).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 400_000;
        let many = obs.broadcast_as((n, 2)).unwrap().contiguous().unwrap();
        let s = a.sample(&a.net.detached(), &many, &mut rng).unwrap();
        let actions: Vec<f32> = s.action.flatten_all().unwrap().to_vec1().unwrap();
        let log_probs: Vec<f32> = s.log_prob.to_vec1().unwrap();
        let width = 0.1f32;
        let mut checked = 0;
        for bin in 2..38 {
            let lo = -2.0 + bin as f32 * width;
            let count = actions
                .iter()
                .filter(|&&x| x >= lo && x < lo + width)
                .count();
            if count < 2000 {
                continue;
            }
            let empirical = count as f64 / (n as f64 * width as f64);
            // The analytic density at the bin's centre: the log-prob of the sample nearest it.
            let centre = lo + width / 2.0;
            let (i, _) = actions
                .iter()
                .enumerate()
                .min_by(|x, y| (x.1 - centre).abs().total_cmp(&(y.1 - centre).abs()))
                .unwrap();
            let analytic = (log_probs[i] as f64).exp();
            assert!(
                (empirical - analytic).abs() < 0.05 * analytic + 0.01,
                "bin at {centre}: histogram {empirical}, density {analytic}"
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} bins had enough samples");
    }

    #[test]
    fn actions_stay_in_the_box_and_the_mode_is_deterministic() {
        let a = actor(-0.5, 1.5);
        let obs = Tensor::randn(0f32, 10.0, (100, 2), &Device::Cpu).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let sampled: Vec<f32> = a
            .act(&obs, false, &mut rng)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(sampled.iter().all(|x| (-0.5..=1.5).contains(x)));
        let m1 = a.act(&obs, true, &mut rng).unwrap();
        let m2 = a.act(&obs, true, &mut rng).unwrap();
        assert_eq!(
            m1.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            m2.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn rejects_unbounded_boxes_and_bad_clips() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let space = BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, 1).unwrap();
        assert!(SquashedGaussianActor::new(2, &space, ActorConfig::default(), &mut rng).is_err());
        let bad = ActorConfig {
            log_std_min: 2.0,
            log_std_max: -2.0,
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("actor.log_std_min"));
    }
}

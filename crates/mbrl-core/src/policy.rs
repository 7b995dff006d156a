//! Policies: acting, Gaussian distribution access, and flat parameter vectors.
//!
//! [`Policy`] is what a sampler needs (`act`). [`GaussianPolicy`] adds what policy-gradient,
//! trust-region and meta-learning optimisers need: the action distribution as a differentiable
//! function of explicitly given parameters (so adapted parameters of MAML can be plugged in),
//! log-probabilities, entropy, KL between two parameter settings, and flat get/set.
//!
//! All randomness comes from the caller's RNG, never from candle's global generator, so runs
//! are reproducible under a seed.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use crate::kernels;
use crate::space::BoxSpace;
use crate::{Error, Result};

const LOG_2PI: f64 = 1.837_877_066_409_345_3;

/// Anything that maps a batch of observations to a batch of actions.
pub trait Policy: Send {
    /// Actions for `obs` (`[B, obs_dim]` -> `[B, act_dim]`). `deterministic` selects the
    /// distribution's mode (evaluation); otherwise actions are sampled from `rng`.
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor>;

    /// Called when a new episode starts, before its first `act`; stateful policies (MPC with a
    /// warm start, online-adaptive controllers) forget the previous episode here. Default:
    /// nothing.
    fn begin_episode(&self) -> Result<()> {
        Ok(())
    }

    /// Called after each step of a single-environment episode with the transition
    /// `(obs, act, next_obs)` (flat rows); online-adaptive controllers learn from it. Default:
    /// nothing.
    fn observe(&self, _obs: &[f32], _act: &[f32], _next_obs: &[f32]) -> Result<()> {
        Ok(())
    }
}

/// A diagonal Gaussian over actions, batched: `mean` is `[B, A]`, `log_std` is `[B, A]` or `[A]`.
///
/// A state-independent `[A]` log-std (the thesis's policies) is kept unbroadcast: sums over the
/// action dimension become a matmul with a `[A, 1]` column, so no gradient has to be reduced
/// over the batch dimension (a slow non-last-dimension sum in candle, PERFORMANCE_NOTES).
#[derive(Debug, Clone)]
pub struct DiagGaussian {
    /// Means, `[B, A]`.
    pub mean: Tensor,
    /// Log standard deviations, `[A]` (shared by all rows) or `[B, A]`.
    pub log_std: Tensor,
}

impl DiagGaussian {
    /// A distribution from its mean `[B, A]` and log standard deviation (`[A]` or `[B, A]`).
    pub fn new(mean: Tensor, log_std: Tensor) -> Result<Self> {
        let act_dim = mean.dims().last().copied().unwrap_or(0);
        let shared = log_std.dims() == [act_dim];
        if mean.rank() != 2 || !(shared || log_std.dims() == mean.dims()) {
            return Err(Error::shape(
                "Gaussian log-std",
                format!(
                    "[{act_dim}] or {:?} for means {:?}",
                    mean.dims(),
                    mean.dims()
                ),
                format!("{:?}", log_std.dims()),
            ));
        }
        Ok(Self { mean, log_std })
    }

    /// Whether one `[A]` log-std serves every row.
    fn shared_log_std(&self) -> bool {
        self.log_std.rank() == 1
    }

    /// The log-std broadcast to the means' shape.
    fn full_log_std(&self) -> Result<Tensor> {
        Ok(self.log_std.broadcast_as(self.mean.shape())?)
    }

    fn act_dim(&self) -> usize {
        self.mean.dims()[1]
    }

    /// Log-density of each row of `act` (`[B, A]` -> `[B]`).
    pub fn log_prob(&self, act: &Tensor) -> Result<Tensor> {
        if self.shared_log_std() {
            return kernels::gaussian_log_prob(act, &self.mean, &self.log_std);
        }
        let z = ((act - &self.mean)? / self.log_std.exp()?)?;
        let per_dim = ((z.sqr()? + (&self.log_std * 2.0)?)? + LOG_2PI)?;
        Ok((per_dim.sum(D::Minus1)? * -0.5)?)
    }

    /// Entropy of each row (`[B]`).
    pub fn entropy(&self) -> Result<Tensor> {
        let constant = 0.5 * (1.0 + LOG_2PI);
        if self.shared_log_std() {
            let total = (self.log_std.sum_all()? + constant * self.act_dim() as f64)?;
            return Ok(total.broadcast_as(self.mean.dims()[0])?);
        }
        Ok((self.log_std.clone() + constant)?.sum(D::Minus1)?)
    }

    /// `KL(self || other)` per row (`[B]`).
    pub fn kl(&self, other: &DiagGaussian) -> Result<Tensor> {
        if self.shared_log_std() && other.shared_log_std() {
            // sum_j [ls_q - ls_p + sigma_p^2 / (2 sigma_q^2) - 1/2] + sum_j (mu_p - mu_q)_j^2 / (2 sigma_q^2)
            let half_inv_var_q = ((&other.log_std * -2.0)?.exp()? * 0.5)?;
            let constant = ((&other.log_std - &self.log_std)?
                + ((&self.log_std * 2.0)?.exp()? * &half_inv_var_q)?)?
                .sum_all()?
                - 0.5 * self.act_dim() as f64;
            let quad = (&self.mean - &other.mean)?
                .sqr()?
                .matmul(&half_inv_var_q.unsqueeze(1)?)?
                .squeeze(1)?;
            return Ok(quad.broadcast_add(&constant?)?);
        }
        let (ls_p, ls_q) = (self.full_log_std()?, other.full_log_std()?);
        let var_ratio_num = ((&ls_p * 2.0)?.exp()? + (&self.mean - &other.mean)?.sqr()?)?;
        let denom = ((&ls_q * 2.0)?.exp()? * 2.0)?;
        let per_dim = (((&ls_q - &ls_p)? + (var_ratio_num / denom)?)? - 0.5)?;
        Ok(per_dim.sum(D::Minus1)?)
    }

    /// The mode (the mean).
    pub fn mode(&self) -> Tensor {
        self.mean.clone()
    }

    /// `mean + std * noise` for standard-normal `noise` shaped like the means (the
    /// reparameterised sample).
    pub fn sample_with(&self, noise: &Tensor) -> Result<Tensor> {
        Ok((&self.mean + self.log_std.exp()?.broadcast_mul(noise)?)?)
    }

    /// Draws one action per row with noise from `rng`.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let noise = standard_normal(self.mean.dims(), rng, self.mean.device())?;
        self.sample_with(&noise)
    }
}

/// A tensor of the given shape filled with standard-normal noise from `rng`.
pub fn standard_normal(dims: &[usize], rng: &mut dyn RngCore, device: &Device) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Ok(Tensor::from_vec(values, dims, device)?)
}

/// [`Policy::act`] for a [`GaussianPolicy`]: the distribution at detached copies of its
/// parameters (no graph is built), then its mode or a sample from `rng`.
pub fn act_gaussian(
    policy: &dyn GaussianPolicy,
    obs: &Tensor,
    deterministic: bool,
    rng: &mut dyn RngCore,
) -> Result<Tensor> {
    let params: Vec<Tensor> = policy
        .parameters()
        .iter()
        .map(|v| v.as_tensor().detach())
        .collect();
    let dist = policy.distribution_with(&params, obs)?;
    if deterministic {
        Ok(dist.mode())
    } else {
        dist.sample(rng)
    }
}

/// A policy with a diagonal Gaussian action distribution and trainable parameters.
pub trait GaussianPolicy: Policy {
    /// The trainable parameters, in a fixed order.
    fn parameters(&self) -> &[Var];

    /// The action distribution with the given parameters in place of the policy's own
    /// (same order and shapes as [`GaussianPolicy::parameters`]); differentiable in them.
    fn distribution_with(&self, params: &[Tensor], obs: &Tensor) -> Result<DiagGaussian>;

    /// Current parameter values as plain tensors (the order of `parameters`). They share
    /// storage with the variables: take `Tensor::copy` of them to keep a snapshot across
    /// `set_flat_params` or optimiser steps.
    fn parameter_tensors(&self) -> Vec<Tensor> {
        self.parameters()
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect()
    }

    /// The action distribution with the policy's own parameters.
    fn distribution(&self, obs: &Tensor) -> Result<DiagGaussian> {
        self.distribution_with(&self.parameter_tensors(), obs)
    }

    /// Log-probability of each action (`[B]`).
    fn log_prob(&self, obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        self.distribution(obs)?.log_prob(act)
    }

    /// Entropy per observation (`[B]`).
    fn entropy(&self, obs: &Tensor) -> Result<Tensor> {
        self.distribution(obs)?.entropy()
    }

    /// Mean over `obs` of `KL(pi_old || pi_new)` between two parameter settings (scalar).
    fn kl(&self, old: &[Tensor], new: &[Tensor], obs: &Tensor) -> Result<Tensor> {
        let p = self.distribution_with(old, obs)?;
        let q = self.distribution_with(new, obs)?;
        Ok(p.kl(&q)?.mean_all()?)
    }

    /// Number of scalar parameters.
    fn num_params(&self) -> usize {
        self.parameters().iter().map(|v| v.elem_count()).sum()
    }

    /// All parameters concatenated into one rank-1 tensor.
    fn flat_params(&self) -> Result<Tensor> {
        flatten(&self.parameter_tensors())
    }

    /// Overwrites all parameters from a rank-1 tensor (the layout of `flat_params`).
    fn set_flat_params(&self, flat: &Tensor) -> Result<()> {
        let shapes: Vec<Vec<usize>> = self
            .parameters()
            .iter()
            .map(|v| v.dims().to_vec())
            .collect();
        for (var, value) in self.parameters().iter().zip(unflatten(flat, &shapes)?) {
            var.set(&value)?;
        }
        Ok(())
    }
}

/// Concatenates tensors into one rank-1 tensor.
pub fn flatten(tensors: &[Tensor]) -> Result<Tensor> {
    let parts = tensors
        .iter()
        .map(|t| t.flatten_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// Splits a rank-1 tensor into tensors of the given shapes (the inverse of [`flatten`]).
pub fn unflatten(flat: &Tensor, shapes: &[Vec<usize>]) -> Result<Vec<Tensor>> {
    let total: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    if flat.rank() != 1 || flat.dim(0)? != total {
        return Err(Error::shape(
            "unflatten",
            format!("rank-1 tensor of {total} elements"),
            format!("{:?}", flat.dims()),
        ));
    }
    let mut offset = 0;
    let mut out = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let n: usize = shape.iter().product();
        out.push(flat.narrow(0, offset, n)?.reshape(shape.as_slice())?);
        offset += n;
    }
    Ok(out)
}

/// The uniform random policy over a bounded box: the reference line of every learning curve.
pub struct RandomPolicy {
    space: BoxSpace,
}

impl RandomPolicy {
    /// A random policy over `space`, which must be bounded.
    pub fn new(space: BoxSpace) -> Result<Self> {
        if !space.is_bounded() {
            return Err(Error::InvalidArgument(
                "the random policy needs a bounded action space".into(),
            ));
        }
        Ok(Self { space })
    }
}

impl Policy for RandomPolicy {
    fn act(&self, obs: &Tensor, _deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let batch = obs.dim(0)?;
        let dim = self.space.flat_dim();
        let values: Vec<f32> = (0..batch).flat_map(|_| self.space.sample(rng)).collect();
        Ok(Tensor::from_vec(values, (batch, dim), obs.device())?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::LinearGaussianPolicy;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(3)
    }

    fn t(v: &[f32], dims: (usize, usize)) -> Tensor {
        Tensor::from_slice(v, dims, &Device::Cpu).unwrap()
    }

    fn normal_log_pdf(x: f64, mu: f64, log_std: f64) -> f64 {
        let s = log_std.exp();
        -0.5 * ((x - mu) / s).powi(2) - log_std - 0.5 * LOG_2PI
    }

    #[test]
    fn log_prob_matches_the_closed_form() {
        let d = DiagGaussian::new(t(&[0.5, -1.0], (1, 2)), t(&[0.1, -0.3], (1, 2))).unwrap();
        let lp = d
            .log_prob(&t(&[1.0, 0.2], (1, 2)))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let expected = normal_log_pdf(1.0, 0.5, 0.1) + normal_log_pdf(0.2, -1.0, -0.3);
        assert!(
            (lp[0] as f64 - expected).abs() < 1e-5,
            "{} vs {expected}",
            lp[0]
        );
    }

    #[test]
    fn entropy_and_kl_match_closed_forms() {
        let p = DiagGaussian::new(t(&[0.0, 1.0], (1, 2)), t(&[0.0, 0.5], (1, 2))).unwrap();
        let q = DiagGaussian::new(t(&[1.0, 1.0], (1, 2)), t(&[0.2, 0.0], (1, 2))).unwrap();
        let h = p.entropy().unwrap().to_vec1::<f32>().unwrap()[0] as f64;
        let expected_h = (0.0 + 0.5) + 2.0 * 0.5 * (1.0 + LOG_2PI);
        assert!((h - expected_h).abs() < 1e-5);
        // KL(N(m1,s1)||N(m2,s2)) = ln(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2, per dim.
        let kl_dim = |m1: f64, l1: f64, m2: f64, l2: f64| {
            l2 - l1 + ((2.0 * l1).exp() + (m1 - m2).powi(2)) / (2.0 * (2.0 * l2).exp()) - 0.5
        };
        let expected = kl_dim(0.0, 0.0, 1.0, 0.2) + kl_dim(1.0, 0.5, 1.0, 0.0);
        let kl = p.kl(&q).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
        assert!((kl - expected).abs() < 1e-5, "{kl} vs {expected}");
        let self_kl = p.kl(&p).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!(self_kl.abs() < 1e-6);
    }

    /// The `[A]` log-std fast paths equal the broadcast `[B, A]` ones, in value and gradient.
    #[test]
    fn shared_log_std_paths_equal_the_broadcast_ones() {
        let dev = Device::Cpu;
        let (b, a) = (5, 3);
        let mean_p = Var::randn(0f32, 1.0, (b, a), &dev).unwrap();
        let mean_q = Var::randn(0f32, 1.0, (b, a), &dev).unwrap();
        let ls_p = Var::randn(0f32, 0.5, a, &dev).unwrap();
        let ls_q = Var::randn(0f32, 0.5, a, &dev).unwrap();
        let act = Tensor::randn(0f32, 1.0, (b, a), &dev).unwrap();
        let make = |m: &Var, ls: &Var, broadcast: bool| {
            let ls = if broadcast {
                ls.as_tensor().broadcast_as((b, a)).unwrap()
            } else {
                ls.as_tensor().clone()
            };
            DiagGaussian::new(m.as_tensor().clone(), ls).unwrap()
        };
        let w = Tensor::randn(0f32, 1.0, b, &dev).unwrap();
        let weighted = |x: Tensor| (x * &w).unwrap().sum_all().unwrap();
        let objective = |broadcast: bool| {
            let (p, q) = (
                make(&mean_p, &ls_p, broadcast),
                make(&mean_q, &ls_q, broadcast),
            );
            let mixed = make(&mean_q, &ls_q, !broadcast);
            (weighted(p.log_prob(&act).unwrap())
                + weighted(p.entropy().unwrap())
                + weighted(p.kl(&q).unwrap())
                + weighted(p.kl(&mixed).unwrap()))
            .unwrap()
        };
        let (fast, slow) = (objective(false), objective(true));
        let value = |t: &Tensor| t.to_scalar::<f32>().unwrap();
        assert!((value(&fast) - value(&slow)).abs() < 1e-4);
        let (gf, gs) = (fast.backward().unwrap(), slow.backward().unwrap());
        for v in [&mean_p, &mean_q, &ls_p, &ls_q] {
            let d = (gf.get(v).unwrap() - gs.get(v).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(value(&d) < 1e-4);
        }
        assert!(DiagGaussian::new(
            mean_p.as_tensor().clone(),
            Tensor::zeros(a + 1, candle_core::DType::F32, &dev).unwrap()
        )
        .is_err());
    }

    #[test]
    fn samples_have_the_distribution_moments() {
        let n = 20000;
        let d = DiagGaussian::new(
            Tensor::full(2.0f32, (n, 1), &Device::Cpu).unwrap(),
            Tensor::full(0.5f32.ln(), 1, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let xs = d
            .sample(&mut rng())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(
            (mean - 2.0).abs() < 0.02 && (var - 0.25).abs() < 0.01,
            "{mean} {var}"
        );
    }

    #[test]
    fn flat_parameters_round_trip() {
        let policy = LinearGaussianPolicy::new(3, 2, -0.5).unwrap();
        let flat = policy.flat_params().unwrap();
        assert_eq!(flat.dim(0).unwrap(), policy.num_params());
        let changed = (flat.clone() + 1.0).unwrap();
        policy.set_flat_params(&changed).unwrap();
        let back = policy.flat_params().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(back, changed.to_vec1::<f32>().unwrap());
        assert!(policy
            .set_flat_params(&flat.narrow(0, 0, 2).unwrap())
            .is_err());
    }

    #[test]
    fn policy_kl_is_zero_for_equal_parameters_and_positive_otherwise() {
        let policy = LinearGaussianPolicy::new(2, 1, 0.0).unwrap();
        let obs = t(&[1.0, 2.0, -1.0, 0.5], (2, 2));
        let old = policy.parameter_tensors();
        let kl0 = policy
            .kl(&old, &old, &obs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(kl0.abs() < 1e-7);
        let shifted: Vec<Tensor> = old.iter().map(|p| (p + 0.1).unwrap()).collect();
        let kl = policy
            .kl(&old, &shifted, &obs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(kl > 1e-4);
    }

    #[test]
    fn deterministic_gaussian_action_is_the_mean() {
        let policy = LinearGaussianPolicy::new(2, 1, 0.0).unwrap();
        let obs = t(&[1.0, 2.0], (1, 2));
        let a = policy.act(&obs, true, &mut rng()).unwrap();
        let mean = policy.distribution(&obs).unwrap().mean;
        assert_eq!(a.to_vec2::<f32>().unwrap(), mean.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn random_policy_samples_inside_the_box() {
        let space = BoxSpace::uniform(-2.0, 2.0, 3).unwrap();
        let policy = RandomPolicy::new(space.clone()).unwrap();
        let obs = Tensor::zeros((50, 4), DType::F32, &Device::Cpu).unwrap();
        let acts = policy
            .act(&obs, true, &mut rng())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(acts.len(), 50);
        assert!(acts.iter().all(|a| space.contains(a)));
        let unbounded = BoxSpace::uniform(f32::NEG_INFINITY, 0.0, 1).unwrap();
        assert!(RandomPolicy::new(unbounded).is_err());
    }
}

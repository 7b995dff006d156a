//! Trust Region Policy Optimisation (Schulman et al., 2015) as used throughout the thesis:
//! the natural gradient direction by conjugate gradient on Fisher-vector products (with
//! damping), scaled to the KL radius, then a backtracking line search that accepts the first
//! step that improves the surrogate while keeping `KL(pi_old || pi_new) <= max_kl`; if none
//! does, the parameters are restored (rllab's `ConjugateGradientOptimizer`).

use candle_core::{Tensor, Var};
use mbrl_core::policy::{flatten, GaussianPolicy};
use mbrl_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::advantages::PolicyBatch;
use crate::gaussian_mlp::GaussianMlpPolicy;

/// The trust-region settings (part of the `[trpo]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrpoConfig {
    /// KL radius of each step. Default 0.01.
    pub max_kl: f64,
    /// Conjugate-gradient iterations. Default 10.
    pub cg_iters: usize,
    /// Damping added to the Fisher matrix, `F + damping I`. Default 1e-5 (ME-TRPO's value).
    pub cg_damping: f64,
    /// Step shrink factor of the line search. Default 0.8.
    pub backtrack_ratio: f64,
    /// Maximum line-search steps. Default 15.
    pub max_backtracks: usize,
    /// Fraction of the batch used for Fisher-vector products (rllab's `subsample_factor`;
    /// every `1/f`-th sample). Default 1.0 (the whole batch).
    pub fvp_subsample: f64,
}

impl TrpoConfig {
    /// The Fisher-vector products use every `stride`-th item: `round(1 / fvp_subsample)`;
    /// errors unless `fvp_subsample` is in (0, 1].
    pub fn fvp_stride(&self) -> Result<usize> {
        let fraction = self.fvp_subsample;
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "trpo.fvp_subsample must be in (0, 1], got {fraction}"
            )));
        }
        Ok((1.0 / fraction).round().max(1.0) as usize)
    }
}

impl Default for TrpoConfig {
    fn default() -> Self {
        Self {
            max_kl: 0.01,
            cg_iters: 10,
            cg_damping: 1e-5,
            backtrack_ratio: 0.8,
            max_backtracks: 15,
            fvp_subsample: 1.0,
        }
    }
}

/// What one TRPO step did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrpoStats {
    /// Surrogate `mean(ratio * A)` before the step (equals the mean advantage).
    pub surrogate_before: f64,
    /// Surrogate after the step.
    pub surrogate_after: f64,
    /// Mean KL between the old and new policy.
    pub kl: f64,
    /// Whether a step was accepted.
    pub accepted: bool,
    /// Line-search shrinks applied to the accepted step.
    pub backtracks: usize,
}

/// Solves `A x = b` by conjugate gradient with `iters` iterations (A symmetric positive
/// definite, given as a product function).
pub fn conjugate_gradient(
    product: &mut dyn FnMut(&[f64]) -> Result<Vec<f64>>,
    b: &[f64],
    iters: usize,
) -> Result<Vec<f64>> {
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let mut x = vec![0.0; b.len()];
    let mut r = b.to_vec();
    let mut p = b.to_vec();
    let mut rr = dot(&r, &r);
    for _ in 0..iters {
        if rr < 1e-10 {
            break;
        }
        let ap = product(&p)?;
        let alpha = rr / dot(&p, &ap);
        if !alpha.is_finite() {
            return Err(Error::NonFinite {
                what: "conjugate gradient step (Fisher matrix not positive definite?)".into(),
                iteration: 0,
            });
        }
        for i in 0..x.len() {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        for i in 0..p.len() {
            p[i] = r[i] + beta * p[i];
        }
        rr = rr_new;
    }
    Ok(x)
}

/// TRPO's full step along the natural gradient: solves `(F + damping I) x = g` by conjugate
/// gradient (`fvp` computes `F v`) and returns `x` with the scale `sqrt(2 max_kl / x^T (F +
/// damping I) x)` that puts the quadratic model of the KL at `max_kl`. `None` when the
/// curvature along `x` is not positive.
pub fn natural_step(
    fvp: &mut dyn FnMut(&[f64]) -> Result<Vec<f64>>,
    g: &[f64],
    config: &TrpoConfig,
) -> Result<Option<(Vec<f64>, f64)>> {
    let damping = config.cg_damping;
    let mut product = |v: &[f64]| -> Result<Vec<f64>> {
        let fv = fvp(v)?;
        Ok(fv.iter().zip(v).map(|(a, b)| a + damping * b).collect())
    };
    let direction = conjugate_gradient(&mut product, g, config.cg_iters)?;
    let shs: f64 = direction
        .iter()
        .zip(product(&direction)?)
        .map(|(a, b)| a * b)
        .sum();
    if shs.is_nan() || shs <= 0.0 {
        return Ok(None);
    }
    Ok(Some((direction, (2.0 * config.max_kl / shs).sqrt())))
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?)
}

fn from_vec(v: &[f64]) -> Result<Tensor> {
    let values: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Ok(Tensor::from_vec(
        values,
        v.len(),
        &candle_core::Device::Cpu,
    )?)
}

/// The likelihood-ratio surrogate `mean(exp(log pi(a|s) - old_log_prob) * A)` with the given
/// parameters.
pub fn surrogate(
    policy: &dyn GaussianPolicy,
    params: &[Tensor],
    batch: &PolicyBatch,
    old_log_prob: &Tensor,
) -> Result<Tensor> {
    let log_prob = policy
        .distribution_with(params, &batch.obs)?
        .log_prob(&batch.act)?;
    let ratio = (log_prob - old_log_prob)?.exp()?;
    Ok((ratio * &batch.advantages)?.mean_all()?)
}

/// Gradient of `value` w.r.t. `vars`, flattened (zeros where a variable does not contribute).
pub fn flat_grad(value: &Tensor, vars: &[Var]) -> Result<Tensor> {
    let grads = value.backward()?;
    let parts = vars
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<_>>>()?;
    flatten(&parts)
}

/// One TRPO step on `policy` with `fvp` computing Fisher-vector products at the current
/// (old) parameters.
pub fn trpo_step_with(
    policy: &dyn GaussianPolicy,
    batch: &PolicyBatch,
    config: &TrpoConfig,
    fvp: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<TrpoStats> {
    // `copy`, not `detach`: detached tensors share storage with the variables, which the line
    // search overwrites.
    let old_params: Vec<Tensor> = policy
        .parameter_tensors()
        .iter()
        .map(|t| t.copy().map(|c| c.detach()))
        .collect::<candle_core::Result<_>>()?;
    let old_log_prob = policy
        .distribution_with(&old_params, &batch.obs)?
        .log_prob(&batch.act)?
        .detach();
    let live: Vec<Tensor> = policy.parameter_tensors();
    let surr = surrogate(policy, &live, batch, &old_log_prob)?;
    let surrogate_before = surr.to_scalar::<f32>()? as f64;
    let g = to_vec(&flat_grad(&surr, policy.parameters())?)?;
    let unchanged = TrpoStats {
        surrogate_before,
        surrogate_after: surrogate_before,
        kl: 0.0,
        accepted: false,
        backtracks: 0,
    };
    if g.iter().all(|x| *x == 0.0) {
        return Ok(unchanged);
    }
    let mut flat_fvp = |v: &[f64]| to_vec(&fvp(&from_vec(v)?)?);
    let Some((direction, scale)) = natural_step(&mut flat_fvp, &g, config)? else {
        return Ok(unchanged);
    };
    let old_flat = to_vec(&policy.flat_params()?)?;
    for k in 0..config.max_backtracks {
        let frac = scale * config.backtrack_ratio.powi(k as i32);
        let candidate: Vec<f64> = old_flat
            .iter()
            .zip(&direction)
            .map(|(p, d)| p + frac * d)
            .collect();
        policy.set_flat_params(&from_vec(&candidate)?)?;
        let new_params: Vec<Tensor> = policy
            .parameter_tensors()
            .iter()
            .map(|t| t.detach())
            .collect();
        let kl = policy
            .kl(&old_params, &new_params, &batch.obs)?
            .to_scalar::<f32>()? as f64;
        let surr_new =
            surrogate(policy, &new_params, batch, &old_log_prob)?.to_scalar::<f32>()? as f64;
        if kl.is_finite()
            && surr_new.is_finite()
            && kl <= config.max_kl
            && surr_new > surrogate_before
        {
            return Ok(TrpoStats {
                surrogate_before,
                surrogate_after: surr_new,
                kl,
                accepted: true,
                backtracks: k,
            });
        }
    }
    policy.set_flat_params(&from_vec(&old_flat)?)?;
    Ok(unchanged)
}

/// One TRPO step on a Gaussian MLP policy with its exact Fisher-vector products (on every
/// `1 / fvp_subsample`-th sample).
pub fn trpo_step(
    policy: &GaussianMlpPolicy,
    batch: &PolicyBatch,
    config: &TrpoConfig,
) -> Result<TrpoStats> {
    let stride = config.fvp_stride()?;
    let obs = if stride == 1 {
        batch.obs.clone()
    } else {
        let rows: Vec<u32> = (0..batch.len()).step_by(stride).map(|i| i as u32).collect();
        let n = rows.len();
        batch
            .obs
            .index_select(&Tensor::from_vec(rows, n, batch.obs.device())?, 0)?
    };
    let fisher = policy.fisher_operator(&obs)?;
    trpo_step_with(policy, batch, config, &mut |v| fisher.apply(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian_mlp::PolicyConfig;
    use candle_core::Device;
    use mbrl_core::seeding::{stream_rng, Stream};

    /// Every `1/f`-th item from the first (TRPO's samples, MAML-TRPO's tasks).
    #[test]
    fn the_fvp_stride_takes_every_nth_item_from_the_first() {
        let stride = |f: f64| {
            TrpoConfig {
                fvp_subsample: f,
                ..TrpoConfig::default()
            }
            .fvp_stride()
        };
        let every = |f: f64| -> Vec<usize> { (0..20).step_by(stride(f).unwrap()).collect() };
        assert_eq!(every(1.0), (0..20).collect::<Vec<_>>());
        assert_eq!(every(0.2), vec![0, 5, 10, 15]);
        assert_eq!(every(0.5).len(), 10);
        assert_eq!(every(0.01), vec![0]);
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(stride(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conjugate_gradient_solves_a_small_system() {
        let a = [[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]];
        let b = [1.0, 2.0, 3.0];
        let mut product = |v: &[f64]| -> Result<Vec<f64>> {
            Ok((0..3)
                .map(|i| (0..3).map(|j| a[i][j] * v[j]).sum())
                .collect())
        };
        let x = conjugate_gradient(&mut product, &b, 10).unwrap();
        let ax = product(&x).unwrap();
        for i in 0..3 {
            assert!((ax[i] - b[i]).abs() < 1e-9);
        }
    }

    fn setup(seed: u64) -> (GaussianMlpPolicy, PolicyBatch) {
        let mut rng = stream_rng(seed, Stream::Policy);
        let policy = GaussianMlpPolicy::new(3, 2, PolicyConfig::default(), &mut rng).unwrap();
        let obs = mbrl_core::policy::standard_normal(&[256, 3], &mut rng, &Device::Cpu).unwrap();
        let act = policy.act(&obs, false, &mut rng).unwrap();
        // Advantage: prefer actions whose first coordinate is large.
        let advantages = act.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        let batch = PolicyBatch {
            obs,
            act,
            advantages,
            mean_return: 0.0,
        };
        (policy, batch)
    }

    use mbrl_core::policy::Policy;

    #[test]
    fn every_step_respects_the_kl_bound_and_improves_the_surrogate() {
        for (seed, max_kl) in [(0, 0.01), (1, 0.05), (2, 0.001)] {
            let (policy, batch) = setup(seed);
            let before = policy
                .parameter_tensors()
                .iter()
                .map(|t| t.copy().unwrap())
                .collect::<Vec<_>>();
            let config = TrpoConfig {
                max_kl,
                ..TrpoConfig::default()
            };
            let stats = trpo_step(&policy, &batch, &config).unwrap();
            assert!(stats.accepted, "seed {seed}: {stats:?}");
            let kl = policy
                .kl(&before, &policy.parameter_tensors(), &batch.obs)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64;
            assert!(kl <= max_kl * 1.0001, "KL {kl} > {max_kl}");
            assert!(
                kl > 0.3 * max_kl,
                "the step should use the trust region: KL {kl}"
            );
            assert!(stats.surrogate_after > stats.surrogate_before);
        }
    }

    #[test]
    fn subsampled_fisher_products_keep_the_kl_bound() {
        let (policy, batch) = setup(4);
        let before: Vec<Tensor> = policy
            .parameter_tensors()
            .iter()
            .map(|t| t.copy().unwrap())
            .collect();
        let config = TrpoConfig {
            fvp_subsample: 0.2,
            ..TrpoConfig::default()
        };
        let stats = trpo_step(&policy, &batch, &config).unwrap();
        assert!(stats.accepted);
        let kl = policy
            .kl(&before, &policy.parameter_tensors(), &batch.obs)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(kl as f64 <= config.max_kl * 1.0001);
        let bad = TrpoConfig {
            fvp_subsample: 0.0,
            ..TrpoConfig::default()
        };
        assert!(trpo_step(&policy, &batch, &bad).is_err());
    }

    #[test]
    fn a_rejected_step_restores_the_parameters() {
        let (policy, batch) = setup(3);
        let before = policy.flat_params().unwrap().to_vec1::<f32>().unwrap();
        // A Fisher product of the wrong sign makes every candidate go downhill.
        let mut bad = |v: &Tensor| -> Result<Tensor> { Ok((v * -1.0)?) };
        let stats = trpo_step_with(&policy, &batch, &TrpoConfig::default(), &mut bad).unwrap();
        assert!(!stats.accepted);
        assert_eq!(
            policy.flat_params().unwrap().to_vec1::<f32>().unwrap(),
            before
        );
    }
}

//! MAML-TRPO (Finn et al., 2017; thesis Sec. 6.7.1 and MB-MPO's outer step, Sec. 5.2.2): a
//! trust-region step on the likelihood-ratio meta-objective `1/K sum_k J^LR(theta'_k(theta))`
//! with the KL constraint on the *post-update* policies,
//! `1/K sum_k KL(pi_theta'_k,o || pi_theta'_k(theta)) <= delta`.
//!
//! The meta-gradient is exact (second order through the inner step). Fisher-vector products
//! of the constraint are symmetric finite differences of its gradient, itself differentiated
//! through the inner step (ALGORITHM_NOTES: the reference implementation does the same):
//! `F v ~ (grad KL(theta_o + eps v) - grad KL(theta_o - eps v)) / (2 eps)` with
//! `eps = fd_epsilon / |v|`, optionally on a subset of the tasks (`trpo.fvp_subsample`). Then
//! conjugate gradient, scaling to the KL radius and a backtracking line search, as in
//! `mbrl_policy_opt::trpo`.

use candle_core::Tensor;
use mbrl_core::policy::{flatten, unflatten, GaussianPolicy};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::trpo::{natural_step, TrpoConfig, TrpoStats};

use crate::adaptation::{adapt, gradient_at, InnerStepSize};
use crate::estimators::Estimator;
use crate::meta_objective::{meta_objective, post_update_kl, MetaTaskSamples, OuterObjective};
use crate::samples::snapshot;

/// The adapted parameters of every task at `theta`.
pub fn adapted_params(
    policy: &dyn GaussianPolicy,
    theta: &[Tensor],
    alpha: &[Tensor],
    tasks: &[MetaTaskSamples],
    estimator: Estimator,
) -> Result<Vec<Vec<Tensor>>> {
    tasks
        .iter()
        .map(|t| adapt(policy, theta, &t.inner, alpha, estimator))
        .collect()
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

/// Finite-difference Fisher-vector product of the post-update KL at `theta_o` (flat `v`).
pub fn post_update_fvp(
    policy: &dyn GaussianPolicy,
    theta_o: &[Tensor],
    alpha: &[Tensor],
    tasks: &[MetaTaskSamples],
    estimator: Estimator,
    fd_epsilon: f64,
    v: &[f64],
) -> Result<Vec<f64>> {
    let shapes: Vec<Vec<usize>> = theta_o.iter().map(|t| t.dims().to_vec()).collect();
    let adapted_o: Vec<Vec<Tensor>> = adapted_params(policy, theta_o, alpha, tasks, estimator)?
        .iter()
        .map(|p| snapshot(p))
        .collect::<Result<_>>()?;
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Ok(vec![0.0; v.len()]);
    }
    let eps = fd_epsilon / norm;
    let theta_flat = to_vec(&flatten(theta_o)?)?;
    let grad_at = |sign: f64| -> Result<Vec<f64>> {
        let shifted: Vec<f64> = theta_flat
            .iter()
            .zip(v)
            .map(|(t, d)| t + sign * eps * d)
            .collect();
        let theta = unflatten(&from_vec(&shifted)?, &shapes)?;
        let (_, grad) = gradient_at(&theta, |p| {
            let adapted = adapted_params(policy, p, alpha, tasks, estimator)?;
            post_update_kl(policy, tasks, &adapted_o, &adapted)
        })?;
        to_vec(&flatten(&grad)?)
    };
    let (plus, minus) = (grad_at(1.0)?, grad_at(-1.0)?);
    Ok(plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect())
}

/// One MAML-TRPO step on `policy`. Must run on a higher-order thread. The step size is not
/// learnable here (TRPO's trust region is over the policy parameters only).
pub fn maml_trpo_step(
    policy: &dyn GaussianPolicy,
    alpha: &InnerStepSize,
    tasks: &[MetaTaskSamples],
    estimator: Estimator,
    config: &TrpoConfig,
    fd_epsilon: f64,
) -> Result<TrpoStats> {
    if alpha.is_learnable() {
        return Err(Error::InvalidArgument(
            "maml-trpo cannot learn the inner step size; set meta.learn_inner_step_size = false"
                .into(),
        ));
    }
    let alpha = alpha.tensors();
    let theta_o = snapshot(&policy.parameter_tensors())?;
    let (value, grad) = gradient_at(&theta_o, |p| {
        Ok(meta_objective(
            policy,
            p,
            &alpha,
            tasks,
            estimator,
            OuterObjective::LikelihoodRatio,
        )?
        .objective)
    })?;
    let surrogate_before = value.to_scalar::<f32>()? as f64;
    let g = to_vec(&flatten(&grad)?)?;
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
    // Every `stride`-th task (rllab's `subsample_factor`, applied to whole tasks because each
    // task's adapted policy depends on all of its pre-update samples): each FVP costs two
    // second-order gradients through the inner step, most of a meta step's cost.
    let fvp_tasks: Vec<MetaTaskSamples> = tasks
        .iter()
        .step_by(config.fvp_stride()?)
        .cloned()
        .collect();
    let mut fvp = |v: &[f64]| {
        post_update_fvp(
            policy, &theta_o, &alpha, &fvp_tasks, estimator, fd_epsilon, v,
        )
    };
    let Some((direction, scale)) = natural_step(&mut fvp, &g, config)? else {
        return Ok(unchanged);
    };
    let old_flat = to_vec(&policy.flat_params()?)?;
    let adapted_o: Vec<Vec<Tensor>> = adapted_params(policy, &theta_o, &alpha, tasks, estimator)?
        .iter()
        .map(|p| snapshot(p))
        .collect::<Result<_>>()?;
    let shapes: Vec<Vec<usize>> = theta_o.iter().map(|t| t.dims().to_vec()).collect();
    for k in 0..config.max_backtracks {
        let frac = scale * config.backtrack_ratio.powi(k as i32);
        let candidate: Vec<f64> = old_flat
            .iter()
            .zip(&direction)
            .map(|(p, d)| p + frac * d)
            .collect();
        let theta = unflatten(&from_vec(&candidate)?, &shapes)?;
        let value = meta_objective(
            policy,
            &theta,
            &alpha,
            tasks,
            estimator,
            OuterObjective::LikelihoodRatio,
        )?;
        let surr = value.objective.to_scalar::<f32>()? as f64;
        let kl =
            post_update_kl(policy, tasks, &adapted_o, &value.adapted)?.to_scalar::<f32>()? as f64;
        if kl.is_finite() && surr.is_finite() && kl <= config.max_kl && surr > surrogate_before {
            policy.set_flat_params(&from_vec(&candidate)?)?;
            return Ok(TrpoStats {
                surrogate_before,
                surrogate_after: surr,
                kl,
                accepted: true,
                backtracks: k,
            });
        }
    }
    Ok(unchanged)
}

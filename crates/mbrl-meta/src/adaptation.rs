//! The inner adaptation step of gradient-based meta-RL (Eq. 3, Eq. 19): one or more vanilla
//! policy-gradient steps `theta_{k+1} = theta_k + alpha * grad J_inner(theta_k; D_k)` per task,
//! with `theta_K` a differentiable function of the pre-update parameters `theta_0` (and of
//! `alpha` when the step size is learnable).
//!
//! Gradients with respect to arbitrary tensors (adapted parameters are not variables) come
//! from [`gradient_at`] (in `mbrl_core::higher_order`, re-exported here). Under
//! [`mbrl_core::higher_order::run`] those gradients stay differentiable, so the outer objective
//! can be differentiated through the inner step.

use candle_core::{Tensor, Var};
pub use mbrl_core::higher_order::gradient_at;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::{Error, Result};

use crate::estimators::{inner_surrogate, Estimator};
use crate::samples::TaskSamples;

/// The inner step size `alpha`: one tensor per policy parameter tensor (a scalar step size is
/// the uniform case), optionally learnable by the outer optimiser (Sec. 2.3, `psi = alpha`).
#[derive(Debug, Clone)]
pub struct InnerStepSize {
    alphas: Vec<Var>,
    learnable: bool,
}

impl InnerStepSize {
    /// The same `alpha` for every parameter of `policy`.
    pub fn uniform(policy: &dyn GaussianPolicy, alpha: f64, learnable: bool) -> Result<Self> {
        let values = policy
            .parameters()
            .iter()
            .map(|p| Ok(Tensor::full(alpha as f32, p.dims(), p.device())?))
            .collect::<Result<Vec<_>>>()?;
        Self::per_parameter(values, learnable)
    }

    /// Explicit per-parameter step sizes (shapes of the policy's parameters).
    pub fn per_parameter(values: Vec<Tensor>, learnable: bool) -> Result<Self> {
        let alphas = values
            .iter()
            .map(|v| Ok(Var::from_tensor(&v.detach())?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { alphas, learnable })
    }

    /// Whether the outer optimiser updates the step sizes.
    pub fn is_learnable(&self) -> bool {
        self.learnable
    }

    /// The step-size variables (for an optimiser and checkpoints).
    pub fn vars(&self) -> &[Var] {
        &self.alphas
    }

    /// The step sizes as tensors: differentiable if learnable, constants otherwise.
    pub fn tensors(&self) -> Vec<Tensor> {
        self.alphas
            .iter()
            .map(|a| {
                if self.learnable {
                    a.as_tensor().clone()
                } else {
                    a.as_tensor().detach()
                }
            })
            .collect()
    }

    /// Mean step size over all parameters (for logs).
    pub fn mean(&self) -> Result<f64> {
        let (mut sum, mut count) = (0.0, 0usize);
        for a in &self.alphas {
            sum += a.as_tensor().sum_all()?.to_scalar::<f32>()? as f64;
            count += a.elem_count();
        }
        Ok(sum / count.max(1) as f64)
    }
}

/// Adapts `theta` to one task: one VPG step on the inner objective of `estimator` per entry
/// of `steps` (the samples `D_k` drawn with `theta_k`), Eq. (3) / Eq. (19). The result is a
/// differentiable function of `theta` and `alpha` on a higher-order thread.
pub fn adapt(
    policy: &dyn GaussianPolicy,
    theta: &[Tensor],
    steps: &[TaskSamples],
    alpha: &[Tensor],
    estimator: Estimator,
) -> Result<Vec<Tensor>> {
    if alpha.len() != theta.len() {
        return Err(Error::InvalidArgument(format!(
            "{} step-size tensors for {} parameter tensors",
            alpha.len(),
            theta.len()
        )));
    }
    let mut current = theta.to_vec();
    for samples in steps {
        let (_, grad) = gradient_at(&current, |p| {
            inner_surrogate(estimator, &samples.log_prob(policy, p)?, &samples.terms)
        })?;
        current = current
            .iter()
            .zip(grad.iter().zip(alpha))
            .map(|(p, (g, a))| Ok((p + (g * a)?)?))
            .collect::<Result<Vec<_>>>()?;
    }
    Ok(current)
}

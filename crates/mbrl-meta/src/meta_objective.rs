//! The meta-objective over a batch of tasks: adapt `theta` to each task with its pre-update
//! samples, then score the adapted policy on the post-update samples (Eq. 4 / Eq. 19):
//! `J(theta) = 1/K sum_k J_outer(theta'_k(theta); D'_k)`, plus the formulation-II term of
//! E-MAML. The outer optimisers (ProMP, MAML-TRPO, MAML-VPG) differentiate this function.

use candle_core::Tensor;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::{Error, Result};

use crate::adaptation::adapt;
use crate::estimators::{clipped_surrogate, emaml_surrogate, lvc_surrogate, Estimator};
use crate::samples::TaskSamples;

/// One task's samples: one pre-update batch per adaptation step, and the post-update batch.
#[derive(Debug, Clone)]
pub struct MetaTaskSamples {
    /// `D_0 .. D_{K-1}`: the batch drawn with `theta_k` before adaptation step `k`.
    pub inner: Vec<TaskSamples>,
    /// `D'`: drawn with the adapted `theta'`.
    pub post: TaskSamples,
}

/// The objective the adapted policy is scored with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OuterObjective {
    /// `J^LR` of the post-update policy (MAML-TRPO, MAML-VPG).
    LikelihoodRatio,
    /// `J^CLIP` of the post-update policy with the given clip range (ProMP, Eq. 21).
    Clipped(f64),
}

/// The meta-objective and the adapted parameters it was computed with.
pub struct MetaObjectiveValue {
    /// Scalar objective to maximise (differentiable in `theta` and a learnable `alpha`).
    pub objective: Tensor,
    /// `theta'_k` per task.
    pub adapted: Vec<Vec<Tensor>>,
}

/// E-MAML's credit per task: the task's mean post-update return, standardised over the batch
/// (a constant baseline, which keeps the score-function term unbiased).
pub fn emaml_credits(tasks: &[MetaTaskSamples]) -> Vec<f64> {
    let returns: Vec<f64> = tasks.iter().map(|t| t.post.mean_return()).collect();
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    returns.iter().map(|r| (r - mean) / (std + 1e-8)).collect()
}

/// `J(theta)` over `tasks`, averaged over tasks.
pub fn meta_objective(
    policy: &dyn GaussianPolicy,
    theta: &[Tensor],
    alpha: &[Tensor],
    tasks: &[MetaTaskSamples],
    estimator: Estimator,
    outer: OuterObjective,
) -> Result<MetaObjectiveValue> {
    if tasks.is_empty() {
        return Err(Error::InvalidArgument("a meta-batch needs tasks".into()));
    }
    let credits = (estimator == Estimator::EMaml).then(|| emaml_credits(tasks));
    let mut total: Option<Tensor> = None;
    let mut adapted = Vec::with_capacity(tasks.len());
    for (k, task) in tasks.iter().enumerate() {
        let post_params = adapt(policy, theta, &task.inner, alpha, estimator)?;
        let log_prob = task.post.log_prob(policy, &post_params)?;
        let mut value = match outer {
            OuterObjective::LikelihoodRatio => lvc_surrogate(&log_prob, &task.post.terms)?,
            OuterObjective::Clipped(clip) => clipped_surrogate(&log_prob, &task.post.terms, clip)?,
        };
        if let Some(credits) = &credits {
            // Formulation II credits every pre-update batch with the post-update return; batch
            // k was drawn with theta_k, which depends on theta.
            let mut params = theta.to_vec();
            for (step, samples) in task.inner.iter().enumerate() {
                if step > 0 {
                    params = adapt(policy, theta, &task.inner[..step], alpha, estimator)?;
                }
                let lp = samples.log_prob(policy, &params)?;
                value = (value + emaml_surrogate(&lp, &samples.terms, credits[k])?)?;
            }
        }
        total = Some(match total {
            None => value,
            Some(t) => (t + value)?,
        });
        adapted.push(post_params);
    }
    let objective = total
        .expect("at least one task")
        .affine(1.0 / tasks.len() as f64, 0.0)?;
    Ok(MetaObjectiveValue { objective, adapted })
}

/// Mean over tasks of `KL(pi_old || pi_new)` on the post-update samples between two sets of
/// adapted parameters (MAML-TRPO's trust region).
pub fn post_update_kl(
    policy: &dyn GaussianPolicy,
    tasks: &[MetaTaskSamples],
    old: &[Vec<Tensor>],
    new: &[Vec<Tensor>],
) -> Result<Tensor> {
    let mut total = Tensor::zeros((), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    for ((task, o), n) in tasks.iter().zip(old).zip(new) {
        total = (total + task.post.mean_kl(policy, o, n)?)?;
    }
    Ok(total.affine(1.0 / tasks.len().max(1) as f64, 0.0)?)
}

/// Mean over tasks of `KL(pi_theta_o || pi_theta)` on the first pre-update batch (ProMP's
/// penalty, Eq. 21).
pub fn pre_update_kl(
    policy: &dyn GaussianPolicy,
    tasks: &[MetaTaskSamples],
    old: &[Tensor],
    new: &[Tensor],
) -> Result<Tensor> {
    let mut total = Tensor::zeros((), candle_core::DType::F32, &candle_core::Device::Cpu)?;
    for task in tasks {
        let first = task
            .inner
            .first()
            .ok_or_else(|| Error::InvalidArgument("a task has no pre-update batch".into()))?;
        total = (total + first.mean_kl(policy, old, new)?)?;
    }
    Ok(total.affine(1.0 / tasks.len().max(1) as f64, 0.0)?)
}

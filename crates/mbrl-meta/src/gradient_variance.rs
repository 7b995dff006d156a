//! Monte Carlo statistics of meta-gradient estimates (thesis Sec. 6.7.2, Fig. 15, and
//! Sec. 6.7.4, Fig. 17): independent meta-batches drawn at a fixed policy, the meta-gradient
//! of each estimator on each batch, and the spread of those gradients.
//!
//! To compare estimators on the *same* batches, the batches are drawn with an inner step that
//! all estimators share. With `gamma = 1`, GAE `lambda = 1`, unnormalised advantages and no
//! bootstrap at the horizon ([`finite_horizon_advantages`], trajectories ended by the time
//! limit are treated as finished: the finite-horizon objective of the thesis), the inner
//! gradients of the score function (MAML, E-MAML), of LVC (Eq. 17) and of DiCE (Eq. 15) are
//! the same number, `sum_t w grad log pi_t (sum_{t' >= t} r_t' - b(s_t))`; only their
//! second derivatives differ. So the post-update batch does not depend on the estimator, and
//! the estimators' meta-gradients on one batch form paired samples.
//!
//! The relative standard deviation of the thesis's Fig. 15 is taken as in the reference
//! implementation's gradient-variance experiment: per parameter, the standard deviation over
//! batches divided by the absolute mean, averaged over parameters
//! ([`GradientSpread::relative_std`]). That average is dominated by parameters whose mean
//! gradient is near zero, so [`GradientSpread::relative_std_of_norm`] (the root of the total
//! variance over the norm of the mean) is reported beside it.

use candle_core::{DType, Tensor};
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::task::Task;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use rand::RngCore;

use crate::adaptation::adapt;
use crate::estimators::Estimator;
use crate::meta_objective::{meta_objective, MetaTaskSamples, OuterObjective};
use crate::samples::{snapshot, ParamsPolicy, TaskSamples};
use crate::task_sampler::TaskSampler;

/// `gamma = 1`, `lambda = 1`, no normalisation: the advantages under which every estimator
/// takes the same inner step (module doc).
pub fn finite_horizon_advantages() -> AdvantageConfig {
    AdvantageConfig {
        gamma: 1.0,
        gae_lambda: 1.0,
        normalize_advantages: false,
    }
}

/// One meta-batch drawn at a fixed policy.
pub struct MetaBatchDraw {
    /// Per task: the pre-update batch and the post-update batch.
    pub tasks: Vec<MetaTaskSamples>,
    /// Mean return of the pre-update trajectories.
    pub pre_return: f64,
    /// Mean return of the post-update trajectories.
    pub post_return: f64,
    /// Environment steps taken.
    pub env_steps: u64,
}

/// Draws one meta-batch: for each of `tasks`, `sampler`'s episodes with `theta`, one inner
/// step with `estimator`'s surrogate (step sizes `alpha`), then episodes with the adapted
/// parameters. Episodes cut by the time limit count as finished (no bootstrap). The samples
/// and adapted parameters are detached (no graph), whatever thread this runs on.
#[allow(clippy::too_many_arguments)] // one meta-batch needs all of them
pub fn draw_meta_batch<P: GaussianPolicy + Sync>(
    sampler: &mut TaskSampler,
    policy: &P,
    theta: &[Tensor],
    alpha: &[Tensor],
    tasks: &[Task],
    estimator: Estimator,
    advantage: &AdvantageConfig,
    rng: &mut dyn RngCore,
) -> Result<MetaBatchDraw> {
    if tasks.is_empty() {
        return Err(Error::InvalidArgument("a meta-batch needs tasks".into()));
    }
    let theta = snapshot(theta)?;
    let mut batch = Vec::with_capacity(tasks.len());
    let (mut pre_return, mut post_return, mut env_steps) = (0.0, 0.0, 0u64);
    for task in tasks {
        sampler.set_task(task)?;
        let pre = episodes(sampler, policy, &theta, advantage, rng)?;
        let adapted = snapshot(&adapt(
            policy,
            &theta,
            std::slice::from_ref(&pre),
            alpha,
            estimator,
        )?)?;
        let post = episodes(sampler, policy, &adapted, advantage, rng)?;
        pre_return += pre.mean_return() / tasks.len() as f64;
        post_return += post.mean_return() / tasks.len() as f64;
        env_steps += (pre.steps + post.steps) as u64;
        batch.push(MetaTaskSamples {
            inner: vec![pre],
            post,
        });
    }
    Ok(MetaBatchDraw {
        tasks: batch,
        pre_return,
        post_return,
        env_steps,
    })
}

/// One episode per sampler copy with `params`, laid out with finished horizons.
fn episodes<P: GaussianPolicy + Sync>(
    sampler: &mut TaskSampler,
    policy: &P,
    params: &[Tensor],
    advantage: &AdvantageConfig,
    rng: &mut dyn RngCore,
) -> Result<TaskSamples> {
    let mut trajectories = sampler.rollouts(&ParamsPolicy::new(policy, params), rng)?;
    for t in &mut trajectories {
        t.terminated |= t.truncated;
    }
    TaskSamples::from_trajectories(
        &trajectories,
        policy,
        params,
        &mut LinearFeatureBaseline::new(),
        advantage,
    )
}

/// The meta-gradient `grad_theta 1/K sum_k J^LR(theta'_k(theta))` (the MAML-VPG objective,
/// Eq. 4) at the policy's current parameters with `estimator`'s inner step, flattened in the
/// order of `policy.parameters()`. Must run on a higher-order thread
/// ([`mbrl_core::higher_order::run`]), or the curvature terms are lost.
pub fn meta_gradient(
    policy: &dyn GaussianPolicy,
    alpha: &[Tensor],
    tasks: &[MetaTaskSamples],
    estimator: Estimator,
) -> Result<Vec<f64>> {
    let value = meta_objective(
        policy,
        &policy.parameter_tensors(),
        alpha,
        tasks,
        estimator,
        OuterObjective::LikelihoodRatio,
    )?;
    let grads = value.objective.backward()?;
    let mut flat = Vec::with_capacity(policy.num_params());
    for var in policy.parameters() {
        match grads.get(var.as_tensor()) {
            Some(g) => flat.extend(g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?),
            None => flat.extend(std::iter::repeat_n(0.0, var.elem_count())),
        }
    }
    Ok(flat)
}

/// Mean and spread, per component, of a set of gradient samples.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientSpread {
    /// Mean over samples, per component.
    pub mean: Vec<f64>,
    /// Standard deviation over samples (divisor `n`, as `numpy.std`), per component.
    pub std: Vec<f64>,
    /// Number of samples.
    pub samples: usize,
}

impl GradientSpread {
    /// The spread of `samples` (at least two, all of one length).
    pub fn from_samples(samples: &[Vec<f64>]) -> Result<Self> {
        let n = samples.len();
        let dim = samples.first().map_or(0, Vec::len);
        if n < 2 || dim == 0 || samples.iter().any(|s| s.len() != dim) {
            return Err(Error::InvalidArgument(format!(
                "a gradient spread needs at least two samples of one non-zero length, got {n}"
            )));
        }
        let mean: Vec<f64> = (0..dim)
            .map(|j| samples.iter().map(|s| s[j]).sum::<f64>() / n as f64)
            .collect();
        let std = (0..dim)
            .map(|j| {
                let var = samples
                    .iter()
                    .map(|s| (s[j] - mean[j]).powi(2))
                    .sum::<f64>()
                    / n as f64;
                var.sqrt()
            })
            .collect();
        Ok(Self {
            mean,
            std,
            samples: n,
        })
    }

    /// Mean over components of the standard deviation (the thesis's "meta-gradient standard
    /// deviation").
    pub fn mean_std(&self) -> f64 {
        self.std.iter().sum::<f64>() / self.std.len() as f64
    }

    /// Mean over components of `std_j / |mean_j|`: the relative standard deviation of the
    /// reference implementation (module doc).
    pub fn relative_std(&self) -> f64 {
        let ratios = self.std.iter().zip(&self.mean).map(|(s, m)| s / m.abs());
        ratios.sum::<f64>() / self.std.len() as f64
    }

    /// `sqrt(sum_j std_j^2) / |mean|`: total spread relative to the mean gradient's norm.
    pub fn relative_std_of_norm(&self) -> f64 {
        let total_var: f64 = self.std.iter().map(|s| s * s).sum();
        let norm: f64 = self.mean.iter().map(|m| m * m).sum::<f64>().sqrt();
        total_var.sqrt() / norm
    }

    /// Standard error of the mean, per component (sample standard deviation over `sqrt(n)`).
    pub fn standard_error(&self) -> Vec<f64> {
        let n = self.samples as f64;
        self.std.iter().map(|s| s / (n - 1.0).sqrt()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_known_samples() {
        let samples = vec![
            vec![1.0, -2.0],
            vec![3.0, -2.0],
            vec![2.0, -5.0],
            vec![2.0, 1.0],
        ];
        let s = GradientSpread::from_samples(&samples).unwrap();
        assert_eq!(s.mean, vec![2.0, -2.0]);
        // Variances 0.5 and 4.5 (divisor n).
        assert!((s.std[0] - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((s.std[1] - 4.5f64.sqrt()).abs() < 1e-12);
        assert!((s.mean_std() - (0.5f64.sqrt() + 4.5f64.sqrt()) / 2.0).abs() < 1e-12);
        let rel = (0.5f64.sqrt() / 2.0 + 4.5f64.sqrt() / 2.0) / 2.0;
        assert!((s.relative_std() - rel).abs() < 1e-12);
        assert!((s.relative_std_of_norm() - 5f64.sqrt() / 8f64.sqrt()).abs() < 1e-12);
        // Sample variance 4.5 * 4 / 3 = 6 over n = 4: standard error sqrt(1.5).
        assert!((s.standard_error()[1] - 1.5f64.sqrt()).abs() < 1e-12);
        assert!(GradientSpread::from_samples(&samples[..1]).is_err());
        assert!(GradientSpread::from_samples(&[vec![1.0], vec![1.0, 2.0]]).is_err());
    }
}

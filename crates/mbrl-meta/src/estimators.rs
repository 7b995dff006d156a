//! Surrogate objectives: the inner (adaptation) objectives whose automatic derivatives are the
//! meta-gradient estimators the thesis compares (Sec. 6.3-6.4), and the outer objectives of the
//! post-update policy.
//!
//! Every function takes the policy's log-probabilities `[n, T]` of the sampled actions as a
//! differentiable tensor plus the [`SurrogateTerms`] of the samples, so the same code serves
//! Gaussian policies, learned-model rollouts and the enumerated tabular MDP of the tests.
//!
//! The thesis writes the estimators with a stop-gradient, `pi / stop(pi)`. Here the
//! denominator is the stored log-probability of the *sampling* policy, `pi_theta / pi_theta_o`:
//! at `theta = theta_o` (where they are evaluated) value, gradient and Hessian are identical, and
//! away from it the ratio is the likelihood ratio ProMP needs for several steps per batch
//! (Eq. 20). All sums are weighted by `terms.weights`.

use candle_core::{DType, Tensor};
use mbrl_core::Result;
use serde::{Deserialize, Serialize};

use crate::samples::SurrogateTerms;

/// Which estimator of the meta-gradient the inner adaptation step is differentiated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Low variance curvature, Eq. (17): expected Hessian `H1 + H2` (Eq. 18). ProMP's choice.
    Lvc,
    /// DiCE, Eq. (15): unbiased Hessian `H1 + H2 + H12 + H12^T` (Eq. 16), high variance.
    Dice,
    /// The original RL-MAML implementation (Finn et al., 2017): differentiating the score
    /// function surrogate `log pi * A` gives only `H2`, no credit to the pre-update sampling
    /// distribution (Appendix C.2.3).
    Maml,
    /// E-MAML, formulation II: MAML's inner step plus the term of Eq. (11), the pre-update
    /// log-likelihood weighted by the post-update return.
    EMaml,
}

impl Estimator {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Lvc => "lvc",
            Estimator::Dice => "dice",
            Estimator::Maml => "maml",
            Estimator::EMaml => "e-maml",
        }
    }
}

/// The inner objective `J_inner` whose gradient is the adaptation step's policy gradient and
/// whose Hessian is the estimator's curvature estimate.
pub fn inner_surrogate(
    estimator: Estimator,
    log_prob: &Tensor,
    terms: &SurrogateTerms,
) -> Result<Tensor> {
    match estimator {
        Estimator::Lvc => lvc_surrogate(log_prob, terms),
        Estimator::Dice => dice_surrogate(log_prob, terms),
        Estimator::Maml | Estimator::EMaml => score_function_surrogate(log_prob, terms),
    }
}

/// Eq. (17), LVC surrogate (and ProMP's `J^LR`, Eq. 20):
/// `sum_{i,t} w_it pi(a_t|s_t) / pi_o(a_t|s_t) A_it`.
pub fn lvc_surrogate(log_prob: &Tensor, terms: &SurrogateTerms) -> Result<Tensor> {
    let ratio = (log_prob - &terms.ref_log_prob)?.exp()?;
    Ok((ratio * &terms.advantages)?
        .mul(&terms.weights)?
        .sum_all()?)
}

/// Eq. (15), DiCE surrogate with the baseline of Foerster et al. (2018):
/// `sum_{i,t} w_it [ prod_{t'<=t} (pi / pi_o)_{t'} gamma^t r_t + (1 - (pi / pi_o)_t) gamma^t b(s_t) ]`.
/// The baseline term is zero in value and in expectation in every derivative.
pub fn dice_surrogate(log_prob: &Tensor, terms: &SurrogateTerms) -> Result<Tensor> {
    let delta = (log_prob - &terms.ref_log_prob)?;
    let magic_box = cumulative_sum(&delta)?.exp()?;
    let step_box = delta.exp()?;
    let returns_part = (magic_box * &terms.discounted_rewards)?;
    let baseline_part = (step_box.affine(-1.0, 1.0)? * &terms.discounted_baselines)?;
    Ok(((returns_part + baseline_part)? * &terms.weights)?.sum_all()?)
}

/// The score-function surrogate `sum_{i,t} w_it log pi(a_t|s_t) A_it` of the original MAML
/// implementation: correct gradient, Hessian `H2` only.
pub fn score_function_surrogate(log_prob: &Tensor, terms: &SurrogateTerms) -> Result<Tensor> {
    Ok((log_prob * &terms.advantages)?
        .mul(&terms.weights)?
        .sum_all()?)
}

/// The clipped objective of the post-update policy (`J^CLIP` of Sec. 6.5):
/// `sum w min(r A, clip(r, 1 - eps, 1 + eps) A)` with `r = pi / pi_o`.
pub fn clipped_surrogate(log_prob: &Tensor, terms: &SurrogateTerms, clip: f64) -> Result<Tensor> {
    let ratio = (log_prob - &terms.ref_log_prob)?.exp()?;
    let unclipped = (&ratio * &terms.advantages)?;
    let clipped = (ratio.clamp(1.0 - clip, 1.0 + clip)? * &terms.advantages)?;
    Ok((unclipped.minimum(&clipped)? * &terms.weights)?.sum_all()?)
}

/// The formulation-II term of E-MAML, Eq. (11): `sum_i w_i (pi(tau_i) / pi_o(tau_i)) c` over
/// the pre-update trajectories, whose gradient at `theta_o` is `grad log pi(tau_i) c` with `c`
/// the task's (normalised) post-update return. Scaled by `1 / T` so that it is a per-step
/// quantity like the other surrogates.
pub fn emaml_surrogate(log_prob: &Tensor, terms: &SurrogateTerms, credit: f64) -> Result<Tensor> {
    let horizon = log_prob.dim(1)? as f64;
    let mask = terms.weights.gt(0.0)?.to_dtype(DType::F32)?;
    let trajectory_log_ratio = ((log_prob - &terms.ref_log_prob)? * &mask)?.sum_keepdim(1)?;
    let trajectory_weight = terms.weights.sum_keepdim(1)?;
    Ok((trajectory_log_ratio.exp()? * trajectory_weight)?
        .sum_all()?
        .affine(credit / horizon, 0.0)?)
}

/// Cumulative sum over time (dimension 1 of `[n, T]`), as a product with an upper-triangular
/// matrix of ones (differentiable to any order).
pub fn cumulative_sum(x: &Tensor) -> Result<Tensor> {
    let horizon = x.dim(1)?;
    let upper: Vec<f32> = (0..horizon * horizon)
        .map(|k| if k / horizon <= k % horizon { 1.0 } else { 0.0 })
        .collect();
    let upper = Tensor::from_vec(upper, (horizon, horizon), x.device())?;
    Ok(x.matmul(&upper)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn grid(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, (2, 3), &Device::Cpu).unwrap()
    }

    #[test]
    fn cumulative_sum_runs_along_time() {
        let x = grid(&[1.0, 2.0, 3.0, -1.0, 0.5, 4.0]);
        let c = cumulative_sum(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(c, vec![vec![1.0, 3.0, 6.0], vec![-1.0, -0.5, 3.5]]);
    }

    #[test]
    fn at_the_sampling_policy_every_surrogate_has_its_closed_form_value() {
        let lp = grid(&[-1.0, -0.5, -2.0, -0.3, -0.7, -1.1]);
        let terms = SurrogateTerms {
            weights: grid(&[0.2, 0.2, 0.2, 0.2, 0.2, 0.0]),
            advantages: grid(&[1.0, -1.0, 2.0, 0.5, 0.0, 9.0]),
            discounted_rewards: grid(&[1.0, 2.0, 3.0, 4.0, 5.0, 9.0]),
            discounted_baselines: grid(&[7.0; 6]),
            ref_log_prob: lp.clone(),
        };
        let value = |t: Tensor| t.to_scalar::<f32>().unwrap();
        // Ratios are 1: LVC = sum w A, DiCE = sum w r (the baseline term vanishes).
        assert!((value(lvc_surrogate(&lp, &terms).unwrap()) - 0.5).abs() < 1e-6);
        assert!((value(dice_surrogate(&lp, &terms).unwrap()) - 3.0).abs() < 1e-6);
        assert!((value(clipped_surrogate(&lp, &terms, 0.2).unwrap()) - 0.5).abs() < 1e-6);
        // Score function: sum w log pi A = 0.2 (-1 + 0.5 - 4 - 0.15 + 0).
        let sf = value(score_function_surrogate(&lp, &terms).unwrap());
        assert!((sf - 0.2 * (-4.65)).abs() < 1e-5, "{sf}");
        // E-MAML: trajectory weights 0.6 and 0.4, ratio 1, credit 3, T = 3.
        assert!((value(emaml_surrogate(&lp, &terms, 3.0).unwrap()) - 1.0).abs() < 1e-6);
    }
}

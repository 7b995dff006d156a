//! MPPI, model predictive path integral control (Williams et al., 2017, "Information
//! theoretic MPC for model-based reinforcement learning").
//!
//! Each of `iterations` rounds perturbs the current mean sequence with Gaussian noise of std
//! `sigma = noise_std * (high - low) / 2`, clips the samples into the action box, scores them,
//! and replaces the mean with the samples' average under the weights
//! `w_i = exp((R_i - max_j R_j) / lambda) / sum_k exp((R_k - max_j R_j) / lambda)`
//! (`lambda = temperature`; subtracting the maximum keeps the exponentials finite, and
//! non-finite returns get weight 0). The average of clipped samples stays in the box. As in
//! PDDM's reward-weighted refinement (Nagabandi et al., 2019) the weights use the predicted
//! return alone, without the paper's control-cost term `lambda u^T Sigma^-1 eps`.
//!
//! Between control steps the planner keeps the mean, shifted by one step
//! (`Planner::warm_start_mean`), as the next plan's starting point.

use mbrl_core::Result;
use rand::RngCore;

use super::config::PlannerConfig;
use super::scoring::Scorer;
use super::{all_non_finite, Bounds, Search};

/// The mean sequence after `config.iterations` MPPI updates from `initial`.
pub(super) fn search(
    scorer: &mut Scorer<'_>,
    bounds: &Bounds,
    config: &PlannerConfig,
    initial: &[f32],
    rng: &mut dyn RngCore,
) -> Result<Search> {
    let (n, a) = (config.candidates, bounds.dim());
    let sigma = bounds.scaled_half_width(config.noise_std, config.horizon);
    let mut mean = initial.to_vec();
    for iteration in 0..config.iterations {
        let samples = bounds.gaussian(&mean, &sigma, n, rng)?;
        let scores = scorer.score(&samples, n, rng)?;
        let weights = softmax_weights(&scores, config.temperature)
            .ok_or_else(|| all_non_finite(iteration))?;
        mean.iter_mut().for_each(|m| *m = 0.0);
        for (j, &s) in samples.iter().enumerate() {
            let (t, i, d) = (j / (n * a), (j / a) % n, j % a);
            mean[t * a + d] += (weights[i] * s as f64) as f32;
        }
    }
    Ok(Search {
        sequence: mean,
        predicted_return: None,
    })
}

/// `softmax(scores / temperature)` with the maximum subtracted; non-finite scores weigh 0.
/// `None` when no score is finite.
fn softmax_weights(scores: &[f64], temperature: f64) -> Option<Vec<f64>> {
    let max = scores
        .iter()
        .copied()
        .filter(|s| s.is_finite())
        .reduce(f64::max)?;
    let raw: Vec<f64> = scores
        .iter()
        .map(|&s| {
            if s.is_finite() {
                ((s - max) / temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = raw.iter().sum();
    Some(raw.into_iter().map(|w| w / total).collect())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
    use mbrl_core::{BoxSpace, Env};
    use rand::SeedableRng;

    use super::softmax_weights;
    use crate::planners::{PlanExtras, PlannerConfig, PlannerKind, ShiftFill};

    #[test]
    fn weights_are_a_stable_softmax_that_ignores_non_finite_returns() {
        // exp((R - max) / lambda) for R = [-1000, -1001, NaN], lambda = 1: [1, e^-1, 0] / sum.
        let w = softmax_weights(&[-1000.0, -1001.0, f64::NAN], 1.0).unwrap();
        let e = (-1.0f64).exp();
        assert!((w[0] - 1.0 / (1.0 + e)).abs() < 1e-12 && (w[1] - e / (1.0 + e)).abs() < 1e-12);
        assert_eq!(w[2], 0.0);
        assert!(softmax_weights(&[f64::NAN, f64::NEG_INFINITY], 1.0).is_none());
    }

    #[test]
    fn the_mean_is_shifted_by_one_step_between_calls_until_reset() {
        let task = Drift::new().task_functions();
        let model = ScaledDriftEnsemble::new(1, None);
        let obs = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
        let space = BoxSpace::uniform(-0.5, 1.5, 1).unwrap();
        for (fill, expected_last) in [(ShiftFill::Last, None), (ShiftFill::Centre, Some(0.5))] {
            let config = PlannerConfig {
                kind: PlannerKind::Mppi,
                horizon: 4,
                candidates: 64,
                iterations: 2,
                shift_fill: fill,
                ..PlannerConfig::default()
            };
            let mut planner = config.build(&space).unwrap();
            assert!(planner.warm_start_mean().unwrap().is_none());
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            let plan = planner
                .plan(
                    &model,
                    task.as_ref(),
                    &obs,
                    &PlanExtras::default(),
                    &mut rng,
                )
                .unwrap();
            let seq: Vec<f32> = plan.sequence.flatten_all().unwrap().to_vec1().unwrap();
            let warm: Vec<f32> = planner
                .warm_start_mean()
                .unwrap()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(&warm[..3], &seq[1..]);
            assert_eq!(warm[3], expected_last.unwrap_or(seq[3]));
            planner.reset();
            assert!(planner.warm_start_mean().unwrap().is_none());
        }
    }

    #[test]
    fn a_warm_start_changes_the_next_plan_and_reset_restores_a_cold_one() {
        // One iteration of few candidates: the starting mean visibly shapes the result.
        let task = Drift::new().task_functions();
        let model = ScaledDriftEnsemble::new(1, None);
        let obs = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
        let config = PlannerConfig {
            kind: PlannerKind::Mppi,
            horizon: 3,
            candidates: 8,
            iterations: 1,
            ..PlannerConfig::default()
        };
        let mut planner = config
            .build(&BoxSpace::uniform(-1.0, 1.0, 1).unwrap())
            .unwrap();
        let first_action = |planner: &mut crate::planners::Planner, seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            planner
                .plan(
                    &model,
                    task.as_ref(),
                    &obs,
                    &PlanExtras::default(),
                    &mut rng,
                )
                .unwrap()
                .first_action
                .to_vec1::<f32>()
                .unwrap()[0]
        };
        let cold = first_action(&mut planner, 1);
        let warm = first_action(&mut planner, 1);
        planner.reset();
        let cold_again = first_action(&mut planner, 1);
        assert_ne!(cold, warm);
        assert_eq!(cold, cold_again);
    }
}

//! The cross-entropy method over action sequences, as PETS (Chua et al., 2018) and MAAC's
//! test-time planner (thesis Ch. 7, Table 1) use it.
//!
//! A diagonal Gaussian over `[H, A]` sequences starts at the initial mean (proposal policy,
//! warm start or box centre) with std `noise_std * (high - low) / 2`. Each of `iterations`
//! rounds draws `candidates` sequences from it, clipped into the action box, scores them, keeps
//! the `ceil(elite_fraction * candidates)` best (finite) ones, and moves the Gaussian towards
//! the elites' mean and (population) std with smoothing `alpha`: `new = alpha * old +
//! (1 - alpha) * elite statistic`.
//!
//! The plan is the mean of the final iteration's elites, not the best single sample: the best
//! sample of a noisy objective is mostly luck, and returning it is a known reproduction bug of
//! CEM-based MBRL (MBRL-Lib issues #61 and #70).

use mbrl_core::Result;
use rand::RngCore;

use super::config::PlannerConfig;
use super::scoring::Scorer;
use super::{all_non_finite, Bounds, Search};

/// The elite mean of the last of `config.iterations` CEM rounds, starting at `initial`.
pub(super) fn search(
    scorer: &mut Scorer<'_>,
    bounds: &Bounds,
    config: &PlannerConfig,
    initial: &[f32],
    rng: &mut dyn RngCore,
) -> Result<Search> {
    let (n, a) = (config.candidates, bounds.dim());
    let alpha = config.smoothing as f32;
    let mut mean = initial.to_vec();
    let mut std = bounds.scaled_half_width(config.noise_std, config.horizon);
    let mut elite_mean = mean.clone();
    for iteration in 0..config.iterations {
        let samples = bounds.gaussian(&mean, &std, n, rng)?;
        let scores = scorer.score(&samples, n, rng)?;
        let elites = top_finite(&scores, config.elites());
        if elites.is_empty() {
            return Err(all_non_finite(iteration));
        }
        let (e_mean, e_std) = elite_statistics(&samples, n, a, &elites);
        for j in 0..mean.len() {
            mean[j] = alpha * mean[j] + (1.0 - alpha) * e_mean[j];
            std[j] = alpha * std[j] + (1.0 - alpha) * e_std[j];
        }
        elite_mean = e_mean;
    }
    Ok(Search {
        sequence: elite_mean,
        predicted_return: None,
    })
}

/// Indices of the (at most) `count` highest finite scores, best first (ties: lower index).
fn top_finite(scores: &[f64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].is_finite())
        .collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    order.truncate(count);
    order
}

/// Per-element mean and population std of the elite sequences, `[H, A]` each.
fn elite_statistics(samples: &[f32], n: usize, a: usize, elites: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let horizon = samples.len() / (n * a);
    let count = elites.len() as f64;
    let mut mean = vec![0.0f32; horizon * a];
    let mut std = vec![0.0f32; horizon * a];
    for t in 0..horizon {
        for d in 0..a {
            let values = elites.iter().map(|&i| samples[(t * n + i) * a + d] as f64);
            let m = values.clone().sum::<f64>() / count;
            let var = values.map(|v| (v - m).powi(2)).sum::<f64>() / count;
            mean[t * a + d] = m as f32;
            std[t * a + d] = var.sqrt() as f32;
        }
    }
    (mean, std)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use candle_core::{Device, Tensor};
    use mbrl_core::task::TaskFunctions;
    use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
    use mbrl_core::{BoxSpace, Env};
    use rand::SeedableRng;

    use crate::planners::{PlanExtras, PlannerConfig, PlannerKind};

    /// Drift's reward `-(s' - 1)^2`, recording every batch of actions and rewards it scores.
    struct Recording {
        inner: std::sync::Arc<dyn TaskFunctions>,
        log: Mutex<Vec<(Vec<f32>, Vec<f32>)>>,
    }

    impl TaskFunctions for Recording {
        fn reward(&self, obs: &Tensor, act: &Tensor, next: &Tensor) -> mbrl_core::Result<Tensor> {
            let r = self.inner.reward(obs, act, next)?;
            let acts = act.flatten_all()?.to_vec1::<f32>()?;
            self.log.lock().unwrap().push((acts, r.to_vec1::<f32>()?));
            Ok(r)
        }

        fn terminated(
            &self,
            obs: &Tensor,
            act: &Tensor,
            next: &Tensor,
        ) -> mbrl_core::Result<Tensor> {
            self.inner.terminated(obs, act, next)
        }
    }

    #[test]
    fn cem_returns_the_mean_of_the_final_elites_not_the_best_sample() {
        // Horizon 1, s' = s + a, reward -(s' - 1)^2 from s = 0: the candidates' rewards are
        // -(a - 1)^2. Two iterations of 20 candidates, 25% elites -> the 5 best of the last
        // round, whose mean the plan must be (up to f32 rounding).
        let task = Recording {
            inner: Drift::new().task_functions(),
            log: Mutex::new(Vec::new()),
        };
        let config = PlannerConfig {
            kind: PlannerKind::Cem,
            horizon: 1,
            candidates: 20,
            iterations: 2,
            elite_fraction: 0.25,
            ..PlannerConfig::default()
        };
        let mut planner = config
            .build(&BoxSpace::uniform(-1.0, 1.0, 1).unwrap())
            .unwrap();
        let obs = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let model = ScaledDriftEnsemble::new(1, None);
        let plan = planner
            .plan(&model, &task, &obs, &PlanExtras::default(), &mut rng)
            .unwrap();
        let log = task.log.lock().unwrap();
        // Calls: iteration 1, iteration 2, then the evaluation of the returned sequence.
        assert_eq!(log.len(), 3);
        let (acts, rewards) = &log[1];
        let mut order: Vec<usize> = (0..acts.len()).collect();
        order.sort_by(|&i, &j| rewards[j].total_cmp(&rewards[i]));
        let elite_mean = order[..5].iter().map(|&i| acts[i]).sum::<f32>() / 5.0;
        let best = acts[order[0]];
        let planned = plan.first_action.to_vec1::<f32>().unwrap()[0];
        assert!(
            (planned - elite_mean).abs() < 1e-6,
            "{planned} vs {elite_mean}"
        );
        assert!(
            (planned - best).abs() > 1e-3,
            "best {best} = mean {planned}"
        );
        assert_eq!(log[2].0, vec![planned]);
        let expected_return = -((planned - 1.0) as f64).powi(2);
        assert!((plan.predicted_return - expected_return).abs() < 1e-6);
    }

    #[test]
    fn elites_skip_non_finite_scores_and_keep_ties_in_index_order() {
        let scores = [1.0, f64::NAN, 3.0, f64::INFINITY, 3.0, f64::NEG_INFINITY];
        assert_eq!(super::top_finite(&scores, 3), vec![2, 4, 0]);
        assert_eq!(super::top_finite(&scores, 10), vec![2, 4, 0]);
        assert!(super::top_finite(&[f64::NAN], 1).is_empty());
    }
}

//! The linear feature baseline of rllab (Duan et al., 2016), used by every policy-gradient
//! method of the thesis: a ridge regression of returns on the features
//! `[clip(o, -10, 10), clip(o, -10, 10)^2, t/100, (t/100)^2, (t/100)^3, 1]`.
//! The ridge coefficient starts at `1e-5` and grows tenfold while the solve fails.

use mbrl_core::data::Trajectory;
use mbrl_core::{Error, Result};
use nalgebra::{DMatrix, DVector};

/// Ridge coefficient tried first.
pub const INITIAL_RIDGE: f64 = 1e-5;

/// A linear value function of time and observation features.
#[derive(Debug, Clone, Default)]
pub struct LinearFeatureBaseline {
    coefficients: Option<DVector<f64>>,
}

/// The feature vector of observation `obs` at time step `t`.
pub fn features(obs: &[f32], t: usize) -> Vec<f64> {
    let clipped: Vec<f64> = obs.iter().map(|&o| (o as f64).clamp(-10.0, 10.0)).collect();
    let time = t as f64 / 100.0;
    let mut f = Vec::with_capacity(2 * obs.len() + 4);
    f.extend(clipped.iter().copied());
    f.extend(clipped.iter().map(|o| o * o));
    f.extend([time, time * time, time * time * time, 1.0]);
    f
}

impl LinearFeatureBaseline {
    /// An unfitted baseline (predicts zeros).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fits the coefficients to `targets[i]` for observation `obs[i]` at time `times[i]`.
    pub fn fit(&mut self, obs: &[&[f32]], times: &[usize], targets: &[f64]) -> Result<()> {
        if obs.is_empty() || obs.len() != times.len() || obs.len() != targets.len() {
            return Err(Error::InvalidArgument(format!(
                "baseline fit needs equally many observations, times and targets (got {}, {}, {})",
                obs.len(),
                times.len(),
                targets.len()
            )));
        }
        let width = 2 * obs[0].len() + 4;
        let x = DMatrix::from_fn(obs.len(), width, |_, _| 0.0);
        let mut x = x;
        for (row, (o, &t)) in obs.iter().zip(times).enumerate() {
            for (col, v) in features(o, t).into_iter().enumerate() {
                x[(row, col)] = v;
            }
        }
        let y = DVector::from_column_slice(targets);
        let xtx = x.transpose() * &x;
        let xty = x.transpose() * y;
        let mut ridge = INITIAL_RIDGE;
        for _ in 0..5 {
            let regularised = &xtx + DMatrix::identity(width, width) * ridge;
            if let Some(chol) = regularised.cholesky() {
                let solution = chol.solve(&xty);
                if solution.iter().all(|v| v.is_finite()) {
                    self.coefficients = Some(solution);
                    return Ok(());
                }
            }
            ridge *= 10.0;
        }
        Err(Error::NonFinite {
            what: "linear baseline fit (ridge up to 1e-1)".into(),
            iteration: 0,
        })
    }

    /// Fits to the discounted returns of `trajectories`.
    pub fn fit_trajectories(&mut self, trajectories: &[Trajectory], gamma: f64) -> Result<()> {
        let mut obs = Vec::new();
        let mut times = Vec::new();
        let mut targets = Vec::new();
        for traj in trajectories {
            let returns = discounted_cumsum(&traj.rewards, gamma);
            for (t, ret) in returns.into_iter().enumerate() {
                obs.push(traj.obs(t));
                times.push(t);
                targets.push(ret);
            }
        }
        self.fit(&obs, &times, &targets)
    }

    /// Predicted value of `obs` at time `t` (0 before the first fit).
    pub fn predict(&self, obs: &[f32], t: usize) -> f64 {
        match &self.coefficients {
            Some(c) => features(obs, t)
                .iter()
                .zip(c.iter())
                .map(|(f, w)| f * w)
                .sum(),
            None => 0.0,
        }
    }

    /// Values of every state of a trajectory, `o_0 .. o_T` (the final observation included).
    pub fn predict_trajectory(&self, traj: &Trajectory) -> Vec<f64> {
        (0..=traj.len())
            .map(|t| self.predict(traj.obs(t), t))
            .collect()
    }
}

/// `out[t] = sum_{l >= 0} discount^l x[t + l]`.
pub fn discounted_cumsum(x: &[f64], discount: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    let mut acc = 0.0;
    for t in (0..x.len()).rev() {
        acc = x[t] + discount * acc;
        out[t] = acc;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounted_cumsum_by_hand() {
        let out = discounted_cumsum(&[1.0, 2.0, 3.0], 0.5);
        assert_eq!(
            out,
            vec![1.0 + 0.5 * 2.0 + 0.25 * 3.0, 2.0 + 0.5 * 3.0, 3.0]
        );
    }

    #[test]
    fn fit_equals_the_least_squares_solution() {
        // Targets are an exact linear function of the features: the fit must recover it.
        let obs: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![(i as f32 * 0.37).sin() * 3.0, i as f32 * 0.1 - 2.0])
            .collect();
        let times: Vec<usize> = (0..40).map(|i| i % 17).collect();
        let true_w = [0.5, -1.0, 0.25, 0.1, 2.0, -0.3, 0.7, 1.5];
        let targets: Vec<f64> = obs
            .iter()
            .zip(&times)
            .map(|(o, &t)| features(o, t).iter().zip(&true_w).map(|(f, w)| f * w).sum())
            .collect();
        let refs: Vec<&[f32]> = obs.iter().map(|o| o.as_slice()).collect();
        let mut baseline = LinearFeatureBaseline::new();
        baseline.fit(&refs, &times, &targets).unwrap();
        for (i, o) in obs.iter().enumerate() {
            assert!(
                (baseline.predict(o, times[i]) - targets[i]).abs() < 1e-3,
                "row {i}"
            );
        }
        // And it equals the SVD least-squares solution of the ridge problem, written as the
        // augmented system [X; sqrt(ridge) I] w = [y; 0].
        let ridge = INITIAL_RIDGE.sqrt();
        let x = DMatrix::from_fn(48, 8, |r, c| {
            if r < 40 {
                features(&obs[r], times[r])[c]
            } else if r - 40 == c {
                ridge
            } else {
                0.0
            }
        });
        let y = DVector::from_fn(48, |r, _| if r < 40 { targets[r] } else { 0.0 });
        let lsq = x.clone().svd(true, true).solve(&y, 1e-12).unwrap();
        let fitted = baseline.coefficients.clone().unwrap();
        for (a, b) in fitted.iter().zip(lsq.iter()) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn unfitted_predicts_zero_and_bad_input_is_an_error() {
        let b = LinearFeatureBaseline::new();
        assert_eq!(b.predict(&[1.0], 3), 0.0);
        let mut b = b;
        assert!(b.fit(&[], &[], &[]).is_err());
        assert!(b.fit(&[&[1.0][..]], &[0, 1], &[1.0]).is_err());
    }

    #[test]
    fn features_clip_observations() {
        let f = features(&[20.0], 50);
        assert_eq!(f, vec![10.0, 100.0, 0.5, 0.25, 0.125, 1.0]);
    }
}

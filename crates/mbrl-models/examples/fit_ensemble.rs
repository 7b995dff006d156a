//! Fit a dynamics-model ensemble to your own transition data with `mbrl-models` alone: no
//! environment, no algorithm. The data here are logs of a damped spring with a cubic
//! stiffness (`x'' = -x - 0.3 x' - 2 x^3 + u`, 0.05 s steps) driven by random inputs; with a
//! real system, fill the buffers from its logs instead.
//!
//! Prints each member's validation error (normalised units) and the open-loop error 1..=10
//! steps ahead on held-out trajectories, next to a model that predicts no change.
//!
//! Run: `cargo run --release --example fit_ensemble`.

use candle_core::Tensor;
use mbrl_core::data::{ReplayBuffer, Trajectory};
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::Result;
use mbrl_models::{open_loop_error, EnsembleConfig, MlpEnsemble};
use rand::{Rng, RngCore};

/// One logged trajectory of 100 steps from a random state under random inputs.
fn logged_trajectory(rng: &mut dyn RngCore) -> Result<Trajectory> {
    let mut s = [
        rng.random_range(-1.0f32..1.0),
        rng.random_range(-1.0f32..1.0),
    ];
    let mut trajectory = Trajectory::new(s.to_vec(), 1);
    for _ in 0..100 {
        let u = rng.random_range(-1.0f32..1.0);
        let accel = -s[0] - 0.3 * s[1] - 2.0 * s[0].powi(3) + u;
        s = [s[0] + 0.05 * s[1], s[1] + 0.05 * accel];
        trajectory.push(&[u], 0.0, s.to_vec())?;
    }
    Ok(trajectory)
}

/// The fitted ensemble's `(validation error per member, open-loop error per horizon)` and the
/// open-loop error of predicting no change.
fn fit_and_evaluate(seed: u64) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let mut rng = stream_rng(seed, Stream::Data);
    let logs: Vec<Trajectory> = (0..60)
        .map(|_| logged_trajectory(&mut rng))
        .collect::<Result<_>>()?;
    let (fit_logs, held_out) = logs.split_at(50);
    let (mut train, mut validation) = (
        ReplayBuffer::new(4000, 2, 1)?,
        ReplayBuffer::new(1000, 2, 1)?,
    );
    for (i, trajectory) in fit_logs.iter().enumerate() {
        // Whole trajectories to validation (every fifth), so it is not a copy of training data.
        let buffer = if i % 5 == 0 {
            &mut validation
        } else {
            &mut train
        };
        buffer.push_trajectory(trajectory)?;
    }
    let config = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![64, 64],
        max_epochs: 500,
        ..Default::default()
    };
    let mut model_rng = stream_rng(seed, Stream::Model);
    let mut model = MlpEnsemble::new(&config, 2, 1, &mut model_rng)?;
    let report = model.fit(&train, Some(&validation), &mut model_rng)?;
    let validation_error = report.validation_loss.unwrap_or_default();
    let open_loop = open_loop_error(&model, held_out, 10)?;
    Ok((
        validation_error,
        open_loop,
        open_loop_error(&NoChange, held_out, 10)?,
    ))
}

/// The baseline: the next state equals the current one.
struct NoChange;

impl DynamicsModel for NoChange {
    fn ensemble_size(&self) -> usize {
        1
    }
    fn predict_members(&self, obs: &Tensor, _act: &Tensor) -> Result<MemberPredictions> {
        Ok(MemberPredictions {
            mean: obs.unsqueeze(0)?,
            log_var: None,
        })
    }
}

fn main() -> Result<()> {
    let (validation, open_loop, no_change) = fit_and_evaluate(0)?;
    println!("validation MSE per member (normalised state change): {validation:.4?}");
    println!("steps ahead | open-loop MSE | predicting no change");
    for (k, (e, base)) in open_loop.iter().zip(&no_change).enumerate() {
        println!("{:>11} | {e:13.6} | {base:.6}", k + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ensemble_predicts_ten_steps_far_better_than_no_change() {
        // Measured (AMD EPYC, 2026-12-07): validation MSE 2.8e-4 to 3.5e-4 per member; 10-step
        // open-loop MSE 1.3e-6 against 0.086 for predicting no change.
        let (validation, open_loop, no_change) = super::fit_and_evaluate(0).unwrap();
        println!("{validation:?}\n{open_loop:?}\n{no_change:?}");
        assert!(validation.iter().all(|&v| v < 0.01), "{validation:?}");
        assert!(
            open_loop[9] < 1e-3 * no_change[9],
            "{open_loop:?} vs {no_change:?}"
        );
    }
}

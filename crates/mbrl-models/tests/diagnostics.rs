//! Fit diagnostics: the k-step open-loop error of a trained ensemble on held-out trajectories,
//! and inputs a fit must refuse.

use mbrl_core::data::{ReplayBuffer, Trajectory};
use mbrl_models::{open_loop_error, MlpEnsemble};

mod common;
use common::{rng, sin_buffer, sin_dynamics, small_config};

/// A trajectory of `sin_dynamics` from `s0` under the actions `0.5 cos(t)`.
fn trajectory(s0: f32, len: usize) -> Trajectory {
    let mut t = Trajectory::new(vec![s0], 1);
    let mut s = s0;
    for i in 0..len {
        let a = 0.5 * (i as f32).cos();
        s = sin_dynamics(s, a);
        t.push(&[a], 0.0, vec![s]).unwrap();
    }
    t
}

#[test]
fn a_trained_ensemble_has_small_open_loop_error() {
    let mut r = rng(21);
    let mut model = MlpEnsemble::new(&small_config(), 1, 1, &mut r).unwrap();
    let held_out = [
        trajectory(-1.5, 12),
        trajectory(0.3, 12),
        trajectory(1.2, 12),
    ];
    let untrained = open_loop_error(&model, &held_out, 5).unwrap();
    model.fit(&sin_buffer(1000, 22), None, &mut r).unwrap();
    let trained = open_loop_error(&model, &held_out, 5).unwrap();
    assert_eq!(trained.len(), 5);
    assert!(
        trained[4] < 0.01 && trained[4] < untrained[4] / 10.0,
        "{trained:?} vs {untrained:?}"
    );
}

#[test]
fn fits_refuse_empty_and_mismatched_buffers_and_change_nothing() {
    let mut r = rng(23);
    let mut model = MlpEnsemble::new(&small_config(), 1, 1, &mut r).unwrap();
    assert!(model
        .fit(&ReplayBuffer::new(4, 1, 1).unwrap(), None, &mut r)
        .is_err());
    let mut wide = ReplayBuffer::new(4, 2, 1).unwrap();
    wide.push(&[0.0, 1.0], &[0.0], &[0.0, 1.0], 0.0, false)
        .unwrap();
    let err = model.fit(&wide, None, &mut r).unwrap_err().to_string();
    assert!(err.contains("obs 2"), "{err}");
    assert!(model.fit(&sin_buffer(50, 1), Some(&wide), &mut r).is_err());
    assert_eq!(model.fits(), 0);
}

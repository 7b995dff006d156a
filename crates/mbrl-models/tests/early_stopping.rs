//! Early stopping: the patience rule restores each member's best weights (Appendix A.1.2);
//! the moving-average rule stops members individually (Appendix B.3).

use mbrl_core::data::ReplayBuffer;
use mbrl_core::model::DynamicsModel;
use mbrl_models::{EarlyStoppingRule, EnsembleConfig, MlpEnsemble};
use rand::Rng;

mod common;
use common::{column, rng, small_config, values};

/// `s' = s + sign * a` with `s` on a grid and `a` in `{-1, -0.5, 0.5, 1}`: the buffers for
/// `sign = +1` and `sign = -1` have identical observation, action and state-change statistics,
/// so refitting on one never changes the normalisation.
fn signed_buffer(sign: f32) -> ReplayBuffer {
    let actions = [-1.0f32, -0.5, 0.5, 1.0];
    let mut buffer = ReplayBuffer::new(400, 1, 1).unwrap();
    for i in 0..100 {
        let s = -1.0 + 2.0 * i as f32 / 99.0;
        for a in actions {
            buffer
                .push(&[s], &[a], &[s + sign * a], 0.0, false)
                .unwrap();
        }
    }
    buffer
}

#[test]
fn patience_rule_restores_the_best_weights_when_training_only_hurts() {
    let config = EnsembleConfig {
        validate_every: 1,
        patience: 3,
        max_epochs: 40,
        ..small_config()
    };
    let mut r = rng(11);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let plus = signed_buffer(1.0);
    model.fit(&plus, Some(&plus), &mut r).unwrap();
    let probe = (column(-0.9, 0.9, 9), column(-1.0, 1.0, 9));
    let before = values(&model.predict_members(&probe.0, &probe.1).unwrap().mean);

    // Training on the mirrored dynamics can only make the fit to `plus` worse: the best
    // weights are the ones the fit started from.
    let report = model
        .fit(&signed_buffer(-1.0), Some(&plus), &mut r)
        .unwrap();
    assert_eq!(report.best_epoch, vec![0; config.members], "{report:?}");
    assert_eq!(report.epochs, vec![config.patience; config.members]);
    let after = values(&model.predict_members(&probe.0, &probe.1).unwrap().mean);
    for (a, b) in before.iter().zip(&after) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn patience_rule_keeps_improvements_and_reports_their_epoch() {
    let config = EnsembleConfig {
        max_epochs: 30,
        ..small_config()
    };
    let mut r = rng(12);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let plus = signed_buffer(1.0);
    let report = model.fit(&plus, None, &mut r).unwrap();
    assert!(report
        .best_epoch
        .iter()
        .all(|&e| e > 0 && e % config.validate_every == 0));
    // The reported validation loss is the one of the restored weights.
    assert!(report
        .validation_loss
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn moving_average_rule_stops_members_individually_once_the_average_rises() {
    // Pure noise targets: the validation loss cannot keep improving, so the moving average
    // eventually rises for every member, each at its own epoch.
    let mut noise = rng(13);
    let mut buffer = ReplayBuffer::new(400, 1, 1).unwrap();
    for _ in 0..400 {
        let s: f32 = noise.random_range(-1.0..1.0);
        let d: f32 = noise.random_range(-1.0..1.0);
        buffer.push(&[s], &[0.0], &[s + d], 0.0, false).unwrap();
    }
    let config = EnsembleConfig {
        early_stopping: EarlyStoppingRule::MovingAverage,
        moving_average_persistence: 0.5,
        max_epochs: 300,
        ..small_config()
    };
    let mut r = rng(14);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let report = model.fit(&buffer, None, &mut r).unwrap();
    assert!(
        report.epochs.iter().all(|e| (2..300).contains(e)),
        "{report:?}"
    );
    assert_eq!(report.best_epoch, report.epochs);
    assert!(report.validation_loss.is_some());
}

#[test]
fn without_validation_data_a_fit_trains_max_epochs() {
    let config = EnsembleConfig {
        validation_fraction: 0.0,
        max_epochs: 3,
        ..small_config()
    };
    let mut r = rng(15);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let report = model.fit(&signed_buffer(1.0), None, &mut r).unwrap();
    assert_eq!(report.epochs, vec![3; config.members]);
    assert!(report.validation_loss.is_none());
    assert_eq!(model.ensemble_size(), config.members);
}

#[test]
fn the_last_pass_is_validated_even_off_the_validation_schedule() {
    let config = EnsembleConfig {
        validate_every: 5,
        max_epochs: 3,
        ..small_config()
    };
    let mut r = rng(16);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let report = model.fit(&signed_buffer(1.0), None, &mut r).unwrap();
    assert_eq!(report.best_epoch, vec![3; config.members], "{report:?}");
}

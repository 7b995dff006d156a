//! Training on a known function: every member reaches a low validation error, members differ
//! (initialisation and data order), and a fit is reproducible under a seed.

use candle_core::Tensor;
use mbrl_core::data::ReplayBuffer;
use mbrl_core::model::DynamicsModel;
use mbrl_models::{EarlyStoppingRule, MlpEnsemble};
use rand::Rng;

mod common;
use common::{column, rng, sin_buffer, sin_dynamics, small_config, values};

/// Largest absolute error of each member on a grid of held-out points.
fn member_errors(model: &impl DynamicsModel) -> Vec<f32> {
    let obs = column(-1.9, 1.9, 41);
    let act = column(-0.9, 0.9, 41);
    let truth: Vec<f32> = values(&obs)
        .iter()
        .zip(values(&act))
        .map(|(&s, a)| sin_dynamics(s, a))
        .collect();
    let pred = model.predict_members(&obs, &act).unwrap().mean;
    (0..model.ensemble_size())
        .map(|k| {
            values(&pred.get(k).unwrap())
                .iter()
                .zip(&truth)
                .map(|(p, t)| (p - t).abs())
                .fold(0.0, f32::max)
        })
        .collect()
}

#[test]
fn every_member_learns_a_sine_dynamics_with_its_own_split() {
    let mut r = rng(1);
    let mut model = MlpEnsemble::new(&small_config(), 1, 1, &mut r).unwrap();
    let report = model.fit(&sin_buffer(1000, 2), None, &mut r).unwrap();
    let val = report.validation_loss.clone().unwrap();
    assert!(val.iter().all(|&v| v < 5e-3), "{report:?}");
    let errors = member_errors(&model);
    assert!(errors.iter().all(|&e| e < 0.06), "{errors:?}");
    // Members differ after training (different init, split and minibatch order).
    let pred = model
        .predict_members(&column(-1.0, 1.0, 5), &column(0.0, 0.0, 5))
        .unwrap()
        .mean;
    let (a, b) = (values(&pred.get(0).unwrap()), values(&pred.get(1).unwrap()));
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-5));
}

#[test]
fn members_learn_from_a_separate_validation_buffer_me_trpo_style() {
    let config = mbrl_models::EnsembleConfig {
        sample_with_replacement: true,
        ..small_config()
    };
    let mut r = rng(3);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let report = model
        .fit(&sin_buffer(800, 4), Some(&sin_buffer(200, 5)), &mut r)
        .unwrap();
    assert!(report.validation_loss.unwrap().iter().all(|&v| v < 5e-3));
    assert!(member_errors(&model).iter().all(|&e| e < 0.06));
}

#[test]
fn members_started_from_identical_weights_differ_by_data_order_alone() {
    let config = mbrl_models::EnsembleConfig {
        max_epochs: 3,
        early_stopping: EarlyStoppingRule::Never,
        validation_fraction: 0.0,
        ..small_config()
    };
    let mut r = rng(5);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    // Copy member 0's weights into every member.
    let mut tensors = model.named_tensors().unwrap();
    for name in model.parameter_names() {
        let t = &tensors[name];
        let first = t.narrow(0, 0, 1).unwrap();
        let same = Tensor::cat(&vec![first; config.members], 0).unwrap();
        tensors.insert(name.clone(), same);
    }
    model.load_named_tensors(&tensors).unwrap();
    let probe = (column(-1.0, 1.0, 5), column(0.5, 0.5, 5));
    let before = model.predict_members(&probe.0, &probe.1).unwrap().mean;
    assert_eq!(
        values(&before.get(0).unwrap()),
        values(&before.get(2).unwrap())
    );
    model.fit(&sin_buffer(300, 6), None, &mut r).unwrap();
    let after = model.predict_members(&probe.0, &probe.1).unwrap().mean;
    let (a, b) = (
        values(&after.get(0).unwrap()),
        values(&after.get(2).unwrap()),
    );
    assert!(
        a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-5),
        "{a:?} {b:?}"
    );
}

#[test]
fn fits_are_reproducible_under_a_seed() {
    let config = mbrl_models::EnsembleConfig {
        max_epochs: 4,
        bootstrap: true,
        ..small_config()
    };
    let run = |seed: u64| {
        let mut r = rng(seed);
        let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
        let report = model.fit(&sin_buffer(300, 8), None, &mut r).unwrap();
        let pred = model
            .predict_members(&column(-1.0, 1.0, 7), &column(0.1, 0.1, 7))
            .unwrap()
            .mean;
        (report, values(&pred))
    };
    let (a, b, c) = (run(9), run(9), run(10));
    assert_eq!(a, b);
    assert_ne!(a.1, c.1);
}

/// `hidden_sizes = []` is a linear model (`s' = s + mu + sigma * (W [s, a] + b)`, normalised):
/// it fits linear dynamics `s' = 0.8 s + 0.3 a` almost exactly, and cannot fit the sine.
#[test]
fn no_hidden_layers_is_a_linear_model() {
    let config = mbrl_models::EnsembleConfig {
        hidden_sizes: vec![],
        ..small_config()
    };
    let mut r = rng(7);
    let mut linear = ReplayBuffer::new(1000, 1, 1).unwrap();
    for _ in 0..1000 {
        let s: f32 = r.random_range(-2.0..2.0);
        let a: f32 = r.random_range(-1.0..1.0);
        linear
            .push(&[s], &[a], &[0.8 * s + 0.3 * a], 0.0, false)
            .unwrap();
    }
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let fit = model.fit(&linear, None, &mut r).unwrap();
    let val = fit.validation_loss.clone().unwrap();
    assert!(val.iter().all(|&v| v < 1e-4), "linear dynamics: {fit:?}");
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    model.fit(&sin_buffer(1000, 2), None, &mut r).unwrap();
    let errors = member_errors(&model);
    assert!(
        errors.iter().all(|&e| e > 0.1),
        "a linear model fitted the sine: {errors:?}"
    );
}

//! Saving and loading an ensemble as named tensors (safetensors), detached copies, and
//! re-initialisation.

use mbrl_core::model::DynamicsModel;
use mbrl_models::{EnsembleConfig, Error, MlpEnsemble};

mod common;
use common::{column, rng, sin_buffer, small_config, values};

fn trained(seed: u64) -> MlpEnsemble {
    let config = EnsembleConfig {
        max_epochs: 4,
        ..small_config()
    };
    let mut r = rng(seed);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    model.fit(&sin_buffer(200, seed), None, &mut r).unwrap();
    model
}

fn predictions(model: &impl DynamicsModel) -> Vec<f32> {
    let (obs, act) = (column(-1.5, 1.5, 7), column(-0.5, 0.5, 7));
    values(&model.predict_members(&obs, &act).unwrap().mean)
}

#[test]
fn named_tensors_round_trip_through_a_safetensors_file() {
    let model = trained(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&model.named_tensors().unwrap(), &path).unwrap();
    let loaded = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    let mut fresh = MlpEnsemble::new(model.config(), 1, 1, &mut rng(99)).unwrap();
    assert_ne!(predictions(&fresh), predictions(&model));
    fresh.load_named_tensors(&loaded).unwrap();
    assert_eq!(predictions(&fresh), predictions(&model));
    assert_eq!(fresh.fits(), 1);
}

#[test]
fn tensors_of_another_configuration_are_rejected_with_the_key() {
    let model = trained(2);
    let other = EnsembleConfig {
        hidden_sizes: vec![16, 32],
        ..model.config().clone()
    };
    let mut wrong = MlpEnsemble::new(&other, 1, 1, &mut rng(0)).unwrap();
    let before = predictions(&wrong);
    let err = wrong
        .load_named_tensors(&model.named_tensors().unwrap())
        .unwrap_err();
    assert!(
        matches!(err, Error::Load(ref m) if m.contains("layers.0.weight")),
        "{err}"
    );
    assert_eq!(predictions(&wrong), before, "a failed load changes nothing");
    let mut missing = model.named_tensors().unwrap();
    missing.remove("normalizer.delta.std");
    let mut copy = MlpEnsemble::new(model.config(), 1, 1, &mut rng(0)).unwrap();
    assert!(copy.load_named_tensors(&missing).is_err());
}

#[test]
fn frozen_copies_do_not_follow_later_training() {
    let mut model = trained(3);
    let frozen = model.freeze().unwrap();
    assert_eq!(predictions(&frozen), predictions(&model));
    let mut r = rng(4);
    model.fit(&sin_buffer(200, 5), None, &mut r).unwrap();
    assert_ne!(predictions(&frozen), predictions(&model));
    // Predictions with the frozen copy carry no graph over the weights but do over inputs.
    let act = candle_core::Var::from_tensor(&column(-0.5, 0.5, 7)).unwrap();
    let next = frozen
        .predict_members(&column(0.0, 0.0, 7), act.as_tensor())
        .unwrap()
        .mean;
    let grads = next.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(act.as_tensor()).is_some());
}

#[test]
fn reinitialization_follows_the_schedule() {
    let config = EnsembleConfig {
        max_epochs: 2,
        reinit_every: 2,
        ..small_config()
    };
    let mut r = rng(6);
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut r).unwrap();
    let data = sin_buffer(100, 7);
    let flags: Vec<bool> = (0..5)
        .map(|_| model.fit(&data, None, &mut r).unwrap().reinitialized)
        .collect();
    assert_eq!(flags, vec![false, false, true, false, true]);
    let before = predictions(&model);
    model.reinitialize(&mut r).unwrap();
    assert_ne!(predictions(&model), before);
}

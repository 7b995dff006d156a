//! One-epoch training (`train_epoch`, the asynchronous model worker's step): repeated passes
//! learn the known function, members left out keep their weights, and the normalisation is
//! recomputed only when asked.

use mbrl_core::model::DynamicsModel;
use mbrl_models::MlpEnsemble;

mod common;
use common::{column, rng, sin_buffer, small_config, values};

/// The normalisation statistics (every named tensor that is not a weight), flattened.
fn stats(model: &MlpEnsemble) -> Vec<f32> {
    let tensors = model.named_tensors().unwrap();
    let mut names: Vec<&String> = tensors
        .keys()
        .filter(|n| !model.parameter_names().contains(n) && n.as_str() != "fits")
        .collect();
    names.sort();
    names
        .into_iter()
        .flat_map(|n| values(&tensors[n].flatten_all().unwrap()))
        .collect()
}

fn predictions(model: &impl DynamicsModel) -> Vec<f32> {
    let obs = column(-1.5, 1.5, 7);
    let act = column(-0.5, 0.5, 7);
    values(
        &model
            .predict_members(&obs, &act)
            .unwrap()
            .mean
            .flatten_all()
            .unwrap(),
    )
}

#[test]
fn passes_learn_and_only_active_members_move() {
    let config = small_config();
    let k = config.members;
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut rng(0)).unwrap();
    let (train, validation) = (sin_buffer(512, 1), sin_buffer(128, 2));
    let all = vec![true; k];
    let first = model
        .train_epoch(&train, Some(&validation), true, &all, &mut rng(3))
        .unwrap();
    let mut last = first.clone();
    for _ in 0..30 {
        last = model
            .train_epoch(&train, Some(&validation), false, &all, &mut rng(4))
            .unwrap();
    }
    let (before, after) = (
        first.validation_loss.unwrap(),
        last.validation_loss.unwrap(),
    );
    for m in 0..k {
        assert!(
            after[m] < 0.5 * before[m],
            "member {m}: {before:?} -> {after:?}"
        );
    }

    // Member 0 sits out a pass: its predictions stay, the others' change.
    let norm_before = stats(&model);
    let held = predictions(&model.freeze().unwrap());
    let mut only_others = vec![true; k];
    only_others[0] = false;
    let pass = model
        .train_epoch(&train, None, false, &only_others, &mut rng(5))
        .unwrap();
    assert!(pass.train_loss[0].is_nan() && pass.train_loss[1].is_finite());
    assert!(pass.validation_loss.is_none());
    let moved = predictions(&model.freeze().unwrap());
    let per = held.len() / k;
    assert_eq!(held[..per], moved[..per], "an inactive member changed");
    assert_ne!(
        held[per..],
        moved[per..],
        "the active members did not train"
    );
    assert_eq!(
        stats(&model),
        norm_before,
        "normalisation changed without renormalize"
    );

    // Renormalising on other data changes the statistics; a wrong flag count is an error.
    model
        .train_epoch(&sin_buffer(64, 9), None, true, &all, &mut rng(6))
        .unwrap();
    assert_ne!(stats(&model), norm_before);
    assert!(model
        .train_epoch(&train, None, false, &all[..1], &mut rng(7))
        .is_err());
}

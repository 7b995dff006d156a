//! The training loss's gradients agree with central finite differences, for every parameter of
//! tiny ensembles with each head, activation and weight normalisation.

use candle_core::{Device, Tensor};
use mbrl_core::data::TransitionBatch;
use mbrl_models::{Activation, EnsembleConfig, Head, MlpEnsemble};

mod common;

fn batch() -> TransitionBatch {
    let dev = Device::Cpu;
    let obs = Tensor::new(&[[0.3f32, -1.0], [1.2, 0.5], [-0.7, 0.1], [0.0, 2.0]], &dev).unwrap();
    let act = Tensor::new(&[[0.5f32], [-1.0], [0.2], [0.9]], &dev).unwrap();
    let next_obs =
        Tensor::new(&[[0.5f32, -0.8], [1.0, 0.9], [-0.5, 0.0], [0.4, 1.5]], &dev).unwrap();
    TransitionBatch {
        obs,
        act,
        next_obs,
        reward: Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap(),
        terminated: Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap(),
    }
}

fn total_loss(model: &MlpEnsemble, b: &TransitionBatch) -> f64 {
    model
        .loss(b)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
}

/// Compares d(sum of member losses)/d(theta) with (L(theta + h) - L(theta - h)) / 2h for every
/// entry of every parameter. h = 1e-2 keeps f32 rounding (~1e-7 / h) and the truncation error
/// (~h^2) both near 1e-5.
fn check(head: Head, activation: Activation, weight_norm: bool) {
    let config = EnsembleConfig {
        members: 2,
        hidden_sizes: vec![3],
        activation,
        head,
        weight_norm,
        ..Default::default()
    };
    let model = MlpEnsemble::new(&config, 2, 1, &mut common::rng(7)).unwrap();
    let b = batch();
    let grads = model
        .loss(&b)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let h = 1e-2f32;
    for (var, name) in model.vars().iter().zip(model.parameter_names()) {
        let analytic = common::values(grads.get(var.as_tensor()).unwrap());
        let original = common::values(var.as_tensor());
        let dims = var.as_tensor().dims().to_vec();
        for i in 0..original.len() {
            let mut shifted = original.clone();
            shifted[i] = original[i] + h;
            var.set(&Tensor::from_vec(shifted.clone(), dims.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            let up = total_loss(&model, &b);
            shifted[i] = original[i] - h;
            var.set(&Tensor::from_vec(shifted, dims.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            let down = total_loss(&model, &b);
            var.set(&Tensor::from_vec(original.clone(), dims.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            let numeric = (up - down) / (2.0 * h as f64);
            let a = analytic[i] as f64;
            assert!(
                (numeric - a).abs() <= 2e-3 + 1e-2 * a.abs(),
                "{head:?}/{activation:?}/wn={weight_norm}: d/d {name}[{i}] analytic {a} vs numeric {numeric}"
            );
        }
    }
}

#[test]
fn deterministic_head_mse_gradients() {
    check(Head::Deterministic, Activation::Tanh, false);
}

#[test]
fn deterministic_head_with_weight_norm_and_swish() {
    check(Head::Deterministic, Activation::Swish, true);
}

#[test]
fn probabilistic_head_nll_and_bound_penalty_gradients() {
    check(Head::Probabilistic, Activation::Tanh, false);
}

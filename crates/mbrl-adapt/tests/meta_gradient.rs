//! GrBAL's meta-gradient through the inner step (Eq. 22-24) against central differences of the
//! post-adaptation loss, and the first-order option's measurable difference from it; the
//! factored inner step against autograd's gradient step and against the weights it forms.

mod common;

use candle_core::{Device, Tensor};
use mbrl_adapt::adaptation::{InnerLearningRate, InnerStep};
use mbrl_adapt::model::{DeltaModel, Normalization};
use mbrl_adapt::segments::Windows;
use mbrl_adapt::training::{ModelLearner, Objective};
use mbrl_core::higher_order;
use mbrl_core::testing::max_abs_diff;
use rand::SeedableRng;

const PAST: usize = 4;
const WINDOW: usize = 8;

fn windows() -> Windows {
    common::gain_windows(WINDOW)
}

fn learner(first_order: bool) -> ModelLearner {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut model = DeltaModel::new(2, 1, &[16, 16], &mut rng).unwrap();
    model.set_normalization(Normalization::identity(2, 1).unwrap());
    // A large inner step makes the second-order terms matter.
    let rates = InnerLearningRate::new(model.mlp().vars().len(), 0.5, false).unwrap();
    ModelLearner::new(model, rates, Objective::MetaLearned { first_order }, 1e-3).unwrap()
}

/// The meta-gradient of the post-adaptation loss, flattened over every weight tensor: one
/// ordinary backward pass, on the test's own thread (no higher-order autograd).
fn meta_gradient(first_order: bool) -> Vec<f32> {
    let learner = learner(first_order);
    let (loss, _) = learner.losses(&windows(), PAST).unwrap();
    let grads = loss.backward().unwrap();
    let mut flat = Vec::new();
    for var in learner.model.mlp().vars() {
        let g = grads
            .get(var.as_tensor())
            .expect("every weight has a gradient");
        flat.extend(g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
    flat
}

/// The post-adaptation loss with every weight moved by `step * direction`.
fn loss_along(direction: &[f32], step: f32) -> f64 {
    let learner = learner(false);
    let moved = common::moved_along(learner.model.mlp().vars(), direction, step);
    learner.model.mlp().set(&moved).unwrap();
    learner.losses(&windows(), PAST).unwrap().1.post_adaptation
}

#[test]
fn the_meta_gradient_matches_central_differences_and_first_order_does_not() {
    let second = meta_gradient(false);
    let first = meta_gradient(true);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let eps = 1e-3f32;
    let (mut worst_second, mut worst_first) = (0.0f64, 0.0f64);
    for _ in 0..4 {
        // A unit direction: a short step keeps clear of the ReLU kinks.
        let v = common::unit_direction(second.len(), &mut rng);
        let fd = (loss_along(&v, eps) - loss_along(&v, -eps)) / (2.0 * eps as f64);
        let scale = fd.abs().max(1e-3);
        worst_second = worst_second.max((common::dot(&second, &v) - fd).abs() / scale);
        worst_first = worst_first.max((common::dot(&first, &v) - fd).abs() / scale);
    }
    assert!(
        worst_second < 0.02,
        "second-order meta-gradient vs central differences: relative error {worst_second}"
    );
    assert!(
        worst_first > 0.05,
        "first-order should miss the second-order terms here; relative error {worst_first}"
    );
    let norm = |g: &[f32]| common::dot(g, g).sqrt();
    let gap: Vec<f32> = second.iter().zip(&first).map(|(a, b)| a - b).collect();
    println!(
        "directional error: second-order {worst_second:.2e}, first-order {worst_first:.2e}; \
         |g2 - g1| / |g2| = {:.3}",
        norm(&gap) / norm(&second)
    );
}

#[test]
fn one_inner_step_lowers_each_windows_past_loss() {
    let learner = learner(true);
    let w = windows();
    let (past, _) = w.split(PAST).unwrap();
    let weights = learner.model.mlp().copies().unwrap();
    let rates = vec![Tensor::from_slice(&[0.05f32], 1, &Device::Cpu).unwrap(); weights.len()];
    let adapted =
        mbrl_adapt::adaptation::adapt(&learner.model, &weights, &past, &rates, true).unwrap();
    let before = learner
        .model
        .loss(&weights, &past.obs, &past.act, &past.next_obs)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let after = learner
        .model
        .loss(&adapted, &past.obs, &past.act, &past.next_obs)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert!(a < b, "window loss {b} -> {a}");
    }
    // Each window's adapted weights equal a step on that window alone.
    let one = Windows {
        obs: past.obs.narrow(0, 1, 1).unwrap(),
        act: past.act.narrow(0, 1, 1).unwrap(),
        next_obs: past.next_obs.narrow(0, 1, 1).unwrap(),
    };
    let alone =
        mbrl_adapt::adaptation::adapt(&learner.model, &weights, &one, &rates, true).unwrap();
    for (batched, single) in adapted.iter().zip(&alone) {
        let d = max_abs_diff(&batched.get(1).unwrap(), &single.get(0).unwrap()).unwrap();
        assert!(d < 1e-6, "{d}");
    }
}

/// Step sizes of a test: a different one per tensor, so that a mix-up shows.
fn distinct_rates(tensors: usize) -> Vec<Tensor> {
    (0..tensors)
        .map(|i| Tensor::from_slice(&[0.05f32 + 0.01 * i as f32], 1, &Device::Cpu).unwrap())
        .collect()
}

#[test]
fn the_factored_step_is_autograds_gradient_step() {
    let learner = learner(false);
    let (past, _) = windows().split(PAST).unwrap();
    let weights = learner.model.mlp().copies().unwrap();
    let rates = distinct_rates(weights.len());
    let n = past.count().unwrap();
    // Autograd's step: the weights repeated per window, the gradient of the summed losses.
    let stacked: Vec<Tensor> = weights
        .iter()
        .map(|w| {
            let w = if w.rank() == 1 {
                w.unsqueeze(0).unwrap()
            } else {
                w.clone()
            };
            let mut dims = vec![n];
            dims.extend_from_slice(w.dims());
            w.unsqueeze(0)
                .unwrap()
                .broadcast_as(dims)
                .unwrap()
                .contiguous()
                .unwrap()
        })
        .collect();
    let (_, grads) = higher_order::gradient_at(&stacked, |p| {
        Ok(learner
            .model
            .loss(p, &past.obs, &past.act, &past.next_obs)?
            .sum_all()?)
    })
    .unwrap();
    let adapted =
        mbrl_adapt::adaptation::adapt(&learner.model, &weights, &past, &rates, false).unwrap();
    for (((w, g), rate), ours) in stacked.iter().zip(&grads).zip(&rates).zip(&adapted) {
        let reference = (w - g.broadcast_mul(rate).unwrap()).unwrap();
        let d = max_abs_diff(&reference, ours).unwrap();
        assert!(
            d < 1e-6,
            "adapted weights differ from autograd's step by {d}"
        );
    }
}

#[test]
fn the_factored_loss_is_the_loss_of_the_formed_weights() {
    let learner = learner(false);
    let (past, future) = windows().split(PAST).unwrap();
    let weights = learner.model.mlp().tracked();
    let rates = distinct_rates(weights.len());
    for first_order in [false, true] {
        let step = InnerStep::new(&learner.model, &weights, &past, &rates, first_order).unwrap();
        let factored = step.loss(&learner.model, &weights, &future).unwrap();
        let formed = learner
            .model
            .loss(
                &step.weights(&weights).unwrap(),
                &future.obs,
                &future.act,
                &future.next_obs,
            )
            .unwrap();
        assert_eq!(factored.dims(), &[past.count().unwrap()]);
        let d = max_abs_diff(&factored, &formed).unwrap();
        assert!(d < 1e-6, "first order {first_order}: losses differ by {d}");
    }
}

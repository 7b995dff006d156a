//! What the fused kernels' unit tests share: candle's own ops as the reference, and
//! comparisons of values and gradients with tolerances relative to their scale.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::Activation;

/// `act(z + b)` by candle's own ops (`b` `[O]` or `[K, 1, O]`).
pub(super) fn reference_bias_activation(z: &Tensor, b: &Tensor, act: Option<Activation>) -> Tensor {
    let b = if b.rank() == 1 {
        b.unsqueeze(0).unwrap()
    } else {
        b.clone()
    };
    let z = z.broadcast_add(&b).unwrap();
    match act {
        None => z,
        Some(Activation::Relu) => z.relu().unwrap(),
        Some(Activation::Tanh) => z.tanh().unwrap(),
        Some(Activation::Swish) => z.silu().unwrap(),
    }
}

/// Every activation the kernels take, and none.
pub(super) const ACTIVATIONS: [Option<Activation>; 4] = [
    None,
    Some(Activation::Relu),
    Some(Activation::Tanh),
    Some(Activation::Swish),
];

/// `max |a - b|`.
pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// `max |t|`, at least 1: the scale relative tolerances refer to.
pub(super) fn scale(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1.0)
}

/// Backward passes of `sum(fused * probe)` and `sum(reference * probe)`: the gradients of a
/// random linear function of both outputs.
pub(super) fn probed_gradients(fused: &Tensor, reference: &Tensor) -> (GradStore, GradStore) {
    let probe = Tensor::randn(0f32, 1.0, fused.shape(), fused.device()).unwrap();
    let backward = |t: &Tensor| (t * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    (backward(fused), backward(reference))
}

/// Asserts that the fused and reference gradients of each variable agree within its relative
/// tolerance (a sum over many rows in another order than candle's rounds differently, up to
/// ~rows * 6e-8 of the magnitudes summed).
pub(super) fn assert_gradients_match(
    fused: &GradStore,
    reference: &GradStore,
    variables: &[(&Var, f32)],
    context: &str,
) {
    for (i, (v, tolerance)) in variables.iter().enumerate() {
        let (a, p) = (fused.get(v).unwrap(), reference.get(v).unwrap());
        let error = max_diff(a, p);
        assert!(
            error < tolerance * scale(p),
            "{context}: gradient of input {i} off by {error} (scale {})",
            scale(p)
        );
    }
}

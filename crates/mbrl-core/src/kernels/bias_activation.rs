//! `act(x + b)` fused into one candle custom op with a hand-written backward.
//!
//! candle's generic path costs, per hidden layer, a broadcast add, the activation, its
//! backward and, worst, the bias gradient: a sum over the batch dimension, which is not the
//! last one. Here the forward is one pass over the output (with the vectorised
//! [`super::fast_math::tanh`]), and the backward one pass for the activation's derivative plus
//! a matmul with a row of ones for the bias; both are exact second-order graphs when candle
//! keeps the backward graph (see [`super::elementwise`]).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::elementwise::{self, pre_activation_and_bias_grads};
use super::Activation;
use crate::{Error, Result};

/// `act(x + b)`; `None` is the identity. Shapes: `x` `[B, O]` with `b` `[O]`, or `x`
/// `[K, B, O]` with `b` `[K, 1, O]` (one bias per ensemble member).
pub fn bias_activation(x: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    if !elementwise::bias_fits(x.dims(), b.dims()) {
        return Err(Error::shape(
            "bias-activation bias",
            "[O] for inputs [B, O], or [K, 1, O] for inputs [K, B, O]",
            format!("{:?} for inputs {:?}", b.dims(), x.dims()),
        ));
    }
    let (x, b) = (x.contiguous()?, b.contiguous()?);
    Ok(x.apply_op2(&b, BiasActivation(act))?)
}

struct BiasActivation(Option<Activation>);

impl CustomOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b) = (
            elementwise::contiguous_f32(s1, l1)?,
            elementwise::contiguous_f32(s2, l2)?,
        );
        let (k, rows, width) = elementwise::blocks(l1.dims());
        if k * width != b.len() || width == 0 {
            candle_core::bail!(
                "bias-activation: bias {:?} for inputs {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let mut out = x.to_vec();
        elementwise::add_bias_then_activate(&mut out, b, rows, width, self.0);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (grad_pre, grad_b) = pre_activation_and_bias_grads(self.0, res, grad_res, b, || {
            let b = if b.rank() == 1 {
                b.unsqueeze(0)?
            } else {
                b.clone()
            };
            x.broadcast_add(&b)
        })?;
        Ok((Some(grad_pre), Some(grad_b)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op against candle's own ops: same values, same gradients, both ranks.
    #[test]
    fn matches_the_unfused_ops_in_value_and_gradient() {
        let dev = Device::Cpu;
        // The last two shapes exceed PARALLEL_MIN_ELEMENTS: the multi-threaded paths.
        for (x_dims, b_dims) in [
            (vec![2, 5, 3], vec![2, 1, 3]),
            (vec![7, 4], vec![4]),
            (vec![300, 250], vec![250]),
            (vec![2, 200, 200], vec![2, 1, 200]),
        ] {
            for act in ACTIVATIONS {
                let x = Var::randn(0f32, 1.0, x_dims.as_slice(), &dev).unwrap();
                let b = Var::randn(0f32, 1.0, b_dims.as_slice(), &dev).unwrap();
                let fused = bias_activation(&x, &b, act).unwrap();
                let reference = reference_bias_activation(&x, &b, act);
                assert!(max_diff(&fused, &reference) < 1e-5, "{act:?} value");
                let (g1, g2) = probed_gradients(&fused, &reference);
                let context = format!("{act:?} {x_dims:?}");
                assert_gradients_match(&g1, &g2, &[(&x, 1e-5), (&b, 1e-4)], &context);
            }
        }
    }

    #[test]
    fn rejects_mismatched_bias_shapes() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((3, 4), candle_core::DType::F32, &dev).unwrap();
        let b = Tensor::zeros(5, candle_core::DType::F32, &dev).unwrap();
        assert!(bias_activation(&x, &b, None).is_err());
    }
}

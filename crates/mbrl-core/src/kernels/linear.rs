//! A dense layer `act(x W + b)` as one candle custom op with a hand-written backward.
//!
//! Compared with a matmul followed by [`super::bias_activation()`], the pre-activation never
//! becomes a node of the graph: the forward adds the bias and applies the activation in place on
//! the matmul's output (no copy), and the backward skips the pre-activation's gradient
//! accumulation (a zero-filled buffer plus an add per layer in candle's `GradStore`) and the
//! gradient of an input that needs none (the observations of the first layer). The backward is
//! written in candle ops, so second derivatives are exact when candle keeps the backward graph
//! (see [`super::elementwise`]).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::elementwise::{self, keeps_backward_graph, pre_activation_and_bias_grads};
use super::matmul::{matmul, tensor_matmul, Operand};
use super::Activation;
use crate::{Error, Result};

/// `act(x W + b)`; `None` is the identity. Shapes: `x` `[B, I]`, `w` `[I, O]`, `b` `[O]`; or,
/// one layer per ensemble member, `x` `[K, B, I]`, `w` `[K, I, O]`, `b` `[K, 1, O]`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    let fits = match (x.dims(), w.dims()) {
        (&[batch, i], &[wi, o]) => i == wi && elementwise::bias_fits(&[batch, o], b.dims()),
        (&[k, batch, i], &[wk, wi, o]) => {
            k == wk && i == wi && elementwise::bias_fits(&[k, batch, o], b.dims())
        }
        _ => false,
    };
    if !fits {
        return Err(Error::shape(
            "linear layer",
            "x [B, I], w [I, O], b [O]; or x [K, B, I], w [K, I, O], b [K, 1, O]",
            format!("x {:?}, w {:?}, b {:?}", x.dims(), w.dims(), b.dims()),
        ));
    }
    let (x, w, b) = (x.contiguous()?, w.contiguous()?, b.contiguous()?);
    Ok(x.apply_op3(&w, &b, Linear(act))?)
}

struct Linear(Option<Activation>);

/// `(members, rows, inputs, outputs)` of a layer with inputs `x` and weights `w`.
fn layer_dims(x: &[usize], w: &[usize]) -> (usize, usize, usize, usize) {
    match (x, w) {
        (&[rows, i], &[_, o]) => (1, rows, i, o),
        (&[k, rows, i], &[_, _, o]) => (k, rows, i, o),
        _ => (0, 0, 0, 0),
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (k, rows, inputs, outputs) = layer_dims(l1.dims(), l2.dims());
        let b = elementwise::contiguous_f32(s3, l3)?;
        if k * outputs != b.len() || outputs == 0 {
            candle_core::bail!(
                "linear: x {:?}, w {:?}, b {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let (x, w) = (
            elementwise::contiguous_f32(s1, l1)?,
            elementwise::contiguous_f32(s2, l2)?,
        );
        if x.len() != k * rows * inputs || w.len() != k * inputs * outputs {
            candle_core::bail!("linear: x {:?}, w {:?}", l1.dims(), l2.dims());
        }
        let operand = |data, rows, cols| Operand {
            data,
            members: k,
            rows,
            cols,
            transposed: false,
        };
        let mut out = matmul(k, operand(x, rows, inputs), operand(w, inputs, outputs));
        elementwise::add_bias_then_activate(&mut out, b, rows, outputs, self.0);
        let shape = if l1.dims().len() == 2 {
            Shape::from((rows, outputs))
        } else {
            Shape::from((k, rows, outputs))
        };
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (grad_pre, grad_b) = pre_activation_and_bias_grads(self.0, res, grad_res, b, || {
            let b = if b.rank() == 1 {
                b.unsqueeze(0)?
            } else {
                b.clone()
            };
            x.matmul(w)?.broadcast_add(&b)
        })?;
        // The differentiable candle ops when a second-order graph is being built, the tiled
        // kernel otherwise.
        let second_order = keeps_backward_graph();
        let grad_x = x
            .track_op()
            .then(|| match second_order {
                true => grad_pre.matmul(&w.t()?),
                false => tensor_matmul(&grad_pre, false, w, true),
            })
            .transpose()?;
        let grad_w = w
            .track_op()
            .then(|| match second_order {
                true => x.t()?.matmul(&grad_pre),
                false => tensor_matmul(x, true, &grad_pre, false),
            })
            .transpose()?;
        let grad_b = b.track_op().then_some(grad_b);
        Ok((grad_x, grad_w, grad_b))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use candle_core::{Device, Var};

    /// The fused layer against candle's own ops: same values, same gradients for all three
    /// operands, both ranks, single- and multi-threaded element-wise paths.
    #[test]
    fn matches_the_unfused_ops_in_value_and_gradient() {
        let dev = Device::Cpu;
        for (x_dims, w_dims, b_dims) in [
            (vec![7, 3], vec![3, 4], vec![4]),
            (vec![2, 5, 3], vec![2, 3, 4], vec![2, 1, 4]),
            (vec![600, 20], vec![20, 150], vec![150]),
            (vec![2, 300, 20], vec![2, 20, 120], vec![2, 1, 120]),
        ] {
            for act in ACTIVATIONS {
                let x = Var::randn(0f32, 1.0, x_dims.as_slice(), &dev).unwrap();
                let w = Var::randn(0f32, 0.3, w_dims.as_slice(), &dev).unwrap();
                let b = Var::randn(0f32, 1.0, b_dims.as_slice(), &dev).unwrap();
                let fused = linear(&x, &w, &b, act).unwrap();
                let reference = reference_bias_activation(&x.matmul(&w).unwrap(), &b, act);
                assert!(max_diff(&fused, &reference) < 1e-4, "{act:?} value");
                let (g1, g2) = probed_gradients(&fused, &reference);
                let context = format!("{act:?} {x_dims:?}");
                assert_gradients_match(&g1, &g2, &[(&x, 1e-5), (&w, 1e-4), (&b, 1e-4)], &context);
            }
        }
    }

    /// Inputs that are not part of the graph (data) get no gradient computed.
    #[test]
    fn constant_inputs_get_no_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (3, 2), &dev).unwrap();
        let b = Var::zeros(2, candle_core::DType::F32, &dev).unwrap();
        let grads = linear(&x, &w, &b, Some(Activation::Tanh))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&w).is_some() && grads.get(&b).is_some());
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let dev = Device::Cpu;
        let zeros = |d: &[usize]| Tensor::zeros(d, candle_core::DType::F32, &dev).unwrap();
        assert!(linear(&zeros(&[3, 4]), &zeros(&[5, 2]), &zeros(&[2]), None).is_err());
        assert!(linear(&zeros(&[3, 4]), &zeros(&[4, 2]), &zeros(&[3]), None).is_err());
        assert!(linear(&zeros(&[2, 3, 4]), &zeros(&[2, 4, 2]), &zeros(&[2]), None).is_err());
    }
}

//! A stacked MLP's forward pass that keeps what its backward pass needs, and that backward pass
//! by hand: every layer's weight and bias gradient from the gradient of the output, outside
//! candle's autograd.
//!
//! Training a dynamics ensemble through autograd spends about a fifth of a step on candle's
//! gradient bookkeeping: a zero-filled buffer and an add for every weight, bias and hidden
//! activation (docs/performance.md). [`mlp_forward_with_tape`] runs the fused layers'
//! products and in-place bias-and-activation passes and keeps each layer's output (swish's
//! pre-activation too); [`MlpTape::backward`] writes each gradient once, with the same products
//! and element-wise rules as [`super::linear()`]'s backward, so its gradients are autograd's
//! up to rounding (tested). First order only: for higher derivatives use the candle ops.

use candle_core::Tensor;

use super::elementwise::{
    activation_backward_and_bias_grad, add_bias_then_activate, swish, with_f32,
};
use super::matmul::{matmul, Operand};
use super::Activation;
use crate::{Error, Result};

/// What the backward pass of [`mlp_forward_with_tape`] needs.
#[derive(Debug)]
pub struct MlpTape {
    members: usize,
    rows: usize,
    /// `[in, hidden..., out]`.
    widths: Vec<usize>,
    activation: Activation,
    /// The inputs, `[K, B, in]` contiguous.
    x: Tensor,
    /// Each layer's `(w [K, in, out], b [K, 1, out])`, contiguous.
    layers: Vec<(Tensor, Tensor)>,
    /// Each hidden layer's output, `[K, B, width]`.
    hidden: Vec<Vec<f32>>,
    /// Each hidden layer's pre-activation, kept for swish only (its derivative needs it).
    pre_activations: Vec<Vec<f32>>,
}

/// The gradients of one layer's weights `[K, in, out]` and biases `[K, 1, out]`.
#[derive(Debug)]
pub struct LayerGrads {
    /// `[K, in, out]`.
    pub weight: Tensor,
    /// `[K, 1, out]`.
    pub bias: Tensor,
}

/// The output `[K, B, out]` of the stacked MLP (`activation` between layers, none after the
/// last) on `x` `[K, B, in]`, and its tape. `layers` hold `(w [K, in, out], b [K, 1, out])`.
pub fn mlp_forward_with_tape(
    x: &Tensor,
    layers: &[(Tensor, Tensor)],
    activation: Activation,
) -> Result<(Tensor, MlpTape)> {
    let (members, rows, inputs) = match *x.dims() {
        [k, rows, inputs] => (k, rows, inputs),
        _ => {
            return Err(Error::shape(
                "stacked MLP input",
                "[K, B, in]",
                format!("{:?}", x.dims()),
            ))
        }
    };
    let mut widths = vec![inputs];
    for (w, b) in layers {
        let fits = matches!(*w.dims(), [k, i, _] if k == members && i == *widths.last().unwrap_or(&0))
            && b.dims() == [members, 1, w.dim(2)?];
        if !fits {
            return Err(Error::shape(
                "stacked MLP layer",
                format!(
                    "w [{members}, {}, O] and b [{members}, 1, O]",
                    widths[widths.len() - 1]
                ),
                format!("w {:?}, b {:?}", w.dims(), b.dims()),
            ));
        }
        widths.push(w.dim(2)?);
    }
    if layers.is_empty() {
        return Err(Error::InvalidArgument(
            "a stacked MLP needs at least one layer".into(),
        ));
    }
    let x = x.contiguous()?;
    let layers: Vec<(Tensor, Tensor)> = layers
        .iter()
        .map(|(w, b)| Ok((w.contiguous()?, b.contiguous()?)))
        .collect::<candle_core::Result<_>>()?;
    let mut hidden: Vec<Vec<f32>> = Vec::with_capacity(layers.len() - 1);
    let mut pre_activations = Vec::new();
    let mut output = Vec::new();
    for (l, (w, b)) in layers.iter().enumerate() {
        let (inputs, outputs) = (widths[l], widths[l + 1]);
        let last = l + 1 == layers.len();
        let mut out = with_f32(w, |w| {
            let weights = stored(w, members, inputs, outputs);
            match hidden.last() {
                Some(h) => Ok(matmul(members, stored(h, members, rows, inputs), weights)),
                None => with_f32(&x, |x| {
                    matmul(members, stored(x, members, rows, inputs), weights)
                }),
            }
        })??;
        with_f32(b, |b| {
            let act = match (last, activation) {
                (true, _) | (false, Activation::Swish) => None,
                (false, act) => Some(act),
            };
            add_bias_then_activate(&mut out, b, rows, outputs, act)
        })?;
        if last {
            output = out;
        } else if activation == Activation::Swish {
            hidden.push(swish(&out));
            pre_activations.push(out);
        } else {
            hidden.push(out);
        }
    }
    let out_width = widths[widths.len() - 1];
    let output = Tensor::from_vec(output, (members, rows, out_width), x.device())?;
    let tape = MlpTape {
        members,
        rows,
        widths,
        activation,
        x,
        layers,
        hidden,
        pre_activations,
    };
    Ok((output, tape))
}

/// A row-major `[rows, cols]` matrix per member, used as stored.
fn stored(data: &[f32], members: usize, rows: usize, cols: usize) -> Operand<'_> {
    Operand {
        data,
        members,
        rows,
        cols,
        transposed: false,
    }
}

/// A row-major `[cols, rows]` matrix per member, used transposed (`[rows, cols]`).
fn transposed(data: &[f32], members: usize, rows: usize, cols: usize) -> Operand<'_> {
    Operand {
        data,
        members,
        rows,
        cols,
        transposed: true,
    }
}

impl MlpTape {
    /// Every layer's weight and bias gradient, first layer first, given the gradient of a
    /// scalar loss with respect to the output (`[K, B, out]`). The inputs get none.
    pub fn backward(&self, grad_output: &Tensor) -> Result<Vec<LayerGrads>> {
        let (k, rows) = (self.members, self.rows);
        let out_width = self.widths[self.widths.len() - 1];
        if grad_output.dims() != [k, rows, out_width] {
            return Err(Error::shape(
                "gradient of the stacked MLP's output",
                format!("[{k}, {rows}, {out_width}]"),
                format!("{:?}", grad_output.dims()),
            ));
        }
        let mut grad = with_f32(&grad_output.contiguous()?, <[f32]>::to_vec)?;
        let device = grad_output.device();
        let mut grads = Vec::with_capacity(self.layers.len());
        for (l, (w, _)) in self.layers.iter().enumerate().rev() {
            let (inputs, outputs) = (self.widths[l], self.widths[l + 1]);
            // `grad` is the gradient of layer l's output; through its activation (the last
            // layer has none) to its pre-activation, summed over rows for the bias.
            let bias = if l + 1 == self.layers.len() {
                // No activation: the source is not read, but must be as long as the data.
                let unread = grad.clone();
                activation_backward_and_bias_grad(None, &mut grad, &unread, rows, outputs)
            } else {
                let source = match self.activation {
                    Activation::Swish => &self.pre_activations[l],
                    _ => &self.hidden[l],
                };
                activation_backward_and_bias_grad(
                    Some(self.activation),
                    &mut grad,
                    source,
                    rows,
                    outputs,
                )
            };
            let grad_pre = stored(&grad, k, rows, outputs);
            let weight = match l {
                0 => with_f32(&self.x, |x| {
                    matmul(k, transposed(x, k, inputs, rows), grad_pre)
                })?,
                _ => matmul(
                    k,
                    transposed(&self.hidden[l - 1], k, inputs, rows),
                    grad_pre,
                ),
            };
            let next = (l > 0)
                .then(|| {
                    with_f32(w, |w| {
                        matmul(k, grad_pre, transposed(w, k, outputs, inputs))
                    })
                })
                .transpose()?;
            grads.push(LayerGrads {
                weight: Tensor::from_vec(weight, (k, inputs, outputs), device)?,
                bias: Tensor::from_vec(bias, (k, 1, outputs), device)?,
            });
            if let Some(next) = next {
                grad = next;
            }
        }
        grads.reverse();
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use candle_core::{Device, Var};

    /// Output and gradients against candle's autograd through its own ops, for every
    /// activation, a one-layer and a three-layer network, and shapes that take both the serial
    /// and the tiled, threaded products.
    #[test]
    fn matches_autograd_in_value_and_gradient() {
        let dev = Device::Cpu;
        for (k, rows, widths) in [
            (2, 5, vec![3, 4]),
            (3, 7, vec![4, 6, 5, 2]),
            (5, 256, vec![23, 200, 200, 17]),
        ] {
            for act in ACTIVATIONS.into_iter().flatten() {
                let x = Tensor::randn(0f32, 1.0, (k, rows, widths[0]), &dev).unwrap();
                let vars: Vec<(Var, Var)> = widths
                    .windows(2)
                    .map(|io| {
                        let std = (1.0 / io[0] as f64).sqrt();
                        (
                            Var::randn(0f32, std as f32, (k, io[0], io[1]), &dev).unwrap(),
                            Var::randn(0f32, 0.1, (k, 1, io[1]), &dev).unwrap(),
                        )
                    })
                    .collect();
                let mut reference = x.clone();
                for (l, (w, b)) in vars.iter().enumerate() {
                    let act = (l + 2 < widths.len()).then_some(act);
                    reference = reference_bias_activation(&reference.matmul(w).unwrap(), b, act);
                }
                let layers: Vec<(Tensor, Tensor)> = vars
                    .iter()
                    .map(|(w, b)| (w.as_tensor().detach(), b.as_tensor().detach()))
                    .collect();
                let (out, tape) = mlp_forward_with_tape(&x, &layers, act).unwrap();
                let context = format!("{act:?} {k} x {rows} x {widths:?}");
                assert!(
                    max_diff(&out, &reference) < 1e-4 * scale(&reference),
                    "{context}"
                );
                let probe = Tensor::randn(0f32, 1.0, out.shape(), &dev).unwrap();
                let autograd = (&reference * &probe)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let grads = tape.backward(&probe).unwrap();
                assert_eq!(grads.len(), vars.len());
                for (l, ((w, b), g)) in vars.iter().zip(&grads).enumerate() {
                    for (name, var, got) in [("weight", w, &g.weight), ("bias", b, &g.bias)] {
                        let expected = autograd.get(var).unwrap();
                        let error = max_diff(got, expected);
                        assert!(
                            error < 1e-4 * scale(expected),
                            "{context}: layer {l} {name} off by {error}"
                        );
                    }
                }
            }
        }
    }

    /// Bits do not depend on the number of threads.
    #[test]
    fn one_and_two_threads_give_the_same_bits() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 300, 23), &dev).unwrap();
        let layers: Vec<(Tensor, Tensor)> = [23, 256, 256, 17]
            .windows(2)
            .map(|io| {
                (
                    Tensor::randn(0f32, 0.1, (5, io[0], io[1]), &dev).unwrap(),
                    Tensor::randn(0f32, 0.1, (5, 1, io[1]), &dev).unwrap(),
                )
            })
            .collect();
        let probe = Tensor::randn(0f32, 1.0, (5, 300, 17), &dev).unwrap();
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (out, tape) = mlp_forward_with_tape(&x, &layers, Activation::Relu).unwrap();
                let mut all = vec![out.flatten_all().unwrap().to_vec1().unwrap()];
                for g in tape.backward(&probe).unwrap() {
                    all.push(g.weight.flatten_all().unwrap().to_vec1().unwrap());
                    all.push(g.bias.flatten_all().unwrap().to_vec1().unwrap());
                }
                all
            })
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let dev = Device::Cpu;
        let zeros = |d: &[usize]| Tensor::zeros(d, candle_core::DType::F32, &dev).unwrap();
        let layer = (zeros(&[2, 3, 4]), zeros(&[2, 1, 4]));
        assert!(mlp_forward_with_tape(
            &zeros(&[2, 5, 4]),
            std::slice::from_ref(&layer),
            Activation::Relu
        )
        .is_err());
        assert!(mlp_forward_with_tape(
            &zeros(&[5, 3]),
            std::slice::from_ref(&layer),
            Activation::Relu
        )
        .is_err());
        assert!(mlp_forward_with_tape(&zeros(&[2, 5, 3]), &[], Activation::Relu).is_err());
        let (_, tape) =
            mlp_forward_with_tape(&zeros(&[2, 5, 3]), &[layer], Activation::Relu).unwrap();
        assert!(tape.backward(&zeros(&[2, 5, 3])).is_err());
    }
}

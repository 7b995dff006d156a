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
    activation_backward_and_bias_grad, add_bias_then_activate, add_bias_then_scale_by_derivative,
    bias_grad, swish, with_f32,
};
use super::matmul::{matmul, matmul_add, Operand};
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
    /// What hidden layer `l`'s activation derivative is computed from: its output, or its
    /// pre-activation for swish.
    fn derivative_source(&self, l: usize) -> &[f32] {
        match self.activation {
            Activation::Swish => &self.pre_activations[l],
            _ => &self.hidden[l],
        }
    }

    /// The derivative of the output (`[K, B, out]`) along a direction in parameter space, one
    /// `(dw [K, in, out], db [K, 1, out])` per layer, at the taped parameters and inputs:
    /// forward mode, `dz_l = dh_{l-1} w_l + h_{l-1} dw_l + db_l` and `dh_l = act'(z_l) dz_l`,
    /// with the products of the forward pass and no graph.
    pub fn jvp(&self, direction: &[(Tensor, Tensor)]) -> Result<Tensor> {
        let (k, rows) = (self.members, self.rows);
        let fits = direction.len() == self.layers.len()
            && direction
                .iter()
                .zip(&self.layers)
                .all(|((dw, db), (w, b))| dw.dims() == w.dims() && db.dims() == b.dims());
        if !fits {
            let expected: Vec<_> = self
                .layers
                .iter()
                .map(|(w, b)| (w.dims(), b.dims()))
                .collect();
            let got: Vec<_> = direction
                .iter()
                .map(|(w, b)| (w.dims(), b.dims()))
                .collect();
            return Err(Error::shape(
                "direction of a stacked MLP's parameters",
                format!("{expected:?}"),
                format!("{got:?}"),
            ));
        }
        let mut d_out: Vec<f32> = Vec::new();
        for (l, ((w, _), (dw, db))) in self.layers.iter().zip(direction).enumerate() {
            let (inputs, outputs) = (self.widths[l], self.widths[l + 1]);
            let (dw, db) = (dw.contiguous()?, db.contiguous()?);
            let mut dz = with_f32(&dw, |dw| {
                let dw = stored(dw, k, inputs, outputs);
                match l {
                    0 => with_f32(&self.x, |x| matmul(k, stored(x, k, rows, inputs), dw)),
                    _ => Ok(matmul(k, stored(&self.hidden[l - 1], k, rows, inputs), dw)),
                }
            })??;
            if l > 0 {
                with_f32(w, |w| {
                    let w = stored(w, k, inputs, outputs);
                    matmul_add(&mut dz, k, stored(&d_out, k, rows, inputs), w);
                })?;
            }
            with_f32(&db, |db| {
                if l + 1 == self.layers.len() {
                    add_bias_then_activate(&mut dz, db, rows, outputs, None);
                } else {
                    let source = self.derivative_source(l);
                    add_bias_then_scale_by_derivative(
                        &mut dz,
                        db,
                        source,
                        rows,
                        outputs,
                        self.activation,
                    );
                }
            })?;
            d_out = dz;
        }
        let out_width = self.widths[self.widths.len() - 1];
        Ok(Tensor::from_vec(
            d_out,
            (k, rows, out_width),
            self.x.device(),
        )?)
    }

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
                bias_grad(&grad, rows, outputs)
            } else {
                activation_backward_and_bias_grad(
                    self.activation,
                    &mut grad,
                    self.derivative_source(l),
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

    /// The stacked MLP by candle's ops in `f64`, at `layers + t * direction`.
    fn reference_f64(
        x: &Tensor,
        layers: &[(Tensor, Tensor)],
        direction: &[(Tensor, Tensor)],
        t: f64,
        act: Activation,
    ) -> Tensor {
        let f64 = |v: &Tensor| v.to_dtype(candle_core::DType::F64).unwrap();
        let moved = |p: &Tensor, d: &Tensor| (f64(p) + (f64(d) * t).unwrap()).unwrap();
        let mut h = f64(x);
        for (l, ((w, b), (dw, db))) in layers.iter().zip(direction).enumerate() {
            let act = (l + 1 < layers.len()).then_some(act);
            h = reference_bias_activation(&h.matmul(&moved(w, dw)).unwrap(), &moved(b, db), act);
        }
        h
    }

    /// Forward-mode derivatives against central differences of the network in `f64`, for every
    /// activation, and shapes that take the serial and the threaded element-wise passes.
    #[test]
    fn jvp_matches_finite_differences() {
        let dev = Device::Cpu;
        for (k, rows, widths) in [
            (2, 5, vec![3, 4]),
            (3, 7, vec![4, 6, 5, 2]),
            (2, 600, vec![5, 130, 3]),
        ] {
            for act in ACTIVATIONS.into_iter().flatten() {
                let random = |d: (usize, usize, usize), std: f64| {
                    Tensor::randn(0f32, std as f32, d, &dev).unwrap()
                };
                let x = random((k, rows, widths[0]), 1.0);
                let params = |std_bias: f64| -> Vec<(Tensor, Tensor)> {
                    widths
                        .windows(2)
                        .map(|io| {
                            let std = (1.0 / io[0] as f64).sqrt();
                            (
                                random((k, io[0], io[1]), std),
                                random((k, 1, io[1]), std_bias),
                            )
                        })
                        .collect()
                };
                let (layers, direction) = (params(0.1), params(1.0));
                let (_, tape) = mlp_forward_with_tape(&x, &layers, act).unwrap();
                let jvp = tape.jvp(&direction).unwrap();
                // Small, so that a relu unit rarely crosses zero between the two points (f64 keeps
                // the quotient exact to ~1e-8).
                let eps = 1e-8;
                let plus = reference_f64(&x, &layers, &direction, eps, act);
                let minus = reference_f64(&x, &layers, &direction, -eps, act);
                let expected = ((plus - minus).unwrap() / (2.0 * eps))
                    .unwrap()
                    .to_dtype(candle_core::DType::F32)
                    .unwrap();
                let context = format!("{act:?} {k} x {rows} x {widths:?}");
                let error = max_diff(&jvp, &expected);
                assert!(error < 1e-4 * scale(&expected), "{context}: off by {error}");
            }
        }
    }

    #[test]
    fn jvp_rejects_a_direction_of_another_shape() {
        let dev = Device::Cpu;
        let zeros = |d: &[usize]| Tensor::zeros(d, candle_core::DType::F32, &dev).unwrap();
        let layer = (zeros(&[2, 3, 4]), zeros(&[2, 1, 4]));
        let (_, tape) = mlp_forward_with_tape(
            &zeros(&[2, 5, 3]),
            std::slice::from_ref(&layer),
            Activation::Tanh,
        )
        .unwrap();
        assert!(tape.jvp(&[(zeros(&[2, 3, 5]), zeros(&[2, 1, 5]))]).is_err());
        assert!(tape.jvp(&[]).is_err());
        assert!(tape.jvp(&[layer]).is_ok());
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
                let mut all = vec![
                    out.flatten_all().unwrap().to_vec1().unwrap(),
                    tape.jvp(&layers)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap(),
                ];
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

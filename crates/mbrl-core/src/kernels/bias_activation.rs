//! `act(x + b)` fused into one candle custom op with a hand-written backward.
//!
//! candle's generic path costs, per hidden layer, a broadcast add, the activation, its
//! backward and, worst, the bias gradient: a sum over the batch dimension, which is not the
//! last one. Here the forward is one pass over the output (with the vectorised
//! [`super::fast_math::tanh`]), and the backward one pass for the activation's derivative plus
//! a matmul with a row of ones for the bias.
//!
//! When candle keeps the graph of the backward pass for higher-order derivatives
//! (`CANDLE_GRAD_DO_NOT_DETACH=1`, read per thread exactly as candle reads it), the backward is
//! written in candle ops instead, so that second derivatives through the op are exact.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::fast_math;
use super::Activation;
use crate::{Error, Result};

/// `act(x + b)`; `None` is the identity. Shapes: `x` `[B, O]` with `b` `[O]`, or `x`
/// `[K, B, O]` with `b` `[K, 1, O]` (one bias per ensemble member).
pub fn bias_activation(x: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    let ok = match (x.dims(), b.dims()) {
        (&[_, o], &[ob]) => o == ob,
        (&[k, _, o], &[kb, 1, ob]) => k == kb && o == ob,
        _ => false,
    };
    if !ok {
        return Err(Error::shape(
            "bias-activation bias",
            "[O] for inputs [B, O], or [K, 1, O] for inputs [K, B, O]",
            format!("{:?} for inputs {:?}", b.dims(), x.dims()),
        ));
    }
    let (x, b) = (x.contiguous()?, b.contiguous()?);
    Ok(x.apply_op2(&b, BiasActivation(act))?)
}

/// Blocks at least this large are split across rayon's threads.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

struct BiasActivation(Option<Activation>);

thread_local! {
    /// candle's own rule (`backprop.rs`): a non-empty value other than `0`, read once per thread.
    static KEEPS_BACKWARD_GRAPH: bool = std::env::var("CANDLE_GRAD_DO_NOT_DETACH")
        .map(|s| !s.is_empty() && s != "0")
        .unwrap_or(false);
}

/// The contiguous `f32` data of a tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("bias-activation expects contiguous tensors");
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// `(members, rows, width)` of an input: `[B, O]` is one member.
fn blocks(dims: &[usize]) -> (usize, usize, usize) {
    match *dims {
        [rows, width] => (1, rows, width),
        [k, rows, width] => (k, rows, width),
        _ => (0, 0, 0),
    }
}

/// `out[m, r, :] = f(out[m, r, :] + b[m, :])` for every member `m` and row `r`, in place; large
/// blocks are split by rows across rayon's threads (idle between candle's matmuls). Generic in
/// `f` so that each activation gets its own vectorised loop.
fn add_bias_then(
    out: &mut [f32],
    b: &[f32],
    rows: usize,
    width: usize,
    f: impl Fn(f32) -> f32 + Sync,
) {
    let apply = |chunk: &mut [f32], bias: &[f32]| {
        for row in chunk.chunks_exact_mut(width) {
            for (v, &c) in row.iter_mut().zip(bias) {
                *v = f(*v + c);
            }
        }
    };
    for (block, bias) in out
        .chunks_exact_mut(rows * width)
        .zip(b.chunks_exact(width))
    {
        if block.len() >= PARALLEL_MIN_ELEMENTS {
            let chunk_rows = rows.div_ceil(rayon::current_num_threads()).max(1);
            block
                .par_chunks_mut(chunk_rows * width)
                .for_each(|chunk| apply(chunk, bias));
        } else {
            apply(block, bias);
        }
    }
}

/// `d[i] *= f(s[i])`, split across rayon's threads when large.
fn scale_by(d: &mut [f32], s: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    let apply = |d: &mut [f32], s: &[f32]| {
        for (d, &s) in d.iter_mut().zip(s) {
            *d *= f(s);
        }
    };
    if d.len() >= PARALLEL_MIN_ELEMENTS {
        let chunk = d.len().div_ceil(rayon::current_num_threads());
        d.par_chunks_mut(chunk)
            .zip(s.par_chunks(chunk))
            .for_each(|(d, s)| apply(d, s));
    } else {
        apply(d, s);
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Runs `f` on the contiguous `f32` data of `t`.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (store, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*store else {
        candle_core::bail!("bias-activation runs on the CPU only");
    };
    Ok(f(contiguous_f32(cpu, layout)?))
}

impl BiasActivation {
    /// `grad * act'(.)` by candle ops, differentiable again.
    fn differentiable_grad(
        act: Activation,
        x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let b = if b.rank() == 1 {
            b.unsqueeze(0)?
        } else {
            b.clone()
        };
        match act {
            Activation::Tanh => grad * (1.0 - res.sqr()?)?,
            Activation::Relu => grad * x.broadcast_add(&b)?.gt(0.0)?.to_dtype(grad.dtype())?,
            Activation::Swish => {
                let sig = candle_nn_free_sigmoid(&x.broadcast_add(&b)?)?;
                let z = x.broadcast_add(&b)?;
                grad * (&sig * (1.0 + (&z * (1.0 - &sig)?)?)?)?
            }
        }
    }

    /// `grad * act'(.)` in one pass over the data.
    fn fast_grad(
        act: Activation,
        x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Tensor> {
        // For relu and swish the derivative needs the pre-activation x + b.
        let source = match act {
            Activation::Tanh => res.clone(),
            _ => {
                let b = if b.rank() == 1 {
                    b.unsqueeze(0)?
                } else {
                    b.clone()
                };
                x.broadcast_add(&b)?
            }
        };
        let grad = grad.contiguous()?;
        let d = with_f32(&grad, |g| {
            with_f32(&source, |s| {
                let mut d = g.to_vec();
                match act {
                    Activation::Tanh => scale_by(&mut d, s, |s| 1.0 - s * s),
                    Activation::Relu => scale_by(&mut d, s, |s| f32::from(u8::from(s > 0.0))),
                    Activation::Swish => scale_by(&mut d, s, |s| {
                        let sig = sigmoid(s);
                        sig * (1.0 + s * (1.0 - sig))
                    }),
                }
                d
            })
        })??;
        Tensor::from_vec(d, res.shape(), res.device())
    }
}

/// `1 / (1 + exp(-z))` by differentiable candle ops.
fn candle_nn_free_sigmoid(z: &Tensor) -> candle_core::Result<Tensor> {
    (z.neg()?.exp()? + 1.0)?.recip()
}

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
        let (x, b) = (contiguous_f32(s1, l1)?, contiguous_f32(s2, l2)?);
        let (k, rows, width) = blocks(l1.dims());
        if k * width != b.len() || width == 0 {
            candle_core::bail!(
                "bias-activation: bias {:?} for inputs {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let mut out = x.to_vec();
        match self.0 {
            None => add_bias_then(&mut out, b, rows, width, |z| z),
            Some(Activation::Relu) => add_bias_then(&mut out, b, rows, width, |z| z.max(0.0)),
            Some(Activation::Tanh) => add_bias_then(&mut out, b, rows, width, fast_math::tanh),
            Some(Activation::Swish) => add_bias_then(&mut out, b, rows, width, |z| z * sigmoid(z)),
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let higher_order = KEEPS_BACKWARD_GRAPH.with(|keep| *keep);
        let grad_pre = match self.0 {
            None => grad_res.clone(),
            Some(act) if higher_order => Self::differentiable_grad(act, x, b, res, grad_res)?,
            Some(act) => Self::fast_grad(act, x, b, res, grad_res)?,
        };
        let grad_b = if higher_order {
            // Differentiable reduction over the batch dimension.
            grad_pre.sum_keepdim(grad_pre.rank() - 2)?
        } else {
            // A row of ones times the gradient: a matmul instead of a slow non-last-dim sum.
            let (k, rows, width) = blocks(res.dims());
            let g = grad_pre.reshape((k, rows, width))?;
            Tensor::ones((k, 1, rows), res.dtype(), res.device())?.matmul(&g)?
        };
        Ok((Some(grad_pre), Some(grad_b.reshape(b.shape())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn plain(x: &Tensor, b: &Tensor, act: Option<Activation>) -> Tensor {
        let b = if b.rank() == 1 {
            b.unsqueeze(0).unwrap()
        } else {
            b.clone()
        };
        let z = x.broadcast_add(&b).unwrap();
        match act {
            None => z,
            Some(Activation::Relu) => z.relu().unwrap(),
            Some(Activation::Tanh) => z.tanh().unwrap(),
            Some(Activation::Swish) => z.silu().unwrap(),
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

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
            for act in [
                None,
                Some(Activation::Relu),
                Some(Activation::Tanh),
                Some(Activation::Swish),
            ] {
                let x = Var::randn(0f32, 1.0, x_dims.as_slice(), &dev).unwrap();
                let b = Var::randn(0f32, 1.0, b_dims.as_slice(), &dev).unwrap();
                let w = Tensor::randn(0f32, 1.0, x_dims.as_slice(), &dev).unwrap();
                let fused = bias_activation(&x, &b, act).unwrap();
                let reference = plain(&x, &b, act);
                assert!(max_diff(&fused, &reference) < 1e-5, "{act:?} value");
                let g1 = (&fused * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let g2 = (&reference * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for v in [&x, &b] {
                    let (a, p) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert!(max_diff(a, p) < 1e-5, "{act:?} gradient {x_dims:?}");
                }
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

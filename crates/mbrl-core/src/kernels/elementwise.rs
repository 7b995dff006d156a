//! The element-wise passes and backward rules shared by the fused kernels
//! ([`super::bias_activation()`], [`super::linear()`], [`super::gaussian_log_prob()`]).
//!
//! Forward: `act(x + b)` in place over `[K, B, O]` blocks. Backward: `grad * act'(.)` and the
//! bias gradient (its sum over the batch dimension) either in one pass over the data or, when
//! candle keeps the backward graph for higher-order derivatives (`CANDLE_GRAD_DO_NOT_DETACH=1`,
//! read per thread exactly as candle reads it), in differentiable candle ops. Large blocks are
//! split across rayon's threads, idle between candle's matmuls; loops run on the widest vector
//! unit.

use candle_core::{CpuStorage, Layout, Tensor};
use rayon::prelude::*;

use super::{fast_math, simd, Activation};

/// Blocks at least this large are split across rayon's threads.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

thread_local! {
    /// candle's own rule (`backprop.rs`): a non-empty value other than `0`, read once per thread.
    static KEEPS_BACKWARD_GRAPH: bool = std::env::var("CANDLE_GRAD_DO_NOT_DETACH")
        .map(|s| !s.is_empty() && s != "0")
        .unwrap_or(false);
}

/// Whether candle builds a differentiable graph of backward passes on this thread.
pub(super) fn keeps_backward_graph() -> bool {
    KEEPS_BACKWARD_GRAPH.with(|keep| *keep)
}

/// The contiguous `f32` data of a tensor.
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("fused kernels expect contiguous tensors");
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// `(members, rows, width)` of an input: `[B, O]` is one member.
pub(super) fn blocks(dims: &[usize]) -> (usize, usize, usize) {
    match *dims {
        [rows, width] => (1, rows, width),
        [k, rows, width] => (k, rows, width),
        _ => (0, 0, 0),
    }
}

/// Whether `b` is a valid bias for outputs shaped `out`: `[O]` for `[B, O]`, `[K, 1, O]` for
/// `[K, B, O]`.
pub(super) fn bias_fits(out: &[usize], b: &[usize]) -> bool {
    match (out, b) {
        (&[_, o], &[ob]) => o == ob,
        (&[k, _, o], &[kb, 1, ob]) => k == kb && o == ob,
        _ => false,
    }
}

/// `out[m, r, :] = act(out[m, r, :] + b[m, :])` for every member `m` and row `r`, in place.
pub(super) fn add_bias_then_activate(
    out: &mut [f32],
    b: &[f32],
    rows: usize,
    width: usize,
    act: Option<Activation>,
) {
    match act {
        None => add_bias_then(out, b, rows, width, |z| z),
        Some(Activation::Relu) => add_bias_then(out, b, rows, width, |z| z.max(0.0)),
        Some(Activation::Tanh) => add_bias_then(out, b, rows, width, fast_math::tanh),
        Some(Activation::Swish) => add_bias_then(out, b, rows, width, |z| z * sigmoid(z)),
    }
}

/// [`add_bias_then_activate`] for one activation function: generic in `f` so that each gets
/// its own vectorised loop.
fn add_bias_then(
    out: &mut [f32],
    b: &[f32],
    rows: usize,
    width: usize,
    f: impl Fn(f32) -> f32 + Sync,
) {
    let apply = |chunk: &mut [f32], bias: &[f32]| {
        simd::widest(|| {
            for row in chunk.chunks_exact_mut(width) {
                for (v, &c) in row.iter_mut().zip(bias) {
                    *v = f(*v + c);
                }
            }
        })
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

/// Rows per task of [`scale_rows_and_sum`]: fixed, so that the bias gradient's summation order
/// (and so its bits) does not depend on the number of threads.
const ROWS_PER_TASK: usize = 512;

/// `d[r, j] *= f(s[r, j])` over rows of `width` and, per member block of `rows` rows, the column
/// sums of the result (`[members * width]`): the activation's backward and the bias gradient in
/// one pass. Row chunks run on rayon's threads; their partial sums are added in a fixed order.
fn scale_rows_and_sum(
    d: &mut [f32],
    s: &[f32],
    rows: usize,
    width: usize,
    f: impl Fn(f32) -> f32 + Sync,
) -> Vec<f32> {
    let task = |d: &mut [f32], s: &[f32]| -> Vec<f32> {
        simd::widest(|| {
            let mut sums = vec![0.0f32; width];
            for (d_row, s_row) in d.chunks_exact_mut(width).zip(s.chunks_exact(width)) {
                for ((d, &s), sum) in d_row.iter_mut().zip(s_row).zip(sums.iter_mut()) {
                    *d *= f(s);
                    *sum += *d;
                }
            }
            sums
        })
    };
    let block = rows * width;
    let mut sums = Vec::with_capacity(d.len() / block.max(1) * width);
    for (d, s) in d.chunks_exact_mut(block).zip(s.chunks_exact(block)) {
        let partial: Vec<Vec<f32>> = if block >= PARALLEL_MIN_ELEMENTS {
            d.par_chunks_mut(ROWS_PER_TASK * width)
                .zip(s.par_chunks(ROWS_PER_TASK * width))
                .map(|(d, s)| task(d, s))
                .collect()
        } else {
            d.chunks_mut(ROWS_PER_TASK * width)
                .zip(s.chunks(ROWS_PER_TASK * width))
                .map(|(d, s)| task(d, s))
                .collect()
        };
        sums.extend(add_in_order(partial, width));
    }
    sums
}

/// The element-wise sum of `width`-long partial sums, added in their order (so the result does
/// not depend on which thread computed which part).
pub(super) fn add_in_order(partial: Vec<Vec<f32>>, width: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; width];
    for part in partial {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// The column sums of `d` per member block of `rows` rows of `width` (`[members * width]`): the
/// bias gradient of a layer without activation, summed in the order of
/// [`activation_backward_and_bias_grad`].
pub(super) fn bias_grad(d: &[f32], rows: usize, width: usize) -> Vec<f32> {
    let task = |d: &[f32]| -> Vec<f32> {
        simd::widest(|| {
            let mut sums = vec![0.0f32; width];
            for row in d.chunks_exact(width) {
                for (sum, &v) in sums.iter_mut().zip(row) {
                    *sum += v;
                }
            }
            sums
        })
    };
    let block = rows * width;
    let mut sums = Vec::with_capacity(d.len() / block.max(1) * width);
    for d in d.chunks_exact(block) {
        let partial: Vec<Vec<f32>> = if block >= PARALLEL_MIN_ELEMENTS {
            d.par_chunks(ROWS_PER_TASK * width).map(task).collect()
        } else {
            d.chunks(ROWS_PER_TASK * width).map(task).collect()
        };
        sums.extend(add_in_order(partial, width));
    }
    sums
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// `swish(z) = z * sigmoid(z)` of pre-activations `z`, with the fused forward's arithmetic.
pub(super) fn swish(z: &[f32]) -> Vec<f32> {
    simd::widest(|| z.iter().map(|&z| z * sigmoid(z)).collect())
}

/// `tanh'` from the activation's output `s = tanh(z)`.
fn tanh_derivative(s: f32) -> f32 {
    1.0 - s * s
}

/// `relu'` from the activation's output (positive exactly where `z` is).
fn relu_derivative(s: f32) -> f32 {
    f32::from(u8::from(s > 0.0))
}

/// `swish'` from the activation's input `z`.
fn swish_derivative(z: f32) -> f32 {
    let sig = sigmoid(z);
    sig * (1.0 + z * (1.0 - sig))
}

/// `d *= act'(.)` in place over `[K, rows, width]` blocks, `source` holding the activation's
/// output (its input `z` for swish), and the column sums of the result per member
/// (`[K * width]`, the bias gradient): one pass over the data.
pub(super) fn activation_backward_and_bias_grad(
    act: Activation,
    d: &mut [f32],
    source: &[f32],
    rows: usize,
    width: usize,
) -> Vec<f32> {
    match act {
        Activation::Tanh => scale_rows_and_sum(d, source, rows, width, tanh_derivative),
        Activation::Relu => scale_rows_and_sum(d, source, rows, width, relu_derivative),
        Activation::Swish => scale_rows_and_sum(d, source, rows, width, swish_derivative),
    }
}

/// `d = (d + c) * act'(.)` in place over `[K, rows, width]` blocks, `c` holding one
/// `width`-long row per member and `source` the activation's output (its input `z` for swish):
/// a forward-mode derivative through a layer's bias and activation.
pub(super) fn add_bias_then_scale_by_derivative(
    d: &mut [f32],
    c: &[f32],
    source: &[f32],
    rows: usize,
    width: usize,
    act: Activation,
) {
    match act {
        Activation::Tanh => add_then_scale(d, c, source, rows, width, tanh_derivative),
        Activation::Relu => add_then_scale(d, c, source, rows, width, relu_derivative),
        Activation::Swish => add_then_scale(d, c, source, rows, width, swish_derivative),
    }
}

/// [`add_bias_then_scale_by_derivative`] for one derivative `f`.
fn add_then_scale(
    d: &mut [f32],
    c: &[f32],
    source: &[f32],
    rows: usize,
    width: usize,
    f: impl Fn(f32) -> f32 + Sync,
) {
    let block = rows * width;
    let apply = |d: &mut [f32], s: &[f32], c: &[f32]| {
        simd::widest(|| {
            for (d_row, s_row) in d.chunks_exact_mut(width).zip(s.chunks_exact(width)) {
                for ((d, &s), &c) in d_row.iter_mut().zip(s_row).zip(c) {
                    *d = (*d + c) * f(s);
                }
            }
        })
    };
    for ((d, s), c) in d
        .chunks_exact_mut(block)
        .zip(source.chunks_exact(block))
        .zip(c.chunks_exact(width))
    {
        if block >= PARALLEL_MIN_ELEMENTS {
            d.par_chunks_mut(ROWS_PER_TASK * width)
                .zip(s.par_chunks(ROWS_PER_TASK * width))
                .for_each(|(d, s)| apply(d, s, c));
        } else {
            apply(d, s, c);
        }
    }
}

/// Runs `f` on the contiguous `f32` data of `t`.
pub(super) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (store, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*store else {
        candle_core::bail!("fused kernels run on the CPU only");
    };
    Ok(f(contiguous_f32(cpu, layout)?))
}

/// The gradients of a fused layer's pre-activation `z` and of its bias `b` (`[O]` or
/// `[K, 1, O]`), from the gradient `grad` of its output `res = act(z)`; `pre` computes `z`,
/// which only swish needs. Differentiable again when candle keeps the backward graph; otherwise
/// one pass over the data computes `grad * act'(z)` and its sums over the batch dimension.
pub(super) fn pre_activation_and_bias_grads(
    act: Option<Activation>,
    res: &Tensor,
    grad: &Tensor,
    b: &Tensor,
    pre: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<(Tensor, Tensor)> {
    if keeps_backward_graph() {
        let grad_pre = match act {
            None => grad.clone(),
            Some(Activation::Tanh) => (grad * (1.0 - res.sqr()?)?)?,
            // relu(z) > 0 exactly where z > 0.
            Some(Activation::Relu) => (grad * res.gt(0.0)?.to_dtype(grad.dtype())?)?,
            Some(Activation::Swish) => {
                let z = pre()?;
                let sig = (z.neg()?.exp()? + 1.0)?.recip()?;
                (grad * (&sig * (1.0 + (&z * (1.0 - &sig)?)?)?)?)?
            }
        };
        // Differentiable reduction over the batch dimension.
        let grad_b = grad_pre
            .sum_keepdim(grad_pre.rank() - 2)?
            .reshape(b.shape())?;
        return Ok((grad_pre, grad_b));
    }
    let grad = grad.contiguous()?;
    let (_, rows, width) = blocks(res.dims());
    let Some(act) = act else {
        // No activation: the pre-activation's gradient is the output's.
        let sums = with_f32(&grad, |g| bias_grad(g, rows, width))?;
        return Ok((grad, Tensor::from_vec(sums, b.shape(), b.device())?));
    };
    let source = match act {
        Activation::Swish => pre()?.contiguous()?,
        _ => res.contiguous()?,
    };
    let (d, sums) = with_f32(&grad, |g| {
        with_f32(&source, |s| {
            let mut d = g.to_vec();
            let sums = activation_backward_and_bias_grad(act, &mut d, s, rows, width);
            (d, sums)
        })
    })??;
    Ok((
        Tensor::from_vec(d, res.shape(), res.device())?,
        Tensor::from_vec(sums, b.shape(), b.device())?,
    ))
}

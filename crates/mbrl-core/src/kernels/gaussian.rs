//! The log-density of a diagonal Gaussian with one log-std shared by all rows, as one candle
//! custom op with a hand-written backward.
//!
//! candle's generic path for `log N(a; mu, diag(exp(2 s)))` over a batch is about seven graph
//! nodes on `[B, A]` tensors (difference, square, scale, reduction, ...), each with its own
//! output buffer, and twice as many in the backward, each gradient accumulated into a
//! zero-filled buffer. Here the forward is one pass over the batch and the backward one pass
//! that yields the means' gradient and the log-std's (summed over rows in a fixed order, so the
//! bits do not depend on the thread count). When candle keeps the backward graph
//! (`CANDLE_GRAD_DO_NOT_DETACH=1`) the backward is written in differentiable candle ops.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::elementwise::{self, keeps_backward_graph};
use super::simd;
use crate::{Error, Result};

/// `ln(2 pi)`.
const LOG_2PI: f32 = 1.837_877_1;

/// Rows per task: fixed, so that sums over rows do not depend on the number of threads.
const ROWS_PER_TASK: usize = 2048;

/// `log N(act[b]; mean[b], diag(exp(2 log_std)))` for every row `b`: `act` and `mean` `[B, A]`,
/// `log_std` `[A]`; returns `[B]`.
pub fn gaussian_log_prob(act: &Tensor, mean: &Tensor, log_std: &Tensor) -> Result<Tensor> {
    let ok = act.rank() == 2 && act.dims() == mean.dims() && log_std.dims() == [act.dims()[1]];
    if !ok {
        return Err(Error::shape(
            "Gaussian log-density",
            "actions and means [B, A], log-std [A]",
            format!(
                "actions {:?}, means {:?}, log-std {:?}",
                act.dims(),
                mean.dims(),
                log_std.dims()
            ),
        ));
    }
    let (act, mean, log_std) = (act.contiguous()?, mean.contiguous()?, log_std.contiguous()?);
    Ok(act.apply_op3(&mean, &log_std, GaussianLogProb)?)
}

struct GaussianLogProb;

/// Per-dimension `exp(-2 s)` and the constant `-sum(s) - A/2 ln(2 pi)`.
fn precisions_and_constant(log_std: &[f32]) -> (Vec<f32>, f32) {
    let precision = log_std.iter().map(|s| (-2.0 * s).exp()).collect();
    let constant = -log_std.iter().sum::<f32>() - 0.5 * LOG_2PI * log_std.len() as f32;
    (precision, constant)
}

impl CustomOp3 for GaussianLogProb {
    fn name(&self) -> &'static str {
        "gaussian-log-prob"
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
        let act = elementwise::contiguous_f32(s1, l1)?;
        let mean = elementwise::contiguous_f32(s2, l2)?;
        let log_std = elementwise::contiguous_f32(s3, l3)?;
        let (rows, width) = (l1.dims()[0], log_std.len());
        let (precision, constant) = precisions_and_constant(log_std);
        let task = |act: &[f32], mean: &[f32], out: &mut [f32]| {
            simd::widest(|| {
                for ((a, m), o) in act
                    .chunks_exact(width)
                    .zip(mean.chunks_exact(width))
                    .zip(out.iter_mut())
                {
                    let mut quad = 0.0f32;
                    for ((a, m), p) in a.iter().zip(m).zip(&precision) {
                        quad += (a - m) * (a - m) * p;
                    }
                    *o = constant - 0.5 * quad;
                }
            })
        };
        let mut out = vec![0.0f32; rows];
        let chunk = ROWS_PER_TASK * width;
        act.par_chunks(chunk)
            .zip(mean.par_chunks(chunk))
            .zip(out.par_chunks_mut(ROWS_PER_TASK))
            .for_each(|((a, m), o)| task(a, m, o));
        Ok((CpuStorage::F32(out), Shape::from(rows)))
    }

    fn bwd(
        &self,
        act: &Tensor,
        mean: &Tensor,
        log_std: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (grad_mean, grad_log_std) = if keeps_backward_graph() {
            differentiable_grads(act, mean, log_std, grad)?
        } else {
            one_pass_grads(act, mean, log_std, grad)?
        };
        let grad_act = act.track_op().then(|| grad_mean.neg()).transpose()?;
        let grad_mean = mean.track_op().then_some(grad_mean);
        let grad_log_std = log_std.track_op().then_some(grad_log_std);
        Ok((grad_act, grad_mean, grad_log_std))
    }
}

/// `d/d mean = g (a - mu) exp(-2 s)` and `d/d s = sum_b g_b ((a - mu)^2 exp(-2 s) - 1)` by
/// candle ops, differentiable again.
fn differentiable_grads(
    act: &Tensor,
    mean: &Tensor,
    log_std: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let precision = (log_std * -2.0)?.exp()?.unsqueeze(0)?;
    let scaled = (act - mean)?.broadcast_mul(&precision)?;
    let g = grad.unsqueeze(1)?;
    let grad_mean = scaled.broadcast_mul(&g)?;
    let per_dim = (((act - mean)? * &scaled)? - 1.0)?;
    let grad_log_std = per_dim.broadcast_mul(&g)?.sum(0)?;
    Ok((grad_mean, grad_log_std))
}

/// The same two gradients in one pass over the batch.
fn one_pass_grads(
    act: &Tensor,
    mean: &Tensor,
    log_std: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let read = |t: &Tensor| -> candle_core::Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
    let (log_std_values, g) = (read(log_std)?, read(grad)?);
    let width = log_std_values.len();
    let (precision, _) = precisions_and_constant(&log_std_values);
    let (act, mean) = (act.contiguous()?, mean.contiguous()?);
    let (act_guard, act_layout) = act.storage_and_layout();
    let (mean_guard, mean_layout) = mean.storage_and_layout();
    let (candle_core::Storage::Cpu(a), candle_core::Storage::Cpu(m)) = (&*act_guard, &*mean_guard)
    else {
        candle_core::bail!("gaussian-log-prob runs on the CPU only");
    };
    let (a, m) = (
        elementwise::contiguous_f32(a, act_layout)?,
        elementwise::contiguous_f32(m, mean_layout)?,
    );
    let mut grad_mean = vec![0.0f32; a.len()];
    let chunk = ROWS_PER_TASK * width;
    let task = |a: &[f32], m: &[f32], g: &[f32], out: &mut [f32]| -> Vec<f32> {
        simd::widest(|| {
            let mut sums = vec![0.0f32; width];
            for (((a, m), g), out) in a
                .chunks_exact(width)
                .zip(m.chunks_exact(width))
                .zip(g)
                .zip(out.chunks_exact_mut(width))
            {
                for ((((a, m), p), o), sum) in a
                    .iter()
                    .zip(m)
                    .zip(&precision)
                    .zip(out)
                    .zip(sums.iter_mut())
                {
                    let scaled = (a - m) * p;
                    *o = g * scaled;
                    *sum += g * ((a - m) * scaled - 1.0);
                }
            }
            sums
        })
    };
    let partial: Vec<Vec<f32>> = a
        .par_chunks(chunk)
        .zip(m.par_chunks(chunk))
        .zip(g.par_chunks(ROWS_PER_TASK))
        .zip(grad_mean.par_chunks_mut(chunk))
        .map(|(((a, m), g), out)| task(a, m, g, out))
        .collect();
    let grad_log_std = elementwise::add_in_order(partial, width);
    let device = act.device();
    Ok((
        Tensor::from_vec(grad_mean, act.shape(), device)?,
        Tensor::from_vec(grad_log_std, log_std.shape(), device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_gradients_match, max_diff, probed_gradients, scale};
    use super::*;
    use candle_core::{Device, Var};

    /// The log-density by candle's own ops.
    fn plain(act: &Tensor, mean: &Tensor, log_std: &Tensor) -> Tensor {
        let z = act
            .sub(mean)
            .unwrap()
            .broadcast_div(&log_std.exp().unwrap())
            .unwrap();
        let per_dim = z
            .sqr()
            .unwrap()
            .broadcast_add(&(log_std * 2.0).unwrap())
            .unwrap();
        ((per_dim + LOG_2PI as f64).unwrap().sum(1).unwrap() * -0.5).unwrap()
    }

    /// Values and the gradients of all three inputs equal candle's ops, for a batch of one task
    /// and one of several (the threaded path).
    #[test]
    fn matches_candle_ops_in_value_and_gradient() {
        let dev = Device::Cpu;
        for rows in [5, 5000] {
            let act = Var::randn(0f32, 1.0, (rows, 3), &dev).unwrap();
            let mean = Var::randn(0f32, 1.0, (rows, 3), &dev).unwrap();
            let log_std = Var::randn(0f32, 0.5, 3, &dev).unwrap();
            let fused = gaussian_log_prob(&act, &mean, &log_std).unwrap();
            let reference = plain(&act, &mean, &log_std);
            assert!(max_diff(&fused, &reference) < 1e-5 * scale(&reference));
            let (g1, g2) = probed_gradients(&fused, &reference);
            // The log-std's gradient sums over all rows.
            let variables = [(&act, 1e-5), (&mean, 1e-5), (&log_std, 1e-4)];
            assert_gradients_match(&g1, &g2, &variables, &format!("rows {rows}"));
        }
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let dev = Device::Cpu;
        let zeros = |d: &[usize]| Tensor::zeros(d, candle_core::DType::F32, &dev).unwrap();
        assert!(gaussian_log_prob(&zeros(&[3, 2]), &zeros(&[3, 3]), &zeros(&[2])).is_err());
        assert!(gaussian_log_prob(&zeros(&[3, 2]), &zeros(&[3, 2]), &zeros(&[3])).is_err());
    }
}

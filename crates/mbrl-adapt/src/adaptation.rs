//! GrBAL's update rule (thesis Eq. 24): one SGD step on the past `M` transitions,
//! `phi' = phi - psi * grad_phi L(tau[t - M, t], phi)`, batched over windows.
//!
//! For `N` windows the weights are broadcast to a stack `[N, in, out]`, the per-window losses
//! are summed (so each window's gradient is its own loss's gradient) and each window gets its
//! own adapted weights, all in one batched computation. On a
//! [`mbrl_core::higher_order::run`] thread the adapted weights are differentiable functions of
//! `phi` and `psi` (second-order meta-gradient); `first_order` detaches the inner gradient.

use candle_core::{Tensor, Var};
use mbrl_core::higher_order::gradient_at;
use mbrl_core::{Error, Result};

use crate::model::DeltaModel;
use crate::segments::Windows;

/// The inner step sizes `psi`: one scalar per weight tensor, fixed or meta-learned.
#[derive(Debug, Clone)]
pub struct InnerLearningRate {
    rates: Vec<Var>,
    learnable: bool,
}

impl InnerLearningRate {
    /// `value` for each of `tensors` weight tensors.
    pub fn new(tensors: usize, value: f64, learnable: bool) -> Result<Self> {
        let rates = (0..tensors)
            .map(|_| {
                Ok(Var::from_slice(
                    &[value as f32],
                    1,
                    &candle_core::Device::Cpu,
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { rates, learnable })
    }

    /// Whether the outer optimiser updates them.
    pub fn is_learnable(&self) -> bool {
        self.learnable
    }

    /// The variables (for the optimiser and checkpoints).
    pub fn vars(&self) -> &[Var] {
        &self.rates
    }

    /// As tensors: differentiable when learnable, constants otherwise.
    pub fn tensors(&self) -> Vec<Tensor> {
        self.rates
            .iter()
            .map(|r| match self.learnable {
                true => r.as_tensor().clone(),
                false => r.as_tensor().detach(),
            })
            .collect()
    }

    /// Mean over the weight tensors (for logs).
    pub fn mean(&self) -> Result<f64> {
        let mut sum = 0.0;
        for r in &self.rates {
            sum += r.as_tensor().to_vec1::<f32>()?[0] as f64;
        }
        Ok(sum / self.rates.len().max(1) as f64)
    }
}

/// `w` repeated for `n` windows: `[in, out]` -> `[n, in, out]`, biases `[out]` ->
/// `[n, 1, out]`.
fn stacked(w: &Tensor, n: usize) -> Result<Tensor> {
    let w = if w.rank() == 1 {
        w.unsqueeze(0)?
    } else {
        w.clone()
    };
    if n == 1 {
        // One window (online adaptation): a view, not a copy.
        return Ok(w.unsqueeze(0)?);
    }
    let mut dims = vec![n];
    dims.extend_from_slice(w.dims());
    Ok(w.unsqueeze(0)?.broadcast_as(dims)?.contiguous()?)
}

/// One adapted weight set per window of `past`, stacked (`[N, in, out]`, biases `[N, 1, out]`):
/// `phi - psi * grad L_n(phi)` with `L_n` the loss of window `n`.
pub fn adapt(
    model: &DeltaModel,
    weights: &[Tensor],
    past: &Windows,
    rates: &[Tensor],
    first_order: bool,
) -> Result<Vec<Tensor>> {
    if rates.len() != weights.len() {
        return Err(Error::InvalidArgument(format!(
            "{} inner step sizes for {} weight tensors",
            rates.len(),
            weights.len()
        )));
    }
    let n = past.count()?;
    let start = weights
        .iter()
        .map(|w| stacked(w, n))
        .collect::<Result<Vec<_>>>()?;
    let (_, grads) = gradient_at(&start, |p| {
        Ok(model
            .loss(p, &past.obs, &past.act, &past.next_obs)?
            .sum_all()?)
    })?;
    start
        .iter()
        .zip(grads)
        .zip(rates)
        .map(|((w, g), rate)| {
            let g = if first_order { g.detach() } else { g };
            Ok((w - g.broadcast_mul(rate)?)?)
        })
        .collect()
}

/// Weight set `i` of a stack, in the shared shapes (`[in, out]`, biases `[out]`).
pub fn unstacked(weights: &[Tensor], i: usize) -> Result<Vec<Tensor>> {
    // Weights and biases alternate (`mbrl_core::mlp::Mlp`'s order); biases lose their row axis.
    weights
        .iter()
        .enumerate()
        .map(|(j, w)| {
            let one = w.get(i)?;
            Ok(if j % 2 == 1 { one.squeeze(0)? } else { one })
        })
        .collect()
}

/// Whether every element of every tensor is finite (a sum over a non-finite element is not;
/// finite weights large enough for their sum to overflow count as diverged too).
pub fn all_finite(weights: &[Tensor]) -> Result<bool> {
    for w in weights {
        let s = w.sum_all()?.to_scalar::<f32>()?;
        if !s.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

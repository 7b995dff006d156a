//! GrBAL's update rule (thesis Eq. 24): one SGD step on the past `M` transitions,
//! `phi' = phi - psi * grad_phi L(tau[t - M, t], phi)`, batched over windows, kept in the
//! factored form a layer's gradient has.
//!
//! For a layer `z = h W + b`, the gradient of a window's loss is `H^T D` for `W` and `1^T D`
//! for `b`, with `H` `[M, in]` the layer's inputs on the window's `M` past rows and `D`
//! `[M, out]` the loss's derivative at the layer's pre-activations. The adapted layer applied to
//! new rows `h'` is therefore `h' W + b - psi_W (h' H^T) D - psi_b 1^T D`: the shared weights'
//! product plus a rank-`M` correction per window. [`InnerStep`] holds `H` and `D` of every
//! layer for `N` windows at once; its [`InnerStep::loss`] scores the adapted model on new rows
//! without forming any window's `[in, out]` weights (GrBAL's meta-training), and
//! [`InnerStep::weights`] forms them where a planner needs them (online adaptation).
//!
//! `D` comes from a backward pass of the ReLU network's squared error written out in tensor
//! operations, so it is itself a differentiable function of `phi`: the meta-gradient through
//! the inner step is one ordinary backward pass (the ReLU's derivative is a constant mask, and
//! its own derivative zero, so nothing second-order is lost). `first_order` detaches `H` and
//! `D` (first-order MAML).

use candle_core::{DType, Tensor, Var};
use mbrl_core::kernels::{linear, Activation};
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

/// One layer's share of the inner step.
#[derive(Debug, Clone)]
struct LayerStep {
    /// The layer's inputs on the past rows, `[N, M, in]`.
    inputs: Tensor,
    /// The summed window losses' derivative at the layer's pre-activations, `[N, M, out]`.
    delta: Tensor,
    /// `psi` of the weight matrix and of the bias (`[1]` each).
    weight_rate: Tensor,
    bias_rate: Tensor,
}

impl LayerStep {
    /// The bias gradient `1^T D`, `[N, 1, out]`.
    fn bias_gradient(&self) -> Result<Tensor> {
        Ok(self.delta.sum_keepdim(1)?)
    }
}

/// One inner gradient step from shared weights `phi` on each of `N` windows, in factored form
/// (module docs).
#[derive(Debug, Clone)]
pub struct InnerStep {
    layers: Vec<LayerStep>,
}

impl InnerStep {
    /// The step on each window of `past` from `weights` (shared shapes, `[in, out]` and
    /// `[out]`, in `mbrl_core::mlp::Mlp`'s order) with step sizes `rates` (one `[1]` tensor
    /// per weight tensor).
    pub fn new(
        model: &DeltaModel,
        weights: &[Tensor],
        past: &Windows,
        rates: &[Tensor],
        first_order: bool,
    ) -> Result<Self> {
        if rates.len() != weights.len() {
            return Err(Error::InvalidArgument(format!(
                "{} inner step sizes for {} weight tensors",
                rates.len(),
                weights.len()
            )));
        }
        if weights.iter().step_by(2).any(|w| w.rank() != 2) {
            return Err(Error::InvalidArgument(
                "the inner step starts from one shared set of weights ([in, out] matrices)".into(),
            ));
        }
        let norm = model.normalization();
        let x = norm.inputs(&past.obs, &past.act)?;
        let target = norm.target(&past.obs, &past.next_obs)?;
        let (n, m, width) = x.dims3()?;
        let layers = weights.len() / 2;
        // Forward over all N * M rows with the shared weights, keeping each layer's input.
        let mut inputs = Vec::with_capacity(layers);
        let mut h = x.reshape((n * m, width))?;
        for (l, pair) in weights.chunks_exact(2).enumerate() {
            let act = (l + 1 < layers).then_some(Activation::Relu);
            let next = linear(&h, &pair[0], &pair[1], act)?;
            inputs.push(h);
            h = next;
        }
        // Backward: d/d(output) of sum_n mean_{rows, dims} (output - target)^2, then through
        // each layer's weights and the ReLU before it (on where its output is positive).
        let obs_dim = target.dim(2)?;
        let scale = 2.0 / (m * obs_dim) as f64;
        let mut delta = ((h - target.reshape((n * m, obs_dim))?)? * scale)?;
        let mut deltas = vec![delta.clone()];
        for l in (1..layers).rev() {
            let on = inputs[l].gt(0.0)?.to_dtype(DType::F32)?;
            delta = (delta.matmul(&weights[2 * l].t()?)? * on)?;
            deltas.push(delta.clone());
        }
        deltas.reverse();
        let layers = inputs
            .into_iter()
            .zip(deltas)
            .zip(rates.chunks_exact(2))
            .map(|((h, d), rate)| {
                let (h, d) = match first_order {
                    true => (h.detach(), d.detach()),
                    false => (h, d),
                };
                Ok(LayerStep {
                    inputs: h.reshape((n, m, ()))?,
                    delta: d.reshape((n, m, ()))?,
                    weight_rate: rate[0].clone(),
                    bias_rate: rate[1].clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// The adapted weights of every window, stacked: `[N, in, out]` matrices, `[N, 1, out]`
    /// biases.
    pub fn weights(&self, weights: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(weights.len());
        for (layer, pair) in self.layers.iter().zip(weights.chunks_exact(2)) {
            let grad = layer.inputs.transpose(1, 2)?.matmul(&layer.delta)?;
            out.push(
                pair[0]
                    .unsqueeze(0)?
                    .broadcast_sub(&grad.broadcast_mul(&layer.weight_rate)?)?,
            );
            let bias_step = layer.bias_gradient()?.broadcast_mul(&layer.bias_rate)?;
            out.push(pair[1].reshape((1, 1, ()))?.broadcast_sub(&bias_step)?);
        }
        Ok(out)
    }

    /// The normalised state change each window's adapted model predicts for its rows of
    /// `(obs, act)` (`[N, K, dim]`), from the shared `weights` and the factors.
    pub fn normalized_delta(
        &self,
        model: &DeltaModel,
        weights: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<Tensor> {
        let mut h = model.normalization().inputs(obs, act)?;
        let (n, k, _) = h.dims3()?;
        let last = self.layers.len() - 1;
        for (l, (layer, pair)) in self.layers.iter().zip(weights.chunks_exact(2)).enumerate() {
            let shared =
                linear(&h.reshape((n * k, ()))?, &pair[0], &pair[1], None)?.reshape((n, k, ()))?;
            let weight_step = h
                .matmul(&layer.inputs.transpose(1, 2)?)?
                .matmul(&layer.delta)?
                .broadcast_mul(&layer.weight_rate)?;
            let bias_step = layer.bias_gradient()?.broadcast_mul(&layer.bias_rate)?;
            let z = (shared - weight_step)?.broadcast_sub(&bias_step)?;
            h = if l < last { z.relu()? } else { z };
        }
        Ok(h)
    }

    /// Each window's mean squared error of the normalised state change on its rows of
    /// `future` after the step (`[N]`).
    pub fn loss(&self, model: &DeltaModel, weights: &[Tensor], future: &Windows) -> Result<Tensor> {
        let predicted = self.normalized_delta(model, weights, &future.obs, &future.act)?;
        model.squared_error(&predicted, &future.obs, &future.next_obs)
    }
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
    InnerStep::new(model, weights, past, rates, first_order)?.weights(weights)
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

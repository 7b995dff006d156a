//! ReBAL's model (thesis Sec. 9.2, the recurrence-based adaptive learner): the update rule
//! `theta' = u_psi(tau(t - M, t - 1), theta)` is a GRU (`psi`) that reads the last `M`
//! transitions from a zero hidden state, each as the normalised `(s, a)` and state change
//! `s' - s` (so it sees what every action did, as GrBAL's gradient step does); its final
//! hidden state is the adapted part of the parameters, the context `c`. The state change is then predicted by an
//! MLP (`theta`, ReLU, the widths of GrBAL's model) of the normalised `[s, a, c]`, so ReBAL and
//! GrBAL share the dynamics network and differ only in how they adapt it.
//!
//! Training (backpropagation through the decoder and the `M` read steps, truncated at the
//! window's start): each window's first `M` transitions give its context, the next `K` are
//! scored one step at a time under it, exactly as GrBAL scores its adapted weights. Online,
//! the context is rebuilt from the last `M` real transitions before every action, the context
//! training saw, and MPC plans in `f(., .; c)` ([`RecurrentDynamics`], a one-member
//! `DynamicsModel`), the context fixed over the imagined steps as adapted weights are. (The
//! reference carried its LSTM's state through the whole episode, into the imagined steps too,
//! training on 100-step truncations.)
//!
//! The cell computes PyTorch's `nn.GRU` equations with its initialisation (uniform in
//! `+-1/sqrt(H)`): `r = sigma(x W_ir + h W_hr + b_r)`, `z = sigma(x W_iz + h W_hz + b_z)`,
//! `n = tanh(x W_in + b_in + r * (h W_hn + b_hn))`, `h' = (1 - z) n + z h` (PyTorch's separate
//! input and hidden biases of `r` and `z` only ever appear summed, so they are one bias here).
//! The weights are stored by what each product feeds (`[W_ir W_iz]`, `W_in`, `[W_hr W_hz]`,
//! `W_hn`), and those of `r` and `z` at half scale: `sigma(v) = (1 + tanh(v / 2)) / 2`, so both
//! gates and `n` are the vectorised fused `tanh(x + b)` of `mbrl_core::kernels` rather than
//! scalar `exp` calls. Sequences are unrolled time-major (each step's rows contiguous).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use mbrl_core::adam::Adam;
use mbrl_core::kernels::{bias_activation, linear, Activation, PackedWeights};
use mbrl_core::mlp::{Mlp, MlpShape};
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::{Error, Result};
use rand::RngCore;
use rand_distr::{Distribution, Uniform};

use crate::model::{one_member_rows, Normalization};
use crate::segments::Windows;
use crate::training::{WindowLearner, WindowLosses};

/// Index of each tensor in the weight list.
const W_IRZ: usize = 0;
const B_RZ: usize = 1;
const W_HRZ: usize = 2;
const W_IN: usize = 3;
const B_IN: usize = 4;
const W_HN: usize = 5;
const B_HN: usize = 6;
/// GRU tensors; the decoder's follow.
const GRU_TENSORS: usize = 7;

/// ReBAL's state-change model with explicit weights: the GRU's `[W_ir W_iz]` `[in, 2H]`,
/// `b_rz` `[2H]`, `[W_hr W_hz]` `[H, 2H]`, `W_in` `[in, H]`, `b_in` `[H]`, `W_hn` `[H, H]`,
/// `b_hn` `[H]`, then the decoder MLP's `(weight, bias)` per layer.
#[derive(Debug)]
pub struct GruDeltaModel {
    gru: Vec<Var>,
    decoder: Mlp,
    norm: Normalization,
    obs_dim: usize,
    act_dim: usize,
    hidden: usize,
}

impl GruDeltaModel {
    /// A freshly initialised model: a GRU of `hidden` units and a decoder with ReLU layers of
    /// `decoder_hidden` widths.
    pub fn new(
        obs_dim: usize,
        act_dim: usize,
        hidden: usize,
        decoder_hidden: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        if obs_dim == 0 || act_dim == 0 || hidden == 0 {
            return Err(Error::InvalidArgument(format!(
                "a GRU model needs positive widths; got obs {obs_dim}, act {act_dim}, hidden \
                 {hidden}"
            )));
        }
        let inputs = obs_dim + act_dim;
        // The GRU reads whole transitions: `(s, a)` and the state change.
        let read = inputs + obs_dim;
        let shapes: [Vec<usize>; GRU_TENSORS] = [
            vec![read, 2 * hidden],
            vec![2 * hidden],
            vec![hidden, 2 * hidden],
            vec![read, hidden],
            vec![hidden],
            vec![hidden, hidden],
            vec![hidden],
        ];
        let bound = 1.0 / (hidden as f32).sqrt();
        let gru = shapes
            .into_iter()
            .enumerate()
            .map(|(i, dims)| {
                // The gates' half-scale parameters (see the module doc).
                let scale = if i <= W_HRZ { 0.5 } else { 1.0 };
                let dist = Uniform::new_inclusive(-bound * scale, bound * scale)
                    .map_err(|e| Error::InvalidArgument(format!("initialisation bound: {e}")))?;
                let n: usize = dims.iter().product();
                let values: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
                Ok(Var::from_tensor(&Tensor::from_vec(
                    values,
                    dims,
                    &Device::Cpu,
                )?)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = Mlp::new(
            MlpShape::layers(inputs + hidden, decoder_hidden, obs_dim, None),
            rng,
        )?;
        Ok(Self {
            gru,
            decoder,
            norm: Normalization::identity(obs_dim, act_dim)?,
            obs_dim,
            act_dim,
            hidden,
        })
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Hidden units `H`.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The trainable variables: the GRU's, then the decoder's.
    pub fn vars(&self) -> Vec<Var> {
        self.gru
            .iter()
            .chain(self.decoder.vars())
            .cloned()
            .collect()
    }

    /// The variables as tensors that backpropagate into them.
    pub fn tracked(&self) -> Vec<Tensor> {
        self.vars().iter().map(|v| v.as_tensor().clone()).collect()
    }

    /// Independent copies of the current weights.
    pub fn copies(&self) -> Result<Vec<Tensor>> {
        self.vars()
            .iter()
            .map(|v| Ok(v.as_tensor().copy()?))
            .collect()
    }

    /// Overwrites the weights.
    pub fn set(&self, values: &[Tensor]) -> Result<()> {
        let vars = self.vars();
        if values.len() != vars.len() {
            return Err(Error::InvalidArgument(format!(
                "{} tensors for {} ReBAL weights",
                values.len(),
                vars.len()
            )));
        }
        for (var, value) in vars.iter().zip(values) {
            var.set(value)?;
        }
        Ok(())
    }

    /// Replaces the normalisation statistics.
    pub fn set_normalization(&mut self, norm: Normalization) {
        self.norm = norm;
    }

    /// An independent copy (weights and statistics).
    pub fn snapshot(&self) -> Result<Self> {
        let gru = self
            .gru
            .iter()
            .map(|v| Ok(Var::from_tensor(&v.as_tensor().copy()?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            gru,
            decoder: self.decoder.snapshot()?,
            norm: self.norm.clone(),
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
            hidden: self.hidden,
        })
    }

    /// The zero hidden state of `rows` sequences, `[rows, H]`.
    pub fn zero_state(&self, rows: usize) -> Result<Tensor> {
        Ok(Tensor::zeros(
            (rows, self.hidden),
            DType::F32,
            &Device::Cpu,
        )?)
    }

    /// The input projections `(x [W_ir W_iz] / 2, x W_in)` of normalised inputs `[B, in]`
    /// (their biases are added inside the cell's fused activations).
    fn project(&self, weights: &[Tensor], x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((x.matmul(&weights[W_IRZ])?, x.matmul(&weights[W_IN])?))
    }

    /// One step of the cell from the input projections of [`Self::project`].
    fn cell(
        &self,
        weights: &[Tensor],
        (x_rz, x_n): (&Tensor, &Tensor),
        h: &Tensor,
    ) -> Result<Tensor> {
        let hd = self.hidden;
        let half = (x_rz + h.matmul(&weights[W_HRZ])?)?;
        let rz =
            bias_activation(&half, &weights[B_RZ], Some(Activation::Tanh))?.affine(0.5, 0.5)?;
        let (r, z) = (rz.narrow(1, 0, hd)?, rz.narrow(1, hd, hd)?);
        let h_n = linear(h, &weights[W_HN], &weights[B_HN], None)?;
        let n = bias_activation(&(x_n + (r * h_n)?)?, &weights[B_IN], Some(Activation::Tanh))?;
        // h' = (1 - z) n + z h = n + z (h - n)
        Ok((&n + (z * (h - &n)?)?)?)
    }

    /// The hidden state after reading each window's transitions in order from `h0` (`[N, H]`).
    pub fn unroll(&self, weights: &[Tensor], windows: &Windows, h0: &Tensor) -> Result<Tensor> {
        let (obs, act, next_obs) = (&windows.obs, &windows.act, &windows.next_obs);
        let (n, t, _) = obs.dims3()?;
        let x = Tensor::cat(
            &[
                self.norm.inputs(obs, act)?,
                self.norm.target(obs, next_obs)?,
            ],
            2,
        )?;
        // Time-major, so each step's rows are contiguous.
        let x = x.transpose(0, 1)?.contiguous()?;
        let width = x.dim(2)?;
        let (x_rz, x_n) = self.project(weights, &x.reshape((t * n, width))?)?;
        let mut h = h0.clone();
        for step in 0..t {
            let rows = |p: &Tensor| p.narrow(0, step * n, n);
            h = self.cell(weights, (&rows(&x_rz)?, &rows(&x_n)?), &h)?;
        }
        Ok(h)
    }

    /// The normalised state change of rows `obs` `[B, obs]`, `act` `[B, act]` under contexts
    /// `[B, H]`.
    pub fn normalized_delta(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor> {
        let x = Tensor::cat(&[self.norm.inputs(obs, act)?, context.contiguous()?], 1)?;
        self.decoder.forward_with(&weights[GRU_TENSORS..], &x)
    }

    /// The next observations of rows `obs`, `act` (`[B, .]`) under the context `[1, H]` or
    /// `[B, H]`.
    pub fn predict(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor> {
        let delta = match context.dims() {
            [1, _] => self.normalized_delta_folded(
                &self.decoder_under(weights, context)?,
                None,
                obs,
                act,
            )?,
            _ => {
                let context = context.broadcast_as((obs.dim(0)?, self.hidden))?;
                self.normalized_delta(weights, obs, act, &context)?
            }
        };
        self.norm.next_obs(obs, &delta)
    }

    /// [`GruDeltaModel::normalized_delta`] of every row under one context, through the decoder
    /// that context was folded into ([`GruDeltaModel::decoder_under`]; equal up to rounding),
    /// laid out as `packed` (`Mlp::pack` of it) where no gradient is asked.
    fn normalized_delta_folded(
        &self,
        decoder: &[Tensor],
        packed: Option<&[PackedWeights]>,
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<Tensor> {
        self.decoder
            .forward_packed(decoder, packed, &self.norm.inputs(obs, act)?)
    }

    /// The decoder's weights under one context `c` (`[1, H]`), its part of the first layer
    /// folded into the bias: `[x, c] W + b = x W_x + (c W_c + b)`. Rows then go through an
    /// `in x width` layer instead of an `(in + H) x width` one (a fifth of the FLOPs of ReBAL's
    /// planning at H = 256 and 3 x 512).
    fn decoder_under(&self, weights: &[Tensor], context: &Tensor) -> Result<Vec<Tensor>> {
        let decoder = &weights[GRU_TENSORS..];
        let (first, bias) = (&decoder[0], &decoder[1]);
        let inputs = first.dim(0)? - self.hidden;
        let from_context = context.matmul(&first.narrow(0, inputs, self.hidden)?)?;
        let mut folded = vec![
            first.narrow(0, 0, inputs)?,
            from_context.squeeze(0)?.add(bias)?,
        ];
        folded.extend_from_slice(&decoder[2..]);
        Ok(folded)
    }

    /// Mean squared error of the normalised state change over the last `K` transitions of
    /// every window, each predicted in one step from the context of the window's first
    /// `past_steps` (`read_past`) or from the zero state (no adaptation).
    pub fn future_loss(
        &self,
        weights: &[Tensor],
        windows: &Windows,
        past_steps: usize,
        read_past: bool,
    ) -> Result<Tensor> {
        let (past, future) = windows.split(past_steps)?;
        let (n, k, _) = future.obs.dims3()?;
        let context = match read_past {
            true => self.state_after(weights, &past)?,
            false => self.zero_state(n)?,
        };
        let context = context
            .unsqueeze(1)?
            .broadcast_as((n, k, self.hidden))?
            .reshape((n * k, self.hidden))?;
        let rows = |t: &Tensor| -> Result<Tensor> {
            let d = t.dim(2)?;
            Ok(t.contiguous()?.reshape((n * k, d))?)
        };
        let (obs, act, next_obs) = (
            rows(&future.obs)?,
            rows(&future.act)?,
            rows(&future.next_obs)?,
        );
        let pred = self.normalized_delta(weights, &obs, &act, &context)?;
        let target = self.norm.target(&obs, &next_obs)?;
        Ok((pred - target)?.sqr()?.mean_all()?)
    }

    /// The hidden state after reading `windows` (one sequence per window) from zero, `[N, H]`.
    pub fn state_after(&self, weights: &[Tensor], windows: &Windows) -> Result<Tensor> {
        let n = windows.count()?;
        self.unroll(weights, windows, &self.zero_state(n)?)
    }

    /// Weights and statistics as named tensors (for checkpoints).
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, w) in self.copies()?.into_iter().enumerate() {
            out.insert(format!("model.gru.{i}"), w);
        }
        self.norm.named_tensors(&mut out);
        Ok(out)
    }

    /// Restores what [`GruDeltaModel::named_tensors`] produced.
    pub fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let weights = (0..self.vars().len())
            .map(|i| {
                let key = format!("model.gru.{i}");
                tensors.get(&key).cloned().ok_or_else(|| {
                    Error::InvalidArgument(format!("the checkpoint has no tensor `{key}`"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.set(&weights)?;
        self.norm = Normalization::from_named_tensors(tensors)?;
        Ok(())
    }
}

/// The GRU under one context as a one-member `DynamicsModel` (what a planner plans in): the
/// context folded into the decoder once ([`GruDeltaModel::decoder_under`]), and the decoder's
/// weights laid out once for gemm's microkernels, for all of the plan's steps.
pub struct RecurrentDynamics<'a> {
    model: &'a GruDeltaModel,
    decoder: Vec<Tensor>,
    packed: Vec<PackedWeights>,
}

impl<'a> RecurrentDynamics<'a> {
    /// `model` with `weights` under `context` (`[1, H]`).
    pub fn new(model: &'a GruDeltaModel, weights: &[Tensor], context: &Tensor) -> Result<Self> {
        if context.dims() != [1, model.hidden] {
            return Err(Error::shape(
                "planning context",
                format!("[1, {}]", model.hidden),
                format!("{:?}", context.dims()),
            ));
        }
        let decoder = model.decoder_under(weights, context)?;
        Ok(Self {
            model,
            packed: Mlp::pack(&decoder)?,
            decoder,
        })
    }
}

impl DynamicsModel for RecurrentDynamics<'_> {
    fn ensemble_size(&self) -> usize {
        1
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        let obs = one_member_rows(obs)?;
        let delta = self.model.normalized_delta_folded(
            &self.decoder,
            Some(&self.packed),
            &obs,
            &one_member_rows(act)?,
        )?;
        Ok(MemberPredictions {
            mean: self.model.norm.next_obs(&obs, &delta)?.unsqueeze(0)?,
            log_var: None,
        })
    }
}

/// ReBAL's model and the Adam of its training.
pub struct RecurrentLearner {
    /// The model.
    pub model: GruDeltaModel,
    /// Adam over its weights.
    pub adam: Adam,
}

impl RecurrentLearner {
    /// A learner for `model` with Adam at `learning_rate`.
    pub fn new(model: GruDeltaModel, learning_rate: f64) -> Result<Self> {
        let adam = Adam::new(model.vars().to_vec(), learning_rate)?;
        Ok(Self { model, adam })
    }
}

impl WindowLearner for RecurrentLearner {
    fn dims(&self) -> (usize, usize) {
        (self.model.obs_dim(), self.model.act_dim())
    }

    fn set_normalization(&mut self, norm: Normalization) {
        self.model.set_normalization(norm);
    }

    /// The objective is the loss on the last `K` transitions under the context of the first
    /// `M` (post-adaptation); pre-adaptation is the same loss under the zero state.
    fn window_losses(
        &self,
        windows: &Windows,
        past_steps: usize,
    ) -> Result<(Tensor, WindowLosses)> {
        let weights = self.model.tracked();
        let post = self
            .model
            .future_loss(&weights, windows, past_steps, true)?;
        let pre = self
            .model
            .future_loss(&weights, windows, past_steps, false)?;
        let (pre, value) = (
            pre.to_scalar::<f32>()? as f64,
            post.to_scalar::<f32>()? as f64,
        );
        Ok((
            post,
            WindowLosses {
                pre_adaptation: pre,
                post_adaptation: value,
                objective: value,
            },
        ))
    }

    fn optimizer(&mut self) -> &mut Adam {
        &mut self.adam
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::testing::max_abs_diff;
    use rand::SeedableRng;

    fn model() -> GruDeltaModel {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        GruDeltaModel::new(2, 1, 4, &[8], &mut rng).unwrap()
    }

    fn windows(n: usize, t: usize) -> Windows {
        let rows = |k: usize, scale: f32| -> Vec<f32> {
            (0..n * t * k).map(|i| ((i as f32) * scale).sin()).collect()
        };
        Windows::from_rows(rows(2, 0.37), rows(1, 0.91), rows(2, 0.53), n, t).unwrap()
    }

    #[test]
    fn one_step_follows_the_gru_equations() {
        // obs 2, act 1 (identity normalisation), H = 4: the new hidden state by hand in f64.
        let model = model();
        let w = model.copies().unwrap();
        let m = |i: usize| w[i].to_dtype(DType::F64).unwrap();
        let mat = |i: usize| m(i).to_vec2::<f64>().unwrap();
        let vec = |i: usize| m(i).to_vec1::<f64>().unwrap();
        // (s, a, s' - s) with s = (0.3, -0.7), a = 0.9, s' = (0.5, -0.2).
        let (x, h) = ([0.3f64, -0.7, 0.9, 0.2, 0.5], [0.1f64, -0.2, 0.4, 0.05]);
        let hd = 4;
        let dot = |a: &[f64], w: &[Vec<f64>], col: usize| -> f64 {
            a.iter().zip(w).map(|(ai, row)| ai * row[col]).sum()
        };
        // The stored r/z parameters are half of PyTorch's.
        let sigma = |half: f64| 1.0 / (1.0 + (-2.0 * half).exp());
        let (w_irz, b_rz, w_hrz) = (mat(W_IRZ), vec(B_RZ), mat(W_HRZ));
        let (w_in, b_in, w_hn, b_hn) = (mat(W_IN), vec(B_IN), mat(W_HN), vec(B_HN));
        let expected: Vec<f64> = (0..hd)
            .map(|j| {
                let r = sigma(dot(&x, &w_irz, j) + dot(&h, &w_hrz, j) + b_rz[j]);
                let z = sigma(dot(&x, &w_irz, hd + j) + dot(&h, &w_hrz, hd + j) + b_rz[hd + j]);
                let n = (dot(&x, &w_in, j) + b_in[j] + r * (dot(&h, &w_hn, j) + b_hn[j])).tanh();
                (1.0 - z) * n + z * h[j]
            })
            .collect();
        let transition =
            Windows::from_rows(vec![0.3, -0.7], vec![0.9], vec![0.5, -0.2], 1, 1).unwrap();
        let h = Tensor::new(&[[0.1f32, -0.2, 0.4, 0.05]], &Device::Cpu).unwrap();
        let next = model.unroll(&w, &transition, &h).unwrap();
        let got = next.to_vec2::<f32>().unwrap();
        for (g, e) in got[0].iter().zip(&expected) {
            assert!((*g as f64 - e).abs() < 1e-5, "{g} vs {e}");
        }
    }

    #[test]
    fn reading_step_by_step_gives_the_unrolled_state_and_predictions_use_the_context() {
        let model = model();
        let w = model.copies().unwrap();
        let win = windows(1, 3);
        let mut h = model.zero_state(1).unwrap();
        for t in 0..3 {
            let one = Windows {
                obs: win.obs.narrow(1, t, 1).unwrap(),
                act: win.act.narrow(1, t, 1).unwrap(),
                next_obs: win.next_obs.narrow(1, t, 1).unwrap(),
            };
            h = model.unroll(&w, &one, &h).unwrap();
        }
        let state = model.state_after(&w, &win).unwrap();
        assert!(max_abs_diff(&h, &state).unwrap() < 1e-6);
        // The planning view predicts s + denormalise(decoder([x, c])) for every row.
        let obs = win.obs.get(0).unwrap();
        let act = win.act.get(0).unwrap();
        let dynamics = RecurrentDynamics::new(&model, &w, &state).unwrap();
        let next = dynamics
            .predict_members(&obs, &act)
            .unwrap()
            .mean
            .get(0)
            .unwrap();
        let contexts = state.broadcast_as((3, 4)).unwrap();
        let x = Tensor::cat(
            &[obs.clone(), act.clone(), contexts.contiguous().unwrap()],
            1,
        )
        .unwrap();
        let delta = model.decoder.forward_with(&w[GRU_TENSORS..], &x).unwrap();
        let expected = (obs + delta).unwrap();
        assert!(max_abs_diff(&next, &expected).unwrap() < 1e-6);
    }

    #[test]
    fn checkpoints_round_trip() {
        let a = model();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = GruDeltaModel::new(2, 1, 4, &[8], &mut rng).unwrap();
        b.load_named_tensors(&a.named_tensors().unwrap()).unwrap();
        for (x, y) in a.copies().unwrap().iter().zip(&b.copies().unwrap()) {
            assert_eq!(max_abs_diff(x, y).unwrap(), 0.0);
        }
    }
}

//! The deterministic state-change model of GrBAL and its baselines (thesis Sec. 9.4: an MLP
//! of 3 x 512 ReLU units, Gaussian with fixed variance, so maximum likelihood is the mean squared
//! error of the normalised state change).
//!
//! Inputs `(s, a)` and the target `s' - s` are normalised with statistics of the whole
//! training data, recomputed at every fit from the raw stored transitions (the reference
//! recomputed them from the newest batch while its stored data kept the old ones, and
//! diverged). Every forward pass takes the weights explicitly, as `mbrl_core::mlp::Mlp` does:
//! the meta-learned prior, a per-window stack of adapted weights (`[N, in, out]`, GrBAL's inner
//! step over a meta-batch) or an online-adapted copy all run through the same code.
//! [`AdaptedModel`] wraps one set of weights as a `DynamicsModel` for the planners.

use std::collections::HashMap;

use candle_core::{Device, Tensor, D};
use mbrl_core::kernels::PackedWeights;
use mbrl_core::mlp::{Mlp, MlpShape};
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::{Error, Result};
use mbrl_models::Normalizer;
use rand::RngCore;

/// Normalisation of the model's inputs and target.
#[derive(Debug, Clone)]
pub struct Normalization {
    obs: Normalizer,
    act: Normalizer,
    delta: Normalizer,
}

impl Normalization {
    /// Mean 0 and std 1 everywhere.
    pub fn identity(obs_dim: usize, act_dim: usize) -> Result<Self> {
        let device = Device::Cpu;
        Ok(Self {
            obs: Normalizer::identity(obs_dim, &device)?,
            act: Normalizer::identity(act_dim, &device)?,
            delta: Normalizer::identity(obs_dim, &device)?,
        })
    }

    /// Statistics of flat rows of observations, actions and state changes, each standard
    /// deviation at least `std_floor`.
    pub fn fit(
        (obs, act, delta): (&[f32], &[f32], &[f32]),
        (obs_dim, act_dim): (usize, usize),
        std_floor: f32,
    ) -> Result<Self> {
        let device = Device::Cpu;
        Ok(Self {
            obs: Normalizer::fit(obs, obs_dim, std_floor, &device)?,
            act: Normalizer::fit(act, act_dim, std_floor, &device)?,
            delta: Normalizer::fit(delta, obs_dim, std_floor, &device)?,
        })
    }

    /// The normalised model input `[s, a]` (concatenated on the last axis).
    pub fn inputs(&self, obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        Ok(Tensor::cat(
            &[self.obs.normalize(obs)?, self.act.normalize(act)?],
            D::Minus1,
        )?)
    }

    /// The normalised state change `s' - s`, the models' regression target.
    pub fn target(&self, obs: &Tensor, next_obs: &Tensor) -> Result<Tensor> {
        Ok(self.delta.normalize(&(next_obs - obs)?)?)
    }

    /// The next observation `s + denormalise(delta)` of a normalised predicted change.
    pub fn next_obs(&self, obs: &Tensor, normalized_delta: &Tensor) -> Result<Tensor> {
        Ok((obs + self.delta.denormalize(normalized_delta)?)?)
    }

    pub(crate) fn named_tensors(&self, out: &mut HashMap<String, Tensor>) {
        for (name, n) in [
            ("obs", &self.obs),
            ("act", &self.act),
            ("delta", &self.delta),
        ] {
            out.insert(format!("model.norm.{name}.mean"), n.mean().clone());
            out.insert(format!("model.norm.{name}.std"), n.std().clone());
        }
    }

    pub(crate) fn from_named_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let read = |name: &str, part: &str| -> Result<Vec<f32>> {
            let key = format!("model.norm.{name}.{part}");
            Ok(tensors
                .get(&key)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("the checkpoint has no tensor `{key}`"))
                })?
                .to_vec1::<f32>()?)
        };
        let one = |name: &str| -> Result<Normalizer> {
            Ok(Normalizer::from_parts(
                &read(name, "mean")?,
                &read(name, "std")?,
                &Device::Cpu,
            )?)
        };
        Ok(Self {
            obs: one("obs")?,
            act: one("act")?,
            delta: one("delta")?,
        })
    }
}

/// An MLP predicting the normalised state change from normalised `(s, a)`.
#[derive(Debug)]
pub struct DeltaModel {
    mlp: Mlp,
    norm: Normalization,
    obs_dim: usize,
    act_dim: usize,
}

impl DeltaModel {
    /// A freshly initialised model with ReLU layers of `hidden` widths.
    pub fn new(
        obs_dim: usize,
        act_dim: usize,
        hidden: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        let shape = MlpShape::layers(obs_dim + act_dim, hidden, obs_dim, None);
        let mlp = Mlp::new(shape, rng)?;
        Ok(Self {
            mlp,
            norm: Normalization::identity(obs_dim, act_dim)?,
            obs_dim,
            act_dim,
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

    /// The network (its `Var`s are what training updates).
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Replaces the normalisation statistics.
    pub fn set_normalization(&mut self, norm: Normalization) {
        self.norm = norm;
    }

    /// The normalisation statistics.
    pub(crate) fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// An independent copy (weights and statistics).
    pub fn snapshot(&self) -> Result<Self> {
        Ok(Self {
            mlp: self.mlp.snapshot()?,
            norm: self.norm.clone(),
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
        })
    }

    /// The normalised state change predicted with `weights`. Inputs are `[B, dim]` or
    /// `[N, B, dim]`; weights are shared (`[in, out]`) or one set per leading index
    /// (`[N, in, out]`, inputs then `[N, B, dim]`).
    pub fn normalized_delta(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<Tensor> {
        self.normalized_delta_packed(weights, None, obs, act)
    }

    /// [`DeltaModel::normalized_delta`], through `packed` (`Mlp::pack` of `weights`) where no
    /// gradient is asked.
    fn normalized_delta_packed(
        &self,
        weights: &[Tensor],
        packed: Option<&[PackedWeights]>,
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<Tensor> {
        let x = self.norm.inputs(obs, act)?;
        let shared = weights.first().map(|w| w.rank() == 2).unwrap_or(true);
        match x.dims() {
            &[n, b, i] if shared => Ok(self
                .mlp
                .forward_packed(weights, packed, &x.reshape((n * b, i))?)?
                .reshape((n, b, self.obs_dim))?),
            _ => self.mlp.forward_packed(weights, packed, &x),
        }
    }

    /// Mean squared error of the normalised state change, over rows and dimensions: a scalar
    /// for `[B, dim]` inputs, one value per window (`[N]`) for `[N, B, dim]` inputs.
    pub fn loss(
        &self,
        weights: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
        next_obs: &Tensor,
    ) -> Result<Tensor> {
        self.squared_error(&self.normalized_delta(weights, obs, act)?, obs, next_obs)
    }

    /// Mean squared error of a predicted normalised state change against the observed one,
    /// shaped as [`DeltaModel::loss`]'s.
    pub(crate) fn squared_error(
        &self,
        normalized_delta: &Tensor,
        obs: &Tensor,
        next_obs: &Tensor,
    ) -> Result<Tensor> {
        let err = (normalized_delta - self.norm.target(obs, next_obs)?)?.sqr()?;
        Ok(match err.rank() {
            3 => err.mean(2)?.mean(1)?,
            _ => err.mean_all()?,
        })
    }

    /// The predicted next observation `s + denormalise(f(s, a))`.
    pub fn predict(&self, weights: &[Tensor], obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        self.predict_packed(weights, None, obs, act)
    }

    /// [`DeltaModel::predict`], through `packed` (`Mlp::pack` of `weights`) where no gradient
    /// is asked.
    fn predict_packed(
        &self,
        weights: &[Tensor],
        packed: Option<&[PackedWeights]>,
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<Tensor> {
        self.norm.next_obs(
            obs,
            &self.normalized_delta_packed(weights, packed, obs, act)?,
        )
    }

    /// Weights and statistics as named tensors (for checkpoints).
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, w) in self.mlp.copies()?.into_iter().enumerate() {
            out.insert(format!("model.weight.{i}"), w);
        }
        self.norm.named_tensors(&mut out);
        Ok(out)
    }

    /// Restores what [`DeltaModel::named_tensors`] produced.
    pub fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let weights = (0..self.mlp.vars().len())
            .map(|i| {
                let key = format!("model.weight.{i}");
                tensors.get(&key).cloned().ok_or_else(|| {
                    Error::InvalidArgument(format!("the checkpoint has no tensor `{key}`"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.mlp.set(&weights)?;
        self.norm = Normalization::from_named_tensors(tensors)?;
        Ok(())
    }
}

/// Rows `[B, dim]` of a one-member model's input, given as `[B, dim]` or `[1, B, dim]` (the
/// planners' member axis).
pub(crate) fn one_member_rows(t: &Tensor) -> Result<Tensor> {
    match t.dims() {
        &[_, _] => Ok(t.clone()),
        &[1, b, d] => Ok(t.reshape((b, d))?),
        other => Err(Error::shape(
            "one-member model input",
            "[B, dim] or [1, B, dim]",
            format!("{other:?}"),
        )),
    }
}

/// One set of weights of a [`DeltaModel`] as a one-member `DynamicsModel` (what a planner
/// plans in). The weights are laid out once for gemm's microkernels, then read by each of the
/// plan's steps (`mbrl_core::kernels::packed_linear`).
pub struct AdaptedModel<'a> {
    model: &'a DeltaModel,
    weights: &'a [Tensor],
    packed: Vec<PackedWeights>,
}

impl<'a> AdaptedModel<'a> {
    /// `model` predicting with `weights` (shared shapes, `[in, out]`).
    pub fn new(model: &'a DeltaModel, weights: &'a [Tensor]) -> Result<Self> {
        Ok(Self {
            model,
            weights,
            packed: Mlp::pack(weights)?,
        })
    }
}

impl DynamicsModel for AdaptedModel<'_> {
    fn ensemble_size(&self) -> usize {
        1
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        let next = self.model.predict_packed(
            self.weights,
            Some(&self.packed),
            &one_member_rows(obs)?,
            &one_member_rows(act)?,
        )?;
        Ok(MemberPredictions {
            mean: next.unsqueeze(0)?,
            log_var: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::testing::max_abs_diff;
    use rand::SeedableRng;

    #[test]
    fn predictions_add_the_denormalised_change_and_stacks_match_shared_weights() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut model = DeltaModel::new(2, 1, &[8], &mut rng).unwrap();
        let obs_rows = [0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0];
        let act_rows = [1.0f32, -1.0, 0.5];
        let delta_rows = [0.1f32, 0.2, -0.3, 0.4, 0.0, 0.1];
        model.set_normalization(
            Normalization::fit((&obs_rows, &act_rows, &delta_rows), (2, 1), 1e-6).unwrap(),
        );
        let obs = Tensor::from_slice(&obs_rows, (3, 2), &Device::Cpu).unwrap();
        let act = Tensor::from_slice(&act_rows, (3, 1), &Device::Cpu).unwrap();
        let w = model.mlp().copies().unwrap();
        let next = model.predict(&w, &obs, &act).unwrap();
        let delta = model
            .norm
            .delta
            .denormalize(&model.normalized_delta(&w, &obs, &act).unwrap());
        let expected = (obs.clone() + delta.unwrap()).unwrap();
        assert!(max_abs_diff(&next, &expected).unwrap() < 1e-6);
        // Two stacked copies of the weights predict what the shared weights predict.
        let stacked: Vec<Tensor> = w
            .iter()
            .map(|t| {
                let t = if t.rank() == 1 {
                    t.unsqueeze(0).unwrap()
                } else {
                    t.clone()
                };
                Tensor::stack(&[&t, &t], 0).unwrap()
            })
            .collect();
        let obs2 = Tensor::stack(&[&obs, &obs], 0).unwrap();
        let act2 = Tensor::stack(&[&act, &act], 0).unwrap();
        let a = model.normalized_delta(&stacked, &obs2, &act2).unwrap();
        let b = model.normalized_delta(&w, &obs2, &act2).unwrap();
        assert!(max_abs_diff(&a, &b).unwrap() < 1e-6);
        let per_window = model.loss(&w, &obs2, &act2, &obs2).unwrap();
        assert_eq!(per_window.dims(), &[2]);
        // The planners' view, through packed weights, on the planners' [1, B, dim] rows.
        let planned = AdaptedModel::new(&model, &w)
            .unwrap()
            .predict_members(&obs.unsqueeze(0).unwrap(), &act.unsqueeze(0).unwrap())
            .unwrap()
            .mean;
        assert_eq!(planned.dims(), &[1, 3, 2]);
        assert_eq!(
            planned.squeeze(0).unwrap().to_vec2::<f32>().unwrap(),
            next.to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn checkpoints_round_trip() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let model = DeltaModel::new(2, 1, &[4], &mut rng).unwrap();
        let mut other = DeltaModel::new(2, 1, &[4], &mut rng).unwrap();
        other
            .load_named_tensors(&model.named_tensors().unwrap())
            .unwrap();
        let (a, b) = (model.mlp().copies().unwrap(), other.mlp().copies().unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(max_abs_diff(x, y).unwrap(), 0.0);
        }
    }
}

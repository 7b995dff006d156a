//! [`MlpEnsemble`]: `K` MLP dynamics models with shared normalisation, and
//! [`FrozenEnsemble`], a detached copy for rollouts.
//!
//! Both predict `s' = s + mu_delta + sigma_delta * net(norm(s), norm(a))` (thesis Sec. 2.2.2.2,
//! ALGORITHM_NOTES ME-TRPO) for all members in one batched computation and implement
//! [`DynamicsModel`]. Predictions never record the autograd graph of the weights (candle has no
//! `no_grad`; PERFORMANCE_NOTES cause 5) but stay differentiable with respect to `obs` and `act`,
//! so policies can be trained by backpropagation through the model.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use mbrl_core::data::TransitionBatch;
use mbrl_core::kernels::PackedWeights;
use mbrl_core::model::{broadcast_to_members, DynamicsModel, MemberPredictions};
use rand::RngCore;

use crate::config::EnsembleConfig;
use crate::network::{initial_values, Architecture, Parameters, Weights};
use crate::normalize::Normalizer;
use crate::optim::EnsembleAdam;
use crate::{Error, Result};

/// The normalisation statistics of an ensemble's inputs and target.
#[derive(Debug, Clone)]
pub struct NormStats {
    /// Observation statistics.
    pub obs: Normalizer,
    /// Action statistics.
    pub act: Normalizer,
    /// State-change (`next_obs - obs`) statistics.
    pub delta: Normalizer,
}

impl NormStats {
    /// Identity statistics.
    pub fn identity(obs_dim: usize, act_dim: usize) -> Result<Self> {
        let dev = Device::Cpu;
        Ok(Self {
            obs: Normalizer::identity(obs_dim, &dev)?,
            act: Normalizer::identity(act_dim, &dev)?,
            delta: Normalizer::identity(obs_dim, &dev)?,
        })
    }

    /// Statistics of a batch of transitions, standard deviations floored at `std_floor`.
    pub fn of_batch(batch: &TransitionBatch, std_floor: f32) -> Result<Self> {
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1()?) };
        let (obs_dim, act_dim) = (batch.obs.dim(1)?, batch.act.dim(1)?);
        let dev = Device::Cpu;
        let delta = (&batch.next_obs - &batch.obs)?;
        Ok(Self {
            obs: Normalizer::fit(&flat(&batch.obs)?, obs_dim, std_floor, &dev)?,
            act: Normalizer::fit(&flat(&batch.act)?, act_dim, std_floor, &dev)?,
            delta: Normalizer::fit(&flat(&delta)?, obs_dim, std_floor, &dev)?,
        })
    }

    /// The network input `[.., obs_dim + act_dim]` of observations and actions.
    pub(crate) fn inputs(&self, obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        let rank = obs.rank();
        Ok(Tensor::cat(
            &[self.obs.normalize(obs)?, self.act.normalize(act)?],
            rank - 1,
        )?)
    }

    fn named(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, n) in [
            ("obs", &self.obs),
            ("act", &self.act),
            ("delta", &self.delta),
        ] {
            out.push((format!("normalizer.{name}.mean"), n.mean().clone()));
            out.push((format!("normalizer.{name}.std"), n.std().clone()));
        }
        out
    }
}

/// Predictions of every member from `weights` and `stats` (the shared forward path).
fn predict_with(
    weights: &Weights,
    packed: Option<&[PackedWeights]>,
    stats: &NormStats,
    obs: &Tensor,
    act: &Tensor,
) -> Result<MemberPredictions> {
    let k = weights.members();
    let (obs_dim, act_dim) = (stats.obs.dim(), stats.act.dim());
    let obs = broadcast_to_members(obs, k)?;
    let act = broadcast_to_members(act, k)?;
    if obs.dim(2)? != obs_dim || act.dim(2)? != act_dim || obs.dim(1)? != act.dim(1)? {
        return Err(Error::InvalidArgument(format!(
            "ensemble inputs must be [B, {obs_dim}] / [B, {act_dim}] (or with a leading {k}), \
             got {:?} and {:?}",
            obs.dims(),
            act.dims()
        )));
    }
    let out = weights.forward_packed(&stats.inputs(&obs, &act)?, packed)?;
    let mean = (obs + stats.delta.denormalize(&out.mean)?)?;
    let log_var = match out.log_var {
        // Var(sigma * z) = sigma^2 Var(z).
        Some(lv) => Some(lv.broadcast_add(&(stats.delta.std().log()? * 2.0)?)?),
        None => None,
    };
    Ok(MemberPredictions { mean, log_var })
}

/// An ensemble of MLP dynamics models with its optimiser state.
#[derive(Debug)]
pub struct MlpEnsemble {
    pub(crate) config: EnsembleConfig,
    pub(crate) obs_dim: usize,
    pub(crate) act_dim: usize,
    pub(crate) params: Parameters,
    pub(crate) stats: NormStats,
    pub(crate) optimizer: EnsembleAdam,
    /// Completed fits, for the re-initialisation schedule.
    pub(crate) fits: usize,
}

impl MlpEnsemble {
    /// A freshly initialised ensemble (Xavier weights, identity normalisation).
    pub fn new(
        config: &EnsembleConfig,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        config.validate()?;
        if obs_dim == 0 {
            return Err(Error::InvalidArgument(
                "a dynamics model needs at least one observation dimension".into(),
            ));
        }
        let params = Parameters::new(Architecture::new(config, obs_dim, act_dim), rng)?;
        let optimizer = EnsembleAdam::new(&params.vars, config.members, config.learning_rate);
        Ok(Self {
            config: config.clone(),
            obs_dim,
            act_dim,
            params,
            stats: NormStats::identity(obs_dim, act_dim)?,
            optimizer,
            fits: 0,
        })
    }

    /// The configuration the ensemble was built with.
    pub fn config(&self) -> &EnsembleConfig {
        &self.config
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// The normalisation statistics of the last fit (identity before the first).
    pub fn norm_stats(&self) -> &NormStats {
        &self.stats
    }

    /// Number of completed fits.
    pub fn fits(&self) -> usize {
        self.fits
    }

    /// The trainable parameters, every one with the ensemble dimension first.
    pub fn vars(&self) -> &[Var] {
        &self.params.vars
    }

    /// Names of [`MlpEnsemble::vars`], in the same order (`layers.0.weight`, ...).
    pub fn parameter_names(&self) -> &[String] {
        &self.params.names
    }

    /// Draws fresh weights and forgets the optimiser state (normalisation is kept).
    pub fn reinitialize(&mut self, rng: &mut dyn RngCore) -> Result<()> {
        self.params.set(&initial_values(&self.params.arch, rng)?)?;
        self.optimizer.reset();
        Ok(())
    }

    /// Forgets the Adam moments and step counts.
    pub fn reset_optimizer(&mut self) {
        self.optimizer.reset();
    }

    /// A detached deep copy for rollouts: later training does not change it, and its
    /// predictions never build a graph over the weights.
    pub fn freeze(&self) -> Result<FrozenEnsemble> {
        let weights = self.weights_detached()?.deep_copy()?;
        Ok(FrozenEnsemble {
            packed: weights.packed()?.into(),
            weights,
            stats: self.stats.clone(),
        })
    }

    pub(crate) fn weights_detached(&self) -> Result<Weights> {
        Weights::from_parameters(&self.params.arch, &self.params.detached())
    }

    pub(crate) fn weights_tracked(&self) -> Result<Weights> {
        Weights::from_parameters(&self.params.arch, &self.params.tracked())
    }

    /// Every member's prediction with `params` in place of the ensemble's own parameters
    /// (same order and shapes as [`MlpEnsemble::vars`]); differentiable in `params`, `obs` and
    /// `act` (e.g. for adapting a model by a gradient step).
    pub fn predict_members_with(
        &self,
        params: &[Tensor],
        obs: &Tensor,
        act: &Tensor,
    ) -> Result<MemberPredictions> {
        let weights = Weights::from_parameters(&self.params.arch, params)?;
        predict_with(&weights, None, &self.stats, obs, act)
    }

    /// The per-member training loss on `batch` (`[K]`, with the graph over
    /// [`MlpEnsemble::vars`]): mean squared error of the normalised state change, or the
    /// Gaussian negative log-likelihood plus the log-variance bound penalty.
    pub fn loss(&self, batch: &TransitionBatch) -> Result<Tensor> {
        let k = self.config.members;
        let x = self.stats.inputs(&batch.obs, &batch.act)?;
        let y = self
            .stats
            .delta
            .normalize(&(&batch.next_obs - &batch.obs)?)?;
        let x = broadcast_to_members(&x, k)?.contiguous()?;
        let y = broadcast_to_members(&y, k)?.contiguous()?;
        self.weights_tracked()?
            .loss(&x, &y, self.config.logvar_bound_penalty)
    }

    /// Parameters (deep copies), normalisation statistics and the fit counter as named
    /// tensors, ready for a safetensors checkpoint.
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out: HashMap<String, Tensor> = self
            .params
            .names
            .iter()
            .cloned()
            .zip(self.params.copies()?)
            .collect();
        for (name, t) in self.stats.named() {
            out.insert(name, t.copy()?);
        }
        out.insert(
            "fits".into(),
            Tensor::new(&[self.fits as u32], &Device::Cpu)?,
        );
        Ok(out)
    }

    /// Restores what [`MlpEnsemble::named_tensors`] saved. Every tensor must be present with
    /// the shape of this ensemble's configuration; nothing changes if one is not.
    pub fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            tensors
                .get(name)
                .ok_or_else(|| Error::Load(format!("missing tensor `{name}`")))
        };
        let mut values = Vec::new();
        for ((name, shape), _) in self
            .params
            .arch
            .parameter_shapes()
            .iter()
            .zip(&self.params.vars)
        {
            let t = get(name)?;
            if t.dims() != shape.as_slice() {
                return Err(Error::Load(format!(
                    "`{name}` is {:?}, this configuration needs {shape:?}",
                    t.dims()
                )));
            }
            values.push(t.to_dtype(DType::F32)?.contiguous()?);
        }
        let mut stats = Vec::new();
        for (name, dim) in [
            ("obs", self.obs_dim),
            ("act", self.act_dim),
            ("delta", self.obs_dim),
        ] {
            let read = |part: &str| -> Result<Vec<f32>> {
                let key = format!("normalizer.{name}.{part}");
                let t = get(&key)?;
                if t.dims() != [dim] {
                    return Err(Error::Load(format!(
                        "`{key}` is {:?}, expected [{dim}]",
                        t.dims()
                    )));
                }
                Ok(t.to_dtype(DType::F32)?.to_vec1()?)
            };
            stats.push(Normalizer::from_parts(
                &read("mean")?,
                &read("std")?,
                &Device::Cpu,
            )?);
        }
        let fits = get("fits")?
            .to_dtype(DType::U32)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let [fits] = fits[..] else {
            return Err(Error::Load("`fits` must hold one number".into()));
        };
        self.params.set(&values)?;
        let mut stats = stats.into_iter();
        if let (Some(obs), Some(act), Some(delta)) = (stats.next(), stats.next(), stats.next()) {
            self.stats = NormStats { obs, act, delta };
        }
        self.fits = fits as usize;
        self.optimizer.reset();
        Ok(())
    }
}

impl DynamicsModel for MlpEnsemble {
    fn ensemble_size(&self) -> usize {
        self.config.members
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> mbrl_core::Result<MemberPredictions> {
        Ok(predict_with(
            &self.weights_detached()?,
            None,
            &self.stats,
            obs,
            act,
        )?)
    }
}

/// A detached copy of an [`MlpEnsemble`] for imagined rollouts and evaluation
/// ([`MlpEnsemble::freeze`]). Cheap to clone (tensors are shared) and `Sync`. Its weights are
/// also kept laid out for gemm's microkernels, which imagined rollouts then read at every step
/// without repacking them (`mbrl_core::kernels::packed_linear`).
#[derive(Debug, Clone)]
pub struct FrozenEnsemble {
    weights: Weights,
    packed: Arc<[PackedWeights]>,
    stats: NormStats,
}

impl FrozenEnsemble {
    /// The normalisation statistics the copy was made with.
    pub fn norm_stats(&self) -> &NormStats {
        &self.stats
    }
}

impl DynamicsModel for FrozenEnsemble {
    fn ensemble_size(&self) -> usize {
        self.weights.members()
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> mbrl_core::Result<MemberPredictions> {
        Ok(predict_with(
            &self.weights,
            Some(&self.packed),
            &self.stats,
            obs,
            act,
        )?)
    }
}

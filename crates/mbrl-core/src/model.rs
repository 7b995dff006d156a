//! The dynamics-model interface: batched next-state prediction by an ensemble.
//!
//! A model with one member is an ensemble of size 1. Predictions are of the next observation
//! (implementations that learn state changes add the current state back). Probabilistic
//! members also return a log-variance per output; sampling draws `mean + exp(log_var / 2) * eps`.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, RngCore};

use crate::data::ReplayBuffer;

use crate::policy::standard_normal;
use crate::{Error, Result};

/// Predictions of every ensemble member.
#[derive(Debug, Clone)]
pub struct MemberPredictions {
    /// Predicted next observations, `[K, B, obs_dim]`.
    pub mean: Tensor,
    /// Log-variances of probabilistic members, `[K, B, obs_dim]`; `None` for deterministic ones.
    pub log_var: Option<Tensor>,
}

impl MemberPredictions {
    /// Draws from each member's predictive distribution (the mean for deterministic members).
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        match &self.log_var {
            None => Ok(self.mean.clone()),
            Some(log_var) => {
                let eps = standard_normal(self.mean.dims(), rng, self.mean.device())?;
                Ok((&self.mean + ((log_var * 0.5)?.exp()? * eps)?)?)
            }
        }
    }
}

/// A learned (or known) model of the environment's dynamics.
pub trait DynamicsModel: Send {
    /// Number of ensemble members `K`.
    fn ensemble_size(&self) -> usize;

    /// Every member's prediction. `obs` and `act` are `[B, dim]` (the same inputs for all
    /// members) or `[K, B, dim]` (member `k` gets slice `k`); the result is `[K, B, obs_dim]`.
    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions>;

    /// Member `member`'s prediction for `[B, dim]` inputs, `[B, obs_dim]`; sampled from its
    /// predictive distribution when `sample` is set.
    fn predict_member(
        &self,
        member: usize,
        obs: &Tensor,
        act: &Tensor,
        sample: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let k = self.ensemble_size();
        if member >= k {
            return Err(Error::InvalidArgument(format!(
                "ensemble member {member} requested from an ensemble of {k}"
            )));
        }
        let all = self.predict_members(obs, act)?;
        let picked = if sample { all.sample(rng)? } else { all.mean };
        Ok(picked.get(member)?)
    }

    /// Next observation for `[B, dim]` inputs. Deterministic: the mean over members of their
    /// means. Sampled: each row from a uniformly drawn member, including its noise.
    fn predict(
        &self,
        obs: &Tensor,
        act: &Tensor,
        sample: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let all = self.predict_members(obs, act)?;
        if !sample {
            return Ok(all.mean.mean(0)?);
        }
        let draws = all.sample(rng)?;
        let (k, b, d) = draws.dims3()?;
        let rows: Vec<u32> = (0..b)
            .map(|i| (rng.random_range(0..k) * b + i) as u32)
            .collect();
        let index = Tensor::from_vec(rows, b, &Device::Cpu)?;
        Ok(draws.reshape((k * b, d))?.index_select(&index, 0)?)
    }
}

/// What one model fit did, per ensemble member.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSummary {
    /// Final training loss of each member.
    pub train_loss: Vec<f64>,
    /// Validation loss of each member's final weights, when there was validation data.
    pub validation_loss: Option<Vec<f64>>,
    /// Passes over the training data each member was trained for.
    pub epochs: Vec<usize>,
}

/// What one pass of incremental training did, per ensemble member.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLosses {
    /// Mean training loss of each member over the pass (`NaN` for members left out).
    pub train_loss: Vec<f64>,
    /// Validation loss of each member after the pass, when there was validation data.
    pub validation_loss: Option<Vec<f64>>,
}

/// The moving-average early stop of thesis Appendix B.3 and Sec. 8.3, per ensemble member:
/// `avg = p * avg + (1 - p) * loss` after every pass, and a member stops as soon as its
/// average rises. [`MovingAverageStop::reset`] starts over (the asynchronous model worker does
/// so when new data arrives).
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverageStop {
    persistence: f64,
    average: Vec<Option<f64>>,
}

impl MovingAverageStop {
    /// No averages yet for `members` members, persistence `p` in `[0, 1)`.
    pub fn new(members: usize, persistence: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&persistence) {
            return Err(Error::InvalidArgument(format!(
                "the moving-average persistence must be in [0, 1), got {persistence}"
            )));
        }
        Ok(Self {
            persistence,
            average: vec![None; members],
        })
    }

    /// Forgets every average.
    pub fn reset(&mut self) {
        self.average.iter_mut().for_each(|a| *a = None);
    }

    /// Folds `loss` into member `member`'s average; `false` when the average rose (the member
    /// should stop).
    pub fn observe(&mut self, member: usize, loss: f64) -> bool {
        let p = self.persistence;
        let slot = &mut self.average[member];
        let (average, keep_going) = match *slot {
            None => (loss, true),
            Some(previous) => {
                let average = p * previous + (1.0 - p) * loss;
                (average, average <= previous)
            }
        };
        *slot = Some(average);
        keep_going
    }
}

/// A dynamics model that learns from data: what a model-based algorithm needs beyond
/// prediction. Implemented by `mbrl-models`' ensembles; algorithms receive one through a
/// [`ModelFactory`] so they never depend on a model crate.
pub trait TrainableModel: DynamicsModel {
    /// Fits the model to `train`, validating on `validation` when given (otherwise the model
    /// holds out its own validation split if it uses one).
    fn fit(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        rng: &mut dyn RngCore,
    ) -> Result<FitSummary>;
    /// One pass of training over `train` by the members whose `active` entry is set, then
    /// every member's loss on `validation` when given: the step of a worker that interleaves
    /// model training with other work (the asynchronous model worker, thesis Algorithm 7).
    /// With `renormalize` (or before the first fit) the normalisation statistics are first
    /// recomputed over `train`; the optimiser state is kept between passes.
    fn train_epoch(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        renormalize: bool,
        active: &[bool],
        rng: &mut dyn RngCore,
    ) -> Result<EpochLosses>;
    /// A detached copy for imagined rollouts: later fits do not change it and predicting with
    /// it builds no graph over the weights (it stays differentiable in its inputs).
    fn frozen(&self) -> Result<Arc<dyn DynamicsModel + Sync>>;
    /// The weights and normalisation statistics as named tensors (for checkpoints).
    fn named_tensors(&self) -> Result<HashMap<String, Tensor>>;
    /// Restores what [`TrainableModel::named_tensors`] produced.
    fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()>;
}

/// Builds a trainable model for `(obs_dim, act_dim)`, initialised from `rng`.
pub type ModelFactory =
    Arc<dyn Fn(usize, usize, &mut dyn RngCore) -> Result<Box<dyn TrainableModel>> + Send + Sync>;

impl<M: DynamicsModel + Sync + ?Sized> DynamicsModel for Arc<M> {
    fn ensemble_size(&self) -> usize {
        (**self).ensemble_size()
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        (**self).predict_members(obs, act)
    }
}

/// Checks that `obs`/`act` are `[B, dim]` or `[K, B, dim]` and returns them as `[K, B, dim]`.
pub fn broadcast_to_members(t: &Tensor, k: usize) -> Result<Tensor> {
    match t.rank() {
        2 => Ok(t.unsqueeze(0)?.broadcast_as((k, t.dim(0)?, t.dim(1)?))?),
        3 if t.dim(0)? == k => Ok(t.clone()),
        _ => Err(Error::shape(
            "dynamics model input",
            format!("[B, dim] or [{k}, B, dim]"),
            format!("{:?}", t.dims()),
        )),
    }
}

/// A `[B]` `f32` tensor of zeros (handy for models without termination heads).
pub fn zeros_like_batch(t: &Tensor) -> Result<Tensor> {
    Ok(Tensor::zeros(t.dim(0)?, DType::F32, t.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScaledDriftEnsemble;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(11)
    }

    fn inputs(b: usize) -> (Tensor, Tensor) {
        let obs = Tensor::ones((b, 1), DType::F32, &Device::Cpu).unwrap();
        let act = Tensor::ones((b, 1), DType::F32, &Device::Cpu).unwrap();
        (obs, act)
    }

    #[test]
    fn members_differ_and_the_mean_averages_them() {
        let model = ScaledDriftEnsemble::new(3, None);
        let (obs, act) = inputs(2);
        let all = model.predict_members(&obs, &act).unwrap();
        assert_eq!(all.mean.dims(), &[3, 2, 1]);
        let per: Vec<f32> = all.mean.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(per, vec![2.0, 2.0, 2.1, 2.1, 2.2, 2.2]);
        let mean = model.predict(&obs, &act, false, &mut rng()).unwrap();
        assert!((mean.to_vec2::<f32>().unwrap()[0][0] - 2.1).abs() < 1e-6);
        let m2 = model
            .predict_member(2, &obs, &act, false, &mut rng())
            .unwrap();
        assert_eq!(m2.to_vec2::<f32>().unwrap(), vec![vec![2.2], vec![2.2]]);
        assert!(model
            .predict_member(3, &obs, &act, false, &mut rng())
            .is_err());
    }

    #[test]
    fn sampled_prediction_picks_members_uniformly() {
        let model = ScaledDriftEnsemble::new(2, None);
        let (obs, act) = inputs(4000);
        let draws: Vec<f32> = model
            .predict(&obs, &act, true, &mut rng())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let share_second =
            draws.iter().filter(|&&x| (x - 2.1).abs() < 1e-6).count() as f32 / 4000.0;
        assert!(draws.iter().all(|&x| x == 2.0 || (x - 2.1).abs() < 1e-6));
        assert!((share_second - 0.5).abs() < 0.03, "{share_second}");
    }

    #[test]
    fn probabilistic_members_sample_with_std_exp_half_log_var() {
        let model = ScaledDriftEnsemble::new(1, Some((0.25f32).ln()));
        let (obs, act) = inputs(20000);
        let xs: Vec<f32> = model
            .predict_member(0, &obs, &act, true, &mut rng())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32;
        assert!(
            (mean - 2.0).abs() < 0.02 && (var - 0.25).abs() < 0.01,
            "{mean} {var}"
        );
    }

    #[test]
    fn per_member_inputs_are_accepted_and_bad_ranks_rejected() {
        let model = ScaledDriftEnsemble::new(2, None);
        let obs = Tensor::new(&[[[1.0f32]], [[5.0]]], &Device::Cpu).unwrap();
        let act = Tensor::zeros((2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let all = model.predict_members(&obs, &act).unwrap();
        assert_eq!(
            all.mean.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 5.0]
        );
        let bad = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert!(model.predict_members(&bad, &bad).is_err());
    }

    #[test]
    fn the_moving_average_stops_a_member_when_it_rises_and_resets() {
        let mut stop = MovingAverageStop::new(2, 0.5).unwrap();
        assert!(stop.observe(0, 4.0) && stop.observe(1, 4.0));
        // Averages 3.0 (falls) and 5.0 (rises: 0.5 * 4 + 0.5 * 6).
        assert!(stop.observe(0, 2.0));
        assert!(!stop.observe(1, 6.0));
        // 0.5 * 3 + 0.5 * 3.5 = 3.25 > 3: rises.
        assert!(!stop.observe(0, 3.5));
        stop.reset();
        assert!(stop.observe(0, 100.0), "a reset forgets the averages");
        assert!(MovingAverageStop::new(1, 1.0).is_err());
    }
}

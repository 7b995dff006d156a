//! The real-data buffers of a model-based algorithm: each iteration's new transitions are
//! split in trajectory order, the first `validation_share` to a FIFO validation buffer and the
//! rest to the training buffer (ME-TRPO's 2-to-1 split, Appendix A.1.1).

use std::collections::HashMap;

use std::collections::BTreeMap;

use candle_core::Tensor;
use mbrl_core::algorithm::{BuildContext, PlanningParts};
use mbrl_core::data::{ReplayBuffer, Trajectory};
use mbrl_core::env::Env;
use mbrl_core::model::{FitSummary, TrainableModel};
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};
use rand_chacha::ChaCha8Rng;

use crate::gaussian_mlp::GaussianMlpPolicy;
use crate::model_free::{load_policy_tensors, policy_tensors};

/// Training and validation buffers of real transitions.
#[derive(Debug, Clone)]
pub struct ModelData {
    /// Transitions the model trains on.
    pub train: ReplayBuffer,
    /// Transitions the model's early stopping validates on.
    pub validation: ReplayBuffer,
    validation_share: f64,
}

impl ModelData {
    /// Empty buffers of `capacity` transitions each.
    pub fn new(
        capacity: usize,
        obs_dim: usize,
        act_dim: usize,
        validation_share: f64,
    ) -> Result<Self> {
        if !(0.0..1.0).contains(&validation_share) {
            return Err(Error::InvalidArgument(format!(
                "validation_share must be in [0, 1), got {validation_share}"
            )));
        }
        Ok(Self {
            train: ReplayBuffer::new(capacity, obs_dim, act_dim)?,
            validation: ReplayBuffer::new(capacity, obs_dim, act_dim)?,
            validation_share,
        })
    }

    /// Adds one iteration's trajectories, split in trajectory order.
    pub fn add(&mut self, trajectories: &[Trajectory]) -> Result<()> {
        let total: usize = trajectories.iter().map(Trajectory::len).sum();
        let target = (total as f64 * self.validation_share).round() as usize;
        let mut sent = 0;
        for (i, traj) in trajectories.iter().enumerate() {
            // A model cannot be fitted without training data: with too few trajectories for
            // the split (one 200-step random rollout, say) the last one trains.
            let starves_training = i + 1 == trajectories.len() && self.train.is_empty();
            let buffer = if sent < target && !starves_training {
                &mut self.validation
            } else {
                &mut self.train
            };
            buffer.push_trajectory(traj)?;
            sent += traj.len();
        }
        Ok(())
    }

    /// Adds trajectories that arrive one at a time (the asynchronous model worker): each goes
    /// whole to the validation buffer while that holds less than `validation_share` of all
    /// transitions, otherwise to training.
    pub fn add_one_by_one(&mut self, trajectories: &[Trajectory]) -> Result<()> {
        for traj in trajectories {
            let total = self.train.len() + self.validation.len() + traj.len();
            let buffer = if (self.validation.len() as f64) < self.validation_share * total as f64 {
                &mut self.validation
            } else {
                &mut self.train
            };
            buffer.push_trajectory(traj)?;
        }
        Ok(())
    }

    /// Both buffers as named tensors (`train_buffer.*`, `validation_buffer.*`).
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (prefix, buffer) in [
            ("train_buffer.", &self.train),
            ("validation_buffer.", &self.validation),
        ] {
            for (name, t) in buffer.named_tensors()? {
                out.insert(format!("{prefix}{name}"), t);
            }
        }
        Ok(out)
    }

    /// Restores both buffers from [`ModelData::named_tensors`] entries of `tensors`.
    pub fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        self.train = ReplayBuffer::from_named_tensors(&with_prefix(tensors, "train_buffer."))?;
        self.validation =
            ReplayBuffer::from_named_tensors(&with_prefix(tensors, "validation_buffer."))?;
        Ok(())
    }
}

/// The entries of `tensors` whose names start with `prefix`, with the prefix removed.
pub fn with_prefix(tensors: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// `n` real start states `[n, obs_dim]`: resets of `env` with seeds drawn from `rng` (imagined
/// rollouts start from the real initial-state distribution).
pub fn real_start_states(
    env: &mut dyn Env,
    rng: &mut dyn rand::RngCore,
    n: usize,
) -> Result<Tensor> {
    let rows = (0..n)
        .map(|_| Ok(env.reset(Some(rng.next_u64()))?.0))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&rows, 0)?)
}

/// Metrics columns of a model fit, logged by every model-based trainer.
pub const FIT_COLUMNS: [&str; 3] = ["model_train_loss", "model_validation_loss", "model_epochs"];

/// A model-based trainer's metric columns: its `own`, then the [`FIT_COLUMNS`].
pub fn with_fit_columns(own: &[&str]) -> Vec<String> {
    own.iter()
        .chain(FIT_COLUMNS.iter())
        .map(|c| c.to_string())
        .collect()
}

/// The mean of `values` (0 for none).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The mean return of the episodes among `trajectories` that ended (terminated or truncated at
/// the time limit), the training return of a data-collection phase; `None` when none ended.
pub fn mean_finished_return(trajectories: &[Trajectory]) -> Option<f64> {
    let finished: Vec<f64> = trajectories
        .iter()
        .filter(|t| t.terminated || t.truncated)
        .map(Trajectory::total_return)
        .collect();
    (!finished.is_empty()).then(|| mean(&finished))
}

/// The [`FIT_COLUMNS`] of one fit: member means of the losses and of the epochs.
pub fn fit_metrics(fit: &FitSummary) -> BTreeMap<String, f64> {
    let epochs: Vec<f64> = fit.epochs.iter().map(|&e| e as f64).collect();
    let mut metrics = BTreeMap::from([
        ("model_train_loss".to_string(), mean(&fit.train_loss)),
        ("model_epochs".to_string(), mean(&epochs)),
    ]);
    if let Some(v) = &fit.validation_loss {
        metrics.insert("model_validation_loss".into(), mean(v));
    }
    metrics
}

/// The tensors of a model-based learner: policy (`policy.*`), model (`model.*`) and buffers.
pub fn learner_tensors(
    policy: &dyn GaussianPolicy,
    model: &dyn TrainableModel,
    data: &ModelData,
) -> Result<HashMap<String, Tensor>> {
    let mut tensors = policy_tensors(policy);
    for (name, t) in model.named_tensors()? {
        tensors.insert(format!("model.{name}"), t);
    }
    tensors.extend(data.named_tensors()?);
    Ok(tensors)
}

/// Restores what [`learner_tensors`] saved.
pub fn load_learner_tensors(
    policy: &dyn GaussianPolicy,
    model: &mut dyn TrainableModel,
    data: &mut ModelData,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    load_policy_tensors(policy, tensors)?;
    model.load_named_tensors(&with_prefix(tensors, "model."))?;
    data.load_named_tensors(tensors)
}

/// A model-based trainer's real environment, fresh model and the model's random stream.
pub type EnvAndModel = (Box<dyn Env>, Box<dyn TrainableModel>, ChaCha8Rng);

/// What every model-based trainer builds first: its real environment, a fresh model from the
/// configured factory (`algo` names the algorithm in the error when there is none) and the
/// model's random stream, which the model drew its initial weights from.
pub fn env_and_model(ctx: &BuildContext, algo: &str) -> Result<EnvAndModel> {
    let make_model = ctx.model_factory.clone().ok_or_else(|| {
        Error::InvalidArgument(format!("{algo} needs a dynamics model ([model] table)"))
    })?;
    let env = (ctx.env_factory)()?;
    let (obs_dim, act_dim) = (
        env.observation_space().flat_dim(),
        env.action_space().flat_dim(),
    );
    let mut model_rng = stream_rng(ctx.seed, Stream::Model);
    let model = make_model(obs_dim, act_dim, &mut model_rng)?;
    Ok((env, model, model_rng))
}

/// What test-time planning gets from a learner of a model and a Gaussian MLP policy once its
/// model has been fitted (`fitted`): snapshots of both, the policy as proposal, no terminal
/// value.
pub fn model_and_policy_planning_parts(
    model: &dyn TrainableModel,
    policy: &GaussianMlpPolicy,
    fitted: bool,
) -> Result<Option<PlanningParts>> {
    if !fitted {
        return Ok(None);
    }
    Ok(Some(PlanningParts {
        model: model.frozen()?,
        terminal_value: None,
        proposal: Some(Box::new(policy.snapshot()?)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(n: usize) -> Trajectory {
        let mut t = Trajectory::new(vec![0.0], 1);
        for i in 0..n {
            t.push(&[1.0], 0.0, vec![i as f32 + 1.0]).unwrap();
        }
        t
    }

    #[test]
    fn splits_one_third_to_validation_in_trajectory_order() {
        let mut data = ModelData::new(100, 1, 1, 1.0 / 3.0).unwrap();
        data.add(&[traj(10), traj(10), traj(10)]).unwrap();
        assert_eq!((data.validation.len(), data.train.len()), (10, 20));
        let mut restored = ModelData::new(1, 1, 1, 0.5).unwrap();
        restored
            .load_named_tensors(&data.named_tensors().unwrap())
            .unwrap();
        assert_eq!((restored.validation.len(), restored.train.len()), (10, 20));
        assert!(ModelData::new(10, 1, 1, 1.0).is_err());
    }

    #[test]
    fn a_single_first_trajectory_trains_rather_than_validates() {
        let mut data = ModelData::new(100, 1, 1, 1.0 / 3.0).unwrap();
        data.add(&[traj(10)]).unwrap();
        assert_eq!((data.validation.len(), data.train.len()), (0, 10));
        data.add(&[traj(10)]).unwrap();
        assert_eq!((data.validation.len(), data.train.len()), (10, 10));
    }

    #[test]
    fn one_by_one_keeps_the_validation_share_over_time() {
        let mut data = ModelData::new(1000, 1, 1, 1.0 / 3.0).unwrap();
        let sizes: Vec<(usize, usize)> = (0..6)
            .map(|_| {
                data.add_one_by_one(&[traj(10)]).unwrap();
                (data.validation.len(), data.train.len())
            })
            .collect();
        assert_eq!(
            sizes,
            vec![(10, 0), (10, 10), (10, 20), (20, 20), (20, 30), (20, 40)]
        );
    }
}

//! Fitting an [`MlpEnsemble`]: per-member data, Adam on minibatches, early stopping.
//!
//! One fit (thesis Algorithm 2 line 5, Appendix A.1.2 / B.3):
//! 1. re-initialise on the configured schedule, reset Adam if configured;
//! 2. recompute the normalisation statistics over the whole training buffer;
//! 3. give every member its training and validation indices: the given validation buffer for
//!    all (ME-TRPO), or its own random split (MB-MPO), optionally a bootstrap resample;
//! 4. train all members at once, each on its own minibatches, until the early-stopping rule
//!    ends the fit.

use candle_core::{Device, Tensor};
use mbrl_core::data::{ReplayBuffer, TransitionBatch};
use mbrl_core::model::{broadcast_to_members, EpochLosses, MovingAverageStop};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::config::EarlyStoppingRule;
use crate::ensemble::{MlpEnsemble, NormStats};
use crate::network::Weights;
use crate::{Error, Result};

/// Rows per forward pass when computing validation losses (bounds memory on large buffers).
const VALIDATION_CHUNK: usize = 4096;

/// What one fit did, per ensemble member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Mean training loss (the head's loss, normalised units) over the member's last pass.
    pub train_loss: Vec<f64>,
    /// Validation mean squared error (normalised state change) of the weights the member
    /// ends with; `None` when the fit had no validation data.
    pub validation_loss: Option<Vec<f64>>,
    /// Passes over the training data each member was trained for.
    pub epochs: Vec<usize>,
    /// Pass after which the member's final weights were reached (the restored best for the
    /// patience rule; `0` means the weights the fit started from were kept).
    pub best_epoch: Vec<usize>,
    /// The weights were re-initialised before this fit.
    pub reinitialized: bool,
}

/// Normalised data of one fit: inputs `[N, in]`, targets `[N, obs]`.
struct Dataset {
    x: Tensor,
    y: Tensor,
}

impl Dataset {
    fn of(buffer: &ReplayBuffer, stats: &NormStats) -> Result<Self> {
        let all = buffer.all(&Device::Cpu)?;
        Ok(Self {
            x: stats.inputs(&all.obs, &all.act)?,
            y: stats.delta.normalize(&(&all.next_obs - &all.obs)?)?,
        })
    }

    /// Rows `indices[k]` for member `k`, stacked to `[K, n, dim]` (all lists equally long).
    fn gather(&self, indices: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        let (k, n) = (indices.len(), indices.first().map_or(0, Vec::len));
        let flat: Vec<u32> = indices.concat();
        let index = Tensor::from_vec(flat, k * n, &Device::Cpu)?;
        let x = self.x.index_select(&index, 0)?;
        let y = self.y.index_select(&index, 0)?;
        Ok((
            x.reshape((k, n, self.x.dim(1)?))?,
            y.reshape((k, n, self.y.dim(1)?))?,
        ))
    }
}

/// Per-member validation data, `[K, n, dim]`.
struct Validation {
    x: Tensor,
    y: Tensor,
}

impl Validation {
    /// Mean squared error of each member on its validation rows.
    fn losses(&self, weights: &Weights) -> Result<Vec<f64>> {
        let n = self.x.dim(1)?;
        let mut sums = vec![0f64; self.x.dim(0)?];
        let mut start = 0;
        while start < n {
            let len = VALIDATION_CHUNK.min(n - start);
            let x = self.x.narrow(1, start, len)?;
            let y = self.y.narrow(1, start, len)?;
            let mse: Vec<f32> = weights.mse(&x, &y)?.to_vec1()?;
            for (s, m) in sums.iter_mut().zip(mse) {
                *s += m as f64 * len as f64;
            }
            start += len;
        }
        Ok(sums.into_iter().map(|s| s / n as f64).collect())
    }
}

/// The patience rule's record: each member's best validation loss, the pass it was reached
/// at, and the stacked parameters holding every member's best weights.
struct Best {
    loss: Vec<f64>,
    params: Vec<Tensor>,
    epoch: Vec<usize>,
}

/// Random permutation of `0..n` as `u32` indices.
fn permutation(n: usize, rng: &mut dyn RngCore) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    p.shuffle(rng);
    p
}

impl MlpEnsemble {
    /// Fits every member to `train` (thesis Algorithm 2 line 5).
    ///
    /// With `validation` given (and non-empty) every member is validated on all of it
    /// (ME-TRPO's separate validation buffer); otherwise each member holds out its own random
    /// `validation_fraction` of `train` (MB-MPO). Without any validation data the fit trains
    /// `max_epochs` passes whatever the rule. `rng` drives the splits, bootstrap resamples,
    /// minibatch order and re-initialisation.
    pub fn fit(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        rng: &mut dyn RngCore,
    ) -> Result<FitReport> {
        if train.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot fit a dynamics model to an empty buffer".into(),
            ));
        }
        let train_batch = train.all(&Device::Cpu)?;
        self.check_widths("training", &train_batch)?;
        let validation = validation.filter(|v| !v.is_empty());
        if let Some(buffer) = validation {
            self.check_widths("validation", &buffer.all(&Device::Cpu)?)?;
        }
        let config = self.config.clone();
        let k = config.members;
        // 1. Re-initialisation schedule and optimiser reset.
        let reinitialized = self.fits > 0 && self.fits.checked_rem(config.reinit_every) == Some(0);
        if reinitialized {
            self.reinitialize(rng)?;
        }
        if config.reset_optimizer_each_fit {
            self.optimizer.reset();
        }
        self.fits += 1;

        // 2. Normalisation over the whole training buffer.
        self.stats = NormStats::of_batch(&train_batch, config.std_floor)?;
        let data = Dataset::of(train, &self.stats)?;
        let n = train.len();

        // 3. Per-member training and validation indices.
        let (mut train_sets, validation) = match validation {
            Some(buffer) => {
                let held_out = Dataset::of(buffer, &self.stats)?;
                let all: Vec<u32> = (0..buffer.len() as u32).collect();
                let (x, y) = held_out.gather(&vec![all; k])?;
                (
                    vec![(0..n as u32).collect::<Vec<_>>(); k],
                    Some(Validation { x, y }),
                )
            }
            None => {
                let n_val = (config.validation_fraction * n as f64).floor() as usize;
                if n_val == 0 || n_val == n {
                    (vec![(0..n as u32).collect::<Vec<_>>(); k], None)
                } else {
                    let perms: Vec<Vec<u32>> = (0..k).map(|_| permutation(n, rng)).collect();
                    let val: Vec<Vec<u32>> = perms.iter().map(|p| p[..n_val].to_vec()).collect();
                    let (x, y) = data.gather(&val)?;
                    let train = perms.into_iter().map(|p| p[n_val..].to_vec()).collect();
                    (train, Some(Validation { x, y }))
                }
            }
        };
        if config.bootstrap {
            for set in &mut train_sets {
                *set = (0..set.len())
                    .map(|_| set[rng.random_range(0..set.len())])
                    .collect();
            }
        }
        let rule = if validation.is_some() {
            config.early_stopping
        } else {
            EarlyStoppingRule::Never
        };

        // 4. Training passes.
        let mut active = vec![true; k];
        let mut epochs = vec![0usize; k];
        let mut train_loss = vec![f64::NAN; k];
        let mut best_epoch = vec![0usize; k];
        let mut final_validation: Option<Vec<f64>> = None;
        // Patience rule: best validation losses and weights so far (the starting weights count).
        let mut best = match (&validation, rule) {
            (Some(v), EarlyStoppingRule::Patience) => Some(Best {
                loss: v.losses(&self.weights_detached()?)?,
                params: self.params.copies()?,
                epoch: vec![0; k],
            }),
            _ => None,
        };
        let mut last_improvement = 0;
        let mut moving_average = MovingAverageStop::new(k, config.moving_average_persistence)?;

        for epoch in 1..=config.max_epochs {
            let losses = self.train_pass(&data, &train_sets, &active, rng)?;
            for m in 0..k {
                if active[m] {
                    let loss = losses[m];
                    if !loss.is_finite() {
                        return Err(Error::NonFinite {
                            what: "training loss",
                            member: m,
                            epoch,
                        });
                    }
                    train_loss[m] = loss;
                    epochs[m] = epoch;
                    best_epoch[m] = epoch;
                }
            }

            match (&validation, rule) {
                // The last pass is always validated, so its progress is not thrown away.
                (Some(v), EarlyStoppingRule::Patience)
                    if epoch % config.validate_every == 0 || epoch == config.max_epochs =>
                {
                    let losses = v.losses(&self.weights_detached()?)?;
                    if let Some(best) = &mut best {
                        let improved: Vec<bool> =
                            losses.iter().zip(&best.loss).map(|(l, b)| l < b).collect();
                        if improved.iter().any(|&i| i) {
                            best.params =
                                pick_members(&self.params.detached(), &best.params, &improved)?;
                            for m in (0..k).filter(|&m| improved[m]) {
                                best.loss[m] = losses[m];
                                best.epoch[m] = epoch;
                            }
                            last_improvement = epoch;
                        }
                    }
                    if epoch - last_improvement >= config.patience {
                        break;
                    }
                }
                (Some(v), EarlyStoppingRule::MovingAverage) => {
                    let losses = v.losses(&self.weights_detached()?)?;
                    let reported = final_validation.get_or_insert_with(|| vec![f64::NAN; k]);
                    for m in 0..k {
                        if !active[m] {
                            continue;
                        }
                        if !losses[m].is_finite() {
                            return Err(Error::NonFinite {
                                what: "validation loss",
                                member: m,
                                epoch,
                            });
                        }
                        reported[m] = losses[m];
                        // Appendix B.3 says "decreases"; the rule that makes sense (and the
                        // authors' code) stops when the average rises.
                        active[m] = moving_average.observe(m, losses[m]);
                    }
                    if active.iter().all(|&a| !a) {
                        break;
                    }
                }
                _ => {}
            }
        }

        // Patience rule: every member ends with its best weights.
        if let Some(best) = best {
            self.params.set(&best.params)?;
            final_validation = Some(best.loss);
            best_epoch = best.epoch;
        }
        if final_validation.is_none() {
            if let Some(v) = &validation {
                final_validation = Some(v.losses(&self.weights_detached()?)?);
            }
        }
        let report = FitReport {
            train_loss,
            validation_loss: final_validation,
            epochs,
            best_epoch,
            reinitialized,
        };
        tracing::debug!(?report, "dynamics ensemble fit");
        Ok(report)
    }
}

impl MlpEnsemble {
    /// One pass of incremental training (`TrainableModel::train_epoch`): the `active`
    /// members take one pass of minibatches over all of `train` (normalisation recomputed
    /// first with `renormalize`), then every member is scored on `validation` when given.
    pub fn train_epoch(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        renormalize: bool,
        active: &[bool],
        rng: &mut dyn RngCore,
    ) -> Result<EpochLosses> {
        let k = self.config.members;
        if train.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot train a dynamics model on an empty buffer".into(),
            ));
        }
        if active.len() != k {
            return Err(Error::InvalidArgument(format!(
                "train_epoch got {} active flags for an ensemble of {k}",
                active.len()
            )));
        }
        let train_batch = train.all(&Device::Cpu)?;
        self.check_widths("training", &train_batch)?;
        if renormalize {
            self.stats = NormStats::of_batch(&train_batch, self.config.std_floor)?;
        }
        let data = Dataset::of(train, &self.stats)?;
        let sets = vec![(0..train.len() as u32).collect::<Vec<_>>(); k];
        let mut train_loss = self.train_pass(&data, &sets, active, rng)?;
        for (m, loss) in train_loss.iter_mut().enumerate() {
            if !active[m] {
                *loss = f64::NAN;
            } else if !loss.is_finite() {
                return Err(Error::NonFinite {
                    what: "training loss",
                    member: m,
                    epoch: 1,
                });
            }
        }
        let validation_loss = match validation.filter(|v| !v.is_empty()) {
            Some(buffer) => {
                self.check_widths("validation", &buffer.all(&Device::Cpu)?)?;
                let held_out = Dataset::of(buffer, &self.stats)?;
                let all: Vec<u32> = (0..buffer.len() as u32).collect();
                let (x, y) = held_out.gather(&vec![all; k])?;
                Some(Validation { x, y }.losses(&self.weights_detached()?)?)
            }
            None => None,
        };
        Ok(EpochLosses {
            train_loss,
            validation_loss,
        })
    }

    /// One pass over every member's `train_sets` (shuffled, or `batch_size` draws with
    /// replacement per step), one Adam step per minibatch for the `active` members; returns
    /// each member's mean loss over the pass.
    fn train_pass(
        &mut self,
        data: &Dataset,
        train_sets: &[Vec<u32>],
        active: &[bool],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f64>> {
        let (k, batch_size) = (train_sets.len(), self.config.batch_size);
        let n_train = train_sets[0].len();
        let steps = n_train.div_ceil(batch_size);
        let with_replacement = self.config.sample_with_replacement;
        let mut orders: Vec<Vec<u32>> = Vec::new();
        if !with_replacement {
            orders = train_sets
                .iter()
                .map(|set| {
                    let mut o = set.clone();
                    o.shuffle(rng);
                    o
                })
                .collect();
        }
        let mut sums = vec![0f64; k];
        let mut seen = 0usize;
        for step in 0..steps {
            let batch: Vec<Vec<u32>> = if with_replacement {
                train_sets
                    .iter()
                    .map(|set| {
                        (0..batch_size)
                            .map(|_| set[rng.random_range(0..set.len())])
                            .collect()
                    })
                    .collect()
            } else {
                let start = step * batch_size;
                let end = (start + batch_size).min(n_train);
                orders.iter().map(|o| o[start..end].to_vec()).collect()
            };
            let b = batch[0].len();
            let (x, y) = data.gather(&batch)?;
            let losses = self.step_normalized(&x, &y, active)?;
            for (s, l) in sums.iter_mut().zip(losses) {
                *s += l * b as f64;
            }
            seen += b;
        }
        Ok(sums.into_iter().map(|s| s / seen as f64).collect())
    }
}

impl MlpEnsemble {
    /// One Adam step of every member on one minibatch of raw transitions: `[B, dim]` tensors
    /// (the same rows for all members) or `[K, B, dim]` (member `k` trains on slice `k`),
    /// normalised with the statistics of the last fit. Returns each member's loss before the
    /// step. [`MlpEnsemble::fit`] is made of these; call it directly to interleave training
    /// with other work (the asynchronous model worker).
    pub fn train_step(
        &mut self,
        obs: &Tensor,
        act: &Tensor,
        next_obs: &Tensor,
    ) -> Result<Vec<f64>> {
        let k = self.config.members;
        let obs = broadcast_to_members(obs, k)?;
        let act = broadcast_to_members(act, k)?;
        let next_obs = broadcast_to_members(next_obs, k)?;
        if obs.dims() != next_obs.dims() || obs.dim(1)? != act.dim(1)? {
            return Err(Error::InvalidArgument(format!(
                "train_step needs obs and next_obs of one shape and as many actions, got {:?}, \
                 {:?} and {:?}",
                obs.dims(),
                next_obs.dims(),
                act.dims()
            )));
        }
        let x = self.stats.inputs(&obs, &act)?;
        let y = self.stats.delta.normalize(&(next_obs - &obs)?)?;
        self.step_normalized(&x, &y, &vec![true; k])
    }

    /// Rejects a buffer whose observation or action width differs from the model's.
    fn check_widths(&self, which: &str, batch: &TransitionBatch) -> Result<()> {
        let (obs, act) = (batch.obs.dim(1)?, batch.act.dim(1)?);
        if (obs, act) != (self.obs_dim, self.act_dim) {
            return Err(Error::InvalidArgument(format!(
                "the {which} buffer holds obs {obs} / act {act} wide transitions, the model \
                 was built for obs {} / act {}",
                self.obs_dim, self.act_dim
            )));
        }
        Ok(())
    }

    /// One Adam step on normalised `[K, B, in]` inputs and `[K, B, obs]` targets for the
    /// `active` members; returns every member's loss before the step.
    fn step_normalized(&mut self, x: &Tensor, y: &Tensor, active: &[bool]) -> Result<Vec<f64>> {
        let penalty = self.config.logvar_bound_penalty;
        let (losses, grads) = if self.params.arch.weight_norm {
            // Weight norm's reparameterisation has no hand-written backward: autograd.
            let losses = self.weights_tracked()?.loss(x, y, penalty)?;
            let store = losses.sum_all()?.backward()?;
            let grads = self.params.vars.iter().map(|v| store.get(v).cloned());
            (losses, grads.collect())
        } else {
            let (losses, grads) = self.weights_detached()?.loss_and_gradients(x, y, penalty)?;
            (losses, grads.into_iter().map(Some).collect::<Vec<_>>())
        };
        self.optimizer.step(&self.params.vars, &grads, active)?;
        Ok(losses
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// Per-member choice between two stacked parameter sets: member `m` from `current` where
/// `take[m]`, else from `best`. The result owns fresh storage.
fn pick_members(current: &[Tensor], best: &[Tensor], take: &[bool]) -> Result<Vec<Tensor>> {
    current
        .iter()
        .zip(best)
        .map(|(c, b)| {
            let parts: Vec<Tensor> = take
                .iter()
                .enumerate()
                .map(|(m, &t)| {
                    if t {
                        // A copy: with one member the slice is the variable's own storage,
                        // which later training steps overwrite in place.
                        c.narrow(0, m, 1)?.copy()
                    } else {
                        b.narrow(0, m, 1)
                    }
                })
                .collect::<candle_core::Result<_>>()?;
            Ok(Tensor::cat(&parts, 0)?)
        })
        .collect()
}

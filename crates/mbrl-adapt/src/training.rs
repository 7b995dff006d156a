//! Fitting the state-change model to the real data: GrBAL's meta-objective (Algorithm 9,
//! Eq. 22-23) or plain supervised learning (the MB and MB+DE baselines), over windows of
//! `M + K` consecutive transitions.
//!
//! - Meta-learned: adapt on each window's first `M` transitions ([`InnerStep`]), score the
//!   adapted model on the next `K`, one Adam step on the mean over the meta-batch through the
//!   inner step (and on `psi` when it is learnable).
//! - Supervised: the mean squared error of the unadapted model on all `M + K` transitions of
//!   the same windows (the same data per step).
//!
//! A fit recomputes the normalisation from all training data, then runs passes of
//! `max(transitions / (meta_batch * (M + K)), 1)` steps until the moving average of the
//! validation loss rises or `max_epochs` passes are done (the reference's rule). A non-finite
//! loss stops the fit with an error before the optimiser applies it.

use candle_core::Tensor;
use mbrl_core::adam::Adam;
use mbrl_core::{Error, Result};
use rand::RngCore;

use crate::adaptation::{InnerLearningRate, InnerStep};
use crate::config::AdaptConfig;
use crate::model::{DeltaModel, Normalization};
use crate::segments::{SegmentBuffer, Windows};

/// What the model is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// GrBAL: the loss on `K` transitions after adapting on the `M` before them.
    MetaLearned {
        /// Detach the inner gradient (first-order MAML).
        first_order: bool,
    },
    /// MB: the loss on every transition, no adaptation.
    Supervised,
}

/// Losses of one batch of windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowLosses {
    /// Loss on the last `K` transitions of each window with the unadapted weights.
    pub pre_adaptation: f64,
    /// Loss on the same transitions after adapting on the first `M` (equal to
    /// `pre_adaptation` for the supervised objective, which does not adapt).
    pub post_adaptation: f64,
    /// What the optimiser minimises.
    pub objective: f64,
}

/// The model, the inner step sizes and the optimiser of their training.
pub struct ModelLearner {
    /// The model.
    pub model: DeltaModel,
    /// GrBAL's `psi`.
    pub rates: InnerLearningRate,
    /// Adam over the weights (and `psi` when learnable).
    pub adam: Adam,
    /// The training objective.
    pub objective: Objective,
}

/// What a fit did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Passes over the data.
    pub epochs: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Mean training losses of the last pass.
    pub train: WindowLosses,
    /// Losses on the validation windows after the fit, when there are any.
    pub validation: Option<WindowLosses>,
}

impl ModelLearner {
    /// A learner for `model` with Adam at `learning_rate`.
    pub fn new(
        model: DeltaModel,
        rates: InnerLearningRate,
        objective: Objective,
        learning_rate: f64,
    ) -> Result<Self> {
        let mut vars = model.mlp().vars().to_vec();
        if rates.is_learnable() && matches!(objective, Objective::MetaLearned { .. }) {
            vars.extend(rates.vars().iter().cloned());
        }
        let adam = Adam::new(vars, learning_rate)?;
        Ok(Self {
            model,
            rates,
            adam,
            objective,
        })
    }

    /// The losses of `windows` (`M` = `past_steps`) as a differentiable objective.
    pub fn losses(&self, windows: &Windows, past_steps: usize) -> Result<(Tensor, WindowLosses)> {
        let weights = self.model.mlp().tracked();
        let (past, future) = windows.split(past_steps)?;
        let pre = self
            .model
            .loss(&weights, &future.obs, &future.act, &future.next_obs)?
            .mean_all()?;
        let pre_value = pre.to_scalar::<f32>()? as f64;
        match self.objective {
            Objective::MetaLearned { first_order } => {
                let step = InnerStep::new(
                    &self.model,
                    &weights,
                    &past,
                    &self.rates.tensors(),
                    first_order,
                )?;
                let post = step.loss(&self.model, &weights, &future)?.mean_all()?;
                let value = post.to_scalar::<f32>()? as f64;
                Ok((
                    post,
                    WindowLosses {
                        pre_adaptation: pre_value,
                        post_adaptation: value,
                        objective: value,
                    },
                ))
            }
            Objective::Supervised => {
                let all = self
                    .model
                    .loss(&weights, &windows.obs, &windows.act, &windows.next_obs)?
                    .mean_all()?;
                let value = all.to_scalar::<f32>()? as f64;
                Ok((
                    all,
                    WindowLosses {
                        pre_adaptation: pre_value,
                        post_adaptation: pre_value,
                        objective: value,
                    },
                ))
            }
        }
    }
}

/// A model trained on windows of consecutive transitions: what [`WindowLearner::fit`] needs
/// of GrBAL's MLP ([`ModelLearner`]) and of ReBAL's recurrent model
/// ([`crate::recurrent::RecurrentLearner`]).
pub trait WindowLearner {
    /// `(obs_dim, act_dim)` of the model.
    fn dims(&self) -> (usize, usize);

    /// Replaces the model's normalisation statistics.
    fn set_normalization(&mut self, norm: Normalization);

    /// The losses of `windows` (`M` = `past_steps`) and the differentiable objective.
    fn window_losses(&self, windows: &Windows, past_steps: usize)
        -> Result<(Tensor, WindowLosses)>;

    /// The optimiser of the objective.
    fn optimizer(&mut self) -> &mut Adam;

    /// One optimiser step on `windows`.
    fn step(&mut self, windows: &Windows, past_steps: usize) -> Result<WindowLosses> {
        let (objective, losses) = self.window_losses(windows, past_steps)?;
        if !losses.objective.is_finite() {
            return Err(Error::NonFinite {
                what: "the model's training loss".into(),
                iteration: self.optimizer().steps(),
            });
        }
        let grads = objective.backward()?;
        self.optimizer().step(&grads)?;
        Ok(losses)
    }

    /// Fits to `buffer` with `config`'s windows, batch and stopping rule.
    fn fit(
        &mut self,
        buffer: &SegmentBuffer,
        config: &AdaptConfig,
        rng: &mut dyn RngCore,
    ) -> Result<FitReport> {
        let (obs, act, delta) = buffer.train_rows();
        let norm = Normalization::fit((&obs, &act, &delta), self.dims(), config.std_floor)?;
        self.set_normalization(norm);
        let window = config.window();
        let per_epoch = (buffer.train_transitions() / (config.meta_batch_size * window)).max(1);
        let validation = buffer.validation_windows(window)?;
        let mut stop = MovingAverageStop::new(config.moving_average_persistence);
        let mut report = FitReport {
            epochs: 0,
            steps: 0,
            train: WindowLosses {
                pre_adaptation: f64::NAN,
                post_adaptation: f64::NAN,
                objective: f64::NAN,
            },
            validation: None,
        };
        for epoch in 0..config.max_epochs {
            let mut sums = [0.0f64; 3];
            for _ in 0..per_epoch {
                let windows = buffer.sample(config.meta_batch_size, window, rng)?;
                let l = self.step(&windows, config.past_steps)?;
                sums[0] += l.pre_adaptation;
                sums[1] += l.post_adaptation;
                sums[2] += l.objective;
                report.steps += 1;
            }
            let n = per_epoch as f64;
            report.train = WindowLosses {
                pre_adaptation: sums[0] / n,
                post_adaptation: sums[1] / n,
                objective: sums[2] / n,
            };
            report.epochs = epoch + 1;
            let Some(v) = &validation else { continue };
            let losses = self.window_losses(v, config.past_steps)?.1;
            if !losses.objective.is_finite() {
                return Err(Error::NonFinite {
                    what: "the model's validation loss".into(),
                    iteration: epoch as u64,
                });
            }
            report.validation = Some(losses);
            if stop.should_stop(losses.objective) {
                break;
            }
        }
        Ok(report)
    }
}

impl WindowLearner for ModelLearner {
    fn dims(&self) -> (usize, usize) {
        (self.model.obs_dim(), self.model.act_dim())
    }

    fn set_normalization(&mut self, norm: Normalization) {
        self.model.set_normalization(norm);
    }

    fn window_losses(
        &self,
        windows: &Windows,
        past_steps: usize,
    ) -> Result<(Tensor, WindowLosses)> {
        self.losses(windows, past_steps)
    }

    fn optimizer(&mut self) -> &mut Adam {
        &mut self.adam
    }
}

/// The reference's early stop: the moving average `m <- p m + (1 - p) v` of the validation
/// loss starts at `1.5 v_0` and training stops as soon as it rises.
#[derive(Debug, Clone)]
pub struct MovingAverageStop {
    persistence: f64,
    average: Option<f64>,
}

impl MovingAverageStop {
    /// A fresh rule with persistence `p` in `[0, 1)`.
    pub fn new(persistence: f64) -> Self {
        Self {
            persistence,
            average: None,
        }
    }

    /// Records a validation loss; whether training should stop.
    pub fn should_stop(&mut self, loss: f64) -> bool {
        let p = self.persistence;
        let previous = self.average.unwrap_or(1.5 * loss);
        let average = p * previous + (1.0 - p) * loss;
        self.average = Some(average);
        average > previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_moving_average_stops_once_the_loss_exceeds_it() {
        let mut stop = MovingAverageStop::new(0.5);
        // average: 1.5 -> 1.25, 1.25 -> 1.125 (loss 1.0), then a loss of 2 raises it.
        assert!(!stop.should_stop(1.0));
        assert!(!stop.should_stop(1.0));
        assert!(stop.should_stop(2.0));
    }
}

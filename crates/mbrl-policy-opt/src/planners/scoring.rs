//! Predicted returns of candidate action sequences, in every ensemble member at once.
//!
//! `N` sequences of `H` steps are rolled out from one start state in all `K` members together:
//! each model step is one `predict_members` call on `[K, N, dim]` inputs (member `k` gets
//! slice `k`), and each reward or termination is one call on the flattened `[K * N, dim]`
//! batch, so the cost per step does not grow with the number of tensor ops per candidate.
//! Per row, `sum_t gamma^t r_t` accumulates until the row terminates (the terminating
//! transition's reward counts, later ones do not, even if they are NaN); rows still alive after
//! `H` steps add `gamma^H V(s_H)` when a terminal value is given. The `K` returns of a candidate
//! are reduced by [`EnsembleReduction`]; a candidate with any non-finite member return scores
//! `-inf`, so it is never picked over a finite one.

use candle_core::{Device, Tensor};
use mbrl_core::model::DynamicsModel;
use mbrl_core::policy::Policy;
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use rand::RngCore;

use super::config::{EnsembleReduction, PlannerConfig};
use super::{Bounds, ModelCalls, TerminalValue};

/// What one planning call scores its candidates against.
pub(super) struct Scorer<'a> {
    /// The dynamics model.
    pub model: &'a dyn DynamicsModel,
    /// Reward and termination.
    pub task: &'a dyn TaskFunctions,
    /// The start state, `[1, obs_dim]`.
    pub obs: &'a Tensor,
    /// `V(s_H)` for rows alive at the horizon.
    pub terminal_value: Option<&'a TerminalValue<'a>>,
    /// Discount, ensemble reduction and model noise.
    pub config: &'a PlannerConfig,
    /// Model calls made so far in this planning call.
    pub calls: ModelCalls,
}

impl Scorer<'_> {
    /// The score of each of `n` sequences stored time-major in `actions` (`[H, N, A]`, step
    /// `t` of candidate `i` at `(t * n + i) * A`); `-inf` for non-finite ones.
    pub fn score(&mut self, actions: &[f32], n: usize, rng: &mut dyn RngCore) -> Result<Vec<f64>> {
        let member_returns = self.member_returns(actions, n, rng)?;
        let k = self.model.ensemble_size();
        Ok((0..n)
            .map(|i| {
                let returns = (0..k).map(|m| member_returns[m * n + i]);
                reduce(returns, self.config.ensemble)
            })
            .collect())
    }

    /// The proposal policy's deterministic actions over the horizon, `[H, A]` flat, rolled
    /// out from the start state through the mean of the members' predictions and clipped
    /// into the action box (MAAC's test-time CEM starts from it).
    pub fn policy_sequence(
        &mut self,
        policy: &dyn Policy,
        bounds: &Bounds,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f32>> {
        let k = self.model.ensemble_size();
        let mut obs = self.obs.clone();
        let mut sequence = Vec::with_capacity(self.config.horizon * bounds.dim());
        for t in 0..self.config.horizon {
            let mut act = policy
                .act(&obs, true, rng)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if act.len() != bounds.dim() {
                return Err(Error::shape(
                    "planner proposal policy action",
                    format!("{} values", bounds.dim()),
                    format!("{} values", act.len()),
                ));
            }
            bounds.clip(&mut act);
            sequence.extend_from_slice(&act);
            if t + 1 < self.config.horizon {
                let act = Tensor::from_vec(act, (1, bounds.dim()), &Device::Cpu)?;
                obs = self.model.predict_members(&obs, &act)?.mean.mean(0)?;
                self.calls.record(k);
            }
        }
        Ok(sequence)
    }

    /// Every member's discounted return of every candidate, `[K * N]` (member-major).
    fn member_returns(
        &mut self,
        actions: &[f32],
        n: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f64>> {
        let k = self.model.ensemble_size();
        let h = self.config.horizon;
        let obs_dim = self.obs.dim(1)?;
        let act_dim = actions.len() / (h * n).max(1);
        if k == 0 || actions.len() != h * n * act_dim {
            return Err(Error::InvalidArgument(format!(
                "planner scoring needs a non-empty ensemble and {h} x {n} x A actions, \
                 got {k} members and {} values",
                actions.len()
            )));
        }
        let rows = k * n;
        let mut obs = self
            .obs
            .reshape((1, 1, obs_dim))?
            .broadcast_as((k, n, obs_dim))?
            .contiguous()?;
        let mut returns = vec![0.0f64; rows];
        let mut alive = vec![true; rows];
        let mut discount = 1.0f64;
        for t in 0..h {
            let step = &actions[t * n * act_dim..(t + 1) * n * act_dim];
            let act = Tensor::from_slice(step, (1, n, act_dim), &Device::Cpu)?
                .broadcast_as((k, n, act_dim))?
                .contiguous()?;
            let predicted = self.model.predict_members(&obs, &act)?;
            self.calls.record(rows);
            let next = if self.config.sample_model_noise {
                predicted.sample(rng)?
            } else {
                predicted.mean
            };
            if next.dims() != [k, n, obs_dim] {
                return Err(Error::shape(
                    "planner model prediction",
                    format!("[{k}, {n}, {obs_dim}]"),
                    format!("{:?}", next.dims()),
                ));
            }
            let flat_obs = obs.reshape((rows, obs_dim))?;
            let flat_act = act.reshape((rows, act_dim))?;
            let flat_next = next.reshape((rows, obs_dim))?;
            let reward = self
                .task
                .reward(&flat_obs, &flat_act, &flat_next)?
                .to_vec1::<f32>()?;
            let done = self
                .task
                .terminated(&flat_obs, &flat_act, &flat_next)?
                .to_vec1::<f32>()?;
            if reward.len() != rows || done.len() != rows {
                return Err(Error::shape(
                    "planner reward and termination",
                    format!("[{rows}] each"),
                    format!("{} and {} values", reward.len(), done.len()),
                ));
            }
            for j in 0..rows {
                if alive[j] {
                    returns[j] += discount * reward[j] as f64;
                    alive[j] = done[j] <= 0.5;
                }
            }
            discount *= self.config.gamma;
            obs = next;
            if !alive.iter().any(|&a| a) {
                break;
            }
        }
        if let Some(value) = self.terminal_value {
            if alive.iter().any(|&a| a) {
                let v = value(&obs.reshape((rows, obs_dim))?)?.to_vec1::<f32>()?;
                if v.len() != rows {
                    return Err(Error::shape(
                        "planner terminal value",
                        format!("[{rows}]"),
                        format!("{} values", v.len()),
                    ));
                }
                for j in (0..rows).filter(|&j| alive[j]) {
                    returns[j] += discount * v[j] as f64;
                }
            }
        }
        Ok(returns)
    }
}

/// One candidate's score from its members' returns; `-inf` if any is non-finite.
fn reduce(returns: impl Iterator<Item = f64>, reduction: EnsembleReduction) -> f64 {
    let (mut sum, mut min, mut count) = (0.0, f64::INFINITY, 0usize);
    for r in returns {
        if !r.is_finite() {
            return f64::NEG_INFINITY;
        }
        sum += r;
        min = min.min(r);
        count += 1;
    }
    match reduction {
        EnsembleReduction::Mean => sum / count as f64,
        EnsembleReduction::Min => min,
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use mbrl_core::task::TaskFunctions;
    use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
    use mbrl_core::{BoxSpace, Env};
    use rand::SeedableRng;

    use crate::planners::{EnsembleReduction, PlanExtras, Planner, PlannerConfig};

    fn planner(horizon: usize, gamma: f64, ensemble: EnsembleReduction) -> Planner {
        let config = PlannerConfig {
            horizon,
            gamma,
            ensemble,
            ..PlannerConfig::default()
        };
        config
            .build(&BoxSpace::uniform(-1.0, 1.0, 1).unwrap())
            .unwrap()
    }

    /// Predicted returns of `[N, H, 1]` sequences from the 1-D state `s0`.
    fn returns(
        planner: &mut Planner,
        model: &ScaledDriftEnsemble,
        task: &dyn TaskFunctions,
        s0: f32,
        sequences: &[&[f32]],
        extras: &PlanExtras<'_>,
    ) -> Vec<f64> {
        let h = sequences[0].len();
        let flat: Vec<f32> = sequences.concat();
        let seqs = Tensor::from_vec(flat, (sequences.len(), h, 1), &Device::Cpu).unwrap();
        let obs = Tensor::new(&[s0], &Device::Cpu).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        planner
            .predicted_returns(model, task, &obs, &seqs, extras, &mut rng)
            .unwrap()
    }

    #[test]
    fn discounted_rewards_plus_the_discounted_terminal_value() {
        // Drift: s' = s + a, r = -(s' - 1)^2. From s = 0 with a = (0.5, 0.5): s1 = 0.5, r0 =
        // -0.25; s2 = 1, r1 = 0. gamma = 0.5, V(s) = 3 s: R = -0.25 + 0.5 * 0 + 0.25 * 3 = 0.5.
        // The second sequence a = (1, -1): s1 = 1, r0 = 0; s2 = 0, r1 = -1; V = 0: R = -0.5.
        let task = Drift::new().task_functions();
        let model = ScaledDriftEnsemble::new(1, None);
        let mut p = planner(2, 0.5, EnsembleReduction::Mean);
        let value = |s: &Tensor| Ok((s.squeeze(1)? * 3.0)?);
        let extras = PlanExtras {
            terminal_value: Some(&value),
            proposal: None,
        };
        let r = returns(
            &mut p,
            &model,
            task.as_ref(),
            0.0,
            &[&[0.5, 0.5], &[1.0, -1.0]],
            &extras,
        );
        assert!(
            (r[0] - 0.5).abs() < 1e-6 && (r[1] + 0.5).abs() < 1e-6,
            "{r:?}"
        );
        let without = returns(
            &mut p,
            &model,
            task.as_ref(),
            0.0,
            &[&[0.5, 0.5]],
            &PlanExtras::default(),
        );
        assert!((without[0] + 0.25).abs() < 1e-6, "{without:?}");
        // Two steps of 2 candidates, then 2 steps of 1: calls and rows are counted.
        assert_eq!((p.model_calls().calls, p.model_calls().rows), (4, 6));
    }

    /// Drift's reward and termination, with a NaN reward once `s' > 6.5` (a diverging model
    /// after the episode has ended).
    struct NanAfterEnd(std::sync::Arc<dyn TaskFunctions>);

    impl TaskFunctions for NanAfterEnd {
        fn reward(&self, obs: &Tensor, act: &Tensor, next: &Tensor) -> mbrl_core::Result<Tensor> {
            let r = self.0.reward(obs, act, next)?;
            let nan = Tensor::full(f32::NAN, r.dims(), r.device())?;
            Ok(next.squeeze(1)?.gt(6.5)?.where_cond(&nan, &r)?)
        }

        fn terminated(
            &self,
            obs: &Tensor,
            act: &Tensor,
            next: &Tensor,
        ) -> mbrl_core::Result<Tensor> {
            self.0.terminated(obs, act, next)
        }
    }

    #[test]
    fn rewards_and_the_terminal_value_stop_at_termination() {
        // Drift terminates when |s'| > 5. From s = 4 with a = 1 every step: s1 = 5 (r = -16,
        // alive), s2 = 6 (r = -25, terminal), s3 = 7 (r = NaN here, masked), so R = -41 and the
        // terminal value (100) is not added. Staying put (a = 0): 3 * -9 + 100 = 73.
        let task = NanAfterEnd(Drift::new().task_functions());
        let model = ScaledDriftEnsemble::new(1, None);
        let mut p = planner(3, 1.0, EnsembleReduction::Mean);
        let value = |s: &Tensor| Ok(Tensor::full(100f32, s.dim(0)?, s.device())?);
        let extras = PlanExtras {
            terminal_value: Some(&value),
            proposal: None,
        };
        let r = returns(
            &mut p,
            &model,
            &task,
            4.0,
            &[&[1.0, 1.0, 1.0], &[0.0, 0.0, 0.0]],
            &extras,
        );
        assert_eq!(r, vec![-41.0, 73.0]);
    }

    #[test]
    fn members_are_averaged_or_the_worst_taken_and_non_finite_scores_minus_infinity() {
        // Member k predicts s' = s + (1 + 0.1 k) a. From s = 0 with a = 1 (horizon 1): member 0
        // reaches 1 (r = 0), member 1 reaches 1.1 (r = -0.01).
        let task = Drift::new().task_functions();
        let model = ScaledDriftEnsemble::new(2, None);
        let seqs: &[&[f32]] = &[&[1.0]];
        let mut mean = planner(1, 1.0, EnsembleReduction::Mean);
        let r = returns(
            &mut mean,
            &model,
            task.as_ref(),
            0.0,
            seqs,
            &PlanExtras::default(),
        );
        assert!((r[0] + 0.005).abs() < 1e-6, "{r:?}");
        assert_eq!(mean.model_calls().rows, 2);
        let mut min = planner(1, 1.0, EnsembleReduction::Min);
        let r = returns(
            &mut min,
            &model,
            task.as_ref(),
            0.0,
            seqs,
            &PlanExtras::default(),
        );
        assert!((r[0] + 0.01).abs() < 1e-6, "{r:?}");
        let nan_task = NanAfterEnd(task);
        let r = returns(
            &mut min,
            &model,
            &nan_task,
            6.0,
            &[&[1.0], &[-1.0]],
            &PlanExtras::default(),
        );
        assert_eq!(r[0], f64::NEG_INFINITY);
        assert!(r[1].is_finite());
    }
}

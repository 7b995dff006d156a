//! The imagined-data buffer of MBPO and MAAC: short model rollouts from real states, their
//! length schedule, and the elite members MBPO rolls out in.
//!
//! Every `rollout_every` real steps, `rollout_batch` start states are drawn from the real
//! buffer and the current (stochastic) policy is rolled `k` steps in the model (each row a member
//! drawn anew at every step, with its predictive noise); every transition goes to a FIFO buffer
//! and rows stop at a predicted termination (Janner et al. 2019, Algorithm 2). `k` follows
//! MBPO's schedule `[first, last, k_first, k_last]`: `k_first` up to iteration `first`, then
//! linear to `k_last` at iteration `last`, then constant.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mbrl_core::data::ReplayBuffer;
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::model_env::ModelEnv;
use mbrl_core::policy::Policy;
use mbrl_core::{Error, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// MBPO's rollout-length schedule `[first, last, k_first, k_last]` (iterations, lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSchedule(pub [usize; 4]);

impl RolloutSchedule {
    /// The rollout length at `iteration` (counted from 1).
    pub fn length(&self, iteration: u64) -> usize {
        let [first, last, k_first, k_last] = self.0;
        let it = iteration as f64;
        if it <= first as f64 || last <= first {
            return if it >= last as f64 { k_last } else { k_first };
        }
        if it >= last as f64 {
            return k_last;
        }
        let frac = (it - first as f64) / (last - first) as f64;
        (k_first as f64 + frac * (k_last as f64 - k_first as f64)).round() as usize
    }

    /// Checks the schedule; errors name `key`.
    pub fn validate(&self, key: &str) -> Result<()> {
        let [first, last, k_first, k_last] = self.0;
        if last < first || k_first == 0 || k_last == 0 {
            return Err(Error::InvalidArgument(format!(
                "{key} is [first iteration, last iteration, first length, last length] with \
                 last >= first and positive lengths, got {:?}",
                self.0
            )));
        }
        Ok(())
    }
}

/// Rolls `policy` (stochastic) `length` steps in `model_env` from `starts` `[N, O]` and pushes
/// every transition into `buffer`; returns the number pushed.
pub fn rollout_into<M: DynamicsModel>(
    buffer: &mut ReplayBuffer,
    model_env: &ModelEnv<M>,
    policy: &dyn Policy,
    starts: &Tensor,
    length: usize,
    rng: &mut dyn RngCore,
) -> Result<usize> {
    let mut state = starts.clone();
    let mut pushed = 0;
    for _ in 0..length {
        if state.dim(0)? == 0 {
            break;
        }
        let action = policy.act(&state, false, rng)?;
        let step = model_env.step(&state, &action, rng)?;
        let (obs, act) = (state.to_vec2::<f32>()?, action.to_vec2::<f32>()?);
        let next = step.next_obs.to_vec2::<f32>()?;
        let reward = step.reward.to_vec1::<f32>()?;
        let done = step.terminated.to_vec1::<f32>()?;
        let mut alive = Vec::with_capacity(obs.len());
        for i in 0..obs.len() {
            if !reward[i].is_finite() || next[i].iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: "imagined transition (the model diverged; consider model_env.obs_clip)"
                        .into(),
                    iteration: 0,
                });
            }
            buffer.push(&obs[i], &act[i], &next[i], reward[i], done[i] > 0.5)?;
            pushed += 1;
            if done[i] <= 0.5 {
                alive.push(i as u32);
            }
        }
        let keep = Tensor::from_vec(alive.clone(), alive.len(), &Device::Cpu)?;
        state = step.next_obs.detach().index_select(&keep, 0)?;
    }
    Ok(pushed)
}

/// Some members of an ensemble (MBPO's elites: the members with the lowest validation loss).
pub struct Elites {
    inner: Arc<dyn DynamicsModel + Sync>,
    members: Vec<usize>,
    index: Tensor,
}

impl Elites {
    /// The `count` members of `inner` with the lowest `validation_loss` (all of them when the
    /// count is at least the ensemble size).
    pub fn best(
        inner: Arc<dyn DynamicsModel + Sync>,
        validation_loss: &[f64],
        count: usize,
    ) -> Result<Self> {
        let mut order: Vec<usize> = (0..validation_loss.len()).collect();
        order.sort_by(|&a, &b| validation_loss[a].total_cmp(&validation_loss[b]));
        order.truncate(count.max(1));
        order.sort_unstable();
        Self::of(inner, order)
    }

    /// The given members of `inner`.
    pub fn of(inner: Arc<dyn DynamicsModel + Sync>, members: Vec<usize>) -> Result<Self> {
        let k = inner.ensemble_size();
        if members.is_empty() || members.iter().any(|&m| m >= k) {
            return Err(Error::InvalidArgument(format!(
                "elite members {members:?} of an ensemble of {k}"
            )));
        }
        let ids: Vec<u32> = members.iter().map(|&m| m as u32).collect();
        let index = Tensor::from_vec(ids, members.len(), &Device::Cpu)?;
        Ok(Self {
            inner,
            members,
            index,
        })
    }

    /// The members used, ascending.
    pub fn members(&self) -> &[usize] {
        &self.members
    }
}

impl DynamicsModel for Elites {
    fn ensemble_size(&self) -> usize {
        self.members.len()
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        // Per-member inputs address the elites only: spread them to the full ensemble.
        let (obs, act) = if obs.rank() == 3 {
            let k = self.inner.ensemble_size();
            let spread = |t: &Tensor| -> Result<Tensor> {
                let mut slots: Vec<Tensor> = vec![t.get(0)?.zeros_like()?; k];
                for (i, &m) in self.members.iter().enumerate() {
                    slots[m] = t.get(i)?;
                }
                Ok(Tensor::stack(&slots, 0)?)
            };
            (spread(obs)?, spread(act)?)
        } else {
            (obs.clone(), act.clone())
        };
        let all = self.inner.predict_members(&obs, &act)?;
        Ok(MemberPredictions {
            mean: all.mean.index_select(&self.index, 0)?,
            log_var: match all.log_var {
                Some(lv) => Some(lv.index_select(&self.index, 0)?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::testing::ScaledDriftEnsemble;

    #[test]
    fn the_schedule_is_constant_then_linear_then_constant() {
        let s = RolloutSchedule([20, 100, 1, 15]);
        let lengths: Vec<usize> = [1, 20, 21, 60, 100, 500]
            .iter()
            .map(|&i| s.length(i))
            .collect();
        assert_eq!(lengths, vec![1, 1, 1, 8, 15, 15]);
        assert_eq!(RolloutSchedule([20, 150, 1, 1]).length(80), 1);
        assert!(RolloutSchedule([5, 1, 1, 1])
            .validate("maac.rollout_schedule")
            .is_err());
    }

    #[test]
    fn elites_are_the_lowest_validation_losses() {
        let inner: Arc<dyn DynamicsModel + Sync> = Arc::new(ScaledDriftEnsemble::new(4, None));
        let elites = Elites::best(inner, &[0.3, 0.1, 0.5, 0.2], 2).unwrap();
        assert_eq!(elites.members(), &[1, 3]);
        let obs = Tensor::new(&[[1.0f32]], &Device::Cpu).unwrap();
        let act = Tensor::new(&[[1.0f32]], &Device::Cpu).unwrap();
        // Member k predicts s + (1 + 0.1 k) a.
        let mean: Vec<f32> = elites
            .predict_members(&obs, &act)
            .unwrap()
            .mean
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            (mean[0] - 2.1).abs() < 1e-6 && (mean[1] - 2.3).abs() < 1e-6,
            "{mean:?}"
        );
        let per_member = Tensor::new(&[[[1.0f32]], [[2.0]]], &Device::Cpu).unwrap();
        let mean: Vec<f32> = elites
            .predict_members(&per_member, &per_member)
            .unwrap()
            .mean
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            (mean[0] - 2.1).abs() < 1e-6 && (mean[1] - 4.6).abs() < 1e-6,
            "{mean:?}"
        );
    }
}

//! The critics' regression targets: SAC's one-step soft Bellman target and MAAC's STEVE-style
//! model-expanded target (Buckman et al. 2018; thesis Sec. 7.3.3).
//!
//! One step: `y = r + gamma (1 - d) [min(Q1', Q2')(s', a') - alpha log pi(a'|s')]`, `a' ~ pi(s')`,
//! `Q'` the target critics.
//!
//! STEVE: for every horizon `h = 0..=H` and every ensemble member `m`, roll the policy `h` model
//! steps from `s'` in member `m` (each member its own rollout, all members in one batched call)
//! and form the candidate
//! `T_h = r + gamma (1 - d) [ sum_{j<h} gamma^j m_j r_j + gamma^h m_h (Q_i'(s_h, a_h) - alpha log pi) ]`
//! for each target head `i` (`m_j` masks steps after a predicted termination). Horizon `h`'s
//! estimate is the mean over members of the minimum over heads; its variance is that of all
//! `2 K` candidates (members and heads), so horizon 0, which uses no model, still has a finite
//! variance from the twin heads, as STEVE's candidates vary over its Q ensemble. Horizons are
//! combined with weights `1 / (var + 1e-8)`, normalised per row (the authors' rule). The authors'
//! code used a random half of the members per horizon; all members are used here.

use candle_core::{DType, Device, Tensor};
use mbrl_core::data::TransitionBatch;
use mbrl_core::model::DynamicsModel;
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use rand::RngCore;

use crate::agent::SoftActorCritic;
use crate::critic::CriticWeights;

/// Variance floor of the inverse-variance weights.
const VARIANCE_FLOOR: f64 = 1e-8;

/// SAC's one-step soft Bellman targets `[B]` (no graph).
pub fn one_step_targets(
    agent: &SoftActorCritic,
    batch: &TransitionBatch,
    rng: &mut dyn RngCore,
) -> Result<Tensor> {
    let weights = agent.actor.net().detached();
    let next = agent.actor.sample(&weights, &batch.next_obs, rng)?;
    let value = (agent
        .critic
        .min_q(CriticWeights::Target, &batch.next_obs, &next.action)?
        - (next.log_prob * agent.alpha()?)?)?;
    let not_done = (1.0 - &batch.terminated)?;
    Ok((&batch.reward + ((value * not_done)? * agent.config().gamma)?)?.detach())
}

/// How STEVE's rollouts use the model.
pub struct ModelExpansion<'a> {
    /// The dynamics model (all its members are rolled out).
    pub model: &'a dyn DynamicsModel,
    /// Reward and termination of the task.
    pub task: &'a dyn TaskFunctions,
    /// Largest horizon `H` (0 gives the one-step target's value with STEVE's weighting).
    pub horizon: usize,
    /// Sample each member's predictive noise (otherwise its mean).
    pub sample_noise: bool,
    /// Clip predicted observations to `[-c, c]`.
    pub obs_clip: Option<f32>,
}

/// STEVE targets `[B]` (no graph) and the mean weight of each horizon `[H + 1]` (for logs).
pub fn steve_targets(
    agent: &SoftActorCritic,
    batch: &TransitionBatch,
    expansion: &ModelExpansion<'_>,
    rng: &mut dyn RngCore,
) -> Result<(Tensor, Vec<f64>)> {
    let k = expansion.model.ensemble_size();
    let (b, obs_dim) = batch.next_obs.dims2()?;
    let gamma = agent.config().gamma;
    let alpha = agent.alpha()?;
    let weights = agent.actor.net().detached();
    let rows = |t: &Tensor| -> Result<Tensor> {
        let d = t.dim(t.rank() - 1)?;
        Ok(t.unsqueeze(0)?
            .broadcast_as((k, b, d))?
            .reshape((k * b, d))?)
    };
    let mut state = rows(&batch.next_obs)?;
    let reward0 = batch
        .reward
        .unsqueeze(0)?
        .broadcast_as((k, b))?
        .reshape(k * b)?;
    let not_done = (1.0 - &batch.terminated)?
        .unsqueeze(0)?
        .broadcast_as((k, b))?
        .reshape(k * b)?;
    // Running sum r + gamma (1 - d) sum_j gamma^j m_j r_j, and the weight of the next value.
    let mut partial = reward0;
    let mut scale = (not_done * gamma)?;
    let mut candidates = Vec::with_capacity(expansion.horizon + 1);
    for h in 0..=expansion.horizon {
        let next = agent.actor.sample(&weights, &state, rng)?;
        let q = agent
            .critic
            .q(CriticWeights::Target, &state, &next.action)?;
        let soft = q.broadcast_sub(&(next.log_prob.unsqueeze(0)? * alpha)?)?;
        let candidate = soft
            .broadcast_mul(&scale.unsqueeze(0)?)?
            .broadcast_add(&partial.unsqueeze(0)?)?;
        candidates.push(candidate.reshape((2, k, b))?);
        if h == expansion.horizon {
            break;
        }
        let per_member = |t: &Tensor| -> Result<Tensor> {
            let d = t.dim(1)?;
            Ok(t.reshape((k, b, d))?)
        };
        let predicted = expansion
            .model
            .predict_members(&per_member(&state)?, &per_member(&next.action)?)?;
        let next_state = if expansion.sample_noise {
            predicted.sample(rng)?
        } else {
            predicted.mean
        };
        let mut next_state = next_state.reshape((k * b, obs_dim))?;
        if let Some(c) = expansion.obs_clip {
            next_state = next_state.clamp(-c, c)?;
        }
        let reward = expansion.task.reward(&state, &next.action, &next_state)?;
        let terminated = expansion
            .task
            .terminated(&state, &next.action, &next_state)?;
        partial = (partial + (&scale * reward)?)?;
        scale = ((scale * (1.0 - terminated)?)? * gamma)?;
        state = next_state;
    }
    let (targets, horizon_weights) = combine_horizons(&candidates)?;
    Ok((targets.detach(), horizon_weights))
}

/// STEVE's inverse-variance combination of `[2, K, B]` candidates per horizon: the targets
/// `[B]` and each horizon's mean weight.
pub fn combine_horizons(candidates: &[Tensor]) -> Result<(Tensor, Vec<f64>)> {
    if candidates.is_empty() {
        return Err(Error::InvalidArgument("no STEVE candidates".into()));
    }
    let mut estimates = Vec::new();
    let mut inverse_variances = Vec::new();
    for c in candidates {
        let (heads, k, b) = c.dims3()?;
        let estimate = c.min(0)?.mean(0)?;
        let all = c.reshape((heads * k, b))?;
        let variance = all.broadcast_sub(&all.mean_keepdim(0)?)?.sqr()?.mean(0)?;
        estimates.push(estimate);
        inverse_variances.push((variance + VARIANCE_FLOOR)?.recip()?);
    }
    let estimates = Tensor::stack(&estimates, 0)?;
    let inverse = Tensor::stack(&inverse_variances, 0)?;
    let weights = inverse.broadcast_div(&inverse.sum_keepdim(0)?)?;
    let targets = (estimates * &weights)?.sum(0)?;
    let mean_weights = weights.mean(1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok((targets, mean_weights))
}

/// A `[2, K, B]` tensor from nested values (tests and examples).
pub fn candidates_from(values: &[[Vec<f32>; 2]]) -> Result<Tensor> {
    let k = values.len();
    let b = values.first().map_or(0, |v| v[0].len());
    let mut flat: Vec<f32> = Vec::with_capacity(2 * k * b);
    for head in 0..2 {
        for member in values {
            flat.extend(&member[head]);
        }
    }
    Ok(Tensor::from_vec(flat, (2, k, b), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two horizons, two members (heads per member), one row, by hand. Horizon 0: members
    /// (1, 3) and (1, 3): estimate mean of the minima = 1, candidates {1, 3, 1, 3}, variance 1.
    /// Horizon 1: members (2, 2) and (6, 6): estimate 4, candidates {2, 2, 6, 6}, variance 4.
    /// Weights 1/1 : 1/4 normalised = 0.8, 0.2; target 0.8 * 1 + 0.2 * 4 = 1.6.
    #[test]
    fn steve_weights_equal_a_hand_computation() {
        let h0 = candidates_from(&[[vec![1.0], vec![3.0]], [vec![1.0], vec![3.0]]]).unwrap();
        let h1 = candidates_from(&[[vec![2.0], vec![2.0]], [vec![6.0], vec![6.0]]]).unwrap();
        let (targets, weights) = combine_horizons(&[h0, h1]).unwrap();
        let t: Vec<f32> = targets.to_vec1().unwrap();
        assert!((t[0] - 1.6).abs() < 1e-5, "{t:?}");
        assert!(
            (weights[0] - 0.8).abs() < 1e-6 && (weights[1] - 0.2).abs() < 1e-6,
            "{weights:?}"
        );
    }

    /// Agreeing candidates (zero variance) dominate: the floor keeps the weights finite.
    #[test]
    fn a_certain_horizon_takes_all_the_weight() {
        let sure = candidates_from(&[[vec![5.0], vec![5.0]], [vec![5.0], vec![5.0]]]).unwrap();
        let unsure = candidates_from(&[[vec![0.0], vec![10.0]], [vec![-3.0], vec![3.0]]]).unwrap();
        let (targets, weights) = combine_horizons(&[unsure, sure]).unwrap();
        assert!((targets.to_vec1::<f32>().unwrap()[0] - 5.0).abs() < 1e-4);
        assert!(weights[1] > 0.999999 && weights.iter().all(|w| w.is_finite()));
    }
}

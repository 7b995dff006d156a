//! Generalised advantage estimation (Schulman et al., 2016) and the flattening of trajectories
//! into the tensors a policy optimiser consumes.
//!
//! Bootstrapping follows Gymnasium's semantics: after a terminal state the value is 0; after a
//! time-limit truncation the baseline's value of the final observation is used.

use candle_core::{Device, Tensor};
use mbrl_core::data::Trajectory;
use mbrl_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::baseline::LinearFeatureBaseline;

/// Discounting and advantage settings (part of each policy optimiser's table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvantageConfig {
    /// Discount factor. Default 0.99.
    pub gamma: f64,
    /// GAE lambda. Default 1.0 (Monte-Carlo returns minus the baseline, as in the thesis).
    pub gae_lambda: f64,
    /// Normalise advantages to zero mean and unit std per batch. Default true.
    pub normalize_advantages: bool,
}

impl Default for AdvantageConfig {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            gae_lambda: 1.0,
            normalize_advantages: true,
        }
    }
}

/// `A_t = sum_l (gamma lambda)^l delta_{t+l}` with `delta_t = r_t + gamma V_{t+1} - V_t`.
/// `values` has one more entry than `rewards`: the bootstrap value of the final state.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lambda: f64) -> Vec<f64> {
    let mut adv = vec![0.0; rewards.len()];
    let mut acc = 0.0;
    for t in (0..rewards.len()).rev() {
        let delta = rewards[t] + gamma * values[t + 1] - values[t];
        acc = delta + gamma * lambda * acc;
        adv[t] = acc;
    }
    adv
}

/// Trajectories flattened into tensors for a policy update.
#[derive(Debug, Clone)]
pub struct PolicyBatch {
    /// `[N, obs_dim]`.
    pub obs: Tensor,
    /// `[N, act_dim]`.
    pub act: Tensor,
    /// `[N]` advantages (normalised if configured).
    pub advantages: Tensor,
    /// Mean undiscounted return of the trajectories.
    pub mean_return: f64,
}

impl PolicyBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.obs.dims()[0]
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fits `baseline` to the trajectories' returns, computes GAE advantages and flattens
/// everything into a [`PolicyBatch`].
pub fn process_trajectories(
    trajectories: &[Trajectory],
    baseline: &mut LinearFeatureBaseline,
    config: &AdvantageConfig,
) -> Result<PolicyBatch> {
    let trajectories: Vec<&Trajectory> = trajectories.iter().filter(|t| !t.is_empty()).collect();
    let Some(first) = trajectories.first() else {
        return Err(Error::InvalidArgument(
            "no transitions to learn from".into(),
        ));
    };
    let (obs_dim, act_dim) = (first.obs_dim, first.act_dim);
    let owned: Vec<Trajectory> = trajectories.iter().map(|t| (*t).clone()).collect();
    baseline.fit_trajectories(&owned, config.gamma)?;
    let n: usize = trajectories.iter().map(|t| t.len()).sum();
    let mut obs = Vec::with_capacity(n * obs_dim);
    let mut act = Vec::with_capacity(n * act_dim);
    let mut advantages = Vec::with_capacity(n);
    for traj in &trajectories {
        let mut values = baseline.predict_trajectory(traj);
        if traj.terminated {
            *values.last_mut().expect("T + 1 values") = 0.0;
        }
        advantages.extend(gae(&traj.rewards, &values, config.gamma, config.gae_lambda));
        obs.extend_from_slice(&traj.observations);
        act.extend_from_slice(&traj.actions);
    }
    if config.normalize_advantages && n > 1 {
        let mean = advantages.iter().sum::<f64>() / n as f64;
        let std = (advantages.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        for a in &mut advantages {
            *a = (*a - mean) / (std + 1e-8);
        }
    }
    let dev = Device::Cpu;
    let mean_return =
        trajectories.iter().map(|t| t.total_return()).sum::<f64>() / trajectories.len() as f64;
    Ok(PolicyBatch {
        obs: Tensor::from_vec(obs, (n, obs_dim), &dev)?,
        act: Tensor::from_vec(act, (n, act_dim), &dev)?,
        advantages: Tensor::from_vec(
            advantages.iter().map(|&a| a as f32).collect::<Vec<_>>(),
            n,
            &dev,
        )?,
        mean_return,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_equals_a_hand_computation() {
        let r = [1.0, 0.0, 2.0];
        let v = [0.5, 1.0, -1.0, 3.0];
        let (g, l) = (0.9, 0.8);
        // delta_t = r_t + gamma V_{t+1} - V_t
        let d0 = 1.4; // 1 + 0.9 * 1 - 0.5
        let d1 = -1.9; // 0 + 0.9 * (-1) - 1
        let d2 = 5.7; // 2 + 0.9 * 3 + 1
        let a2 = d2;
        let a1 = d1 + g * l * a2;
        let a0 = d0 + g * l * a1;
        let out = gae(&r, &v, g, l);
        for (x, y) in out.iter().zip([a0, a1, a2]) {
            assert!((x - y).abs() < 1e-12);
        }
        // lambda = 1 gives discounted returns (with bootstrap) minus values.
        let mc = gae(&r, &v, g, 1.0);
        let ret0 = 1.0 + 0.9 * 0.0 + 0.81 * 2.0 + 0.729 * 3.0;
        assert!((mc[0] - (ret0 - 0.5)).abs() < 1e-12);
    }

    fn traj(rewards: &[f64], terminated: bool) -> Trajectory {
        let mut t = Trajectory::new(vec![0.0], 1);
        for (i, &r) in rewards.iter().enumerate() {
            t.push(&[0.0], r, vec![i as f32 + 1.0]).unwrap();
        }
        t.terminated = terminated;
        t.truncated = !terminated;
        t
    }

    #[test]
    fn terminal_states_are_not_bootstrapped_and_batches_flatten_in_order() {
        let trajs = vec![traj(&[1.0, 1.0], true), traj(&[0.0, 0.0, 0.0], false)];
        let config = AdvantageConfig {
            gamma: 1.0,
            gae_lambda: 1.0,
            normalize_advantages: false,
        };
        let mut baseline = LinearFeatureBaseline::new();
        let batch = process_trajectories(&trajs, &mut baseline, &config).unwrap();
        assert_eq!(batch.len(), 5);
        assert_eq!(batch.mean_return, 1.0);
        let adv = batch.advantages.to_vec1::<f32>().unwrap();
        // First trajectory: A_0 = r_0 + r_1 - V(s_0) with no bootstrap after the terminal state.
        let v0 = baseline.predict(&[0.0], 0);
        assert!((adv[0] as f64 - (2.0 - v0)).abs() < 1e-4);
        // Second trajectory is truncated: its last advantage bootstraps with V(o_3, t=3).
        let v_last = baseline.predict(&[3.0], 3) - baseline.predict(&[2.0], 2);
        assert!((adv[4] as f64 - v_last).abs() < 1e-4);
    }

    #[test]
    fn normalised_advantages_have_zero_mean_unit_std() {
        let trajs = vec![traj(&[1.0, 3.0, -2.0], false), traj(&[0.5, 7.0], true)];
        let batch = process_trajectories(
            &trajs,
            &mut LinearFeatureBaseline::new(),
            &AdvantageConfig::default(),
        )
        .unwrap();
        let adv = batch.advantages.to_vec1::<f32>().unwrap();
        let mean: f32 = adv.iter().sum::<f32>() / adv.len() as f32;
        let var: f32 = adv.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / adv.len() as f32;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3);
        assert!(process_trajectories(
            &[],
            &mut LinearFeatureBaseline::new(),
            &AdvantageConfig::default()
        )
        .is_err());
    }
}

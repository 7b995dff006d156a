//! The per-task sample sets that meta-gradients are computed from, and a policy that acts with
//! given (e.g. adapted) parameters.
//!
//! Trajectories are laid out as a padded `[n, T]` grid (trajectory `i`, time `t`), so the
//! cumulative sums of DiCE (Eq. 15) are one matrix product. Padding after a terminal state has
//! weight 0. The same layout serves real-environment rollouts (ProMP) and imagined rollouts in
//! a learned model (MB-MPO: one task per ensemble member).

use candle_core::{Device, Tensor};
use mbrl_core::data::Trajectory;
use mbrl_core::policy::{GaussianPolicy, Policy};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::advantages::{gae, AdvantageConfig};
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use rand::RngCore;

/// Everything a surrogate objective needs besides the policy's log-probabilities, each
/// `[n, T]` (trajectory, time).
#[derive(Debug, Clone)]
pub struct SurrogateTerms {
    /// Weight of each step in the objective (0 on padding). The trainer uses
    /// `1 / (number of real steps)` (a mean over samples, as the ProMP implementation);
    /// exact-expectation tests use trajectory probabilities.
    pub weights: Tensor,
    /// Advantages (GAE with the task's own baseline, normalised per task if configured).
    pub advantages: Tensor,
    /// `gamma^t r_t`: the per-step rewards of DiCE (Eq. 15); with normalised advantages,
    /// shifted and scaled so that `gamma^t (r_t - b_t)` has zero mean and unit std per task.
    pub discounted_rewards: Tensor,
    /// `gamma^t b(s_t)`: the baseline of DiCE's variance-reduction term (Foerster et al., 2018),
    /// with the same scale as `discounted_rewards`.
    pub discounted_baselines: Tensor,
    /// Log-probabilities of the actions under the policy that sampled them (no gradient).
    pub ref_log_prob: Tensor,
}

/// One task's trajectories in the padded layout, with their surrogate terms.
#[derive(Debug, Clone)]
pub struct TaskSamples {
    /// `[n T, obs_dim]`, row `i T + t`.
    pub obs: Tensor,
    /// `[n T, act_dim]`.
    pub act: Tensor,
    /// The `[n, T]` terms.
    pub terms: SurrogateTerms,
    /// Undiscounted return of each trajectory.
    pub returns: Vec<f64>,
    /// Number of real (unpadded) steps.
    pub steps: usize,
}

impl TaskSamples {
    /// Lays out `trajectories` of one task sampled with `sampling_params`: fits `baseline` to
    /// them first (per task, never reusing another task's fit: the reference MB-MPO bug of
    /// ALGORITHM_NOTES), then computes advantages and reference log-probabilities.
    pub fn from_trajectories(
        trajectories: &[Trajectory],
        policy: &dyn GaussianPolicy,
        sampling_params: &[Tensor],
        baseline: &mut LinearFeatureBaseline,
        config: &AdvantageConfig,
    ) -> Result<Self> {
        let trajs: Vec<&Trajectory> = trajectories.iter().filter(|t| !t.is_empty()).collect();
        let Some(first) = trajs.first() else {
            return Err(Error::InvalidArgument(
                "a task has no transitions to learn from".into(),
            ));
        };
        let (obs_dim, act_dim) = (first.obs_dim, first.act_dim);
        let owned: Vec<Trajectory> = trajs.iter().map(|t| (*t).clone()).collect();
        baseline.fit_trajectories(&owned, config.gamma)?;
        let n = trajs.len();
        let horizon = trajs.iter().map(|t| t.len()).max().unwrap_or(0);
        let cells = n * horizon;
        let mut obs = vec![0f32; cells * obs_dim];
        let mut act = vec![0f32; cells * act_dim];
        let mut mask = vec![0f64; cells];
        let mut adv = vec![0f64; cells];
        let mut disc_r = vec![0f64; cells];
        let mut disc_b = vec![0f64; cells];
        for (i, traj) in trajs.iter().enumerate() {
            let mut values = baseline.predict_trajectory(traj);
            if traj.terminated {
                *values.last_mut().expect("T + 1 values") = 0.0;
            }
            let a = gae(&traj.rewards, &values, config.gamma, config.gae_lambda);
            for t in 0..traj.len() {
                let cell = i * horizon + t;
                let discount = config.gamma.powi(t as i32);
                obs[cell * obs_dim..(cell + 1) * obs_dim].copy_from_slice(traj.obs(t));
                act[cell * act_dim..(cell + 1) * act_dim]
                    .copy_from_slice(&traj.actions[t * act_dim..(t + 1) * act_dim]);
                mask[cell] = 1.0;
                adv[cell] = a[t];
                disc_r[cell] = discount * traj.rewards[t];
                disc_b[cell] = discount * values[t];
            }
        }
        let steps: usize = trajs.iter().map(|t| t.len()).sum();
        if config.normalize_advantages && steps > 1 {
            let (mean, std) = masked_mean_std(&adv, &mask, steps);
            for (a, m) in adv.iter_mut().zip(&mask) {
                *a = m * (*a - mean) / std;
            }
            // DiCE's terms as the reference implementation normalises its "adjusted rewards"
            // `gamma^t (r_t - b_t)`: their mean comes off the rewards (a constant inside the
            // magic box, zero in expectation) and both terms are divided by their std, so the
            // inner step has the scale of the normalised-advantage estimators.
            let adjusted: Vec<f64> = disc_r.iter().zip(&disc_b).map(|(r, b)| r - b).collect();
            let (mean, std) = masked_mean_std(&adjusted, &mask, steps);
            for ((r, b), m) in disc_r.iter_mut().zip(disc_b.iter_mut()).zip(&mask) {
                *r = m * (*r - mean) / std;
                *b = m * *b / std;
            }
        }
        let dev = Device::Cpu;
        let grid = |v: Vec<f64>| -> Result<Tensor> {
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            Ok(Tensor::from_vec(v, (n, horizon), &dev)?)
        };
        let obs = Tensor::from_vec(obs, (cells, obs_dim), &dev)?;
        let act = Tensor::from_vec(act, (cells, act_dim), &dev)?;
        let detached: Vec<Tensor> = sampling_params.iter().map(|p| p.detach()).collect();
        let ref_log_prob = policy
            .distribution_with(&detached, &obs)?
            .log_prob(&act)?
            .reshape((n, horizon))?
            .detach();
        let weights = grid(mask.iter().map(|m| m / steps as f64).collect())?;
        Ok(Self {
            obs,
            act,
            terms: SurrogateTerms {
                weights,
                advantages: grid(adv)?,
                discounted_rewards: grid(disc_r)?,
                discounted_baselines: grid(disc_b)?,
                ref_log_prob,
            },
            returns: trajs.iter().map(|t| t.total_return()).collect(),
            steps,
        })
    }

    /// Number of trajectories.
    pub fn num_trajectories(&self) -> usize {
        self.terms.weights.dims()[0]
    }

    /// Padded trajectory length `T`.
    pub fn horizon(&self) -> usize {
        self.terms.weights.dims()[1]
    }

    /// Mean undiscounted return.
    pub fn mean_return(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len().max(1) as f64
    }

    /// Log-probabilities `[n, T]` of the sampled actions under `params` (differentiable).
    pub fn log_prob(&self, policy: &dyn GaussianPolicy, params: &[Tensor]) -> Result<Tensor> {
        Ok(policy
            .distribution_with(params, &self.obs)?
            .log_prob(&self.act)?
            .reshape((self.num_trajectories(), self.horizon()))?)
    }

    /// Mean `KL(pi_old || pi_new)` over the real steps.
    pub fn mean_kl(
        &self,
        policy: &dyn GaussianPolicy,
        old: &[Tensor],
        new: &[Tensor],
    ) -> Result<Tensor> {
        let p = policy.distribution_with(old, &self.obs)?;
        let q = policy.distribution_with(new, &self.obs)?;
        let kl = p.kl(&q)?.reshape(self.terms.weights.dims())?;
        Ok((kl * &self.terms.weights)?.sum_all()?)
    }
}

/// A policy acting with explicitly given parameters (the adapted `theta'` of a task).
pub struct ParamsPolicy<'a, P: GaussianPolicy + Sync> {
    policy: &'a P,
    params: Vec<Tensor>,
}

impl<'a, P: GaussianPolicy + Sync> ParamsPolicy<'a, P> {
    /// `policy`'s architecture with `params` (detached).
    pub fn new(policy: &'a P, params: &[Tensor]) -> Self {
        Self {
            policy,
            params: params.iter().map(|p| p.detach()).collect(),
        }
    }
}

impl<P: GaussianPolicy + Sync> Policy for ParamsPolicy<'_, P> {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let dist = self.policy.distribution_with(&self.params, obs)?;
        if deterministic {
            Ok(dist.mode())
        } else {
            dist.sample(rng)
        }
    }
}

/// Copies of tensors that no later `Var::set` can change and that carry no gradient.
pub fn snapshot(params: &[Tensor]) -> Result<Vec<Tensor>> {
    params
        .iter()
        .map(|p| Ok(p.copy()?.detach()))
        .collect::<Result<Vec<_>>>()
}

/// Mean and std (plus 1e-8) of the `mask`ed entries of `values`, `steps` of them.
fn masked_mean_std(values: &[f64], mask: &[f64], steps: usize) -> (f64, f64) {
    let mean = values.iter().zip(mask).map(|(v, m)| m * v).sum::<f64>() / steps as f64;
    let var = values
        .iter()
        .zip(mask)
        .map(|(v, m)| m * (v - mean).powi(2))
        .sum::<f64>()
        / steps as f64;
    (mean, var.sqrt() + 1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::testing::LinearGaussianPolicy;

    /// Three trajectories of different lengths (so some cells are padding) with rewards far
    /// from zero mean.
    fn samples(normalize_advantages: bool) -> TaskSamples {
        let trajectories: Vec<Trajectory> = [4usize, 6, 5]
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut traj = Trajectory::new(vec![0.1 * i as f32], 1);
                for t in 0..len {
                    let x = (i * 7 + t) as f32 * 0.1;
                    traj.push(&[x.sin()], 20.0 + 3.0 * (x as f64).cos(), vec![x])
                        .unwrap();
                }
                traj
            })
            .collect();
        let policy = LinearGaussianPolicy::new(1, 1, 0.0).unwrap();
        let config = AdvantageConfig {
            normalize_advantages,
            ..AdvantageConfig::default()
        };
        TaskSamples::from_trajectories(
            &trajectories,
            &policy,
            &policy.parameter_tensors(),
            &mut LinearFeatureBaseline::new(),
            &config,
        )
        .unwrap()
    }

    fn cells(t: &Tensor) -> Vec<f64> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.into_iter().map(f64::from).collect()
    }

    #[test]
    fn normalisation_gives_dice_adjusted_rewards_zero_mean_and_unit_std() {
        let raw = samples(false);
        let normalised = samples(true);
        let mask: Vec<f64> = cells(&raw.terms.weights)
            .iter()
            .map(|w| if *w > 0.0 { 1.0 } else { 0.0 })
            .collect();
        let adjusted = |s: &TaskSamples| -> Vec<f64> {
            cells(&s.terms.discounted_rewards)
                .iter()
                .zip(cells(&s.terms.discounted_baselines))
                .map(|(r, b)| r - b)
                .collect()
        };
        let (raw_adj, adj) = (adjusted(&raw), adjusted(&normalised));
        let (mean, std) = masked_mean_std(&adj, &mask, normalised.steps);
        assert!(
            mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-4,
            "{mean} {std}"
        );
        // An affine map of the raw adjusted rewards, zero on padding.
        let (raw_mean, raw_std) = masked_mean_std(&raw_adj, &mask, raw.steps);
        assert!(
            raw_std > 0.1 && raw_mean.abs() > 1.0,
            "{raw_mean} {raw_std}"
        );
        for ((a, r), m) in adj.iter().zip(&raw_adj).zip(&mask) {
            assert!(
                (a - m * (r - raw_mean) / raw_std).abs() < 1e-4,
                "{a} vs {r}"
            );
        }
        // The baselines are only rescaled.
        let ratio: Vec<f64> = cells(&normalised.terms.discounted_baselines)
            .iter()
            .zip(cells(&raw.terms.discounted_baselines))
            .filter(|(_, b)| b.abs() > 1e-3)
            .map(|(n, b)| n / b)
            .collect();
        assert!(
            ratio.iter().all(|q| (q - 1.0 / raw_std).abs() < 1e-4),
            "{ratio:?}"
        );
    }
}

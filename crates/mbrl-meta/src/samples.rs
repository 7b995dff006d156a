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
    /// `gamma^t r_t`: the per-step rewards of DiCE (Eq. 15).
    pub discounted_rewards: Tensor,
    /// `gamma^t b(s_t)`: the baseline of DiCE's variance-reduction term (Foerster et al., 2018).
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
            let mean = adv.iter().sum::<f64>() / steps as f64;
            let var = adv
                .iter()
                .zip(&mask)
                .map(|(a, m)| m * (a - mean).powi(2))
                .sum::<f64>()
                / steps as f64;
            for (a, m) in adv.iter_mut().zip(&mask) {
                *a = m * (*a - mean) / (var.sqrt() + 1e-8);
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

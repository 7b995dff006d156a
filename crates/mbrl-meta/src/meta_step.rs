//! One MB-MPO meta step (thesis Algorithm 3, lines 5-10) over the members of an ensemble: per
//! task (a member), imagined rollouts with `theta`, the inner step to `theta'_k`, post-update
//! rollouts with `theta'_k`, then one MAML-TRPO step. MB-MPO's policy phase repeats it; the
//! asynchronous MB-MPO policy worker takes one per loop.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::data::Trajectory;
use mbrl_core::higher_order;
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::ModelEnv;
use mbrl_core::policy::{GaussianPolicy, Policy};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::imagination::imagine_members;
use mbrl_policy_opt::imagined_update::draw_rows;
use mbrl_policy_opt::trpo::TrpoConfig;
use rand::RngCore;

use crate::adaptation::{adapt, InnerStepSize};
use crate::maml_trpo::maml_trpo_step;
use crate::mb_mpo::{MbMpoConfig, Settings};
use crate::meta_objective::MetaTaskSamples;
use crate::samples::{snapshot, TaskSamples};

/// The ensemble as the imagined environment (possibly biased and noisy).
pub type Imagined = ModelEnv<Arc<dyn DynamicsModel + Sync>>;

/// One meta-step's imagined tasks.
pub struct ImaginedBatch {
    /// Each task's pre- and post-update samples.
    pub tasks: Vec<MetaTaskSamples>,
    /// Mean imagined return before adaptation.
    pub pre_return: f64,
    /// Mean imagined return after adaptation.
    pub post_return: f64,
}

/// A policy whose rows are split into equal blocks, block `t` acting with `params[t]`: all
/// tasks' post-update rollouts in one batched imagination.
struct BlockPolicy<'a> {
    policy: &'a GaussianMlpPolicy,
    params: &'a [Vec<Tensor>],
    rows: usize,
}

impl Policy for BlockPolicy<'_> {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let blocks = self
            .params
            .iter()
            .enumerate()
            .map(|(t, params)| {
                let dist = self
                    .policy
                    .distribution_with(params, &obs.narrow(0, t * self.rows, self.rows)?)?;
                if deterministic {
                    Ok(dist.mode())
                } else {
                    dist.sample(rng)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&blocks, 0)?)
    }
}

/// What one meta step reads: the meta-policy and its inner step size, the settings and the
/// imagined horizon.
pub struct MetaStep<'a> {
    /// The pre-update (meta-learned) policy `theta`, updated in place by the meta step.
    pub policy: &'a GaussianMlpPolicy,
    /// The inner step size `alpha`.
    pub alpha: &'a InnerStepSize,
    /// The `[mb_mpo]` table.
    pub config: &'a MbMpoConfig,
    /// The `[advantage]` table.
    pub advantage: &'a AdvantageConfig,
    /// The outer trust region.
    pub trpo: &'a TrpoConfig,
    /// Imagined rollout length.
    pub horizon: usize,
}

impl<'a> MetaStep<'a> {
    /// The meta step of `policy` and `alpha` with MB-MPO's `settings`.
    pub fn new(
        policy: &'a GaussianMlpPolicy,
        alpha: &'a InnerStepSize,
        settings: &'a Settings,
        horizon: usize,
    ) -> Self {
        Self {
            policy,
            alpha,
            config: &settings.mb_mpo,
            advantage: &settings.advantage,
            trpo: &settings.trpo,
            horizon,
        }
    }

    /// `tasks * rollouts_per_task` start states drawn uniformly from `pool`.
    fn draw_starts(&self, pool: &Tensor, tasks: usize, rng: &mut dyn RngCore) -> Result<Tensor> {
        draw_rows(pool, tasks * self.config.rollouts_per_task, rng)
    }

    /// One task's samples from its block of imagined trajectories (own baseline per task).
    fn task_samples(&self, trajectories: &[Trajectory], params: &[Tensor]) -> Result<TaskSamples> {
        TaskSamples::from_trajectories(
            trajectories,
            self.policy,
            params,
            &mut LinearFeatureBaseline::new(),
            self.advantage,
        )
    }

    /// Pre-update rollouts with `theta` in each task's member and the inner step: returns the
    /// pre-update samples and the adapted parameters `theta'` per task.
    pub fn adapt_to_members(
        &self,
        env: &Imagined,
        pool: &Tensor,
        members: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<(Vec<TaskSamples>, Vec<Vec<Tensor>>)> {
        let starts = self.draw_starts(pool, members.len(), rng)?;
        self.adapt_from(env, &starts, members, rng)
    }

    /// [`MetaStep::adapt_to_members`] from given start states: block `t` of `starts` (equal
    /// blocks, one per entry of `members`) is rolled out in member `members[t]`.
    pub fn adapt_from(
        &self,
        env: &Imagined,
        starts: &Tensor,
        members: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<(Vec<TaskSamples>, Vec<Vec<Tensor>>)> {
        let n = starts.dim(0)? / members.len().max(1);
        if n == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} start states for {} tasks",
                starts.dim(0)?,
                members.len()
            )));
        }
        let rows: Vec<usize> = members.iter().flat_map(|&m| vec![m; n]).collect();
        let trajectories =
            imagine_members(env, self.policy, starts, self.horizon, false, &rows, rng)?;
        let theta = snapshot(&self.policy.parameter_tensors())?;
        let alpha = self.alpha.tensors();
        let mut pre = Vec::with_capacity(members.len());
        let mut adapted = Vec::with_capacity(members.len());
        for block in trajectories.chunks(n) {
            let samples = self.task_samples(block, &theta)?;
            adapted.push(snapshot(&adapt(
                self.policy,
                &theta,
                std::slice::from_ref(&samples),
                &alpha,
                self.config.estimator,
            )?)?);
            pre.push(samples);
        }
        Ok((pre, adapted))
    }

    /// Algorithm 3, lines 5-9: the meta-batch of one meta step.
    pub fn imagine_tasks(
        &self,
        env: &Imagined,
        pool: &Tensor,
        rng: &mut dyn RngCore,
    ) -> Result<ImaginedBatch> {
        let c = self.config;
        let k = env.model().ensemble_size();
        let members: Vec<usize> = (0..c.tasks_per_model).flat_map(|_| 0..k).collect();
        let n = c.rollouts_per_task;
        let (pre, adapted) = self.adapt_to_members(env, pool, &members, rng)?;
        let starts = self.draw_starts(pool, members.len(), rng)?;
        let rows: Vec<usize> = members.iter().flat_map(|&m| vec![m; n]).collect();
        let actor = BlockPolicy {
            policy: self.policy,
            params: &adapted,
            rows: n,
        };
        let trajectories = imagine_members(env, &actor, &starts, self.horizon, false, &rows, rng)?;
        let mut tasks = Vec::with_capacity(members.len());
        for ((block, params), samples) in trajectories.chunks(n).zip(&adapted).zip(pre) {
            tasks.push(MetaTaskSamples {
                inner: vec![samples],
                post: self.task_samples(block, params)?,
            });
        }
        let mean = |f: &dyn Fn(&MetaTaskSamples) -> f64| {
            tasks.iter().map(f).sum::<f64>() / tasks.len() as f64
        };
        Ok(ImaginedBatch {
            pre_return: mean(&|t| t.inner[0].mean_return()),
            post_return: mean(&|t| t.post.mean_return()),
            tasks,
        })
    }

    /// Algorithm 3, line 10: one MAML-TRPO step on a higher-order thread; returns the KL.
    pub fn meta_update(&self, batch: &ImaginedBatch) -> Result<f64> {
        let c = self.config;
        let (policy, alpha, tasks) = (self.policy, self.alpha, &batch.tasks);
        let (estimator, trpo, eps) = (c.estimator, self.trpo, c.fvp_epsilon);
        let stats =
            higher_order::run(move || maml_trpo_step(policy, alpha, tasks, estimator, trpo, eps))?;
        Ok(stats.kl)
    }
}

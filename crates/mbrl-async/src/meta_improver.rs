//! Asynchronous MB-MPO's policy step: one MB-MPO meta step (`mbrl_meta::meta_step`, the code
//! of MB-MPO's own policy phase) over the members of the newest pulled ensemble, from a pool
//! of real start states.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::higher_order;
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::ModelEnv;
use mbrl_core::task::TaskFunctions;
use mbrl_core::Result;
use mbrl_meta::adaptation::InnerStepSize;
use mbrl_meta::mb_mpo::Settings;
use mbrl_meta::meta_step::MetaStep;
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use rand_chacha::ChaCha8Rng;

use crate::policy_worker::Improver;

/// MB-MPO's meta step as a policy worker's step.
pub struct MetaImprover {
    policy: GaussianMlpPolicy,
    alpha: InnerStepSize,
    settings: Settings,
    horizon: usize,
    start_pool: Tensor,
    task: Arc<dyn TaskFunctions>,
}

impl MetaImprover {
    /// Meta-trains `policy` with the `[mb_mpo]` settings over imagined rollouts of `horizon`
    /// steps from `start_pool` in `task`.
    pub fn new(
        policy: GaussianMlpPolicy,
        settings: Settings,
        horizon: usize,
        start_pool: Tensor,
        task: Arc<dyn TaskFunctions>,
    ) -> Result<Self> {
        let alpha = InnerStepSize::uniform(&policy, settings.mb_mpo.inner_step_size, false)?;
        Ok(Self {
            policy,
            alpha,
            settings,
            horizon,
            start_pool,
            task,
        })
    }
}

impl Improver for MetaImprover {
    fn policy(&self) -> &GaussianMlpPolicy {
        &self.policy
    }

    fn improve(
        &mut self,
        model: Arc<dyn DynamicsModel + Sync>,
        rng: &mut ChaCha8Rng,
    ) -> Result<f64> {
        // Before this thread's first backward pass (the meta-update runs on its own thread).
        higher_order::enable();
        let config = &self.settings.mb_mpo;
        let env = ModelEnv::new(model, self.task.clone(), config.model_env.clone())?;
        let meta = MetaStep::new(&self.policy, &self.alpha, &self.settings, self.horizon);
        let batch = meta.imagine_tasks(&env, &self.start_pool, rng)?;
        meta.meta_update(&batch)?;
        Ok(batch.post_return)
    }
}

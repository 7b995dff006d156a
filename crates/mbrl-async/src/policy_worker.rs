//! The policy-improvement worker (thesis Algorithm 8): pull the newest model, take one policy
//! improvement step in it, push the policy. The step is the learner's own: ME-TRPO's (and
//! ME-PPO's) imagined TRPO step or PPO update ([`TrpoImprover`], from
//! `mbrl_policy_opt::imagined_update`) or one MB-MPO meta step (`crate::meta_improver`).

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::model::{DynamicsModel, TrainableModel};
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::imagined_update::{draw_rows, ImaginedUpdate};
use mbrl_policy_opt::model_free::policy_tensors;
use rand_chacha::ChaCha8Rng;

use crate::codec::{decode_tensors, encode_tensors};
use crate::servers::Servers;
use crate::worker::{Outcome, Worker};

/// One policy improvement step in a learned model.
pub trait Improver: Send {
    /// The policy it improves (pushed after every step).
    fn policy(&self) -> &GaussianMlpPolicy;
    /// One step in `model`; returns the imagined return it saw (post-update for MB-MPO).
    fn improve(
        &mut self,
        model: Arc<dyn DynamicsModel + Sync>,
        rng: &mut ChaCha8Rng,
    ) -> Result<f64>;
}

/// What ME-TRPO's step imagines in.
pub struct Imagination {
    /// Real start states to draw from, `[pool, obs_dim]`.
    pub start_pool: Tensor,
    /// Imagined rollouts per update.
    pub rollouts: usize,
    /// The task's reward and termination functions.
    pub task: Arc<dyn TaskFunctions>,
    /// How imagined steps use the ensemble.
    pub model_env: ModelEnvConfig,
}

/// ME-TRPO's (ME-PPO's) step: imagined rollouts from real start states, then one TRPO step or
/// PPO update.
pub struct TrpoImprover {
    /// The improved policy.
    pub policy: GaussianMlpPolicy,
    /// The optimiser state.
    pub update: ImaginedUpdate,
    /// Start states, task and model options.
    pub imagination: Imagination,
}

impl Improver for TrpoImprover {
    fn policy(&self) -> &GaussianMlpPolicy {
        &self.policy
    }

    fn improve(
        &mut self,
        model: Arc<dyn DynamicsModel + Sync>,
        rng: &mut ChaCha8Rng,
    ) -> Result<f64> {
        let im = &self.imagination;
        let model_env = ModelEnv::new(model, im.task.clone(), im.model_env.clone())?;
        let starts = draw_rows(&im.start_pool, im.rollouts, rng)?;
        self.update.step(&model_env, &self.policy, &starts, rng)
    }
}

/// The policy worker.
pub struct PolicyWorker {
    improver: Box<dyn Improver>,
    /// Receives the pulled parameters (built by the run's model factory).
    model: Box<dyn TrainableModel>,
    model_version: u64,
    frozen: Option<Arc<dyn DynamicsModel + Sync>>,
    rng: ChaCha8Rng,
    servers: Servers,
    steps: u64,
}

impl PolicyWorker {
    /// Improves the policy by `improver` in the models the server delivers into `model`.
    pub fn new(
        improver: Box<dyn Improver>,
        model: Box<dyn TrainableModel>,
        rng: ChaCha8Rng,
        servers: Servers,
    ) -> Self {
        Self {
            improver,
            model,
            model_version: 0,
            frozen: None,
            rng,
            servers,
            steps: 0,
        }
    }
}

impl Worker for PolicyWorker {
    fn role(&self) -> String {
        "policy".into()
    }

    fn step(&mut self) -> Result<Outcome> {
        if let Some(newest) = self.servers.model.pull_newer(self.model_version)? {
            let tensors = decode_tensors(&newest.bytes, "the model server's blob")?;
            self.model.load_named_tensors(&tensors)?;
            self.frozen = Some(self.model.frozen()?);
            self.model_version = newest.version;
        }
        let Some(model) = self.frozen.clone() else {
            return Ok(Outcome::Idle);
        };
        let imagined_return = self.improver.improve(model, &mut self.rng)?;
        let policy = self.improver.policy();
        let norm = policy.flat_params()?.sqr()?.sum_all()?.to_scalar::<f32>()?;
        self.steps += 1;
        if !norm.is_finite() || !imagined_return.is_finite() {
            return Err(Error::NonFinite {
                what: format!(
                    "policy parameters or imagined return ({imagined_return}) after update"
                ),
                iteration: self.steps,
            });
        }
        self.servers
            .policy
            .push(encode_tensors(&policy_tensors(policy))?)?;
        let control = &self.servers.control;
        control.report("policy_steps", self.steps as f64)?;
        control.report("imagined_return", imagined_return)?;
        control.report("policy_model_version", self.model_version as f64)?;
        Ok(Outcome::Worked)
    }
}

//! [`MpcPolicy`]: a planner, a model and task functions packaged as a
//! [`Policy`], so model-predictive control runs wherever a policy does (samplers,
//! `mbrl_core::rollout::evaluate`).
//!
//! Each `act` plans once per observation row and returns the plans' first actions. Row `i`
//! has its own planner state (its warm start), so a `[B, obs_dim]` batch from `B` parallel
//! environments keeps one warm start per environment. The planners sit behind a mutex because
//! `act` takes `&self`.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Tensor;
use mbrl_core::model::DynamicsModel;
use mbrl_core::policy::Policy;
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use rand::RngCore;

use super::{ModelCalls, PlanExtras, Planner};

/// A terminal value an [`MpcPolicy`] owns (see [`super::TerminalValue`]).
pub type OwnedTerminalValue = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send>;

/// Model-predictive control as a policy: plan from each observation, act with the first
/// planned action.
pub struct MpcPolicy {
    /// A fresh planner, cloned for each new batch row.
    fresh: Planner,
    /// One planner per batch row seen so far.
    rows: Mutex<Vec<Planner>>,
    model: Box<dyn DynamicsModel>,
    task: Arc<dyn TaskFunctions>,
    terminal_value: Option<OwnedTerminalValue>,
    proposal: Option<Box<dyn Policy>>,
}

impl MpcPolicy {
    /// MPC with `planner` (its warm start is cleared) in `model` with `task`'s rewards.
    pub fn new(
        mut planner: Planner,
        model: Box<dyn DynamicsModel>,
        task: Arc<dyn TaskFunctions>,
    ) -> Self {
        planner.reset();
        Self {
            fresh: planner,
            rows: Mutex::new(Vec::new()),
            model,
            task,
            terminal_value: None,
            proposal: None,
        }
    }

    /// Adds `gamma^H V(s_H)` to every plan's predicted returns.
    pub fn with_terminal_value(mut self, value: OwnedTerminalValue) -> Self {
        self.terminal_value = Some(value);
        self
    }

    /// Starts every plan from this policy's deterministic rollout in the model.
    pub fn with_proposal(mut self, proposal: Box<dyn Policy>) -> Self {
        self.proposal = Some(proposal);
        self
    }

    /// Forgets every row's warm start: call at the start of each episode (single-environment
    /// rollouts such as `mbrl_core::rollout::evaluate` do, through
    /// [`Policy::begin_episode`]).
    pub fn reset(&self) {
        self.planners().iter_mut().for_each(Planner::reset);
    }

    /// Model calls of every plan so far, summed over rows.
    pub fn model_calls(&self) -> ModelCalls {
        let mut total = ModelCalls::default();
        for planner in self.planners().iter() {
            total += planner.model_calls();
        }
        total
    }

    /// The row planners. A panic in another thread's plan leaves them usable (at worst with
    /// the previous warm start), so a poisoned lock is recovered.
    fn planners(&self) -> MutexGuard<'_, Vec<Planner>> {
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Policy for MpcPolicy {
    /// The first planned action of each row of `obs` (`[B, obs_dim]` -> `[B, act_dim]`).
    /// Planning samples its candidates from `rng` whether or not `deterministic` is set (the
    /// plan is already the planner's best estimate; there is no separate mode).
    fn act(&self, obs: &Tensor, _deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let (b, _) = obs.dims2().map_err(|_| {
            Error::shape(
                "MPC policy observations",
                "[B, obs_dim]",
                format!("{:?}", obs.dims()),
            )
        })?;
        let extras = PlanExtras {
            terminal_value: self.terminal_value.as_deref().map(|v| v as _),
            proposal: self.proposal.as_deref(),
        };
        let mut planners = self.planners();
        while planners.len() < b {
            planners.push(self.fresh.clone());
        }
        let actions = (0..b)
            .map(|i| {
                let row = obs.get(i)?;
                let plan = planners[i].plan(
                    self.model.as_ref(),
                    self.task.as_ref(),
                    &row,
                    &extras,
                    rng,
                )?;
                Ok(plan.first_action)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&actions, 0)?)
    }

    /// A new episode starts from no warm start ([`MpcPolicy::reset`]).
    fn begin_episode(&self) -> Result<()> {
        self.reset();
        Ok(())
    }
}

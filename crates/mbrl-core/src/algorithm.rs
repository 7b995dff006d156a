//! The interface between a training algorithm and the run loop, and the registry entry by
//! which an algorithm makes itself known to the command line.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use std::sync::Arc;

use crate::env::EnvFactory;
use crate::model::{DynamicsModel, ModelFactory};
use crate::policy::Policy;
use crate::Result;

/// What one training iteration reports.
#[derive(Debug, Clone, Default)]
pub struct IterationStats {
    /// Cumulative real environment steps after the iteration.
    pub env_steps: u64,
    /// Algorithm-specific metrics (the columns of [`Algorithm::metric_columns`]).
    pub metrics: BTreeMap<String, f64>,
    /// Mean return of the training episodes completed during the iteration, if any.
    pub train_return: Option<f64>,
}

/// A terminal value `V(s)` a planner adds after its last step: `[M, obs_dim]` states to `[M]`
/// values.
pub type OwnedValueFunction = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send>;

/// What a trained model-based algorithm gives a test-time planner (model-predictive control
/// on top of the learned policy, thesis Table 1). Every part is a snapshot: training on
/// afterwards does not change it.
pub struct PlanningParts {
    /// The learned dynamics model.
    pub model: Arc<dyn DynamicsModel + Sync>,
    /// An estimate of the value of a plan's last state, if the algorithm learns one (MAAC,
    /// MBPO: the twin Q's minimum at the policy's mean action).
    pub terminal_value: Option<OwnedValueFunction>,
    /// The policy, to propose the planner's initial action sequence.
    pub proposal: Option<Box<dyn Policy>>,
}

/// A training algorithm, driven one iteration at a time by the run loop.
pub trait Algorithm {
    /// Registry name, e.g. `me-trpo`.
    fn name(&self) -> &str;
    /// Extra metrics columns this algorithm logs every iteration.
    fn metric_columns(&self) -> Vec<String>;
    /// The metrics (of [`Algorithm::metric_columns`]) worth showing on the progress line, e.g.
    /// the asynchronous trainers' parameter versions and staleness; none by default.
    fn progress_keys(&self) -> Vec<String> {
        Vec::new()
    }
    /// Runs training iteration `iteration` (counted from 1).
    fn train_iteration(&mut self, iteration: u64) -> Result<IterationStats>;
    /// The current policy, for evaluation.
    fn policy(&self) -> &dyn Policy;
    /// Everything needed to continue training later: named tensors and other state.
    fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)>;
    /// Restores what [`Algorithm::save_state`] produced.
    fn load_state(
        &mut self,
        tensors: HashMap<String, Tensor>,
        state: serde_json::Value,
    ) -> Result<()>;
    /// The parts test-time planning uses, for an algorithm that learns a dynamics model and
    /// has fitted it; `None` (the default) otherwise.
    fn planning_parts(&self) -> Result<Option<PlanningParts>> {
        Ok(None)
    }
}

/// What an algorithm is built from.
pub struct BuildContext {
    /// Makes copies of the training environment.
    pub env_factory: EnvFactory,
    /// Builds the dynamics model of model-based algorithms (from the `[model]` table);
    /// `None` where the caller provides none (model-free algorithms ignore it).
    pub model_factory: Option<ModelFactory>,
    /// The run seed (see [`crate::seeding`]).
    pub seed: u64,
    /// The whole run configuration (every table), already validated by the caller; an
    /// algorithm reads the tables it uses (e.g. `config["random"]`).
    pub config: serde_json::Value,
}

/// How an algorithm registers itself with the command line.
pub struct AlgorithmEntry {
    /// Registry name, the value of `algo` in a config.
    pub name: &'static str,
    /// One-line description for `mbrl-cli algos`.
    pub description: &'static str,
    /// The thesis chapter or paper it implements.
    pub reference: &'static str,
    /// Builds the algorithm.
    pub build: fn(BuildContext) -> Result<Box<dyn Algorithm>>,
}

//! The three servers of thesis Fig. 23a, behind traits so a backend can keep them in memory
//! (threads of one process) or elsewhere: two parameter servers (policy, model) where the
//! latest version wins, a stream of rollouts that every reader consumes exactly once, and the
//! run's control (rollout budget, stop request, workers' reports).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mbrl_core::Result;

/// A parameter blob and its version (1 for the first push).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// Counts pushes, from 1.
    pub version: u64,
    /// The encoded parameters (`codec::encode_tensors`).
    pub bytes: Arc<Vec<u8>>,
}

/// Holds the newest version of one parameter set.
pub trait ParameterServer: Send + Sync {
    /// Stores `bytes` as the newest version; returns that version.
    fn push(&self, bytes: Vec<u8>) -> Result<u64>;
    /// The newest blob when its version is above `have` (pass 0 to get any).
    fn pull_newer(&self, have: u64) -> Result<Option<Versioned>>;
    /// The newest version, 0 before the first push.
    fn version(&self) -> Result<u64>;
}

/// An append-only stream of encoded rollouts. Each named reader takes every entry exactly
/// once, in push order (the model worker and the coordinator read independently).
pub trait RolloutStream: Send + Sync {
    /// Appends one entry.
    fn push(&self, bytes: Vec<u8>) -> Result<()>;
    /// Every entry `reader` has not taken yet, oldest first; when there is none, waits up to
    /// `wait` for one.
    fn take_new(&self, reader: &str, wait: Duration) -> Result<Vec<Arc<Vec<u8>>>>;
    /// Every entry `reader` has taken so far, oldest first: what a restarted reader rebuilds
    /// its state from (its new entries then continue where the old instance stopped).
    fn taken(&self, reader: &str) -> Result<Vec<Arc<Vec<u8>>>>;
}

/// What the coordinator tells the workers, and what they tell it back.
pub trait Control: Send + Sync {
    /// Allows `rollouts` more real rollouts in total.
    fn add_budget(&self, rollouts: u64) -> Result<()>;
    /// Takes one rollout of the budget; `false` when it is used up.
    fn reserve_rollout(&self) -> Result<bool>;
    /// Asks every worker to stop.
    fn request_stop(&self) -> Result<()>;
    /// Whether a stop was requested.
    fn stop_requested(&self) -> Result<bool>;
    /// Publishes a worker's latest value of `key` (e.g. `model_epochs`).
    fn report(&self, key: &str, value: f64) -> Result<()>;
    /// Every published value.
    fn reports(&self) -> Result<BTreeMap<String, f64>>;
}

/// The servers one run's workers share.
#[derive(Clone)]
pub struct Servers {
    /// The policy parameters (pushed by the policy worker, pulled by data workers).
    pub policy: Arc<dyn ParameterServer>,
    /// The model parameters (pushed by the model worker, pulled by the policy worker).
    pub model: Arc<dyn ParameterServer>,
    /// Real rollouts (pushed by data workers, taken by the model worker and the coordinator).
    pub rollouts: Arc<dyn RolloutStream>,
    /// Budget, stop and reports.
    pub control: Arc<dyn Control>,
}

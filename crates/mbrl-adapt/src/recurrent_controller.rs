//! ReBAL's online adaptation for control: before every action, the GRU reads the episode's last
//! `M` real transitions from a zero hidden state (as in training), and MPC plans in the model
//! under that context.
//!
//! As for [`crate::controller::AdaptiveController`], the transition of step `t` is observed
//! after the action of step `t`, so the state behind that action was built from transitions
//! `t - M .. t - 1` alone; a non-finite hidden state is counted and reported, and the zero
//! state (no adaptation) plans instead.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Tensor;
use mbrl_core::policy::Policy;
use mbrl_core::task::TaskFunctions;
use mbrl_core::Result;
use mbrl_policy_opt::planners::{PlanExtras, Planner};
use rand::RngCore;

use crate::adaptation::all_finite;
use crate::controller::{as_windows, check_single_row, lock_state, History, Transition};
use crate::recurrent::{GruDeltaModel, RecurrentDynamics};

struct State {
    planner: Planner,
    history: History,
    last_window: Vec<Transition>,
    last_state: Option<Tensor>,
    non_finite: u64,
}

/// ReBAL's adaptive MPC for one environment.
pub struct RecurrentController {
    model: GruDeltaModel,
    weights: Vec<Tensor>,
    task: Arc<dyn TaskFunctions>,
    state: Mutex<State>,
}

impl RecurrentController {
    /// A controller planning with `planner` in `model` (its current weights), its hidden state
    /// read from the last `past_steps` transitions, with `task`'s rewards.
    pub fn new(
        model: GruDeltaModel,
        past_steps: usize,
        mut planner: Planner,
        task: Arc<dyn TaskFunctions>,
    ) -> Result<Self> {
        let history = History::new(past_steps)?;
        planner.reset();
        Ok(Self {
            weights: model.copies()?,
            task,
            model,
            state: Mutex::new(State {
                planner,
                history,
                last_window: Vec::new(),
                last_state: None,
                non_finite: 0,
            }),
        })
    }

    /// The model.
    pub fn model(&self) -> &GruDeltaModel {
        &self.model
    }

    /// The hidden state after reading `window` (the zero state for an empty one), `[1, H]`.
    pub fn hidden_state(&self, window: &[Transition]) -> Result<Tensor> {
        match window.is_empty() {
            true => self.model.zero_state(1),
            false => self.model.state_after(&self.weights, &as_windows(window)?),
        }
    }

    /// The transitions the last action's state was read from, oldest first.
    pub fn last_adaptation_window(&self) -> Vec<Transition> {
        self.lock().last_window.clone()
    }

    /// The hidden state the last action was planned from.
    pub fn last_state(&self) -> Option<Tensor> {
        self.lock().last_state.clone()
    }

    /// Hidden states so far that were not finite (the zero state planned instead).
    pub fn non_finite_adaptations(&self) -> u64 {
        self.lock().non_finite
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }
}

impl Policy for RecurrentController {
    /// Reads the episode's last `M` transitions, plans from `obs` under that context and returns the plan's
    /// first action (`[1, act_dim]`). The plan samples from `rng` whether or not
    /// `deterministic` is set.
    fn act(&self, obs: &Tensor, _deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        check_single_row(obs)?;
        let mut state = self.lock();
        let window = state.history.window();
        let mut hidden = self.hidden_state(&window)?;
        if !all_finite(std::slice::from_ref(&hidden))? {
            state.non_finite += 1;
            tracing::warn!(
                "the recurrent model's hidden state is not finite ({} so far); planning from \
                 the zero state instead",
                state.non_finite
            );
            hidden = self.model.zero_state(1)?;
        }
        let model = RecurrentDynamics::new(&self.model, &self.weights, &hidden)?;
        let plan = state.planner.plan(
            &model,
            self.task.as_ref(),
            &obs.get(0)?,
            &PlanExtras::default(),
            rng,
        )?;
        state.last_window = window;
        state.last_state = Some(hidden);
        Ok(plan.first_action.unsqueeze(0)?)
    }

    /// Clears the history and the planner's warm start.
    fn begin_episode(&self) -> Result<()> {
        let mut state = self.lock();
        state.history.clear();
        state.planner.reset();
        Ok(())
    }

    /// Remembers the transition, keeping the last `M`.
    fn observe(&self, obs: &[f32], act: &[f32], next_obs: &[f32]) -> Result<()> {
        self.lock().history.push(obs, act, next_obs);
        Ok(())
    }
}

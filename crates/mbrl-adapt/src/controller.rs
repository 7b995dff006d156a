//! Online model adaptation for control (thesis Algorithm 10): before every action, adapt the
//! model on the last `M` real transitions of the episode, then plan with MPC in the adapted
//! model and execute the plan's first action.
//!
//! [`AdaptiveController`] is a `Policy` for one environment: it learns of each new episode
//! and each transition through `Policy::begin_episode` and `Policy::observe` (which
//! `mbrl_core::rollout` calls), so it runs wherever single-environment rollouts run. The
//! transition of step `t` is observed after the action of step `t`, so the model behind that
//! action was adapted on transitions `t - M .. t - 1` alone. How it adapts
//! ([`OnlineUpdate`]):
//! - `None` (MB): the trained weights, unchanged;
//! - `FromPrior` (GrBAL): one inner step from the meta-learned weights, every step anew;
//! - `Carried` (MB+DE, dynamic evaluation): SGD steps on the window from the weights of the
//!   previous step, reset to the trained weights at each episode start.
//!
//! An adaptation that produces non-finite weights is reported (a `tracing` warning and
//! [`AdaptiveController::non_finite_adaptations`]) and the trained weights plan instead, so a
//! NaN never reaches the plan.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{Device, Tensor};
use mbrl_core::policy::Policy;
use mbrl_core::task::TaskFunctions;
use mbrl_core::{Error, Result};
use mbrl_policy_opt::planners::{PlanExtras, Planner};
use rand::RngCore;

use crate::adaptation::{adapt, all_finite, unstacked};
use crate::model::{AdaptedModel, DeltaModel};
use crate::segments::Windows;

/// How the controller adapts the model at each control step.
#[derive(Debug, Clone)]
pub enum OnlineUpdate {
    /// No adaptation.
    None,
    /// One inner step from the trained weights with these step sizes (one per weight tensor).
    FromPrior {
        /// `psi`.
        rates: Vec<Tensor>,
    },
    /// `steps` SGD steps of `learning_rate` from the previous step's weights.
    Carried {
        /// SGD step size.
        learning_rate: f64,
        /// Steps per control step.
        steps: usize,
    },
}

/// One past transition, flat rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// `s_t`.
    pub obs: Vec<f32>,
    /// `a_t`.
    pub act: Vec<f32>,
    /// `s_{t+1}`.
    pub next_obs: Vec<f32>,
}

/// The last `M` transitions of the current episode, oldest first.
pub(crate) struct History {
    past_steps: usize,
    items: VecDeque<Transition>,
}

impl History {
    /// Room for `past_steps` transitions (at least one).
    pub(crate) fn new(past_steps: usize) -> Result<Self> {
        if past_steps == 0 {
            return Err(Error::InvalidArgument(
                "adapt.past_steps must be at least 1, got 0".into(),
            ));
        }
        Ok(Self {
            past_steps,
            items: VecDeque::with_capacity(past_steps),
        })
    }

    /// Forgets the episode.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// Remembers a transition, dropping the oldest beyond `M`.
    pub(crate) fn push(&mut self, obs: &[f32], act: &[f32], next_obs: &[f32]) {
        if self.items.len() == self.past_steps {
            self.items.pop_front();
        }
        self.items.push_back(Transition {
            obs: obs.to_vec(),
            act: act.to_vec(),
            next_obs: next_obs.to_vec(),
        });
    }

    /// The remembered transitions, oldest first.
    pub(crate) fn window(&self) -> Vec<Transition> {
        self.items.iter().cloned().collect()
    }
}

/// The controller state behind `mutex`, also after a panic elsewhere poisoned it (the state is
/// replaced whole at every step, so it is never half-written).
pub(crate) fn lock_state<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `window` as one window of consecutive transitions.
pub(crate) fn as_windows(window: &[Transition]) -> Result<Windows> {
    let rows = |pick: fn(&Transition) -> &Vec<f32>| -> Vec<f32> {
        window.iter().flat_map(|t| pick(t).clone()).collect()
    };
    Windows::from_rows(
        rows(|t| &t.obs),
        rows(|t| &t.act),
        rows(|t| &t.next_obs),
        1,
        window.len(),
    )
}

/// The one observation row a single-environment controller acts on.
pub(crate) fn check_single_row(obs: &Tensor) -> Result<()> {
    if obs.dims().len() != 2 || obs.dim(0)? != 1 {
        return Err(Error::shape(
            "adaptive controller observations (one environment)",
            "[1, obs_dim]",
            format!("{:?}", obs.dims()),
        ));
    }
    Ok(())
}

struct State {
    planner: Planner,
    history: History,
    carried: Vec<Tensor>,
    last_window: Vec<Transition>,
    last_weights: Vec<Tensor>,
    non_finite: u64,
}

/// Adaptive MPC for one environment.
pub struct AdaptiveController {
    model: DeltaModel,
    prior: Vec<Tensor>,
    update: OnlineUpdate,
    task: Arc<dyn TaskFunctions>,
    state: Mutex<State>,
}

impl AdaptiveController {
    /// A controller planning with `planner` in `model` (its current weights are the prior),
    /// adapting on the last `past_steps` transitions per `update`, with `task`'s rewards.
    pub fn new(
        model: DeltaModel,
        update: OnlineUpdate,
        past_steps: usize,
        mut planner: Planner,
        task: Arc<dyn TaskFunctions>,
    ) -> Result<Self> {
        let history = History::new(past_steps)?;
        let prior = model.mlp().copies()?;
        planner.reset();
        Ok(Self {
            state: Mutex::new(State {
                planner,
                history,
                carried: prior.clone(),
                last_window: Vec::new(),
                last_weights: prior.clone(),
                non_finite: 0,
            }),
            model,
            prior,
            update,
            task,
        })
    }

    /// The model (architecture, normalisation and trained weights).
    pub fn model(&self) -> &DeltaModel {
        &self.model
    }

    /// The transitions the last action's model was adapted on, oldest first.
    pub fn last_adaptation_window(&self) -> Vec<Transition> {
        self.lock().last_window.clone()
    }

    /// The weights the last action was planned with.
    pub fn last_weights(&self) -> Vec<Tensor> {
        self.lock().last_weights.clone()
    }

    /// Adaptations so far whose weights were not finite (the trained weights planned
    /// instead).
    pub fn non_finite_adaptations(&self) -> u64 {
        self.lock().non_finite
    }

    /// The weights adapted on `window` by `update` from `start` (`start` itself without
    /// data or without adaptation).
    pub fn adapted_weights(&self, start: &[Tensor], window: &[Transition]) -> Result<Vec<Tensor>> {
        if window.is_empty() {
            return Ok(start.to_vec());
        }
        let windows = as_windows(window)?;
        match &self.update {
            OnlineUpdate::None => Ok(start.to_vec()),
            OnlineUpdate::FromPrior { rates } => {
                unstacked(&adapt(&self.model, start, &windows, rates, true)?, 0)
            }
            OnlineUpdate::Carried {
                learning_rate,
                steps,
            } => {
                let rate = Tensor::from_slice(&[*learning_rate as f32], 1, &Device::Cpu)?;
                let rates = vec![rate; start.len()];
                let mut current = start.to_vec();
                for _ in 0..*steps {
                    current = unstacked(&adapt(&self.model, &current, &windows, &rates, true)?, 0)?;
                }
                Ok(current)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }
}

impl Policy for AdaptiveController {
    /// Adapts on the episode's last `M` transitions, plans from `obs` (`[1, obs_dim]`) and
    /// returns the plan's first action (`[1, act_dim]`). The plan samples from `rng` whether
    /// or not `deterministic` is set.
    fn act(&self, obs: &Tensor, _deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        check_single_row(obs)?;
        let mut state = self.lock();
        let window = state.history.window();
        let start = match self.update {
            OnlineUpdate::Carried { .. } => state.carried.clone(),
            _ => self.prior.clone(),
        };
        let mut weights = self.adapted_weights(&start, &window)?;
        if !all_finite(&weights)? {
            state.non_finite += 1;
            tracing::warn!(
                "online adaptation produced non-finite model weights ({} so far); planning with \
                 the trained weights instead",
                state.non_finite
            );
            weights = self.prior.clone();
        }
        if matches!(self.update, OnlineUpdate::Carried { .. }) {
            state.carried = weights.clone();
        }
        let model = AdaptedModel::new(&self.model, &weights)?;
        let plan = state.planner.plan(
            &model,
            self.task.as_ref(),
            &obs.get(0)?,
            &PlanExtras::default(),
            rng,
        )?;
        state.last_window = window;
        state.last_weights = weights;
        Ok(plan.first_action.unsqueeze(0)?)
    }

    /// Clears the history, the planner's warm start and the carried weights.
    fn begin_episode(&self) -> Result<()> {
        let mut state = self.lock();
        state.history.clear();
        state.planner.reset();
        state.carried = self.prior.clone();
        Ok(())
    }

    /// Remembers the transition, keeping the last `M`.
    fn observe(&self, obs: &[f32], act: &[f32], next_obs: &[f32]) -> Result<()> {
        self.lock().history.push(obs, act, next_obs);
        Ok(())
    }
}

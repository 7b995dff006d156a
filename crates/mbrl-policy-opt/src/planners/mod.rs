//! Model-predictive planners shared by the model-based algorithms: random shooting, the
//! cross-entropy method (CEM) and MPPI, over any [`DynamicsModel`] and [`TaskFunctions`].
//!
//! A [`Planner`] (built from a plain-data [`PlannerConfig`]) searches for the action sequence
//! of `horizon` steps with the highest predicted return from the current state, and MPC
//! executes its first action and plans again at the next state ([`MpcPolicy`] does that as a
//! [`Policy`], e.g. for `mbrl_core::rollout::evaluate`).
//!
//! - [`random_shooting`]: `N` sequences uniform in the action box, the best one (GrBAL/ReBAL,
//!   thesis Ch. 9: 500 candidates, horizon 10).
//! - [`cem`]: a Gaussian over sequences refit to the top elites for `I` iterations; the plan
//!   is the mean of the final elites, not the best sample (PETS, Chua et al. 2018; MAAC's
//!   test-time CEM, thesis Table 1: 256 candidates, horizon 5, 5 iterations, 10% elites,
//!   smoothing 0.1).
//! - [`mppi`]: Gaussian perturbations of a mean sequence, averaged with weights
//!   `softmax(return / lambda)` (Williams et al., 2017, "Information theoretic MPC for
//!   model-based reinforcement learning").
//!
//! Common to all three ([`scoring`]): every candidate is evaluated in every ensemble member at
//! once (one `predict_members` call on `[K, N, dim]` inputs per model step), the members'
//! returns are averaged (or their minimum taken, [`EnsembleReduction`]), the predicted mean is
//! used unless `sample_model_noise` is set, rewards are discounted by `gamma` and stop at a
//! predicted termination, and an optional terminal value adds `gamma^H V(s_H)` (MAAC's twin Q).
//! An optional proposal policy gives CEM's and MPPI's initial mean (MAAC) and one of random
//! shooting's candidates. CEM and MPPI warm-start from the previous plan shifted by one step
//! until [`Planner::reset`]. Every planned action lies in the action box; every model call is
//! counted ([`ModelCalls`]) so planners can be compared at equal cost; candidates whose
//! predicted return is NaN or infinite are never picked, and a plan fails if all are.
//! All randomness comes from the `rng` passed to [`Planner::plan`].
//!
//! ```
//! use candle_core::Tensor;
//! use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
//! use mbrl_core::{BoxSpace, Env};
//! use mbrl_policy_opt::planners::{PlanExtras, PlannerConfig};
//! use rand::SeedableRng;
//! // s' = s + a with reward -(s' - 1)^2: from s = 0 the best first action is a = 1.
//! let task = Drift::new().task_functions();
//! let model = ScaledDriftEnsemble::new(1, None);
//! let mut planner = PlannerConfig::default().build(&BoxSpace::uniform(-1.0, 1.0, 1)?)?;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let obs = Tensor::new(&[0.0f32], &candle_core::Device::Cpu)?;
//! let plan = planner.plan(&model, task.as_ref(), &obs, &PlanExtras::default(), &mut rng)?;
//! assert!(plan.first_action.to_vec1::<f32>()?[0] > 0.9);
//! # Ok::<(), mbrl_core::Error>(())
//! ```

pub mod cem;
pub mod config;
pub mod mpc_policy;
pub mod mppi;
pub mod random_shooting;
pub mod scoring;

use candle_core::{Device, Tensor};
use mbrl_core::model::DynamicsModel;
use mbrl_core::policy::{standard_normal, Policy};
use mbrl_core::task::TaskFunctions;
use mbrl_core::{BoxSpace, Error, Result};
use rand::{Rng, RngCore};

pub use config::{EnsembleReduction, PlannerConfig, PlannerKind, ShiftFill};
pub use mpc_policy::MpcPolicy;

use scoring::Scorer;

/// A terminal value `V(s_H)`: `[M, obs_dim]` states to `[M]` values (MAAC: the minimum of the
/// twin Q-functions at the policy's action).
pub type TerminalValue<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

/// Optional inputs of one planning call.
#[derive(Clone, Copy, Default)]
pub struct PlanExtras<'a> {
    /// Added as `gamma^H V(s_H)` to the return of every row that has not terminated.
    /// Default none.
    pub terminal_value: Option<&'a TerminalValue<'a>>,
    /// Its deterministic actions, rolled out through the mean of the members, are CEM's and
    /// MPPI's initial mean (before any warm start) and replace random shooting's first
    /// candidate. Default none.
    pub proposal: Option<&'a dyn Policy>,
}

/// Model evaluations: `predict_members` invocations and the rows they predicted (a call on
/// `[K, N, dim]` inputs predicts `K * N` rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelCalls {
    /// `predict_members` invocations.
    pub calls: u64,
    /// Rows predicted, summed over the calls (members times candidates).
    pub rows: u64,
}

impl ModelCalls {
    fn record(&mut self, rows: usize) {
        self.calls += 1;
        self.rows += rows as u64;
    }
}

impl std::ops::AddAssign for ModelCalls {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.rows += other.rows;
    }
}

/// The result of one planning call.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The action to execute now, `[A]`.
    pub first_action: Tensor,
    /// The whole planned sequence, `[H, A]`.
    pub sequence: Tensor,
    /// The predicted return of `sequence` (ensemble-reduced, discounted, with the terminal
    /// value if one was given).
    pub predicted_return: f64,
    /// Model calls this plan made (proposal rollout, search and the final evaluation).
    pub model_calls: ModelCalls,
}

/// The action box, flat.
#[derive(Debug, Clone)]
struct Bounds {
    low: Vec<f32>,
    high: Vec<f32>,
}

impl Bounds {
    fn dim(&self) -> usize {
        self.low.len()
    }

    /// Clips values laid out with the action dimension last (any number of steps/candidates).
    fn clip(&self, values: &mut [f32]) {
        let a = self.dim();
        for (j, v) in values.iter_mut().enumerate() {
            *v = v.clamp(self.low[j % a], self.high[j % a]);
        }
    }

    /// The box centre repeated over `horizon` steps, `[H, A]` flat.
    fn centre(&self, horizon: usize) -> Vec<f32> {
        let one: Vec<f32> = self
            .low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| 0.5 * (l + h))
            .collect();
        one.repeat(horizon)
    }

    /// `fraction * (high - low) / 2` per dimension, repeated over `horizon` steps.
    fn scaled_half_width(&self, fraction: f64, horizon: usize) -> Vec<f32> {
        let one: Vec<f32> = self
            .low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| (fraction * 0.5 * (h - l) as f64) as f32)
            .collect();
        one.repeat(horizon)
    }

    /// `n` sequences uniform in the box, time-major `[H, N, A]`.
    fn uniform(&self, horizon: usize, n: usize, rng: &mut dyn RngCore) -> Vec<f32> {
        let a = self.dim();
        (0..horizon * n * a)
            .map(|j| {
                let (lo, hi) = (self.low[j % a], self.high[j % a]);
                if lo == hi {
                    lo
                } else {
                    rng.random_range(lo..=hi)
                }
            })
            .collect()
    }

    /// `n` sequences `mean + std * eps` clipped into the box, time-major `[H, N, A]`; `mean`
    /// and `std` are `[H, A]`.
    fn gaussian(
        &self,
        mean: &[f32],
        std: &[f32],
        n: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f32>> {
        let a = self.dim();
        let horizon = mean.len() / a;
        let eps = standard_normal(&[horizon * n * a], rng, &Device::Cpu)?.to_vec1::<f32>()?;
        let mut samples: Vec<f32> = eps
            .iter()
            .enumerate()
            .map(|(j, e)| {
                let (t, d) = (j / (n * a), j % a);
                mean[t * a + d] + std[t * a + d] * e
            })
            .collect();
        self.clip(&mut samples);
        Ok(samples)
    }
}

/// Candidate `i` of `n` time-major `[H, N, A]` sequences, as `[H, A]`.
fn candidate(samples: &[f32], n: usize, a: usize, i: usize) -> Vec<f32> {
    let horizon = samples.len() / (n * a);
    (0..horizon)
        .flat_map(|t| {
            samples[(t * n + i) * a..(t * n + i + 1) * a]
                .iter()
                .copied()
        })
        .collect()
}

/// The error of an iteration in which no candidate had a finite predicted return.
fn all_non_finite(iteration: usize) -> Error {
    Error::NonFinite {
        what: "the predicted return of every planner candidate (the model or reward produced \
               NaN/inf; consider model_env.obs_clip or a smaller planner.horizon)"
            .into(),
        iteration: iteration as u64,
    }
}

/// What a search found: the sequence `[H, A]` and, when the search already evaluated it,
/// its predicted return.
struct Search {
    sequence: Vec<f32>,
    predicted_return: Option<f64>,
}

/// A model-predictive planner: configuration, action box, warm-start state and model-call
/// counters.
#[derive(Debug, Clone)]
pub struct Planner {
    config: PlannerConfig,
    bounds: Bounds,
    /// The initial mean of the next CEM/MPPI plan, `[H, A]`.
    warm: Option<Vec<f32>>,
    calls: ModelCalls,
}

impl Planner {
    /// A planner for actions in `action_space`, which must be bounded (every planner samples
    /// or clips in it).
    pub fn new(config: PlannerConfig, action_space: &BoxSpace) -> Result<Self> {
        config.validate()?;
        if !action_space.is_bounded() || action_space.flat_dim() == 0 {
            return Err(Error::InvalidArgument(format!(
                "planners need a non-empty, bounded action box, got low {:?} high {:?}",
                action_space.low(),
                action_space.high()
            )));
        }
        Ok(Self {
            config,
            bounds: Bounds {
                low: action_space.low().to_vec(),
                high: action_space.high().to_vec(),
            },
            warm: None,
            calls: ModelCalls::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// Number of action dimensions `A`.
    pub fn action_dim(&self) -> usize {
        self.bounds.dim()
    }

    /// Model calls of every plan and scoring since the planner was built.
    pub fn model_calls(&self) -> ModelCalls {
        self.calls
    }

    /// Forgets the warm start (call at the start of every episode).
    pub fn reset(&mut self) {
        self.warm = None;
    }

    /// The initial mean of the next CEM or MPPI plan, `[H, A]`: the previous plan shifted by
    /// one step. `None` before the first plan, after [`Planner::reset`], for random shooting
    /// and without `warm_start`.
    pub fn warm_start_mean(&self) -> Result<Option<Tensor>> {
        let (h, a) = (self.config.horizon, self.action_dim());
        self.warm
            .as_ref()
            .map(|w| Ok(Tensor::from_slice(w, (h, a), &Device::Cpu)?))
            .transpose()
    }

    /// Plans from `obs` (`[obs_dim]` or `[1, obs_dim]`) with `model` and `task`.
    pub fn plan(
        &mut self,
        model: &dyn DynamicsModel,
        task: &dyn TaskFunctions,
        obs: &Tensor,
        extras: &PlanExtras<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<Plan> {
        let obs = start_state(obs)?;
        let warm = self.warm.take().filter(|_| self.config.warm_start);
        let mut scorer = self.scorer(model, task, &obs, extras);
        let proposal = extras
            .proposal
            .map(|policy| scorer.policy_sequence(policy, &self.bounds, rng))
            .transpose()?;
        let (h, a) = (self.config.horizon, self.action_dim());
        let search = match self.config.kind {
            PlannerKind::RandomShooting => random_shooting::search(
                &mut scorer,
                &self.bounds,
                &self.config,
                proposal.as_deref(),
                rng,
            )?,
            kind => {
                let initial = proposal.or(warm).unwrap_or_else(|| self.bounds.centre(h));
                match kind {
                    PlannerKind::Cem => {
                        cem::search(&mut scorer, &self.bounds, &self.config, &initial, rng)?
                    }
                    _ => mppi::search(&mut scorer, &self.bounds, &self.config, &initial, rng)?,
                }
            }
        };
        let predicted_return = match search.predicted_return {
            Some(r) => r,
            None => scorer.score(&search.sequence, 1, rng)?[0],
        };
        if !predicted_return.is_finite() {
            return Err(Error::NonFinite {
                what: "the predicted return of the planned sequence".into(),
                iteration: self.config.iterations as u64,
            });
        }
        let calls = scorer.calls;
        self.calls += calls;
        let sequence = search.sequence;
        if self.config.warm_start && self.config.kind != PlannerKind::RandomShooting {
            self.warm = Some(self.shifted(&sequence));
        }
        Ok(Plan {
            first_action: Tensor::from_slice(&sequence[..a], a, &Device::Cpu)?,
            sequence: Tensor::from_vec(sequence, (h, a), &Device::Cpu)?,
            predicted_return,
            model_calls: calls,
        })
    }

    /// The predicted return of each of the given sequences (`[N, H, A]`) from `obs`, exactly
    /// as the planner scores its candidates (`-inf` for non-finite ones); counted in
    /// [`Planner::model_calls`].
    pub fn predicted_returns(
        &mut self,
        model: &dyn DynamicsModel,
        task: &dyn TaskFunctions,
        obs: &Tensor,
        sequences: &Tensor,
        extras: &PlanExtras<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<f64>> {
        let (h, a) = (self.config.horizon, self.action_dim());
        let n = match sequences.dims() {
            &[n, sh, sa] if sh == h && sa == a && n > 0 => n,
            other => {
                return Err(Error::shape(
                    "planner sequences",
                    format!("[N, {h}, {a}]"),
                    format!("{other:?}"),
                ))
            }
        };
        let time_major = sequences
            .to_dtype(candle_core::DType::F32)?
            .transpose(0, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let obs = start_state(obs)?;
        let mut scorer = self.scorer(model, task, &obs, extras);
        let scores = scorer.score(&time_major, n, rng)?;
        self.calls += scorer.calls;
        Ok(scores)
    }

    fn scorer<'a>(
        &'a self,
        model: &'a dyn DynamicsModel,
        task: &'a dyn TaskFunctions,
        obs: &'a Tensor,
        extras: &PlanExtras<'a>,
    ) -> Scorer<'a> {
        Scorer {
            model,
            task,
            obs,
            terminal_value: extras.terminal_value,
            config: &self.config,
            calls: ModelCalls::default(),
        }
    }

    /// `sequence` moved one step earlier, the freed last step filled per `shift_fill`.
    fn shifted(&self, sequence: &[f32]) -> Vec<f32> {
        let a = self.action_dim();
        let mut out = sequence[a..].to_vec();
        match self.config.shift_fill {
            ShiftFill::Last => out.extend_from_slice(&sequence[sequence.len() - a..]),
            ShiftFill::Centre => out.extend(self.bounds.centre(1)),
        }
        out
    }
}

/// `obs` as a `[1, obs_dim]` tensor.
fn start_state(obs: &Tensor) -> Result<Tensor> {
    match obs.dims() {
        &[d] => Ok(obs.reshape((1, d))?),
        &[1, _] => Ok(obs.clone()),
        other => Err(Error::shape(
            "planner start state",
            "[obs_dim] or [1, obs_dim]",
            format!("{other:?}"),
        )),
    }
}

//! `mbrl-cli eval --planner`: model-predictive control on top of a trained run (thesis
//! Table 1), built from the parts the algorithm offers ([`PlanningParts`]) and the planner
//! settings given on the command line.

use anyhow::Result;
use mbrl_core::algorithm::{Algorithm, PlanningParts};
use mbrl_core::env::Env;
use mbrl_policy_opt::planners::{MpcPolicy, PlannerConfig, PlannerKind};

use crate::UsageError;

/// The planner of `eval --planner`, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlannerChoice {
    /// The cross-entropy method, started from the policy (MAAC's test-time planner).
    Cem,
    /// Model predictive path integral control, started from the policy.
    Mppi,
    /// The best of uniformly random sequences (the policy's sequence among them).
    RandomShooting,
}

/// Planner settings of `eval --planner`; `None` keeps [`PlannerConfig`]'s default (thesis
/// Table 1's CEM: horizon 5, 256 candidates, 5 iterations).
#[derive(Debug, Clone, Default)]
pub struct PlannerArgs {
    /// Steps of each planned sequence.
    pub horizon: Option<usize>,
    /// Candidate sequences per iteration.
    pub candidates: Option<usize>,
    /// CEM / MPPI iterations per plan.
    pub iterations: Option<usize>,
    /// Plan from the box centre instead of the policy's proposal.
    pub no_proposal: bool,
    /// Leave out the learned terminal value (Q) after the last planned step.
    pub no_terminal_value: bool,
}

impl PlannerArgs {
    /// The planner configuration for `choice` with these overrides.
    pub fn config(&self, choice: PlannerChoice) -> PlannerConfig {
        let default = PlannerConfig::default();
        PlannerConfig {
            kind: match choice {
                PlannerChoice::Cem => PlannerKind::Cem,
                PlannerChoice::Mppi => PlannerKind::Mppi,
                PlannerChoice::RandomShooting => PlannerKind::RandomShooting,
            },
            horizon: self.horizon.unwrap_or(default.horizon),
            candidates: self.candidates.unwrap_or(default.candidates),
            iterations: self.iterations.unwrap_or(default.iterations),
            ..default
        }
    }
}

/// A model-predictive controller for `env` from the trained `algo` (`algo_name` for errors).
pub fn mpc_policy(
    algo: &dyn Algorithm,
    algo_name: &str,
    env: &dyn Env,
    choice: PlannerChoice,
    args: &PlannerArgs,
) -> Result<MpcPolicy> {
    let PlanningParts {
        model,
        terminal_value,
        proposal,
    } = algo.planning_parts()?.ok_or_else(|| {
        UsageError(format!(
            "`{algo_name}` has no fitted dynamics model to plan with; --planner needs a run of \
             a model-based algorithm (maac, mbpo, me-trpo, me-ppo, mb-bptt) with at least one \
             checkpoint"
        ))
    })?;
    let config = args.config(choice);
    let space = env
        .action_space()
        .as_box()
        .ok_or_else(|| UsageError("--planner needs a continuous (box) action space".into()))?;
    let planner = config
        .build(space)
        .map_err(|e| UsageError(format!("planner settings: {e}")))?;
    let mut mpc = MpcPolicy::new(planner, Box::new(model), env.task_functions());
    if let (Some(value), false) = (terminal_value, args.no_terminal_value) {
        mpc = mpc.with_terminal_value(value);
    }
    if let (Some(policy), false) = (proposal, args.no_proposal) {
        mpc = mpc.with_proposal(policy);
    }
    Ok(mpc)
}

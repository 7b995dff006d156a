//! The `random-dynamics` task family (hopper and walker2d, thesis Appendix C.4.2
//! "HopperRandParams, WalkerRandParams"): every task scales each body mass, each principal
//! moment of inertia, each hinge's damping and each geom's (and the ground's) friction by its
//! own factor, as the ProMP / `rand_param_envs` code does:
//!
//! - masses, inertias and frictions: `1.5^u`; damping: `1.3^u`; `u ~ U(-L, L)` independently
//!   per factor, with `L` = [`RandomDynamicsConfig::log_scale_limit`] (default
//!   [`LOG_SCALE_LIMIT`] = 1, so masses, inertias and frictions lie in `[1/1.5, 1.5]` and
//!   dampings in `[1/1.3, 1.3]`).
//!
//! A task's parameters are the factors, flattened as [`DynamicsScale::to_flat`] orders them.

use mbrl_core::task::Task;
use rand::{Rng, RngCore};

use super::sim::{DynamicsLayout, DynamicsScale, Sim};

/// Task family name.
pub const FAMILY: &str = "random-dynamics";
/// Default half-width of the exponent range (the ProMP code's `log_scale_limit`).
pub const LOG_SCALE_LIMIT: f32 = 1.0;
/// Base of the mass, inertia and friction factors.
pub const BASE: f32 = 1.5;
/// Base of the damping factors.
pub const DAMPING_BASE: f32 = 1.3;

/// Range of the random factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomDynamicsConfig {
    /// `L`: exponents are drawn from `U(-L, L)`. Default [`LOG_SCALE_LIMIT`]; the ProMP
    /// code's default is 3.
    pub log_scale_limit: f32,
}

impl Default for RandomDynamicsConfig {
    fn default() -> Self {
        Self {
            log_scale_limit: LOG_SCALE_LIMIT,
        }
    }
}

impl RandomDynamicsConfig {
    /// Draws one task for a robot of `layout`.
    pub fn sample(&self, layout: DynamicsLayout, rng: &mut dyn RngCore) -> Task {
        let limit = self.log_scale_limit.abs();
        let mut factor = |base: f32| {
            if limit > 0.0 {
                base.powf(rng.random_range(-limit..=limit))
            } else {
                1.0
            }
        };
        let mass: Vec<f32> = (0..layout.bodies).map(|_| factor(BASE)).collect();
        let inertia = (0..layout.bodies)
            .map(|_| [factor(BASE), factor(BASE), factor(BASE)])
            .collect();
        let damping = (0..layout.hinges).map(|_| factor(DAMPING_BASE)).collect();
        let friction = (0..layout.frictions()).map(|_| factor(BASE)).collect();
        task(&DynamicsScale {
            mass,
            inertia,
            damping,
            friction,
        })
    }
}

/// The task of a scale.
pub fn task(scale: &DynamicsScale) -> Task {
    let masses: Vec<String> = scale.mass.iter().map(|m| format!("{m:.2}")).collect();
    Task::new(
        format!("dynamics(mass x[{}])", masses.join(",")),
        scale.to_flat().into_iter().map(f64::from).collect(),
    )
}

/// The scale a task describes; `env` names the robot in the error.
pub fn scale(layout: DynamicsLayout, task: &Task, env: &str) -> mbrl_core::Result<DynamicsScale> {
    let flat: Vec<f32> = task.params.iter().map(|&p| p as f32).collect();
    DynamicsScale::from_flat(layout, &flat)
        .filter(|s| s.to_flat().iter().all(|f| f.is_finite() && *f > 0.0))
        .ok_or_else(|| {
            mbrl_core::Error::InvalidArgument(format!(
                "{env} {FAMILY} task needs {} positive factors (masses, inertias, dampings, \
                 frictions for {layout:?}); got {:?}",
                layout.bodies * 4 + layout.hinges + layout.frictions(),
                task.params
            ))
        })
}

/// A robot's `random-dynamics` state: the range tasks are drawn from and the active scale.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RandomDynamics {
    /// Range of the factors of new tasks.
    pub config: RandomDynamicsConfig,
    /// The active factors.
    pub active: DynamicsScale,
}

impl RandomDynamics {
    /// The default range and the as-built dynamics of `sim`.
    pub fn nominal(sim: &Sim) -> Self {
        Self {
            config: RandomDynamicsConfig::default(),
            active: DynamicsScale::nominal(sim.dynamics_layout()),
        }
    }

    /// Draws `n` tasks for `sim`'s robot.
    pub fn sample_tasks(&self, sim: &Sim, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        let layout = sim.dynamics_layout();
        (0..n).map(|_| self.config.sample(layout, rng)).collect()
    }

    /// Scales `sim`'s dynamics as `task` says; `env` names the robot in errors.
    pub fn set_task(&mut self, sim: &mut Sim, task: &Task, env: &str) -> mbrl_core::Result<()> {
        let scale = scale(sim.dynamics_layout(), task, env)?;
        sim.set_dynamics(&scale)?;
        self.active = scale;
        Ok(())
    }

    /// The active task.
    pub fn current_task(&self) -> Task {
        task(&self.active)
    }
}

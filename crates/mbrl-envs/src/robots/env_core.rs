//! The [`Env`] plumbing every robot shares, written once: [`Robot`] owns the simulation, the
//! spaces and the reset generator, and runs reset and step; a [`RobotModel`] supplies what
//! differs between robots (reset noise, observation, joint commands, reward and termination,
//! batched task functions, the task family).
//!
//! A step reads the action (finite, clipped into `[-1, 1]`), lets the model turn it into
//! joint commands, advances the simulation, observes, rejects a non-finite observation as a
//! diverged simulation, and asks the model for the reward, termination and info.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{TaskDistribution, TaskFunctions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::common::{read_ctrl, unit_box};
use super::sim::{Sim, SimState};
use super::RobotEnv;
use crate::common::unbounded;
use crate::render::View;

/// What one step pays and reports, computed by a [`RobotModel`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The step's reward.
    pub reward: f32,
    /// Whether the episode ended.
    pub terminated: bool,
    /// Diagnostics (positions, velocities, reward terms).
    pub info: Info,
}

/// The robot-specific parts of a [`Robot`] environment.
pub trait RobotModel: Sized + Send {
    /// Registry name used in error messages.
    const NAME: &'static str;

    /// Name and horizon of the variant.
    fn spec(&self) -> EnvSpec;

    /// Draws the reset's displacements of the generalized coordinates and its velocities
    /// (`ndofs` each), and anything else a reset draws, from `rng`.
    fn reset_noise(&mut self, ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>);

    /// Re-applies what the initial snapshot does not hold (terrain) after a reset.
    fn after_reset(&mut self, _sim: &mut Sim) {}

    /// The observation of the current state.
    fn observe(&self, sim: &Sim) -> Vec<f32>;

    /// The joint commands of a clipped action (default: the action itself).
    fn joint_commands(&self, ctrl: &[f32]) -> Vec<f32> {
        ctrl.to_vec()
    }

    /// Reward, termination and info of a step from `qpos_before` with the clipped action
    /// `ctrl`, ending in `sim` with observation `obs`.
    fn outcome(&self, sim: &Sim, qpos_before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome;

    /// Batched reward and termination of the active task.
    fn task_functions(&self) -> Arc<dyn TaskFunctions>;

    /// The projection that shows the robot best.
    fn view(&self) -> View;

    /// The environment's task distribution while a task family is active (default: none).
    fn task_distribution(_env: &mut Robot<Self>) -> Option<&mut dyn TaskDistribution> {
        None
    }
}

/// A robot environment: the simulation of a [`RobotModel`] behind the [`Env`] interface.
pub struct Robot<M> {
    pub(super) sim: Sim,
    pub(super) model: M,
    obs_space: Space,
    act_space: Space,
    act_dim: usize,
    rng: ChaCha8Rng,
}

impl<M: RobotModel> Robot<M> {
    /// A robot with observations of width `obs_dim` and `act_dim` motor commands in `[-1, 1]`;
    /// resets draw from seed 0 until a seed is given.
    pub(super) fn build(sim: Sim, model: M, obs_dim: usize, act_dim: usize) -> crate::Result<Self> {
        Ok(Self {
            sim,
            model,
            obs_space: unbounded(obs_dim)?,
            act_space: unit_box(act_dim)?,
            act_dim,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// Generalized coordinates, in the layout the robot's module documents.
    pub fn qpos(&self) -> Vec<f32> {
        self.sim.qpos()
    }

    /// Generalized velocities, in the layout the robot's module documents.
    pub fn qvel(&self) -> Vec<f32> {
        self.sim.qvel()
    }

    /// Body masses, in the order of the robot's bodies.
    pub fn body_masses(&self) -> Vec<f32> {
        self.sim.body_masses()
    }

    /// Resets to the initial pose displaced by `dq`, with generalized velocities `qvel` (both
    /// [`Sim::ndofs`] long): a given reset state instead of a drawn one (replaying recorded
    /// episodes); returns the observation.
    pub fn reset_to_state(&mut self, dq: &[f32], qvel: &[f32]) -> mbrl_core::Result<Vec<f32>> {
        let n = self.sim.ndofs();
        if dq.len() != n || qvel.len() != n {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{}: reset_to_state needs {n} displacements and {n} velocities, got {} and {}",
                M::NAME,
                dq.len(),
                qvel.len()
            )));
        }
        self.sim.reset(dq, qvel);
        self.model.after_reset(&mut self.sim);
        Ok(self.observation())
    }

    /// The simulation.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The observation of the current state.
    pub(super) fn observation(&self) -> Vec<f32> {
        self.model.observe(&self.sim)
    }
}

impl<M: RobotModel> Env for Robot<M> {
    fn spec(&self) -> EnvSpec {
        self.model.spec()
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(&mut self, seed: Option<u64>) -> mbrl_core::Result<(Tensor, Info)> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let (dq, v) = self.model.reset_noise(self.sim.ndofs(), &mut self.rng);
        self.sim.reset(&dq, &v);
        self.model.after_reset(&mut self.sim);
        Ok((vector(&self.observation())?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let ctrl = read_ctrl(action, self.act_dim, M::NAME)?;
        let qpos_before = self.sim.qpos();
        self.sim.step(&self.model.joint_commands(&ctrl));
        let obs = self.observation();
        if obs.iter().any(|v| !v.is_finite()) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{}: the simulation diverged (non-finite state {obs:?})",
                M::NAME
            )));
        }
        let outcome = self.model.outcome(&self.sim, &qpos_before, &ctrl, &obs);
        Ok(Step {
            obs: vector(&obs)?,
            reward: f64::from(outcome.reward),
            terminated: outcome.terminated,
            truncated: false,
            info: outcome.info,
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        self.model.task_functions()
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        M::task_distribution(self)
    }
}

impl<M: RobotModel> RobotEnv for Robot<M> {
    fn sim_state(&self) -> &SimState {
        self.sim.state()
    }

    fn default_view(&self) -> View {
        self.model.view()
    }
}

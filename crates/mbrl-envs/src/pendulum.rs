//! `pendulum`: Gymnasium's `Pendulum-v1`, reproduced exactly (the fixtures in
//! `tests/fixtures/pendulum.json` come from Gymnasium itself).
//!
//! - state `(th, thdot)`, integrated in `f64`; observation `(cos th, sin th, thdot)` as `f32`,
//!   in `[-1, 1] x [-1, 1] x [-8, 8]`;
//! - action torque `u`, `A = [-2, 2]`, clipped into it;
//! - `thdot' = clip(thdot + (3 g / (2 l) sin th + 3 / (m l^2) u) dt, -8, 8)`,
//!   `th' = th + thdot' dt` (semi-implicit Euler), `g = 10`, `m = 1`, `l = 1`, `dt = 0.05`;
//! - `r = -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2)` of the state *before* the step
//!   and the clipped torque, with `angle_normalize(x) = ((x + pi) mod 2 pi) - pi`;
//! - `th0 ~ U(-pi, pi)`, `thdot0 ~ U(-1, 1)`; `H = 200`, no termination.
//!
//! Task family `mass-length`: `m ~ U(0.5, 1.5)` and `l ~ U(0.5, 1.5)` (task parameters
//! `[m, l]`, any positive values accepted by `set_task`); the reward does not depend on them.
//! Held-out test tasks ([`TEST_TASKS`]) lie outside the training box: a heavy pendulum
//! (`m = 1.8, l = 1.2`) and a light one (`m = 0.4, l = 0.8`).
//!
//! Task family `motor`: a miscalibrated motor applies `g u` instead of `u`, with `|g| ~ U(0.5,
//! 1.5)` and either sign (a motor wired either way; task parameter `[g]`, any finite value
//! accepted); held-out gains `+-1.8` ([`MOTOR_TEST_GAINS`]). The observation does not reveal
//! `g`, so a model must learn it from recent transitions (thesis Sec. 9.4.4's miscalibration).
//! The reward charges the commanded torque `u`.
//!
//! The task-function reward recovers `angle_normalize(th)` from the observation as
//! `atan2(sin th, cos th)` with the differentiable [`crate::ops::atan2`].

use std::f64::consts::PI;
use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{box_space, column, family_active, finite_action};
use crate::ops::atan2;
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "pendulum";
/// Largest angular speed (`max_speed`).
pub const MAX_SPEED: f64 = 8.0;
/// Largest torque (`max_torque`).
pub const MAX_TORQUE: f64 = 2.0;
/// Time step.
pub const DT: f64 = 0.05;
/// Gravity.
pub const GRAVITY: f64 = 10.0;
/// Default mass.
pub const MASS: f64 = 1.0;
/// Default length.
pub const LENGTH: f64 = 1.0;
/// Half-width of the initial angle interval.
pub const INIT_ANGLE: f64 = PI;
/// Half-width of the initial angular-speed interval.
pub const INIT_SPEED: f64 = 1.0;
/// Episode length (Gymnasium's `max_episode_steps`).
pub const HORIZON: usize = 200;
/// Name of the task family over mass and length.
pub const FAMILY: &str = "mass-length";
/// Range of the mass in the `mass-length` family.
pub const MASS_RANGE: (f64, f64) = (0.5, 1.5);
/// Range of the length in the `mass-length` family.
pub const LENGTH_RANGE: (f64, f64) = (0.5, 1.5);
/// The `mass-length` family's held-out `(mass, length)` tasks, outside the training ranges.
pub const TEST_TASKS: [(f64, f64); 2] = [(1.8, 1.2), (0.4, 0.8)];

/// Name of the task family over the motor's gain.
pub const MOTOR_FAMILY: &str = "motor";
/// Range of `|g|` in the `motor` family's training tasks.
pub const MOTOR_GAIN_RANGE: (f64, f64) = (0.5, 1.5);
/// The `motor` family's held-out gains.
pub const MOTOR_TEST_GAINS: [f64; 2] = [1.8, -1.8];

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "Gymnasium Pendulum-v1, exact (swing up and balance a pendulum)",
    horizon: HORIZON,
    task_families: &[FAMILY, MOTOR_FAMILY],
    make,
};

/// The task families of `pendulum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `mass-length`.
    MassLength,
    /// `motor`.
    Motor,
}

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    let family = match (family_active(&ENTRY, family)?, family) {
        (true, Some(MOTOR_FAMILY)) => Some(Family::Motor),
        (true, _) => Some(Family::MassLength),
        (false, _) => None,
    };
    Ok(Box::new(Pendulum::with_family(family)?))
}

/// Gymnasium's `angle_normalize`: `((x + pi) mod 2 pi) - pi` with Python's floored modulo.
pub fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

/// The pendulum environment.
pub struct Pendulum {
    obs_space: Space,
    act_space: Space,
    state: [f64; 2],
    mass: f64,
    length: f64,
    gain: f64,
    family: Option<Family>,
    rng: ChaCha8Rng,
}

impl Pendulum {
    /// A new pendulum with Gymnasium's mass and length; `family_active` exposes the
    /// `mass-length` family.
    pub fn new(family_active: bool) -> mbrl_core::Result<Self> {
        Self::with_family(family_active.then_some(Family::MassLength))
    }

    /// A new pendulum with Gymnasium's dynamics exposing `family` (none: the plain task).
    pub fn with_family(family: Option<Family>) -> mbrl_core::Result<Self> {
        let high = [1.0, 1.0, MAX_SPEED as f32];
        Ok(Self {
            obs_space: box_space(high.iter().map(|h| -h).collect(), high.to_vec())?,
            act_space: box_space(vec![-MAX_TORQUE as f32], vec![MAX_TORQUE as f32])?,
            state: [0.0; 2],
            mass: MASS,
            length: LENGTH,
            gain: 1.0,
            family,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The exact internal state `[th, thdot]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the exact internal state `[th, thdot]` (e.g. to replay a Gymnasium episode) and
    /// returns the matching observation. `th` may be any finite angle; `|thdot|` must not
    /// exceed [`MAX_SPEED`].
    pub fn set_state(&mut self, state: [f64; 2]) -> mbrl_core::Result<Tensor> {
        let speed_ok = state[1].is_finite() && state[1].abs() <= MAX_SPEED;
        if !state[0].is_finite() || !speed_ok {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME}: state {state:?} needs a finite angle and |thdot| <= {MAX_SPEED}"
            )));
        }
        self.state = state;
        self.obs()
    }

    fn obs(&self) -> mbrl_core::Result<Tensor> {
        let [th, thdot] = self.state;
        vector(&[th.cos() as f32, th.sin() as f32, thdot as f32])
    }
}

impl Env for Pendulum {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: NAME.into(),
            max_episode_steps: Some(HORIZON),
        }
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
        self.state = [
            self.rng.random_range(-INIT_ANGLE..INIT_ANGLE),
            self.rng.random_range(-INIT_SPEED..INIT_SPEED),
        ];
        Ok((self.obs()?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let u = (finite_action(action, 1, NAME)?[0] as f64).clamp(-MAX_TORQUE, MAX_TORQUE);
        let [th, thdot] = self.state;
        let (m, l) = (self.mass, self.length);
        let cost = angle_normalize(th).powi(2) + 0.1 * thdot * thdot + 0.001 * u * u;
        let accel = 3.0 * GRAVITY / (2.0 * l) * th.sin() + 3.0 / (m * l * l) * self.gain * u;
        let new_thdot = (thdot + accel * DT).clamp(-MAX_SPEED, MAX_SPEED);
        self.state = [th + new_thdot * DT, new_thdot];
        Ok(Step {
            obs: self.obs()?,
            reward: -cost,
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(PendulumTask)
    }

    fn task_distribution(&mut self) -> Option<&mut dyn TaskDistribution> {
        if self.family.is_some() {
            Some(self)
        } else {
            None
        }
    }
}

fn mass_length_task(mass: f64, length: f64) -> Task {
    Task::new(format!("m={mass:.3},l={length:.3}"), vec![mass, length])
}

fn motor_task(gain: f64) -> Task {
    Task::new(format!("gain={gain:+.3}"), vec![gain])
}

impl TaskDistribution for Pendulum {
    fn family(&self) -> &str {
        match self.family {
            Some(Family::Motor) => MOTOR_FAMILY,
            _ => FAMILY,
        }
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| match self.family {
                Some(Family::Motor) => {
                    let size = rng.random_range(MOTOR_GAIN_RANGE.0..=MOTOR_GAIN_RANGE.1);
                    motor_task(if rng.random_bool(0.5) { size } else { -size })
                }
                _ => {
                    let m = rng.random_range(MASS_RANGE.0..=MASS_RANGE.1);
                    let l = rng.random_range(LENGTH_RANGE.0..=LENGTH_RANGE.1);
                    mass_length_task(m, l)
                }
            })
            .collect()
    }

    fn test_tasks(&self) -> Vec<Task> {
        match self.family {
            Some(Family::Motor) => MOTOR_TEST_GAINS.iter().map(|&g| motor_task(g)).collect(),
            _ => TEST_TASKS
                .iter()
                .map(|&(m, l)| mass_length_task(m, l))
                .collect(),
        }
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        match (self.family, task.params.as_slice()) {
            (Some(Family::Motor), [g]) if g.is_finite() => {
                self.gain = *g;
                Ok(())
            }
            (Some(Family::Motor), other) => Err(mbrl_core::Error::InvalidArgument(format!(
                "{MOTOR_FAMILY} task needs one finite parameter [gain]; got {other:?}"
            ))),
            (_, [m, l]) if m.is_finite() && l.is_finite() && *m > 0.0 && *l > 0.0 => {
                self.mass = *m;
                self.length = *l;
                Ok(())
            }
            (_, other) => Err(mbrl_core::Error::InvalidArgument(format!(
                "{FAMILY} task needs two positive parameters [mass, length]; got {other:?}"
            ))),
        }
    }

    fn current_task(&self) -> Task {
        match self.family {
            Some(Family::Motor) => motor_task(self.gain),
            _ => mass_length_task(self.mass, self.length),
        }
    }
}

/// Reward `-(atan2(sin, cos)^2 + 0.1 thdot^2 + 0.001 clip(u)^2)` of the observation before
/// the step; never terminates.
struct PendulumTask;

impl TaskFunctions for PendulumTask {
    fn reward(&self, obs: &Tensor, act: &Tensor, _next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let th = atan2(&column(obs, 1)?, &column(obs, 0)?)?;
        let thdot = column(obs, 2)?;
        let u = column(act, 0)?.clamp(-MAX_TORQUE, MAX_TORQUE)?;
        let cost =
            ((th.sqr()? + thdot.sqr()?.affine(0.1, 0.0)?)? + u.sqr()?.affine(0.001, 0.0)?)?;
        Ok(cost.neg()?)
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        never_terminated(next_obs)
    }
}

//! `cartpole-swingup`: continuous-action cart-pole swing-up with PILCO's cart-pole physics
//! (Deisenroth & Rasmussen 2011, `cartPole/dynamics.m`) and a PETS-style saturating reward
//! (Chua et al. 2018).
//!
//! Physics: cart mass `m_c = 0.5` kg, uniform pole of mass `m_p = 0.5` kg and length
//! `l = 0.5` m hinged on the cart, cart friction `b = 0.1` N s/m, gravity `g = 9.82` m/s^2.
//! With the angle `th` measured from hanging straight down (`th = pi` is upright) and
//! horizontal force `f`:
//!
//! ```text
//! xdd  = (2 m_p l thd^2 sin th + 3 m_p g sin th cos th + 4 f - 4 b xd)
//!        / (4 (m_c + m_p) - 3 m_p cos^2 th)
//! thdd = (-3 m_p l thd^2 sin th cos th - 6 (m_c + m_p) g sin th - 6 (f - b xd) cos th)
//!        / (4 l (m_c + m_p) - 3 m_p l cos^2 th)
//! ```
//!
//! - action `a in [-1, 1]` (clipped), force `f = 10 a` N, held for `dt = 0.05` s and
//!   integrated in `f64` with 5 classical Runge-Kutta (RK4) substeps of 0.01 s;
//! - observation `(x, xd, cos th, sin th, thd)` as `f32`; the track is unbounded;
//! - pole tip at `(x + l sin th, -l cos th)`, target `(0, l)` (pole upright over the origin);
//! - `r(s, a, s') = exp(-d^2 / l^2) - 0.01 clip(a)^2` with `d` the tip-to-target distance
//!   after the step, `d^2 = (x' + l sin th')^2 + l^2 (1 + cos th')^2`; `r` lies in
//!   `[-0.01, 1]`;
//! - `x0, xd0, th0, thd0 ~ U(-0.1, 0.1)` each (hanging down, nearly at rest); `H = 200`, no
//!   termination.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, TaskFunctions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{box_space, column, family_active, finite_action};
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "cartpole-swingup";
/// Cart mass (kg).
pub const CART_MASS: f64 = 0.5;
/// Pole mass (kg).
pub const POLE_MASS: f64 = 0.5;
/// Pole length (m).
pub const POLE_LENGTH: f64 = 0.5;
/// Cart friction coefficient (N s/m).
pub const FRICTION: f64 = 0.1;
/// Gravity (m/s^2).
pub const GRAVITY: f64 = 9.82;
/// Force of a full action (N).
pub const MAX_FORCE: f64 = 10.0;
/// Control interval (s).
pub const DT: f64 = 0.05;
/// RK4 substeps per control interval.
pub const SUBSTEPS: usize = 5;
/// Action cost coefficient.
pub const ACTION_COST: f64 = 0.01;
/// Half-width of the uniform initial-state noise.
pub const INIT_NOISE: f64 = 0.1;
/// Episode length.
pub const HORIZON: usize = 200;

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "Cart-pole swing-up, PILCO physics, PETS-style reward exp(-d^2/l^2) - 0.01 a^2",
    horizon: HORIZON,
    task_families: &[],
    make,
};

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    family_active(&ENTRY, family)?;
    Ok(Box::new(CartpoleSwingup::new()?))
}

/// The cart-pole swing-up environment. State `[x, xd, th, thd]`.
pub struct CartpoleSwingup {
    obs_space: Space,
    act_space: Space,
    state: [f64; 4],
    rng: ChaCha8Rng,
}

impl CartpoleSwingup {
    /// A new environment (call `reset` before stepping).
    pub fn new() -> mbrl_core::Result<Self> {
        let inf = f32::INFINITY;
        Ok(Self {
            obs_space: box_space(
                vec![-inf, -inf, -1.0, -1.0, -inf],
                vec![inf, inf, 1.0, 1.0, inf],
            )?,
            act_space: box_space(vec![-1.0], vec![1.0])?,
            state: [0.0; 4],
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The exact internal state `[x, xd, th, thd]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the exact internal state `[x, xd, th, thd]` (all finite) and returns the matching
    /// observation.
    pub fn set_state(&mut self, state: [f64; 4]) -> mbrl_core::Result<Tensor> {
        if state.iter().any(|v| !v.is_finite()) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME}: state {state:?} must be finite"
            )));
        }
        self.state = state;
        self.obs()
    }

    fn obs(&self) -> mbrl_core::Result<Tensor> {
        let [x, xd, th, thd] = self.state;
        vector(&[
            x as f32,
            xd as f32,
            th.cos() as f32,
            th.sin() as f32,
            thd as f32,
        ])
    }
}

/// Time derivative of `[x, xd, th, thd]` under force `f` (PILCO's equations).
fn derivative(s: [f64; 4], f: f64) -> [f64; 4] {
    let [_, xd, th, thd] = s;
    let (sin, cos) = th.sin_cos();
    let (mc, mp, l, b, g) = (CART_MASS, POLE_MASS, POLE_LENGTH, FRICTION, GRAVITY);
    let xdd = (2.0 * mp * l * thd * thd * sin + 3.0 * mp * g * sin * cos + 4.0 * f - 4.0 * b * xd)
        / (4.0 * (mc + mp) - 3.0 * mp * cos * cos);
    let thdd = (-3.0 * mp * l * thd * thd * sin * cos
        - 6.0 * (mc + mp) * g * sin
        - 6.0 * (f - b * xd) * cos)
        / (4.0 * l * (mc + mp) - 3.0 * mp * l * cos * cos);
    [xd, xdd, thd, thdd]
}

/// One classical Runge-Kutta step of length `h`.
fn rk4(s: [f64; 4], f: f64, h: f64) -> [f64; 4] {
    let shifted = |k: [f64; 4], c: f64| std::array::from_fn(|i| s[i] + c * k[i]);
    let k1 = derivative(s, f);
    let k2 = derivative(shifted(k1, h / 2.0), f);
    let k3 = derivative(shifted(k2, h / 2.0), f);
    let k4 = derivative(shifted(k3, h), f);
    std::array::from_fn(|i| s[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `exp(-d^2 / l^2) - 0.01 a^2` for the state after the step and the clipped action.
fn reward(next: [f64; 4], a: f64) -> f64 {
    let [x, _, th, _] = next;
    let l = POLE_LENGTH;
    let d2 = (x + l * th.sin()).powi(2) + (l * (1.0 + th.cos())).powi(2);
    (-d2 / (l * l)).exp() - ACTION_COST * a * a
}

impl Env for CartpoleSwingup {
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
        self.state = std::array::from_fn(|_| self.rng.random_range(-INIT_NOISE..=INIT_NOISE));
        Ok((self.obs()?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let a = (finite_action(action, 1, NAME)?[0] as f64).clamp(-1.0, 1.0);
        let h = DT / SUBSTEPS as f64;
        for _ in 0..SUBSTEPS {
            self.state = rk4(self.state, MAX_FORCE * a, h);
        }
        Ok(Step {
            obs: self.obs()?,
            reward: reward(self.state, a),
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(CartpoleSwingupTask)
    }
}

/// Reward `exp(-d^2 / l^2) - 0.01 clip(a)^2` from the observation after the step; never
/// terminates.
struct CartpoleSwingupTask;

impl TaskFunctions for CartpoleSwingupTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let l = POLE_LENGTH;
        let x = column(next_obs, 0)?;
        let cos = column(next_obs, 2)?;
        let sin = column(next_obs, 3)?;
        let tip_x = (x + sin.affine(l, 0.0)?)?;
        let below_target = cos.affine(l, l)?;
        let d2 = (tip_x.sqr()? + below_target.sqr()?)?;
        let closeness = d2.affine(-1.0 / (l * l), 0.0)?.exp()?;
        let a = column(act, 0)?.clamp(-1.0, 1.0)?;
        Ok((closeness - a.sqr()?.affine(ACTION_COST, 0.0)?)?)
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

//! `double-integrator`: the linear-quadratic environment of thesis Sec. 7.4.2, where the
//! gradient of the expected return of a linear policy is known in closed form, so the error
//! of gradient estimators (MAAC's, with learned or true dynamics) can be measured exactly.
//!
//! - state `x = (position, velocity)`, `S = R^2`; action `u = force`, `A = R` (unbounded and
//!   never clipped, so the dynamics stay exactly linear);
//! - `x' = A x + B u` with `dt = 0.1`, `A = [[1, dt], [0, 1]]`, `B = [dt^2 / 2, dt]`;
//! - `r(x, u) = -(x^T Q x + R u^2)` of the state *before* the step, `Q = I`, `R = 0.1`;
//! - `x0 ~ U([-1, 1]^2)`, so `E[x0] = 0` and `E[x0 x0^T] = I / 3`;
//! - `H = 50`, no termination.
//!
//! [`expected_return`] and [`expected_return_gradient`] give the exact expected return of a
//! linear Gaussian policy `u = K x + sigma eps`, `eps ~ N(0, 1)`, and its gradient with respect
//! to `K`, by propagating the state's second moment `S_t = E[x_t x_t^T]`:
//! `S_{t+1} = M S_t M^T + sigma^2 B B^T` with `M = A + B K`, and
//! `J(K) = -sum_{t<H} gamma^t (tr((Q + K^T R K) S_t) + R sigma^2)`.
//! The gradient is the adjoint (reverse-mode) of that recursion:
//! `L_{H-1} = gamma^{H-1} P`, `L_t = gamma^t P + M^T L_{t+1} M` with `P = Q + K^T R K`, and
//! `dJ/dK = -sum_{t<H} 2 gamma^t R K S_t - sum_{t<H-1} 2 B^T L_{t+1} M S_t`.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, Env, EnvSpec, Info, Step};
use mbrl_core::space::Space;
use mbrl_core::task::{never_terminated, TaskFunctions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{column, family_active, finite_action, unbounded};
use crate::registry::EnvEntry;

/// Registry name.
pub const NAME: &str = "double-integrator";
/// Time step.
pub const DT: f64 = 0.1;
/// State transition matrix `A`.
pub const A: Mat2 = [[1.0, DT], [0.0, 1.0]];
/// Control vector `B`.
pub const B: [f64; 2] = [0.5 * DT * DT, DT];
/// State cost matrix `Q`.
pub const Q: Mat2 = [[1.0, 0.0], [0.0, 1.0]];
/// Control cost `R`.
pub const R: f64 = 0.1;
/// Half-width of the uniform initial-state square.
pub const INIT_RANGE: f64 = 1.0;
/// Episode length.
pub const HORIZON: usize = 50;

/// A 2x2 matrix, row-major.
pub type Mat2 = [[f64; 2]; 2];

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "Linear x' = Ax + Bu, quadratic cost, exact linear-policy gradient (Sec. 7.4.2)",
    horizon: HORIZON,
    task_families: &[],
    make,
};

fn make(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    family_active(&ENTRY, family)?;
    Ok(Box::new(DoubleIntegrator::new()?))
}

/// The double-integrator environment.
pub struct DoubleIntegrator {
    obs_space: Space,
    act_space: Space,
    state: [f64; 2],
    rng: ChaCha8Rng,
}

impl DoubleIntegrator {
    /// A new environment (call `reset` before stepping).
    pub fn new() -> mbrl_core::Result<Self> {
        Ok(Self {
            obs_space: unbounded(2)?,
            act_space: unbounded(1)?,
            state: [0.0; 2],
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// The exact internal state.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    fn obs(&self) -> mbrl_core::Result<Tensor> {
        vector(&[self.state[0] as f32, self.state[1] as f32])
    }
}

impl Env for DoubleIntegrator {
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
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
            self.rng.random_range(-INIT_RANGE..=INIT_RANGE),
        ];
        Ok((self.obs()?, Info::new()))
    }

    fn step(&mut self, action: &Tensor) -> mbrl_core::Result<Step> {
        let u = finite_action(action, 1, NAME)?[0] as f64;
        let x = self.state;
        let state_cost = quad(&Q, x);
        let reward = -(state_cost + R * u * u);
        self.state = add(mat_vec(&A, x), scale_vec(B, u));
        Ok(Step {
            obs: self.obs()?,
            reward,
            terminated: false,
            truncated: false,
            info: Info::from([("state_cost".to_string(), state_cost)]),
        })
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(DoubleIntegratorTask)
    }
}

/// Reward `-(x^T Q x + R u^2)` of the state before the step; never terminates.
struct DoubleIntegratorTask;

impl TaskFunctions for DoubleIntegratorTask {
    fn reward(&self, obs: &Tensor, act: &Tensor, _next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let (p, v) = (column(obs, 0)?, column(obs, 1)?);
        let state_cost = ((p.sqr()?.affine(Q[0][0], 0.0)?
            + (&p * &v)?.affine(Q[0][1] + Q[1][0], 0.0)?)?
            + v.sqr()?.affine(Q[1][1], 0.0)?)?;
        let action_cost = column(act, 0)?.sqr()?.affine(R, 0.0)?;
        Ok((state_cost + action_cost)?.neg()?)
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

/// A linear Gaussian policy `u = K x + noise_std * eps`, `eps ~ N(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearPolicy {
    /// The gain `K` (a 1x2 row).
    pub gain: [f64; 2],
    /// Standard deviation of the Gaussian action noise (0 for a deterministic policy).
    pub noise_std: f64,
}

/// The second moment `E[x0 x0^T] = INIT_RANGE^2 / 3 * I` of the uniform initial state.
pub fn initial_second_moment() -> Mat2 {
    let v = INIT_RANGE * INIT_RANGE / 3.0;
    [[v, 0.0], [0.0, v]]
}

/// The exact expected discounted return `E[sum_{t<H} gamma^t r_t]` of `policy` over
/// `horizon` steps from the initial distribution (module docs give the recursion).
pub fn expected_return(policy: &LinearPolicy, horizon: usize, discount: f64) -> f64 {
    let moments = second_moments(policy, horizon);
    let p = stage_cost_matrix(policy.gain);
    let noise_cost = R * policy.noise_std * policy.noise_std;
    -moments
        .iter()
        .enumerate()
        .map(|(t, s)| discount.powi(t as i32) * (trace(&mat_mul(&p, s)) + noise_cost))
        .sum::<f64>()
}

/// The exact gradient of [`expected_return`] with respect to the gain `K`, in closed form
/// (the adjoint of the second-moment recursion; see the module docs).
pub fn expected_return_gradient(policy: &LinearPolicy, horizon: usize, discount: f64) -> [f64; 2] {
    let moments = second_moments(policy, horizon);
    let k = policy.gain;
    let m = closed_loop(k);
    let p = stage_cost_matrix(k);
    let mut grad = [0.0; 2];
    // `adjoint` holds L_{t+1} = dCost/dS_{t+1} while visiting t = H-1, ..., 0.
    let mut adjoint: Option<Mat2> = None;
    for (t, s) in moments.iter().enumerate().rev() {
        let gamma_t = discount.powi(t as i32);
        // Direct term d tr(K^T R K S_t) / dK = 2 R K S_t.
        let rks = row_mat(k, s);
        for j in 0..2 {
            grad[j] += 2.0 * gamma_t * R * rks[j];
        }
        // Through S_{t+1} = M S_t M^T: d tr(L M S M^T) / dK = 2 B^T L M S.
        if let Some(l) = adjoint {
            let lms = mat_mul(&mat_mul(&l, &m), s);
            let b_lms = row_mat(B, &lms);
            for j in 0..2 {
                grad[j] += 2.0 * b_lms[j];
            }
        }
        let carried = adjoint.map_or([[0.0; 2]; 2], |l| mat_mul(&transpose(&m), &mat_mul(&l, &m)));
        adjoint = Some(mat_add(&scale(&p, gamma_t), &carried));
    }
    [-grad[0], -grad[1]]
}

/// `S_t = E[x_t x_t^T]` for `t < horizon`.
fn second_moments(policy: &LinearPolicy, horizon: usize) -> Vec<Mat2> {
    let m = closed_loop(policy.gain);
    let noise = scale(&outer(B, B), policy.noise_std * policy.noise_std);
    let mut moments = Vec::with_capacity(horizon);
    let mut s = initial_second_moment();
    for _ in 0..horizon {
        moments.push(s);
        s = mat_add(&mat_mul(&mat_mul(&m, &s), &transpose(&m)), &noise);
    }
    moments
}

/// `M = A + B K`.
fn closed_loop(k: [f64; 2]) -> Mat2 {
    mat_add(&A, &outer(B, k))
}

/// `P = Q + K^T R K`.
fn stage_cost_matrix(k: [f64; 2]) -> Mat2 {
    mat_add(&Q, &scale(&outer(k, k), R))
}

fn mat_mul(a: &Mat2, b: &Mat2) -> Mat2 {
    let mut c = [[0.0; 2]; 2];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    c
}

fn mat_add(a: &Mat2, b: &Mat2) -> Mat2 {
    [
        [a[0][0] + b[0][0], a[0][1] + b[0][1]],
        [a[1][0] + b[1][0], a[1][1] + b[1][1]],
    ]
}

fn scale(a: &Mat2, c: f64) -> Mat2 {
    [[a[0][0] * c, a[0][1] * c], [a[1][0] * c, a[1][1] * c]]
}

fn transpose(a: &Mat2) -> Mat2 {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}

fn trace(a: &Mat2) -> f64 {
    a[0][0] + a[1][1]
}

fn outer(u: [f64; 2], v: [f64; 2]) -> Mat2 {
    [[u[0] * v[0], u[0] * v[1]], [u[1] * v[0], u[1] * v[1]]]
}

/// The row vector `r^T a`.
fn row_mat(r: [f64; 2], a: &Mat2) -> [f64; 2] {
    [
        r[0] * a[0][0] + r[1] * a[1][0],
        r[0] * a[0][1] + r[1] * a[1][1],
    ]
}

fn mat_vec(a: &Mat2, x: [f64; 2]) -> [f64; 2] {
    [
        a[0][0] * x[0] + a[0][1] * x[1],
        a[1][0] * x[0] + a[1][1] * x[1],
    ]
}

fn add(x: [f64; 2], y: [f64; 2]) -> [f64; 2] {
    [x[0] + y[0], x[1] + y[1]]
}

fn scale_vec(x: [f64; 2], c: f64) -> [f64; 2] {
    [x[0] * c, x[1] * c]
}

/// `x^T q x`.
fn quad(q: &Mat2, x: [f64; 2]) -> f64 {
    let qx = mat_vec(q, x);
    x[0] * qx[0] + x[1] * qx[1]
}

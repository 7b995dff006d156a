//! Helpers shared by the robot environments: action reading, batched reward pieces and the
//! `forward-backward` direction tasks.

use candle_core::Tensor;
use mbrl_core::space::{BoxSpace, Space};

use crate::common::finite_action;

/// `[-1, 1]^dim`, the normalised motor commands of every robot.
pub(crate) fn unit_box(dim: usize) -> mbrl_core::Result<Space> {
    Ok(Space::Box(BoxSpace::uniform(-1.0, 1.0, dim)?))
}

/// Reads a rank-1 action of `dim` finite elements and clips it into `[-1, 1]` (MuJoCo's
/// `ctrllimited`); NaN or infinite elements are an error.
pub(crate) fn read_ctrl(action: &Tensor, dim: usize, env: &str) -> mbrl_core::Result<Vec<f32>> {
    let values = finite_action(action, dim, env)?;
    Ok(values.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect())
}

/// `sum(clip(a)^2)` of a clipped action, in `f32` like the batched version.
pub(crate) fn ctrl_sq(ctrl: &[f32]) -> f32 {
    ctrl.iter().map(|u| u * u).sum()
}

/// Column `i` of a `[B, dim]` tensor, as a `[B]` tensor.
pub(crate) fn column(t: &Tensor, i: usize) -> candle_core::Result<Tensor> {
    t.narrow(1, i, 1)?.squeeze(1)
}

/// `sum(clip(act, -1, 1)^2, 1)` of a `[B, dim]` action batch, as `[B]`.
pub(crate) fn ctrl_sq_batch(act: &Tensor) -> candle_core::Result<Tensor> {
    act.clamp(-1f32, 1f32)?.sqr()?.sum(1)
}

/// A standard normal sample (Box-Muller), so the robots need no extra dependency.
pub(crate) fn standard_normal(rng: &mut impl rand::Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

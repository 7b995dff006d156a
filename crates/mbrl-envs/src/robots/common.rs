//! Helpers shared by the robot environments: task-family parsing, variant specs, reset
//! noise, action reading, batched reward pieces and the `forward-backward` direction tasks.

use candle_core::Tensor;
use mbrl_core::env::EnvSpec;
use mbrl_core::space::{BoxSpace, Space};
use mbrl_core::task::Task;
use rand::Rng;

use super::RewardKind;
use crate::common::finite_action;

/// The family of `known` (name, value pairs, in the order of the robot's `FAMILIES`) named
/// `family`, `None` without one; an unknown name is an error naming `env` and the valid ones.
pub(crate) fn parse_family<F: Copy>(
    env: &str,
    family: Option<&str>,
    known: &[(&str, F)],
) -> crate::Result<Option<F>> {
    let Some(name) = family else {
        return Ok(None);
    };
    match known.iter().find(|(k, _)| *k == name) {
        Some(&(_, value)) => Ok(Some(value)),
        None => Err(crate::Error::UnknownTaskFamily {
            env: env.to_string(),
            family: name.to_string(),
            valid: known.iter().map(|(k, _)| k.to_string()).collect(),
        }),
    }
}

/// The spec of the variant `reward` selects: `me_trpo` or `v5`, each `(name, horizon)`.
pub(crate) fn variant_spec(
    reward: RewardKind,
    me_trpo: (&str, usize),
    v5: (&str, usize),
) -> EnvSpec {
    let (name, horizon) = match reward {
        RewardKind::MeTrpo => me_trpo,
        RewardKind::GymnasiumV5 => v5,
    };
    EnvSpec {
        name: name.into(),
        max_episode_steps: Some(horizon),
    }
}

/// `n` draws of `U(-scale, scale)` (zeros when `scale` is not positive).
pub(crate) fn uniform_noise(rng: &mut impl Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if scale > 0.0 {
                rng.random_range(-scale..=scale)
            } else {
                0.0
            }
        })
        .collect()
}

/// `n` draws of `scale N(0, 1)`.
pub(crate) fn normal_noise(rng: &mut impl Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| scale * standard_normal(rng)).collect()
}

/// Gymnasium's reset noise of the MuJoCo robots with `reset_noise_scale`: `U(-scale, scale)`
/// on the coordinates, then `scale N(0, 1)` on the velocities.
pub(crate) fn gymnasium_noise(rng: &mut impl Rng, n: usize, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let dq = uniform_noise(rng, n, scale);
    (dq, normal_noise(rng, n, scale))
}

/// The `forward-backward` task of direction `d` (`+1` or `-1`).
pub(crate) fn direction_task(d: f32) -> Task {
    Task::new(if d > 0.0 { "forward" } else { "backward" }, vec![d as f64])
}

/// The direction of a `forward-backward` task's parameters, if they are exactly `[+1]` or
/// `[-1]`.
pub(crate) fn parse_direction(params: &[f64]) -> Option<f32> {
    match params {
        [d] if *d == 1.0 || *d == -1.0 => Some(*d as f32),
        _ => None,
    }
}

/// A `forward-backward` direction drawn with probability 1/2 each.
pub(crate) fn sample_direction(rng: &mut dyn rand::RngCore) -> f32 {
    if rng.random_bool(0.5) {
        1.0
    } else {
        -1.0
    }
}

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

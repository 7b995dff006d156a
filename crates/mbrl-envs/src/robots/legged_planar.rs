//! What the planar legged robots, `hopper` and `walker2d`, share: the Gymnasium v5
//! observation (torso height, pitch, joint angles, clipped velocities), the reward of both
//! variants and its batched form, each robot bringing its own health test.
//!
//! With `v` the end-of-step root x velocity and `d` the task's direction (`+1` without one):
//! - A.2 (ME-TRPO): the early stop relaxed into a soft constraint,
//!   `r = d v - 0.005 ||a||^2 - 10 max(0.45 - z, 0) - 10 sum(max(s' - 100, 0))`; never
//!   terminates;
//! - Gymnasium v5: `r = healthy + d v - 0.001 ||a||^2`, terminated when not healthy.

use candle_core::Tensor;
use mbrl_core::env::Info;
use mbrl_core::task::{never_terminated, TaskFunctions};

use super::common::{column, ctrl_sq, ctrl_sq_batch};
use super::env_core::Outcome;
use super::sim::Sim;
use super::RewardKind;

/// Index of the torso height in the observation.
pub const Z_INDEX: usize = 0;
/// Index of the torso pitch in the observation.
pub const PITCH_INDEX: usize = 1;
/// Observed velocities are clipped to `±VEL_CLIP` (Gymnasium v5).
pub const VEL_CLIP: f32 = 10.0;

/// `qpos` without the root x, the height made absolute by adding `init_z` (the MJCF `ref` of
/// `rootz`), then `clip(qvel, -VEL_CLIP, VEL_CLIP)`.
pub(super) fn observe(sim: &Sim, init_z: f32) -> Vec<f32> {
    let mut obs = sim.qpos();
    obs.remove(0);
    obs[0] += init_z;
    obs.extend(sim.qvel().iter().map(|v| v.clamp(-VEL_CLIP, VEL_CLIP)));
    obs
}

/// The step's outcome under `reward`, with root x velocity `obs[vx_index]` times `direction`
/// and Gymnasium's health verdict `healthy` on `obs`.
pub(super) fn outcome(
    reward: RewardKind,
    sim: &Sim,
    ctrl: &[f32],
    obs: &[f32],
    (vx_index, direction): (usize, f32),
    healthy: bool,
) -> Outcome {
    let velocity = obs[vx_index];
    let run = direction * velocity;
    let (reward, terminated) = match reward {
        RewardKind::MeTrpo => {
            let height = 10.0 * (0.45 - obs[Z_INDEX]).max(0.0);
            let bounds: f32 = obs.iter().map(|s| (s - 100.0).max(0.0)).sum();
            (run - 0.005 * ctrl_sq(ctrl) - height - 10.0 * bounds, false)
        }
        RewardKind::GymnasiumV5 => (
            f32::from(u8::from(healthy)) + run - 1e-3 * ctrl_sq(ctrl),
            !healthy,
        ),
    };
    let info = Info::from([
        ("x_position".to_string(), sim.qpos()[0] as f64),
        ("x_velocity".to_string(), velocity as f64),
        ("z".to_string(), obs[Z_INDEX] as f64),
    ]);
    Outcome {
        reward,
        terminated,
        info,
    }
}

/// Batched rewards and termination of both variants.
pub(super) struct LeggedTask {
    /// The variant.
    pub reward: RewardKind,
    /// Index of the root x velocity in the observation.
    pub vx_index: usize,
    /// The task's direction.
    pub direction: f32,
    /// `1.0` where a `[B, obs]` batch is healthy (Gymnasium v5), as `[B]` `f32`.
    pub healthy: fn(&Tensor) -> candle_core::Result<Tensor>,
}

impl TaskFunctions for LeggedTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let run = column(next_obs, self.vx_index)?.affine(self.direction as f64, 0.0)?;
        Ok(match self.reward {
            RewardKind::MeTrpo => {
                let ctrl = ctrl_sq_batch(act)?.affine(0.005, 0.0)?;
                let height = column(next_obs, Z_INDEX)?
                    .affine(-1.0, 0.45)?
                    .relu()?
                    .affine(10.0, 0.0)?;
                let bounds = next_obs
                    .affine(1.0, -100.0)?
                    .relu()?
                    .sum(1)?
                    .affine(10.0, 0.0)?;
                run.sub(&ctrl)?.sub(&height)?.sub(&bounds)?
            }
            RewardKind::GymnasiumV5 => {
                let ctrl = ctrl_sq_batch(act)?.affine(1e-3, 0.0)?;
                (self.healthy)(next_obs)?.add(&run)?.sub(&ctrl)?
            }
        })
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        match self.reward {
            RewardKind::MeTrpo => never_terminated(next_obs),
            RewardKind::GymnasiumV5 => Ok((self.healthy)(next_obs)?.affine(-1.0, 1.0)?),
        }
    }
}

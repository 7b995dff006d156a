//! Locomotion robots on rapier3d, MuJoCo-like enough that the thesis's experiments carry
//! over: the bodies, masses, joint ranges, gears, springs, damping and armature follow
//! Gymnasium's MJCF models, physics runs at `dt = 0.01` with Gymnasium's frame skip, and
//! observations are Gymnasium v5's.
//!
//! - [`sim`]: the shared rapier machinery (robot description, build, step with joint
//!   torques, snapshot reset);
//! - [`half_cheetah`]: `half-cheetah` (thesis Appendix A.2 reward) and `half-cheetah-v5`
//!   (Gymnasium's reward), with the `forward-backward`, `disabled-joint` and
//!   `sloped-terrain` task families (Sec. 9.4).
//!
//! `docs/robots.md` lists the constants, the reward choices and the benchmark numbers.

mod common;
pub mod half_cheetah;
pub mod sim;

pub use half_cheetah::{HalfCheetah, HalfCheetahConfig};
pub use sim::{Sim, SimState};

/// Which reward a robot returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RewardKind {
    /// Thesis Appendix A.2 (ME-TRPO): forward velocity minus a control cost.
    #[default]
    MeTrpo,
    /// Gymnasium v5's reward (weights of the v5 environment).
    GymnasiumV5,
}

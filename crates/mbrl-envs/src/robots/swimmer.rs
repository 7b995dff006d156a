//! `swimmer`: Gymnasium's Swimmer (MJCF `swimmer.xml`) on rapier3d.
//!
//! - 3 capsule links of length 1 and radius 0.1 (torso, mid, back), density 1000 (35.6 kg
//!   each); root slides in x and y and turns about z (MJCF `slider1`, `slider2`,
//!   `free_body_rot`), 2 hinges about z with range `[-100, 100]` degrees, `armature = 0.1`,
//!   no damping, gear 150; no contacts (`contype = 0`), so gravity does nothing;
//! - the fluid of the MJCF `<option density="4000" viscosity="0.1">`, added by hand with
//!   MuJoCo's inertia-box drag model ([`super::sim::Fluid`]): the quadratic drag is what
//!   makes undulation propel the swimmer, the viscous term damps it;
//! - `dt = 0.01`, frame skip 4 (control step 0.04 s), as Gymnasium;
//! - observation (8, Gymnasium v5): torso angle, 2 joint angles, then `qvel` (x and y
//!   velocity, turn rate, 2 joint velocities); action (2) in `[-1, 1]`;
//! - reset noise `U(-0.1, 0.1)` on `qpos` and `qvel`.
//!
//! Rewards use the end-of-step root x velocity `v = next_obs[3]` (see `half_cheetah`):
//! - `swimmer` (default, thesis Appendix A.2): `r = v - 0.005 ||a||^2`, horizon 200;
//! - `swimmer-v5` (Gymnasium v5): `r = v - 0.0001 ||a||^2`, horizon 1000.
//!
//! Neither terminates.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{EnvSpec, Info};
use mbrl_core::task::{never_terminated, TaskFunctions};
use rand_chacha::ChaCha8Rng;

use super::common::{column, ctrl_sq, ctrl_sq_batch, uniform_noise, variant_spec};
use super::env_core::{Outcome, Robot, RobotModel};
use super::sim::{BodySpec, CapsuleSpec, Fluid, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use super::RewardKind;
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name of the thesis (Appendix A.2) variant.
pub const NAME: &str = "swimmer";
/// Registry name of the Gymnasium v5 variant.
pub const NAME_V5: &str = "swimmer-v5";
/// Horizon of Appendix A.2.
pub const HORIZON: usize = 200;
/// Horizon of Gymnasium's Swimmer-v5.
pub const HORIZON_V5: usize = 1000;
/// Observation width.
pub const OBS_DIM: usize = 8;
/// Action width.
pub const ACT_DIM: usize = 2;
/// Index of the root x velocity in the observation.
pub const VX_INDEX: usize = 3;
/// Control-cost weight of Appendix A.2.
pub const CTRL_COST_ME_TRPO: f32 = 0.005;
/// Control-cost weight of Gymnasium v5.
pub const CTRL_COST_V5: f32 = 1e-4;
/// Scale of the uniform reset noise.
pub const RESET_NOISE: f32 = 0.1;
/// The MJCF's medium: `<option density="4000" viscosity="0.1">`.
pub const FLUID: Fluid = Fluid {
    density: 4000.0,
    viscosity: 0.1,
};

/// Registry entry of the thesis variant.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description: "swimmer on rapier3d with MuJoCo's fluid drag, r = v_x - 0.005||a||^2 \
                  (Appendix A.2)",
    horizon: HORIZON,
    task_families: &[],
    make: |family| {
        check_task_family(&ENTRY, family)?;
        Ok(Box::new(Swimmer::new(RewardKind::MeTrpo)?))
    },
};

/// Registry entry of the Gymnasium v5 variant.
pub const ENTRY_V5: EnvEntry = EnvEntry {
    name: NAME_V5,
    description: "swimmer on rapier3d with MuJoCo's fluid drag, Gymnasium v5 reward",
    horizon: HORIZON_V5,
    task_families: &[],
    make: |family| {
        check_task_family(&ENTRY_V5, family)?;
        Ok(Box::new(Swimmer::new(RewardKind::GymnasiumV5)?))
    },
};

/// The robot, in MJCF terms (Gymnasium's `swimmer.xml`).
pub fn spec() -> RobotSpec {
    let deg = std::f32::consts::PI / 180.0;
    let hinge = HingeSpec {
        axis: [0.0, 0.0, 1.0],
        range: Some([-100.0 * deg, 100.0 * deg]),
        stiffness: 0.0,
        damping: 0.0,
        armature: 0.1,
        gear: 150.0,
    };
    let link = |name, parent: Option<usize>, pos, a: [f32; 3], b: [f32; 3]| BodySpec {
        name,
        parent,
        pos,
        geoms: vec![CapsuleSpec::fromto(a, b, 0.1)],
        hinge: parent.map(|_| hinge),
    };
    RobotSpec {
        bodies: vec![
            link("torso", None, [0.0; 3], [1.5, 0.0, 0.0], [0.5, 0.0, 0.0]),
            link("mid", Some(0), [0.5, 0.0, 0.0], [0.0; 3], [-1.0, 0.0, 0.0]),
            link(
                "back",
                Some(1),
                [-1.0, 0.0, 0.0],
                [0.0; 3],
                [-1.0, 0.0, 0.0],
            ),
        ],
        root: RootJoint::PlanarXY,
        mass: MassSpec::Density(1000.0),
        friction: 1.0,
        ground_friction: 1.0,
        dt: 0.01,
        frame_skip: 4,
        solver_iterations: 4,
    }
}

/// The swimmer's part of its [`Swimmer`] environment: the variant.
pub struct SwimmerModel {
    reward: RewardKind,
}

/// The swimmer environment.
pub type Swimmer = Robot<SwimmerModel>;

impl Swimmer {
    /// A new environment with the given reward.
    pub fn new(reward: RewardKind) -> crate::Result<Self> {
        Self::with_fluid(reward, Some(FLUID))
    }

    /// A swimmer in another medium (`None`: no drag at all, so it cannot swim).
    pub fn with_fluid(reward: RewardKind, fluid: Option<Fluid>) -> crate::Result<Self> {
        let mut sim = Sim::new(&spec());
        sim.disable_contacts();
        sim.set_fluid(fluid);
        Robot::build(sim, SwimmerModel { reward }, OBS_DIM, ACT_DIM)
    }
}

impl SwimmerModel {
    fn ctrl_cost_weight(&self) -> f32 {
        match self.reward {
            RewardKind::MeTrpo => CTRL_COST_ME_TRPO,
            RewardKind::GymnasiumV5 => CTRL_COST_V5,
        }
    }
}

impl RobotModel for SwimmerModel {
    const NAME: &'static str = NAME;

    fn spec(&self) -> EnvSpec {
        variant_spec(self.reward, (NAME, HORIZON), (NAME_V5, HORIZON_V5))
    }

    fn reset_noise(&mut self, ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let dq = uniform_noise(rng, ndofs, RESET_NOISE);
        (dq, uniform_noise(rng, ndofs, RESET_NOISE))
    }

    fn observe(&self, sim: &Sim) -> Vec<f32> {
        let mut obs = sim.qpos().split_off(2);
        obs.extend(sim.qvel());
        obs
    }

    fn outcome(&self, sim: &Sim, _qpos_before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome {
        let velocity = obs[VX_INDEX];
        let reward_ctrl = -self.ctrl_cost_weight() * ctrl_sq(ctrl);
        let qpos = sim.qpos();
        let info = Info::from([
            ("x_position".to_string(), qpos[0] as f64),
            ("y_position".to_string(), qpos[1] as f64),
            ("x_velocity".to_string(), velocity as f64),
            ("reward_ctrl".to_string(), reward_ctrl as f64),
        ]);
        Outcome {
            reward: velocity + reward_ctrl,
            terminated: false,
            info,
        }
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(SwimmerTask {
            ctrl_cost_weight: self.ctrl_cost_weight(),
        })
    }

    fn view(&self) -> View {
        View::TopAndSide
    }
}

/// Batched reward `next_obs[3] - w ||clip(a)||^2`; never terminates.
struct SwimmerTask {
    ctrl_cost_weight: f32,
}

impl TaskFunctions for SwimmerTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let ctrl = ctrl_sq_batch(act)?.affine(self.ctrl_cost_weight as f64, 0.0)?;
        Ok(column(next_obs, VX_INDEX)?.sub(&ctrl)?)
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

//! `half-cheetah`: Gymnasium's HalfCheetah (MJCF `half_cheetah.xml`) on rapier3d.
//!
//! - 7 capsule bodies (torso with head, back thigh/shin/foot, front thigh/shin/foot),
//!   total mass 14 kg distributed by geom volume (`settotalmass="14"`, `inertiafromgeom`);
//! - planar root (`rootx`, `rootz`, `rooty`) and 6 hinges with the model's ranges, springs
//!   (`stiffness`), `damping`, `armature = 0.1` and motor gears (120, 90, 60, 120, 60, 30);
//! - friction 0.4 everywhere; `dt = 0.01`, frame skip 5 (control step 0.05 s);
//! - observation (17, Gymnasium v5): `qpos[1..]` (root z, root pitch, 6 joint angles) then
//!   `qvel` (root x/z velocity, pitch rate, 6 joint velocities); the root x is excluded;
//! - action (6): motor commands in `[-1, 1]` (clipped), torque = `gear * a`;
//! - reset: the initial pose plus `U(-0.1, 0.1)` on every `qpos` and `0.1 N(0, 1)` on every
//!   `qvel`, as Gymnasium's `reset_noise_scale = 0.1`.
//!
//! Rewards use the root x velocity **at the end of the step**, `v = next_obs[8]` (`qvel[0]`),
//! so they are functions of `(obs, act, next_obs)` without adding the root x to the
//! observation:
//! - `half-cheetah` (default, thesis Appendix A.2, ME-TRPO): `r = d v - 0.05 ||a||^2`, horizon
//!   100;
//! - `half-cheetah-v5` (Gymnasium v5 weights): `r = d v - 0.1 ||a||^2`, horizon 1000.
//!   Gymnasium takes the mean velocity over the frame skip, `(x' - x) / 0.05`, which the
//!   observation cannot give; the two differ by the velocity change within one control step.
//!
//! `d` is the direction of the `forward-backward` family (`+1` otherwise). Task families
//! (Sec. 9.4 and the ProMP benchmarks):
//! - `forward-backward`: `d = +1` or `-1` with probability 1/2;
//! - `disabled-joint`: one joint produces no torque; training tasks draw from
//!   [`HalfCheetahConfig::train_disabled_joints`], [`TaskDistribution::test_tasks`] returns
//!   [`HalfCheetahConfig::test_disabled_joints`];
//! - `sloped-terrain`: a constant ground slope, emulated by tilting gravity in the x-z plane
//!   (for a flat incline this is exact); training slopes are uniform in
//!   `±`[`HalfCheetahConfig::train_max_slope`]; the test tasks are the steep
//!   `±`[`HalfCheetahConfig::test_slope`] (up and down) and a [`Hill`] rising then falling at
//!   that slope (real geometry under vertical gravity; [`HalfCheetahConfig::hill_start`],
//!   [`HalfCheetahConfig::hill_run`]);
//! - `pier`: the ground ahead is a row of floating blocks that sink and bob when stepped on
//!   ([`PierConfig`]); each task draws every block's damping, the test task is one
//!   configuration drawn with [`PierConfig::test_seed`].
//!
//! Switching the task (`set_task`) takes effect at the next step, also mid-episode (the
//! thesis's "switching the perturbation within a rollout").

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{Env, EnvSpec, Info};
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::common::{
    column, ctrl_sq, ctrl_sq_batch, direction_task, gymnasium_noise, parse_direction, parse_family,
    sample_direction, variant_spec,
};
use super::env_core::{Outcome, Robot, RobotModel};
use super::sim::{BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use super::terrain::{remove_collider, Hill, Pier, PierConfig};
use super::RewardKind;
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name of the thesis (Appendix A.2) variant.
pub const NAME: &str = "half-cheetah";
/// Registry name of the Gymnasium v5 reward variant.
pub const NAME_V5: &str = "half-cheetah-v5";
/// Horizon of Appendix A.2.
pub const HORIZON: usize = 100;
/// Horizon of Gymnasium's HalfCheetah-v5.
pub const HORIZON_V5: usize = 1000;
/// Observation width.
pub const OBS_DIM: usize = 17;
/// Action width.
pub const ACT_DIM: usize = 6;
/// Index of the root x velocity (`qvel[0]`) in the observation.
pub const VX_INDEX: usize = 8;
/// Joint (and motor) names, in action order.
pub const JOINTS: [&str; ACT_DIM] = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"];
/// Motor gears, in action order.
pub const GEARS: [f32; ACT_DIM] = [120.0, 90.0, 60.0, 120.0, 60.0, 30.0];
/// Sliding friction of every geom and of the ground (MJCF `friction="0.4 0.1 0.1"`).
pub const FRICTION: f32 = 0.4;
/// Control-cost weight of Appendix A.2.
pub const CTRL_COST_ME_TRPO: f32 = 0.05;
/// Control-cost weight of Gymnasium v5.
pub const CTRL_COST_V5: f32 = 0.1;
/// Task family: run forward or backward.
pub const FAMILY_FORWARD_BACKWARD: &str = "forward-backward";
/// Task family: one joint produces no torque.
pub const FAMILY_DISABLED_JOINT: &str = "disabled-joint";
/// Task family: constant ground slope (test tasks: steep up, steep down, a hill).
pub const FAMILY_SLOPED_TERRAIN: &str = "sloped-terrain";
/// Task family: floating blocks with random damping.
pub const FAMILY_PIER: &str = "pier";
/// Every task family.
pub const FAMILIES: &[&str] = &[
    FAMILY_FORWARD_BACKWARD,
    FAMILY_DISABLED_JOINT,
    FAMILY_SLOPED_TERRAIN,
    FAMILY_PIER,
];

/// Registry entry of the thesis variant.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description:
        "half-cheetah on rapier3d, r = v_x - 0.05||a||^2 (Appendix A.2; Sec. 9.4 families)",
    horizon: HORIZON,
    task_families: FAMILIES,
    make: make_me_trpo,
};

/// Registry entry of the Gymnasium v5 reward variant.
pub const ENTRY_V5: EnvEntry = EnvEntry {
    name: NAME_V5,
    description: "half-cheetah on rapier3d, Gymnasium v5 reward r = v_x - 0.1||a||^2",
    horizon: HORIZON_V5,
    task_families: FAMILIES,
    make: make_v5,
};

fn make_me_trpo(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    check_task_family(&ENTRY, family)?;
    Ok(Box::new(HalfCheetah::new(
        HalfCheetahConfig::default(),
        family,
    )?))
}

fn make_v5(family: Option<&str>) -> crate::Result<Box<dyn Env>> {
    check_task_family(&ENTRY_V5, family)?;
    let config = HalfCheetahConfig {
        reward: RewardKind::GymnasiumV5,
        ..HalfCheetahConfig::default()
    };
    Ok(Box::new(HalfCheetah::new(config, family)?))
}

/// Settings of the half-cheetah beyond the MJCF constants.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfCheetahConfig {
    /// Reward. Default [`RewardKind::MeTrpo`].
    pub reward: RewardKind,
    /// Scale of the initial-state noise. Default 0.1 (Gymnasium).
    pub reset_noise_scale: f32,
    /// Joints (indices into [`JOINTS`]) disabled in training tasks. Default `[0, 1, 2, 4, 5]`.
    pub train_disabled_joints: Vec<usize>,
    /// Held-out joints for test tasks. Default `[3]` (the front thigh).
    pub test_disabled_joints: Vec<usize>,
    /// Largest training slope, in radians. Default 0.1 (about 5.7 degrees).
    pub train_max_slope: f32,
    /// Magnitude of the steep test slopes (up and down) and of the test hill's sides, in
    /// radians. Default 0.3.
    pub test_slope: f32,
    /// x of the foot of the test hill (m). Default 2.0 (a run-up of about 1.4 m from the
    /// front foot).
    pub hill_start: f32,
    /// Horizontal length of each side of the test hill (m). Default 2.5 (crest 0.77 m high
    /// at `x = 4.5` with the default slope).
    pub hill_run: f32,
    /// The `pier` family's blocks.
    pub pier: PierConfig,
    /// Velocity-solver iterations per physics step. Default 4.
    pub solver_iterations: usize,
}

impl Default for HalfCheetahConfig {
    fn default() -> Self {
        Self {
            reward: RewardKind::MeTrpo,
            reset_noise_scale: 0.1,
            train_disabled_joints: vec![0, 1, 2, 4, 5],
            test_disabled_joints: vec![3],
            train_max_slope: 0.1,
            test_slope: 0.3,
            hill_start: 2.0,
            hill_run: 2.5,
            pier: PierConfig::default(),
            solver_iterations: 4,
        }
    }
}

/// The robot, in MJCF terms (Gymnasium's `half_cheetah.xml`).
pub fn spec(solver_iterations: usize) -> RobotSpec {
    const R: f32 = 0.046;
    let hinge = |range: [f32; 2], stiffness: f32, damping: f32, gear: f32| HingeSpec {
        axis: [0.0, 1.0, 0.0],
        range: Some(range),
        stiffness,
        damping,
        armature: 0.1,
        gear,
    };
    let body = |name, parent, pos, geoms, hinge| BodySpec {
        name,
        parent,
        pos,
        geoms,
        hinge,
    };
    RobotSpec {
        bodies: vec![
            body(
                "torso",
                None,
                [0.0, 0.0, 0.7],
                vec![
                    CapsuleSpec::fromto([-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], R),
                    CapsuleSpec::axisangle_y([0.6, 0.0, 0.1], 0.87, R, 0.15),
                ],
                None,
            ),
            body(
                "bthigh",
                Some(0),
                [-0.5, 0.0, 0.0],
                vec![CapsuleSpec::axisangle_y([0.1, 0.0, -0.13], -3.8, R, 0.145)],
                Some(hinge([-0.52, 1.05], 240.0, 6.0, GEARS[0])),
            ),
            body(
                "bshin",
                Some(1),
                [0.16, 0.0, -0.25],
                vec![CapsuleSpec::axisangle_y(
                    [-0.14, 0.0, -0.07],
                    -2.03,
                    R,
                    0.15,
                )],
                Some(hinge([-0.785, 0.785], 180.0, 4.5, GEARS[1])),
            ),
            body(
                "bfoot",
                Some(2),
                [-0.28, 0.0, -0.14],
                vec![CapsuleSpec::axisangle_y(
                    [0.03, 0.0, -0.097],
                    -0.27,
                    R,
                    0.094,
                )],
                Some(hinge([-0.4, 0.785], 120.0, 3.0, GEARS[2])),
            ),
            body(
                "fthigh",
                Some(0),
                [0.5, 0.0, 0.0],
                vec![CapsuleSpec::axisangle_y(
                    [-0.07, 0.0, -0.12],
                    0.52,
                    R,
                    0.133,
                )],
                Some(hinge([-1.0, 0.7], 180.0, 4.5, GEARS[3])),
            ),
            body(
                "fshin",
                Some(4),
                [-0.14, 0.0, -0.24],
                vec![CapsuleSpec::axisangle_y(
                    [0.065, 0.0, -0.09],
                    -0.6,
                    R,
                    0.106,
                )],
                Some(hinge([-1.2, 0.87], 120.0, 3.0, GEARS[4])),
            ),
            body(
                "ffoot",
                Some(5),
                [0.13, 0.0, -0.18],
                vec![CapsuleSpec::axisangle_y([0.045, 0.0, -0.07], -0.6, R, 0.07)],
                Some(hinge([-0.5, 0.5], 60.0, 1.5, GEARS[5])),
            ),
        ],
        root: RootJoint::Planar,
        mass: MassSpec::Total(14.0),
        friction: FRICTION,
        ground_friction: FRICTION,
        dt: 0.01,
        frame_skip: 5,
        solver_iterations,
    }
}

/// The active task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    ForwardBackward,
    DisabledJoint,
    SlopedTerrain,
    Pier,
}

/// The half-cheetah's part of its [`HalfCheetah`] environment: settings, task family, the
/// active task and the terrain it put in the simulation.
pub struct HalfCheetahModel {
    config: HalfCheetahConfig,
    family: Option<Family>,
    direction: f32,
    disabled_joint: Option<usize>,
    slope: f32,
    hill: Option<Hill>,
    hill_collider: Option<rapier3d::prelude::ColliderHandle>,
    pier: Option<Pier>,
    pier_damping: Vec<f32>,
}

/// The half-cheetah environment.
pub type HalfCheetah = Robot<HalfCheetahModel>;

impl HalfCheetah {
    /// A new environment with `family` (one of [`FAMILIES`]) active, or none. Without a
    /// family, or until `set_task`, the cheetah runs forward on flat ground with every joint
    /// working.
    pub fn new(config: HalfCheetahConfig, family: Option<&str>) -> crate::Result<Self> {
        let family = parse_family(
            NAME,
            family,
            &[
                (FAMILY_FORWARD_BACKWARD, Family::ForwardBackward),
                (FAMILY_DISABLED_JOINT, Family::DisabledJoint),
                (FAMILY_SLOPED_TERRAIN, Family::SlopedTerrain),
                (FAMILY_PIER, Family::Pier),
            ],
        )?;
        let joints = config
            .train_disabled_joints
            .iter()
            .chain(&config.test_disabled_joints);
        if let Some(j) = joints.into_iter().find(|&&j| j >= ACT_DIM) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "half-cheetah disabled joint {j} does not exist; joints are 0..{ACT_DIM} ({JOINTS:?})"
            ))
            .into());
        }
        if family == Some(Family::DisabledJoint) && config.train_disabled_joints.is_empty() {
            return Err(mbrl_core::Error::InvalidArgument(
                "half-cheetah disabled-joint family needs at least one training joint \
                 (train_disabled_joints is empty)"
                    .into(),
            )
            .into());
        }
        let mut sim = Sim::new(&spec(config.solver_iterations.max(1)));
        let (pier, pier_damping) = if family == Some(Family::Pier) {
            config.pier.validate().map_err(|msg| {
                crate::Error::Core(mbrl_core::Error::InvalidArgument(format!("{NAME}: {msg}")))
            })?;
            let pier = Pier::build(&config.pier, sim.state_mut());
            sim.snapshot_initial();
            let damping = vec![config.pier.damping_range[0]; pier.len()];
            (Some(pier), damping)
        } else {
            (None, Vec::new())
        };
        let model = HalfCheetahModel {
            config,
            family,
            direction: 1.0,
            disabled_joint: None,
            slope: 0.0,
            hill: None,
            hill_collider: None,
            pier,
            pier_damping,
        };
        Robot::build(sim, model, OBS_DIM, ACT_DIM)
    }

    /// Each pier block's displacement from its rest height (m, negative when sunk); empty
    /// outside the `pier` family.
    pub fn pier_displacements(&self) -> Vec<f32> {
        self.model
            .pier
            .as_ref()
            .map(|p| p.displacements(self.sim.state()))
            .unwrap_or_default()
    }
}

impl HalfCheetahModel {
    fn ctrl_cost_weight(&self) -> f32 {
        match self.config.reward {
            RewardKind::MeTrpo => CTRL_COST_ME_TRPO,
            RewardKind::GymnasiumV5 => CTRL_COST_V5,
        }
    }

    /// Makes the simulation match the task: gravity tilted by the slope (vertical on a
    /// hill), the hill's collider present exactly when the task is a hill, the pier blocks'
    /// dampings. Called after `set_task` and after every reset (which restores a snapshot
    /// without the hill).
    fn apply_terrain(&mut self, sim: &mut Sim) {
        let (s, c) = self.slope.sin_cos();
        sim.set_gravity([-9.81 * s, 0.0, -9.81 * c]);
        if let Some(handle) = self.hill_collider.take() {
            remove_collider(sim.state_mut(), handle);
        }
        if let Some(hill) = self.hill {
            self.hill_collider = hill.insert(sim.state_mut(), FRICTION);
        }
        if let Some(pier) = &self.pier {
            pier.set_damping(sim.state_mut(), &self.pier_damping);
        }
    }
}

impl RobotModel for HalfCheetahModel {
    const NAME: &'static str = NAME;

    fn spec(&self) -> EnvSpec {
        variant_spec(self.config.reward, (NAME, HORIZON), (NAME_V5, HORIZON_V5))
    }

    fn reset_noise(&mut self, ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        gymnasium_noise(rng, ndofs, self.config.reset_noise_scale)
    }

    fn after_reset(&mut self, sim: &mut Sim) {
        // The snapshot has no hill collider: forget the old handle before re-adding it.
        self.hill_collider = None;
        self.apply_terrain(sim);
    }

    fn observe(&self, sim: &Sim) -> Vec<f32> {
        let mut obs = sim.qpos();
        obs.remove(0);
        obs.extend(sim.qvel());
        obs
    }

    fn joint_commands(&self, ctrl: &[f32]) -> Vec<f32> {
        let mut applied = ctrl.to_vec();
        if let Some(j) = self.disabled_joint {
            applied[j] = 0.0;
        }
        applied
    }

    fn outcome(&self, sim: &Sim, qpos_before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome {
        let x_after = sim.qpos()[0];
        let velocity = obs[VX_INDEX];
        let reward_run = self.direction * velocity;
        let reward_ctrl = -self.ctrl_cost_weight() * ctrl_sq(ctrl);
        let info = Info::from([
            ("x_position".to_string(), x_after as f64),
            ("x_velocity".to_string(), velocity as f64),
            (
                "mean_x_velocity".to_string(),
                ((x_after - qpos_before[0]) / sim.control_dt()) as f64,
            ),
            ("reward_run".to_string(), reward_run as f64),
            ("reward_ctrl".to_string(), reward_ctrl as f64),
        ]);
        Outcome {
            reward: reward_run + reward_ctrl,
            terminated: false,
            info,
        }
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(HalfCheetahTask {
            direction: self.direction,
            ctrl_cost_weight: self.ctrl_cost_weight(),
        })
    }

    fn view(&self) -> View {
        View::Side
    }

    fn task_distribution(env: &mut HalfCheetah) -> Option<&mut dyn TaskDistribution> {
        if env.model.family.is_some() {
            Some(env)
        } else {
            None
        }
    }
}

fn disabled_task(j: usize) -> Task {
    Task::new(format!("disabled_joint={}", JOINTS[j]), vec![j as f64])
}

fn slope_task(slope: f32) -> Task {
    Task::new(format!("slope={slope:+.3}"), vec![slope as f64])
}

fn hill_task(hill: Hill) -> Task {
    Task::new(
        format!("hill slope={:.3}", hill.slope),
        vec![hill.slope as f64, hill.start as f64, hill.run as f64],
    )
}

fn pier_task(damping: &[f32]) -> Task {
    let mean = damping.iter().sum::<f32>() / damping.len().max(1) as f32;
    Task::new(
        format!("pier mean damping={mean:.1}"),
        damping.iter().map(|&c| c as f64).collect(),
    )
}

impl TaskDistribution for HalfCheetah {
    fn family(&self) -> &str {
        match self.model.family {
            Some(Family::ForwardBackward) | None => FAMILY_FORWARD_BACKWARD,
            Some(Family::DisabledJoint) => FAMILY_DISABLED_JOINT,
            Some(Family::SlopedTerrain) => FAMILY_SLOPED_TERRAIN,
            Some(Family::Pier) => FAMILY_PIER,
        }
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n)
            .map(|_| match self.model.family {
                Some(Family::ForwardBackward) | None => direction_task(sample_direction(rng)),
                Some(Family::DisabledJoint) => {
                    let joints = &self.model.config.train_disabled_joints;
                    disabled_task(joints[rng.random_range(0..joints.len())])
                }
                Some(Family::SlopedTerrain) => {
                    let m = self.model.config.train_max_slope.abs();
                    slope_task(if m > 0.0 {
                        rng.random_range(-m..=m)
                    } else {
                        0.0
                    })
                }
                Some(Family::Pier) => match &self.model.pier {
                    Some(pier) => pier_task(&pier.sample_damping(rng)),
                    None => pier_task(&[]),
                },
            })
            .collect()
    }

    fn test_tasks(&self) -> Vec<Task> {
        match self.model.family {
            Some(Family::DisabledJoint) => self
                .model
                .config
                .test_disabled_joints
                .iter()
                .map(|&j| disabled_task(j))
                .collect(),
            Some(Family::SlopedTerrain) => {
                let s = self.model.config.test_slope.abs();
                let hill = Hill {
                    slope: s,
                    start: self.model.config.hill_start,
                    run: self.model.config.hill_run,
                };
                vec![slope_task(s), slope_task(-s), hill_task(hill)]
            }
            Some(Family::Pier) => match &self.model.pier {
                Some(pier) => {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.model.config.pier.test_seed);
                    vec![pier_task(&pier.sample_damping(&mut rng))]
                }
                None => Vec::new(),
            },
            Some(Family::ForwardBackward) | None => Vec::new(),
        }
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        let family = self.family().to_string();
        let bad = |what: &str| {
            mbrl_core::Error::InvalidArgument(format!(
                "{NAME} {family} task needs {what}; got {:?}",
                task.params
            ))
        };
        match (self.model.family, task.params.as_slice()) {
            (Some(Family::ForwardBackward) | None, params) if parse_direction(params).is_some() => {
                self.model.direction = params[0] as f32;
            }
            (Some(Family::ForwardBackward) | None, _) => {
                return Err(bad("one parameter, the direction +1 or -1"))
            }
            (Some(Family::DisabledJoint), [j])
                if *j >= 0.0 && j.fract() == 0.0 && (*j as usize) < ACT_DIM =>
            {
                self.model.disabled_joint = Some(*j as usize);
            }
            (Some(Family::DisabledJoint), _) => {
                return Err(bad(&format!(
                    "one parameter, a joint index in 0..{ACT_DIM}"
                )))
            }
            (Some(Family::SlopedTerrain), [s]) if s.is_finite() && s.abs() < 1.2 => {
                self.model.slope = *s as f32;
                self.model.hill = None;
                self.model.apply_terrain(&mut self.sim);
            }
            (Some(Family::SlopedTerrain), [s, start, run])
                if *s > 0.0 && *s < 1.2 && start.is_finite() && *run > 0.0 && *run < 1e3 =>
            {
                self.model.slope = 0.0;
                self.model.hill = Some(Hill {
                    slope: *s as f32,
                    start: *start as f32,
                    run: *run as f32,
                });
                self.model.apply_terrain(&mut self.sim);
            }
            (Some(Family::SlopedTerrain), _) => {
                return Err(bad(
                    "[slope] (an incline, radians, |slope| < 1.2) or [slope, start, run] \
                     (a hill: 0 < slope < 1.2, finite start, 0 < run < 1000 m)",
                ))
            }
            (Some(Family::Pier), params)
                if params.len() == self.model.pier_damping.len()
                    && params.iter().all(|c| c.is_finite() && *c >= 0.0) =>
            {
                self.model.pier_damping = params.iter().map(|&c| c as f32).collect();
                self.model.apply_terrain(&mut self.sim);
            }
            (Some(Family::Pier), _) => {
                return Err(bad(&format!(
                    "one damping >= 0 (N s/m) per block, {} parameters",
                    self.model.pier_damping.len()
                )))
            }
        }
        Ok(())
    }

    fn current_task(&self) -> Task {
        match self.model.family {
            Some(Family::ForwardBackward) | None => direction_task(self.model.direction),
            Some(Family::DisabledJoint) => match self.model.disabled_joint {
                Some(j) => disabled_task(j),
                None => Task::new("no_disabled_joint", Vec::new()),
            },
            Some(Family::SlopedTerrain) => match self.model.hill {
                Some(hill) => hill_task(hill),
                None => slope_task(self.model.slope),
            },
            Some(Family::Pier) => pier_task(&self.model.pier_damping),
        }
    }
}

/// Batched reward `d * next_obs[8] - w * ||clip(a)||^2`; never terminates.
struct HalfCheetahTask {
    direction: f32,
    ctrl_cost_weight: f32,
}

impl TaskFunctions for HalfCheetahTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let run = column(next_obs, VX_INDEX)?.affine(self.direction as f64, 0.0)?;
        let ctrl = ctrl_sq_batch(act)?.affine(self.ctrl_cost_weight as f64, 0.0)?;
        Ok(run.sub(&ctrl)?)
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

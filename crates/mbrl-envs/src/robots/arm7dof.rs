//! `arm7dof`: a torque-controlled 7-joint reaching arm like the PR2's (thesis Appendix B.3,
//! MB-MPO's "PR2" environment) on rapier3d.
//!
//! MB-MPO's PR2 environment (rllab's `PR2Env` on the MJCF `pr2.xml` of Sergey Levine's PR2
//! model) moves the PR2's left arm with torques in `[-3, 3]` N m, **without gravity**
//! (`gravity="0 0 0"`, the real arm is spring-counterbalanced), to a goal sampled per episode
//! uniformly in the box `[0.4, 0.6] x [0.25, 0.75] x [0.6, 1.0]` of the robot's base frame.
//! That model's links are meshes, so the geometry here is Gymnasium's `pusher.xml`, the same
//! PR2 arm (right side) built from capsules and spheres:
//! - a welded base at the PR2's right shoulder, `(-0.05, -0.188, 0.7907)`; 7 hinges
//!   `shoulder_pan` (z), `shoulder_lift` (y), `upper_arm_roll` (x), `elbow_flex` (y),
//!   `forearm_roll` (x), `wrist_flex` (y), `wrist_roll` (x), with the upper arm 0.4 m and the
//!   forearm 0.321 m long, `pusher.xml`'s ranges, damping (1, 1, 0.1, 0.1, 0.1, 0.1, 0.1),
//!   `armature = 0.04`, density 300 and motor range `[-2, 2]` N m (gear 2 on `a` in `[-1, 1]`);
//! - no gravity (both MJCF files); `dt = 0.01`, frame skip 5 (control step 0.05 s, the
//!   time step of MB-MPO's `pr2.xml`);
//! - end effector: the point between the two fingertip spheres, `(0.1, 0, 0)` in the wrist
//!   roll frame ([`forward_kinematics`] computes it from the joint angles);
//! - observation (20): 7 joint angles, 7 joint velocities, end-effector position, goal;
//! - action (7) in `[-1, 1]`; reset: joint angles `0.01 N(0, 1)` and velocities `0.1 N(0, 1)`
//!   around the straight arm (rllab's `PR2Env`);
//! - goal: uniform in [`GOAL_LOW`]..[`GOAL_HIGH`], MB-MPO's box mirrored to the right arm
//!   (every point is reachable: tested by inverse kinematics);
//! - reward (B.3): `r = -||ee - goal||^2 - 0.05 ||a||^2` with the end effector at the end of
//!   the step (rllab measured it before the step); never terminates; horizon 200, the length
//!   of MB-MPO's trajectories (B.3: "20 trajectories of 200 time steps").
//!
//! Without a task family a new goal is drawn at every reset. The `random-goal` family makes
//! the goal the task: it is drawn by `sample_tasks` and stays fixed across resets until
//! `set_task`.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{EnvSpec, Info};
use mbrl_core::task::{never_terminated, Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::common::{ctrl_sq, ctrl_sq_batch, normal_noise, parse_family};
use super::env_core::{Outcome, Robot, RobotModel};
use super::sim::{BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name.
pub const NAME: &str = "arm7dof";
/// Horizon (Appendix B.3).
pub const HORIZON: usize = 200;
/// Number of joints (the action width).
pub const ACT_DIM: usize = 7;
/// Observation width.
pub const OBS_DIM: usize = 20;
/// Index of the end-effector position in the observation.
pub const EE_INDEX: usize = 14;
/// Index of the goal in the observation.
pub const GOAL_INDEX: usize = 17;
/// Joint names, in action order.
pub const JOINTS: [&str; ACT_DIM] = [
    "shoulder_pan",
    "shoulder_lift",
    "upper_arm_roll",
    "elbow_flex",
    "forearm_roll",
    "wrist_flex",
    "wrist_roll",
];
/// Joint ranges (rad), `pusher.xml`'s numbers as written there.
#[allow(clippy::approx_constant)]
pub const RANGES: [[f32; 2]; ACT_DIM] = [
    [-2.2854, 1.714602],
    [-0.5236, 1.3963],
    [-1.5, 1.7],
    [-2.3213, 0.0],
    [-1.5, 1.5],
    [-1.094, 0.0],
    [-1.5, 1.5],
];
/// Joint damping (N m s / rad), `pusher.xml`.
pub const DAMPING: [f32; ACT_DIM] = [1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1];
/// Maximum joint torque (N m): the motor gear on `a` in `[-1, 1]`.
pub const GEAR: f32 = 2.0;
/// World position of the shoulder (the PR2's right `shoulder_pan_link` in its base frame).
pub const SHOULDER: [f32; 3] = [-0.05, -0.188, 0.790675];
/// Each joint's rotation axis and the offset of its body from the previous joint (body frame).
pub const KINEMATICS: [([f32; 3], [f32; 3]); ACT_DIM] = [
    ([0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    ([0.0, 1.0, 0.0], [0.1, 0.0, 0.0]),
    ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ([0.0, 1.0, 0.0], [0.4, 0.0, 0.0]),
    ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ([0.0, 1.0, 0.0], [0.321, 0.0, 0.0]),
    ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
];
/// End effector in the wrist roll frame (between the fingertips).
pub const EE_OFFSET: [f32; 3] = [0.1, 0.0, 0.0];
/// Lower corner of the goal box (world frame).
pub const GOAL_LOW: [f32; 3] = [0.4, -0.75, 0.6];
/// Upper corner of the goal box (world frame).
pub const GOAL_HIGH: [f32; 3] = [0.6, -0.25, 1.0];
/// Control-cost weight (Appendix B.3).
pub const CTRL_COST: f32 = 0.05;
/// Task family: the goal position.
pub const FAMILY_RANDOM_GOAL: &str = "random-goal";
/// Every task family.
pub const FAMILIES: &[&str] = &[FAMILY_RANDOM_GOAL];

/// Registry entry.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description:
        "7-DoF PR2-like reaching arm on rapier3d, r = -||ee - goal||^2 - 0.05||a||^2 (Appendix B.3)",
    horizon: HORIZON,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY, family)?;
        Ok(Box::new(Arm7Dof::new(family)?))
    },
};

/// The arm, in MJCF terms (Gymnasium's `pusher.xml`; the welded `upper_arm`, `forearm` and
/// `tips_arm` bodies are merged into the roll links they hang from).
pub fn spec() -> RobotSpec {
    let caps = CapsuleSpec::fromto;
    let sphere = CapsuleSpec::sphere;
    let geoms: [Vec<CapsuleSpec>; ACT_DIM] = [
        vec![
            caps([0.0, 0.0, -0.4], [0.0, 0.0, 0.2], 0.1),
            sphere([-0.06, 0.05, 0.2], 0.05),
            sphere([0.06, 0.05, 0.2], 0.05),
            sphere([-0.06, 0.09, 0.2], 0.03),
            sphere([0.06, 0.09, 0.2], 0.03),
        ],
        vec![caps([0.0, -0.1, 0.0], [0.0, 0.1, 0.0], 0.1)],
        vec![
            caps([-0.1, 0.0, 0.0], [0.1, 0.0, 0.0], 0.02),
            caps([0.0, 0.0, 0.0], [0.4, 0.0, 0.0], 0.06),
        ],
        vec![caps([0.0, -0.02, 0.0], [0.0, 0.02, 0.0], 0.06)],
        vec![
            caps([-0.1, 0.0, 0.0], [0.1, 0.0, 0.0], 0.02),
            caps([0.0, 0.0, 0.0], [0.291, 0.0, 0.0], 0.05),
        ],
        vec![caps([0.0, -0.02, 0.0], [0.0, 0.02, 0.0], 0.01)],
        vec![
            caps([0.0, -0.1, 0.0], [0.0, 0.1, 0.0], 0.02),
            caps([0.0, -0.1, 0.0], [0.1, -0.1, 0.0], 0.02),
            caps([0.0, 0.1, 0.0], [0.1, 0.1, 0.0], 0.02),
            sphere([0.1, -0.1, 0.0], 0.01),
            sphere([0.1, 0.1, 0.0], 0.01),
        ],
    ];
    let mut bodies = vec![BodySpec {
        name: "base",
        parent: None,
        pos: SHOULDER,
        // Stands in for the PR2's torso; welded, so it does not move.
        geoms: vec![CapsuleSpec::sphere([0.0; 3], 0.05)],
        hinge: None,
    }];
    for (j, geoms) in geoms.into_iter().enumerate() {
        bodies.push(BodySpec {
            name: JOINTS[j],
            parent: Some(j),
            pos: KINEMATICS[j].1,
            geoms,
            hinge: Some(HingeSpec {
                axis: KINEMATICS[j].0,
                range: Some(RANGES[j]),
                stiffness: 0.0,
                damping: DAMPING[j],
                armature: 0.04,
                gear: GEAR,
            }),
        });
    }
    RobotSpec {
        bodies,
        root: RootJoint::Fixed,
        mass: MassSpec::Density(300.0),
        friction: 0.8,
        ground_friction: 1.0,
        dt: 0.01,
        frame_skip: 5,
        solver_iterations: 4,
    }
}

/// The end-effector position for joint angles `q`, by composing the joint rotations along the
/// chain (independent of the simulation; tests compare the two).
pub fn forward_kinematics(q: &[f32; ACT_DIM]) -> [f32; 3] {
    // Walk back from the end effector: p <- offset_j + R_j(q_j) p.
    let mut p = EE_OFFSET;
    for j in (0..ACT_DIM).rev() {
        let (axis, offset) = KINEMATICS[j];
        let r = rotate(axis, q[j], p);
        p = [offset[0] + r[0], offset[1] + r[1], offset[2] + r[2]];
    }
    [SHOULDER[0] + p[0], SHOULDER[1] + p[1], SHOULDER[2] + p[2]]
}

/// Rotates `p` by `angle` about the unit coordinate axis `axis` (Rodrigues).
fn rotate(axis: [f32; 3], angle: f32, p: [f32; 3]) -> [f32; 3] {
    let (s, c) = angle.sin_cos();
    let k = axis;
    let cross = [
        k[1] * p[2] - k[2] * p[1],
        k[2] * p[0] - k[0] * p[2],
        k[0] * p[1] - k[1] * p[0],
    ];
    let dot = k[0] * p[0] + k[1] * p[1] + k[2] * p[2];
    [0, 1, 2].map(|i| p[i] * c + cross[i] * s + k[i] * dot * (1.0 - c))
}

/// The arm's part of its [`Arm7Dof`] environment: the goal and whether it is the task.
pub struct Arm7DofModel {
    family: bool,
    goal: [f32; 3],
}

/// The arm environment.
pub type Arm7Dof = Robot<Arm7DofModel>;

impl Arm7Dof {
    /// A new environment, with the `random-goal` family active or none.
    pub fn new(family: Option<&str>) -> crate::Result<Self> {
        let family = parse_family(NAME, family, &[(FAMILY_RANDOM_GOAL, ())])?.is_some();
        let mut sim = Sim::new(&spec());
        sim.set_gravity([0.0; 3]);
        let model = Arm7DofModel {
            family,
            goal: [0.5, -0.5, 0.8],
        };
        Robot::build(sim, model, OBS_DIM, ACT_DIM)
    }

    /// The end-effector position in the simulation.
    pub fn ee_position(&self) -> [f32; 3] {
        ee_position(&self.sim)
    }

    /// The current goal.
    pub fn goal(&self) -> [f32; 3] {
        self.model.goal
    }
}

/// The end-effector position in `sim`.
fn ee_position(sim: &Sim) -> [f32; 3] {
    sim.point_in_body(ACT_DIM, EE_OFFSET)
        .unwrap_or([f32::NAN; 3])
}

/// A goal drawn uniformly in the goal box.
fn sample_goal(rng: &mut dyn RngCore) -> [f32; 3] {
    [0, 1, 2].map(|i| rng.random_range(GOAL_LOW[i]..=GOAL_HIGH[i]))
}

fn goal_task(g: [f32; 3]) -> Task {
    Task::new(
        format!("goal=({:.2},{:.2},{:.2})", g[0], g[1], g[2]),
        g.iter().map(|&v| f64::from(v)).collect(),
    )
}

impl RobotModel for Arm7DofModel {
    const NAME: &'static str = NAME;

    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: NAME.into(),
            max_episode_steps: Some(HORIZON),
        }
    }

    fn reset_noise(&mut self, _ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let dq = normal_noise(rng, ACT_DIM, 0.01);
        let v = normal_noise(rng, ACT_DIM, 0.1);
        if !self.family {
            self.goal = sample_goal(rng);
        }
        (dq, v)
    }

    fn observe(&self, sim: &Sim) -> Vec<f32> {
        let mut obs = sim.qpos();
        obs.extend(sim.qvel());
        obs.extend(ee_position(sim));
        obs.extend(self.goal);
        obs
    }

    fn outcome(&self, _sim: &Sim, _qpos_before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome {
        let ee = &obs[EE_INDEX..EE_INDEX + 3];
        let dist_sq: f32 = ee
            .iter()
            .zip(&self.goal)
            .map(|(e, g)| (e - g).powi(2))
            .sum();
        let reward_ctrl = -CTRL_COST * ctrl_sq(ctrl);
        let info = Info::from([
            ("distance".to_string(), f64::from(dist_sq.sqrt())),
            ("reward_dist".to_string(), f64::from(-dist_sq)),
            ("reward_ctrl".to_string(), f64::from(reward_ctrl)),
        ]);
        Outcome {
            reward: -dist_sq + reward_ctrl,
            terminated: false,
            info,
        }
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(ArmTask)
    }

    fn view(&self) -> View {
        View::TopAndSide
    }

    fn task_distribution(env: &mut Arm7Dof) -> Option<&mut dyn TaskDistribution> {
        if env.model.family {
            Some(env)
        } else {
            None
        }
    }
}

impl TaskDistribution for Arm7Dof {
    fn family(&self) -> &str {
        FAMILY_RANDOM_GOAL
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        (0..n).map(|_| goal_task(sample_goal(rng))).collect()
    }

    fn set_task(&mut self, task: &Task) -> mbrl_core::Result<()> {
        match task.params.as_slice() {
            [x, y, z] if x.is_finite() && y.is_finite() && z.is_finite() => {
                self.model.goal = [*x as f32, *y as f32, *z as f32];
                Ok(())
            }
            _ => Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME} {FAMILY_RANDOM_GOAL} task needs three parameters, a finite goal x, y, z; \
                 got {:?}",
                task.params
            ))),
        }
    }

    fn current_task(&self) -> Task {
        goal_task(self.model.goal)
    }
}

/// Batched `-||ee' - goal'||^2 - 0.05 ||clip(a)||^2`, end effector and goal read from the next
/// observation; never terminates.
struct ArmTask;

impl TaskFunctions for ArmTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let ee = next_obs.narrow(1, EE_INDEX, 3)?;
        let goal = next_obs.narrow(1, GOAL_INDEX, 3)?;
        let dist = ee.sub(&goal)?.sqr()?.sum(1)?;
        let ctrl = ctrl_sq_batch(act)?.affine(f64::from(CTRL_COST), 0.0)?;
        Ok(dist.add(&ctrl)?.neg()?)
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

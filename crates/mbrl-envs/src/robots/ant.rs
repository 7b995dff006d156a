//! `ant`: Gymnasium's Ant (MJCF `ant.xml`) on rapier3d.
//!
//! - a sphere torso (radius 0.25) with four legs; each leg is a fixed "aux" capsule on the
//!   torso, a hip (`hip_k`, about z, range ±30°) and an ankle (`ankle_k`, about the leg's
//!   horizontal normal, range 30°..70° or -70°..-30°); capsules of radius 0.08, density 5
//!   (`inertiafromgeom`), friction 1; every hinge has `armature = 1`, `damping = 1` and a
//!   motor of gear 150;
//! - a free root (MuJoCo's `type="free"`): `qpos = (x, y, z, qw, qx, qy, qz, 8 joint angles)`,
//!   `qvel = (linear velocity in the world frame, angular velocity in the torso frame, 8 joint
//!   velocities)`; the torso starts at z = 0.75 with the legs flat (their ankles outside the
//!   joint range, as in Gymnasium, so the legs snap down at the first step);
//! - `dt = 0.01`, frame skip 5 (control step 0.05 s);
//! - observation (27, Gymnasium v5 without contact forces): `qpos[2..]` (torso z, orientation
//!   quaternion, 8 joint angles) then `qvel` (14). Gymnasium's Ant-v5 appends the 78 clipped
//!   external contact forces `cfrc_ext` by default and subtracts a contact cost; neither is
//!   here (Appendix A.2 does not use contact information either, and a reward computed from
//!   `(obs, act, next_obs)` cannot use forces that are not observed): this is Ant-v5 with
//!   `include_cfrc_ext_in_observation=False, contact_cost_weight=0`. With the `random-goal`
//!   family the observation (29) starts with the torso's x and y, which its reward needs;
//! - action (8) in `[-1, 1]`, in MJCF actuator order `hip_4, ankle_4, hip_1, ankle_1, hip_2,
//!   ankle_2, hip_3, ankle_3` (legs 1-4: front left, front right, back left, back right);
//! - reset: the initial pose plus `U(-0.1, 0.1)` on every generalized coordinate (the free
//!   root's orientation as a rotation vector, where Gymnasium perturbs the 4 quaternion
//!   entries) and `0.1 N(0, 1)` on every velocity.
//!
//! Rewards use the end-of-step torso velocity `(v_x, v_y) = qvel[0..2]` (see `half_cheetah`):
//! - `ant` (default, thesis Appendix A.2): `r = v - 0.005 ||a||^2 + 0.05`, horizon 100; the
//!   survival bonus 0.05 is paid every step, as in rllab's ant that ME-TRPO used;
//! - `ant-v5` (Gymnasium v5): `r = 1[healthy] + v - 0.5 ||a||^2`, horizon 1000.
//!
//! Both terminate when the torso height leaves `[0.2, 1.0]` (A.2: "in Ant we early stop when
//! the center of mass long z-axis is outside [0.2, 1.0]"; Gymnasium's `healthy_z_range`).
//! `v` is the task's velocity term; task families (Sec. 6.7 ProMP benchmarks and Sec. 9.4):
//! - `forward-backward`: `v = d v_x`, `d = ±1`;
//! - `random-direction`: `v = cos(t) v_x + sin(t) v_y`, `t ~ U(0, 2 pi)`;
//! - `random-goal`: `v = -||(x, y) - g||`, `g` uniform on the circle of radius
//!   [`AntConfig::goal_radius`] (2 m by default, as the ring of goals of PEARL's ant-goal;
//!   ProMP samples the disc of radius 3);
//! - `crippled-leg`: one leg's two joints produce no torque (the control cost still counts
//!   the commanded action); training legs [`AntConfig::train_crippled_legs`], held-out test
//!   legs [`AntConfig::test_crippled_legs`].
//!
//! Switching the task (`set_task`) takes effect at the next step, also mid-episode.

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::env::{vector, EnvSpec, Info};
use mbrl_core::task::{Task, TaskDistribution, TaskFunctions};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::common::{
    column, ctrl_sq, ctrl_sq_batch, direction_task, gymnasium_noise, parse_direction, parse_family,
    sample_direction, variant_spec,
};
use super::env_core::{Outcome, Robot, RobotModel};
use super::sim::{BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim};
use super::RewardKind;
use crate::registry::{check_task_family, EnvEntry};
use crate::render::View;

/// Registry name of the thesis (Appendix A.2) variant.
pub const NAME: &str = "ant";
/// Registry name of the Gymnasium v5 reward variant.
pub const NAME_V5: &str = "ant-v5";
/// Horizon of Appendix A.2.
pub const HORIZON: usize = 100;
/// Horizon of Gymnasium's Ant-v5.
pub const HORIZON_V5: usize = 1000;
/// Observation width (without the torso's x and y).
pub const OBS_DIM: usize = 27;
/// Observation width with the `random-goal` family (torso x and y first).
pub const OBS_DIM_GOAL: usize = 29;
/// Action width.
pub const ACT_DIM: usize = 8;
/// Motor gear of every joint.
pub const GEAR: f32 = 150.0;
/// Initial torso height.
pub const INIT_Z: f32 = 0.75;
/// The torso height range outside which an episode ends (`healthy_z_range`).
pub const HEALTHY_Z: [f32; 2] = [0.2, 1.0];
/// Survival bonus of Appendix A.2.
pub const SURVIVE_ME_TRPO: f32 = 0.05;
/// Healthy reward of Gymnasium v5.
pub const HEALTHY_V5: f32 = 1.0;
/// Control-cost weight of Appendix A.2.
pub const CTRL_COST_ME_TRPO: f32 = 0.005;
/// Control-cost weight of Gymnasium v5.
pub const CTRL_COST_V5: f32 = 0.5;
/// Leg names (MJCF legs 1-4), indices of the `crippled-leg` family.
pub const LEGS: [&str; 4] = ["front_left", "front_right", "back_left", "back_right"];
/// Actuated joints in action order (MJCF actuator order).
pub const ACTUATORS: [&str; ACT_DIM] = [
    "hip_4", "ankle_4", "hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3",
];
/// For each action entry, the joint (hinge in `qpos` order: `hip_1, ankle_1, ..., ankle_4`) it
/// drives.
pub const ACTION_JOINT: [usize; ACT_DIM] = [6, 7, 0, 1, 2, 3, 4, 5];
/// Task family: run forward or backward along x.
pub const FAMILY_FORWARD_BACKWARD: &str = "forward-backward";
/// Task family: run in a direction of the plane.
pub const FAMILY_RANDOM_DIRECTION: &str = "random-direction";
/// Task family: reach a goal on a circle around the start.
pub const FAMILY_RANDOM_GOAL: &str = "random-goal";
/// Task family: one leg produces no torque.
pub const FAMILY_CRIPPLED_LEG: &str = "crippled-leg";
/// Every task family.
pub const FAMILIES: &[&str] = &[
    FAMILY_FORWARD_BACKWARD,
    FAMILY_RANDOM_DIRECTION,
    FAMILY_RANDOM_GOAL,
    FAMILY_CRIPPLED_LEG,
];

/// Registry entry of the thesis variant.
pub const ENTRY: EnvEntry = EnvEntry {
    name: NAME,
    description:
        "ant on rapier3d, r = v_x - 0.005||a||^2 + 0.05, early stop (Appendix A.2; Sec. 6.7, 9.4 families)",
    horizon: HORIZON,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY, family)?;
        Ok(Box::new(Ant::new(AntConfig::default(), family)?))
    },
};

/// Registry entry of the Gymnasium v5 reward variant.
pub const ENTRY_V5: EnvEntry = EnvEntry {
    name: NAME_V5,
    description: "ant on rapier3d, Gymnasium v5 reward 1 + v_x - 0.5||a||^2 (no contact forces)",
    horizon: HORIZON_V5,
    task_families: FAMILIES,
    make: |family| {
        check_task_family(&ENTRY_V5, family)?;
        let config = AntConfig {
            reward: RewardKind::GymnasiumV5,
            ..AntConfig::default()
        };
        Ok(Box::new(Ant::new(config, family)?))
    },
};

/// Settings of the ant beyond the MJCF constants.
#[derive(Debug, Clone, PartialEq)]
pub struct AntConfig {
    /// Reward. Default [`RewardKind::MeTrpo`].
    pub reward: RewardKind,
    /// Scale of the initial-state noise. Default 0.1 (Gymnasium).
    pub reset_noise_scale: f32,
    /// Radius of the circle of `random-goal` goals, in metres. Default 2.
    pub goal_radius: f32,
    /// Legs (indices into [`LEGS`]) crippled in training tasks. Default `[0, 1, 2]`.
    pub train_crippled_legs: Vec<usize>,
    /// Held-out legs for test tasks. Default `[3]` (the back right leg).
    pub test_crippled_legs: Vec<usize>,
    /// Velocity-solver iterations per physics step. Default 4.
    pub solver_iterations: usize,
}

impl Default for AntConfig {
    fn default() -> Self {
        Self {
            reward: RewardKind::MeTrpo,
            reset_noise_scale: 0.1,
            goal_radius: 2.0,
            train_crippled_legs: vec![0, 1, 2],
            test_crippled_legs: vec![3],
            solver_iterations: 4,
        }
    }
}

/// The robot, in MJCF terms (Gymnasium's `ant.xml`). The fixed `*_leg` bodies of the MJCF
/// carry only their "aux" capsule, so those capsules are torso geoms here.
pub fn spec(solver_iterations: usize) -> RobotSpec {
    const R: f32 = 0.08;
    let deg = std::f32::consts::PI / 180.0;
    let hinge = |axis: [f32; 3], range: [f32; 2]| HingeSpec {
        axis,
        range: Some([range[0] * deg, range[1] * deg]),
        stiffness: 0.0,
        damping: 1.0,
        armature: 1.0,
        gear: GEAR,
    };
    // (direction of the leg in the plane, ankle axis, ankle range in degrees), legs 1-4.
    let legs: [([f32; 2], [f32; 3], [f32; 2]); 4] = [
        ([1.0, 1.0], [-1.0, 1.0, 0.0], [30.0, 70.0]),
        ([-1.0, 1.0], [1.0, 1.0, 0.0], [-70.0, -30.0]),
        ([-1.0, -1.0], [-1.0, 1.0, 0.0], [-70.0, -30.0]),
        ([1.0, -1.0], [1.0, 1.0, 0.0], [30.0, 70.0]),
    ];
    let names = [
        ("aux_1", "ankle_1"),
        ("aux_2", "ankle_2"),
        ("aux_3", "ankle_3"),
        ("aux_4", "ankle_4"),
    ];
    let mut torso = vec![CapsuleSpec::sphere([0.0; 3], 0.25)];
    let mut bodies = Vec::with_capacity(9);
    for (k, ((dir, ankle_axis, ankle_range), (aux, ankle))) in legs.iter().zip(names).enumerate() {
        let step = |len: f32| [dir[0] * len, dir[1] * len, 0.0];
        torso.push(CapsuleSpec::fromto([0.0; 3], step(0.2), R));
        bodies.push(BodySpec {
            name: aux,
            parent: Some(0),
            pos: step(0.2),
            geoms: vec![CapsuleSpec::fromto([0.0; 3], step(0.2), R)],
            hinge: Some(hinge([0.0, 0.0, 1.0], [-30.0, 30.0])),
        });
        bodies.push(BodySpec {
            name: ankle,
            parent: Some(1 + 2 * k),
            pos: step(0.2),
            geoms: vec![CapsuleSpec::fromto([0.0; 3], step(0.4), R)],
            hinge: Some(hinge(*ankle_axis, *ankle_range)),
        });
    }
    bodies.insert(
        0,
        BodySpec {
            name: "torso",
            parent: None,
            pos: [0.0, 0.0, INIT_Z],
            geoms: torso,
            hinge: None,
        },
    );
    RobotSpec {
        bodies,
        root: RootJoint::Free,
        mass: MassSpec::Density(5.0),
        friction: 1.0,
        ground_friction: 1.0,
        dt: 0.01,
        frame_skip: 5,
        solver_iterations,
    }
}

/// The active task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    ForwardBackward,
    RandomDirection,
    RandomGoal,
    CrippledLeg,
}

/// The velocity (or distance) term of the reward.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Objective {
    /// `cos(t) v_x + sin(t) v_y` for the unit direction `(cos t, sin t)`.
    Direction([f32; 2]),
    /// `-||(x, y) - goal||`.
    Goal([f32; 2]),
}

/// Where the pieces of an observation are.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layout {
    /// Whether the observation starts with the torso's x and y.
    with_xy: bool,
}

impl Layout {
    fn offset(self) -> usize {
        if self.with_xy {
            2
        } else {
            0
        }
    }
    fn z(self) -> usize {
        self.offset()
    }
    fn vx(self) -> usize {
        self.offset() + 13
    }
    fn dim(self) -> usize {
        OBS_DIM + self.offset()
    }
}

/// The ant's part of its [`Ant`] environment: settings, task family and the active task.
pub struct AntModel {
    config: AntConfig,
    family: Option<Family>,
    layout: Layout,
    objective: Objective,
    crippled_leg: Option<usize>,
}

/// The ant environment.
pub type Ant = Robot<AntModel>;

impl Ant {
    /// A new environment with `family` (one of [`FAMILIES`]) active, or none. Without a
    /// family, or until `set_task`, the ant runs along +x with every leg working (under
    /// `random-goal`, towards the goal `(goal_radius, 0)`).
    pub fn new(config: AntConfig, family: Option<&str>) -> crate::Result<Self> {
        let family = parse_family(
            NAME,
            family,
            &[
                (FAMILY_FORWARD_BACKWARD, Family::ForwardBackward),
                (FAMILY_RANDOM_DIRECTION, Family::RandomDirection),
                (FAMILY_RANDOM_GOAL, Family::RandomGoal),
                (FAMILY_CRIPPLED_LEG, Family::CrippledLeg),
            ],
        )?;
        let legs = config
            .train_crippled_legs
            .iter()
            .chain(&config.test_crippled_legs);
        if let Some(k) = legs.into_iter().find(|&&k| k >= LEGS.len()) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "ant crippled leg {k} does not exist; legs are 0..4 ({LEGS:?})"
            ))
            .into());
        }
        if family == Some(Family::CrippledLeg) && config.train_crippled_legs.is_empty() {
            return Err(mbrl_core::Error::InvalidArgument(
                "ant crippled-leg family needs at least one training leg \
                 (train_crippled_legs is empty)"
                    .into(),
            )
            .into());
        }
        if !(config.goal_radius.is_finite() && config.goal_radius > 0.0) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "ant goal_radius must be positive, got {}",
                config.goal_radius
            ))
            .into());
        }
        let layout = Layout {
            with_xy: family == Some(Family::RandomGoal),
        };
        let objective = if layout.with_xy {
            Objective::Goal([config.goal_radius, 0.0])
        } else {
            Objective::Direction([1.0, 0.0])
        };
        let sim = Sim::new(&spec(config.solver_iterations.max(1)));
        let model = AntModel {
            config,
            family,
            layout,
            objective,
            crippled_leg: None,
        };
        Robot::build(sim, model, layout.dim(), ACT_DIM)
    }

    /// Restores the initial pose, then displaces the generalized coordinates by `dq` (14: the
    /// free root's translation and rotation vector, then the joints) and sets the velocities
    /// to `qvel` (14, the layout of [`Robot::qvel`]); returns the observation.
    pub fn reset_to(&mut self, dq: &[f32], qvel: &[f32]) -> mbrl_core::Result<Tensor> {
        let n = self.sim.ndofs();
        if dq.len() != n || qvel.len() != n {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "{NAME}: reset_to needs {n} displacements and {n} velocities, got {} and {}",
                dq.len(),
                qvel.len()
            )));
        }
        self.sim.reset(dq, qvel);
        vector(&self.observation())
    }
}

impl AntModel {
    fn weights(&self) -> Weights {
        match self.config.reward {
            RewardKind::MeTrpo => Weights {
                ctrl: CTRL_COST_ME_TRPO,
                survive: SURVIVE_ME_TRPO,
                healthy: 0.0,
            },
            RewardKind::GymnasiumV5 => Weights {
                ctrl: CTRL_COST_V5,
                survive: 0.0,
                healthy: HEALTHY_V5,
            },
        }
    }
}

/// Reward weights of a variant: `survive` is paid every step, `healthy` only while healthy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Weights {
    ctrl: f32,
    survive: f32,
    healthy: f32,
}

/// Whether the torso height is in [`HEALTHY_Z`] (closed interval, as Gymnasium).
fn healthy_z(z: f32) -> bool {
    (HEALTHY_Z[0]..=HEALTHY_Z[1]).contains(&z)
}

impl RobotModel for AntModel {
    const NAME: &'static str = NAME;

    fn spec(&self) -> EnvSpec {
        variant_spec(self.config.reward, (NAME, HORIZON), (NAME_V5, HORIZON_V5))
    }

    fn reset_noise(&mut self, ndofs: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        gymnasium_noise(rng, ndofs, self.config.reset_noise_scale)
    }

    fn observe(&self, sim: &Sim) -> Vec<f32> {
        let mut obs = sim.qpos();
        if !self.layout.with_xy {
            obs.drain(..2);
        }
        obs.extend(sim.qvel());
        obs
    }

    fn joint_commands(&self, ctrl: &[f32]) -> Vec<f32> {
        let mut joints = vec![0.0f32; ACT_DIM];
        for (&u, &j) in ctrl.iter().zip(&ACTION_JOINT) {
            if self.crippled_leg != Some(j / 2) {
                joints[j] = u;
            }
        }
        joints
    }

    fn outcome(&self, sim: &Sim, before: &[f32], ctrl: &[f32], obs: &[f32]) -> Outcome {
        let after = sim.qpos();
        let l = self.layout;
        let (vx, vy) = (obs[l.vx()], obs[l.vx() + 1]);
        let objective = match self.objective {
            Objective::Direction([dx, dy]) => dx * vx + dy * vy,
            Objective::Goal([gx, gy]) => {
                -((after[0] - gx).powi(2) + (after[1] - gy).powi(2)).sqrt()
            }
        };
        let w = self.weights();
        let healthy = healthy_z(obs[l.z()]);
        let reward_ctrl = -w.ctrl * ctrl_sq(ctrl);
        let reward_survive = w.survive + if healthy { w.healthy } else { 0.0 };
        let dt = sim.control_dt();
        let info = Info::from([
            ("x_position".to_string(), after[0] as f64),
            ("y_position".to_string(), after[1] as f64),
            ("x_velocity".to_string(), vx as f64),
            ("y_velocity".to_string(), vy as f64),
            (
                "mean_x_velocity".to_string(),
                ((after[0] - before[0]) / dt) as f64,
            ),
            (
                "mean_y_velocity".to_string(),
                ((after[1] - before[1]) / dt) as f64,
            ),
            ("reward_forward".to_string(), objective as f64),
            ("reward_ctrl".to_string(), reward_ctrl as f64),
            ("reward_survive".to_string(), reward_survive as f64),
        ]);
        Outcome {
            reward: objective + reward_ctrl + reward_survive,
            terminated: !healthy,
            info,
        }
    }

    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(AntTask {
            layout: self.layout,
            objective: self.objective,
            weights: self.weights(),
        })
    }

    fn view(&self) -> View {
        View::TopAndSide
    }

    fn task_distribution(env: &mut Ant) -> Option<&mut dyn TaskDistribution> {
        if env.model.family.is_some() {
            Some(env)
        } else {
            None
        }
    }
}

fn angle_task(angle: f64) -> Task {
    Task::new(format!("direction={angle:.3}"), vec![angle])
}

fn goal_task(g: [f64; 2]) -> Task {
    Task::new(format!("goal=({:+.2},{:+.2})", g[0], g[1]), g.to_vec())
}

fn crippled_task(k: usize) -> Task {
    Task::new(format!("crippled_leg={}", LEGS[k]), vec![k as f64])
}

impl TaskDistribution for Ant {
    fn family(&self) -> &str {
        match self.model.family {
            Some(Family::ForwardBackward) | None => FAMILY_FORWARD_BACKWARD,
            Some(Family::RandomDirection) => FAMILY_RANDOM_DIRECTION,
            Some(Family::RandomGoal) => FAMILY_RANDOM_GOAL,
            Some(Family::CrippledLeg) => FAMILY_CRIPPLED_LEG,
        }
    }

    fn sample_tasks(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Task> {
        let tau = std::f64::consts::TAU;
        (0..n)
            .map(|_| match self.model.family {
                Some(Family::ForwardBackward) | None => direction_task(sample_direction(rng)),
                Some(Family::RandomDirection) => angle_task(rng.random_range(0.0..tau)),
                Some(Family::RandomGoal) => {
                    let t: f64 = rng.random_range(0.0..tau);
                    let r = f64::from(self.model.config.goal_radius);
                    goal_task([r * t.cos(), r * t.sin()])
                }
                Some(Family::CrippledLeg) => {
                    let legs = &self.model.config.train_crippled_legs;
                    crippled_task(legs[rng.random_range(0..legs.len())])
                }
            })
            .collect()
    }

    fn test_tasks(&self) -> Vec<Task> {
        match self.model.family {
            Some(Family::CrippledLeg) => self
                .model
                .config
                .test_crippled_legs
                .iter()
                .map(|&k| crippled_task(k))
                .collect(),
            _ => Vec::new(),
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
                self.model.objective = Objective::Direction([params[0] as f32, 0.0]);
            }
            (Some(Family::ForwardBackward) | None, _) => {
                return Err(bad("one parameter, the direction +1 or -1"))
            }
            (Some(Family::RandomDirection), [t]) if t.is_finite() => {
                self.model.objective = Objective::Direction([t.cos() as f32, t.sin() as f32]);
            }
            (Some(Family::RandomDirection), _) => {
                return Err(bad("one parameter, a finite angle in radians"))
            }
            (Some(Family::RandomGoal), [x, y]) if x.is_finite() && y.is_finite() => {
                self.model.objective = Objective::Goal([*x as f32, *y as f32]);
            }
            (Some(Family::RandomGoal), _) => return Err(bad("two parameters, a finite goal x, y")),
            (Some(Family::CrippledLeg), [k])
                if *k >= 0.0 && k.fract() == 0.0 && (*k as usize) < LEGS.len() =>
            {
                self.model.crippled_leg = Some(*k as usize);
            }
            (Some(Family::CrippledLeg), _) => {
                return Err(bad("one parameter, a leg index in 0..4"))
            }
        }
        Ok(())
    }

    fn current_task(&self) -> Task {
        match (self.model.family, self.model.objective) {
            (Some(Family::CrippledLeg), _) => match self.model.crippled_leg {
                Some(k) => crippled_task(k),
                None => Task::new("no_crippled_leg", Vec::new()),
            },
            (Some(Family::RandomDirection), Objective::Direction([dx, dy])) => {
                angle_task(f64::from(dy).atan2(f64::from(dx)))
            }
            (_, Objective::Goal(g)) => goal_task([f64::from(g[0]), f64::from(g[1])]),
            (_, Objective::Direction([dx, _])) => direction_task(dx),
        }
    }
}

/// Batched reward (objective, control cost, survival) and the height termination.
struct AntTask {
    layout: Layout,
    objective: Objective,
    weights: Weights,
}

impl AntTask {
    /// `1.0` where the next torso height is in [`HEALTHY_Z`], as `[B]` `f32`.
    fn healthy(&self, next_obs: &Tensor) -> candle_core::Result<Tensor> {
        let z = column(next_obs, self.layout.z())?;
        z.ge(HEALTHY_Z[0])?
            .mul(&z.le(HEALTHY_Z[1])?)?
            .to_dtype(candle_core::DType::F32)
    }
}

impl TaskFunctions for AntTask {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let objective = match self.objective {
            Objective::Direction([dx, dy]) => {
                let vx = column(next_obs, self.layout.vx())?;
                let vy = column(next_obs, self.layout.vx() + 1)?;
                vx.affine(f64::from(dx), 0.0)?
                    .add(&vy.affine(f64::from(dy), 0.0)?)?
            }
            Objective::Goal([gx, gy]) => {
                let dx = column(next_obs, 0)?.affine(1.0, -f64::from(gx))?;
                let dy = column(next_obs, 1)?.affine(1.0, -f64::from(gy))?;
                dx.sqr()?.add(&dy.sqr()?)?.sqrt()?.neg()?
            }
        };
        let w = self.weights;
        let ctrl = ctrl_sq_batch(act)?.affine(f64::from(w.ctrl), 0.0)?;
        let survive = self
            .healthy(next_obs)?
            .affine(f64::from(w.healthy), f64::from(w.survive))?;
        Ok(objective.sub(&ctrl)?.add(&survive)?)
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        Ok(self.healthy(next_obs)?.affine(-1.0, 1.0)?)
    }
}

//! The rapier3d simulation shared by every robot: a MuJoCo-like description of bodies,
//! capsules and hinges ([`RobotSpec`]), built into one multibody, stepped with real joint
//! torques, and snapshotted for resets.
//!
//! How the MuJoCo semantics map onto rapier (see `docs/robots.md`):
//! - every robot is one reduced-coordinate multibody (MuJoCo's generalized coordinates); its
//!   root body is attached to a fixed anchor body by a planar joint (slide x, slide z, hinge y:
//!   MuJoCo's `rootx/rootz/rooty`), a horizontal planar joint (slide x, slide y, hinge z: the
//!   swimmer's), a free joint (MuJoCo's `type="free"`), or a weld (a fixed base);
//! - joint stiffness, damping and armature are per-DoF multibody quantities (rapier's default
//!   0.1 damping on angular DoFs is overwritten with the model's value, 0 for the root);
//! - a motor applies `gear * ctrl` as equal and opposite torques on the hinge's two bodies,
//!   which is exactly a generalized force on that hinge; user torques persist in rapier, so
//!   they are reset before every physics step;
//! - friction combines with `Max` as in MuJoCo (rapier averages by default);
//! - a hinge about a coordinate axis is a generic joint freeing that angular axis, with exact
//!   frames (identity, or a half turn for a negative axis), not a `RevoluteJointBuilder`
//!   joint: the latter's `sqrt(1/2)` quaternion leaves ~1e-8 out of the robot's plane in the
//!   hinge's Jacobian, so contacts on the links below see a finite but huge effective mass
//!   (~1e15) along the tangent the planar root locks, and rapier 0.36's multibody friction,
//!   which clamps both tangent impulses together to the friction cone, then spends the
//!   whole friction budget on that direction: the links slid as on ice. Exact zeros give
//!   that tangent an inverse effective mass of exactly 0, whose row rapier then leaves
//!   inactive (see `hinge_joint`);
//! - robot geoms only collide with the ground (`contype=1, conaffinity=0` in the MJCF files),
//!   or with nothing ([`Sim::disable_contacts`], the swimmer's `contype=0`);
//! - `sim/dynamics.rs`: scaling masses, inertias, damping and friction after building
//!   ([`Sim::set_dynamics`], the `random-dynamics` task family);
//! - `sim/fluid.rs`: MuJoCo's inertia-box fluid drag ([`Sim::set_fluid`], the swimmer).
//!
//! The whole state lives in [`SimState`] (`Clone`): reset restores the snapshot taken after
//! building, with a fresh pipeline, so a reset environment evolves bit for bit like a new one.

use rapier3d::prelude::*;

mod dynamics;
mod fluid;

use dynamics::Nominal;
pub use dynamics::{DynamicsLayout, DynamicsScale};
pub use fluid::Fluid;
use fluid::FluidDrag;

/// A capsule given by its two end points in the body frame and its radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapsuleSpec {
    /// First end point.
    pub a: [f32; 3],
    /// Second end point.
    pub b: [f32; 3],
    /// Radius.
    pub radius: f32,
    /// Sliding friction; `None` uses [`RobotSpec::friction`].
    pub friction: Option<f32>,
}

impl CapsuleSpec {
    /// MJCF `fromto="ax ay az bx by bz" size="radius"`.
    pub const fn fromto(a: [f32; 3], b: [f32; 3], radius: f32) -> Self {
        Self {
            a,
            b,
            radius,
            friction: None,
        }
    }

    /// The same capsule with its own sliding friction (MJCF `friction`).
    pub const fn with_friction(self, friction: f32) -> Self {
        Self {
            friction: Some(friction),
            ..self
        }
    }

    /// MJCF `pos=... axisangle="0 1 0 angle" size="radius half_length"`: a capsule whose
    /// local z axis is rotated by `angle` about y.
    pub fn axisangle_y(pos: [f32; 3], angle: f32, radius: f32, half_length: f32) -> Self {
        let (s, c) = angle.sin_cos();
        let d = [half_length * s, 0.0, half_length * c];
        Self {
            a: [pos[0] - d[0], pos[1] - d[1], pos[2] - d[2]],
            b: [pos[0] + d[0], pos[1] + d[1], pos[2] + d[2]],
            radius,
            friction: None,
        }
    }

    /// MJCF `type="sphere" pos=... size="radius"`: a capsule of zero length, built as a ball.
    pub const fn sphere(pos: [f32; 3], radius: f32) -> Self {
        Self {
            a: pos,
            b: pos,
            radius,
            friction: None,
        }
    }

    /// Whether this is a sphere (both end points coincide).
    pub fn is_sphere(&self) -> bool {
        self.a == self.b
    }

    /// Volume (a cylinder plus a sphere), as MuJoCo's `inertiafromgeom` computes it.
    pub fn volume(&self) -> f32 {
        let len = (0..3)
            .map(|i| (self.b[i] - self.a[i]).powi(2))
            .sum::<f32>()
            .sqrt();
        let r = self.radius;
        std::f32::consts::PI * r * r * len + 4.0 / 3.0 * std::f32::consts::PI * r * r * r
    }
}

/// A hinge joint between a body and its parent, at the body's origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HingeSpec {
    /// Rotation axis, in the body frame.
    pub axis: [f32; 3],
    /// Joint range `[low, high]` in radians, `None` when unlimited.
    pub range: Option<[f32; 2]>,
    /// Spring stiffness towards angle 0 (N m / rad).
    pub stiffness: f32,
    /// Viscous damping (N m s / rad).
    pub damping: f32,
    /// Reflected rotor inertia added to the joint's diagonal of the mass matrix.
    pub armature: f32,
    /// Motor gear: torque = `gear * ctrl`; `0` for a passive joint.
    pub gear: f32,
}

/// One rigid body of the robot.
#[derive(Debug, Clone, PartialEq)]
pub struct BodySpec {
    /// MJCF body name.
    pub name: &'static str,
    /// Index of the parent body in [`RobotSpec::bodies`]; `None` for the root body (index 0).
    pub parent: Option<usize>,
    /// Position of the body origin in the parent frame (world frame for the root).
    pub pos: [f32; 3],
    /// Collision and mass geometry.
    pub geoms: Vec<CapsuleSpec>,
    /// The joint to the parent (`None` only for the root body).
    pub hinge: Option<HingeSpec>,
}

/// How the root body is attached to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootJoint {
    /// MuJoCo's `rootx` (slide x), `rootz` (slide z), `rooty` (hinge y): motion in the x-z plane.
    Planar,
    /// Slide x, slide y, hinge z (the swimmer's `slider1`, `slider2`, `free_body_rot`): motion
    /// in the horizontal x-y plane.
    PlanarXY,
    /// MuJoCo's free joint: 3 translations and 3 rotations. `qpos` holds the absolute
    /// position and the orientation quaternion `x y z qw qx qy qz` (7 entries for 6 DoFs);
    /// `qvel` holds the linear velocity of the body origin in the world frame, then the
    /// angular velocity in the body frame (MuJoCo's conventions).
    Free,
    /// The root body is welded to the world (a fixed base, no DoFs).
    Fixed,
}

/// How body masses are obtained from the geoms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MassSpec {
    /// Uniform density scaled so the robot weighs this much (MJCF `settotalmass`).
    Total(f32),
    /// Uniform density in kg/m^3 (MJCF `density`, 1000 by default).
    Density(f32),
}

/// A whole robot, in MJCF terms.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotSpec {
    /// Bodies, parents before children; body 0 is the root.
    pub bodies: Vec<BodySpec>,
    /// The root joint.
    pub root: RootJoint,
    /// Masses.
    pub mass: MassSpec,
    /// Sliding friction of geoms without their own (the ground's is combined with `Max`).
    pub friction: f32,
    /// Sliding friction of the ground.
    pub ground_friction: f32,
    /// Physics time step (s).
    pub dt: f32,
    /// Physics steps per control step.
    pub frame_skip: usize,
    /// Velocity-solver iterations per physics step.
    pub solver_iterations: usize,
}

/// Everything rapier needs to continue a simulation; cloning it is a snapshot.
#[derive(Clone)]
pub struct SimState {
    bodies: RigidBodySet,
    colliders: ColliderSet,
    impulse_joints: ImpulseJointSet,
    multibody_joints: MultibodyJointSet,
    islands: IslandManager,
    broad_phase: DefaultBroadPhase,
    narrow_phase: NarrowPhase,
    ccd: CCDSolver,
    soft_bodies: SoftBodySet,
}

impl SimState {
    /// The colliders (robot geoms and the ground), with their world poses.
    pub fn colliders(&self) -> &ColliderSet {
        &self.colliders
    }

    /// The rigid bodies.
    pub fn bodies(&self) -> &RigidBodySet {
        &self.bodies
    }

    /// The impulse joints (terrain such as the pier's floating blocks; the robot itself is a
    /// multibody).
    pub fn impulse_joints(&self) -> &ImpulseJointSet {
        &self.impulse_joints
    }

    /// Mutable access for the surroundings a robot adds or changes (terrain).
    pub(crate) fn parts_mut(&mut self) -> SimParts<'_> {
        SimParts {
            bodies: &mut self.bodies,
            colliders: &mut self.colliders,
            impulse_joints: &mut self.impulse_joints,
            islands: &mut self.islands,
            soft_bodies: &mut self.soft_bodies,
        }
    }
}

/// The sets of a [`SimState`] that terrain code edits (removals need the islands and soft
/// bodies too).
pub(crate) struct SimParts<'a> {
    pub(crate) bodies: &'a mut RigidBodySet,
    pub(crate) colliders: &'a mut ColliderSet,
    pub(crate) impulse_joints: &'a mut ImpulseJointSet,
    pub(crate) islands: &'a mut IslandManager,
    pub(crate) soft_bodies: &'a mut SoftBodySet,
}

/// A motor: torque `gear * ctrl` about `axis` (child frame) on `child`, opposite on `parent`.
#[derive(Debug, Clone, Copy)]
struct Motor {
    child: RigidBodyHandle,
    parent: RigidBodyHandle,
    axis: Vector,
    gear: f32,
}

/// Collision group of the robot geoms (they touch the ground only).
pub(crate) const ROBOT_GROUP: Group = Group::GROUP_1;
/// Collision group of the ground and terrain.
pub(crate) const GROUND_GROUP: Group = Group::GROUP_2;

/// The multibody joint of `hinge`, anchored at `anchor` in the parent frame, and the index
/// (3, 4 or 5: angular x, y or z) of its free coordinate.
///
/// A hinge about a coordinate axis (all the planar robots' hinges) frees that angular axis of
/// a generic joint whose frames are the identity, or an exact half turn for a negative axis,
/// so that its Jacobian has exact zeros off the axis. `RevoluteJointBuilder` would instead
/// rotate the joint's x axis onto the hinge axis with an inexact quaternion (components of
/// `sqrt(1/2)`), leaving ~1e-8 in the Jacobian out of the robot's plane; rapier 0.36's
/// multibody contacts then see a finite but huge effective mass (~1e15) along that locked
/// tangent, and its 2-D friction cone clamp hands nearly all the friction impulse to that
/// direction: contacts on links below a hinge had almost no friction in the plane.
fn hinge_joint(hinge: &HingeSpec, anchor: Vector) -> (GenericJoint, usize) {
    let [x, y, z] = hinge.axis;
    let coordinate_axis = match (x != 0.0, y != 0.0, z != 0.0) {
        (true, false, false) => Some((0, x < 0.0)),
        (false, true, false) => Some((1, y < 0.0)),
        (false, false, true) => Some((2, z < 0.0)),
        _ => None,
    };
    let Some((i, negative)) = coordinate_axis else {
        let mut builder = RevoluteJointBuilder::new(Vector::from(hinge.axis).normalize())
            .local_anchor1(anchor)
            .local_anchor2(Vector::ZERO);
        if let Some(range) = hinge.range {
            builder = builder.limits(range);
        }
        // A revolute joint's free axis is its angular x axis.
        return (builder.build().into(), 3);
    };
    let (free, joint_axis) = [
        (JointAxesMask::ANG_X, JointAxis::AngX),
        (JointAxesMask::ANG_Y, JointAxis::AngY),
        (JointAxesMask::ANG_Z, JointAxis::AngZ),
    ][i];
    // A half turn about an axis orthogonal to the hinge flips it; `from_xyzw` keeps the
    // quaternion exact (`from_axis_angle(_, PI)` would leave cos(PI/2) ~ -4e-8 in w).
    let rotation = match (negative, i) {
        (false, _) => Rotation::IDENTITY,
        (true, 2) => Rotation::from_xyzw(1.0, 0.0, 0.0, 0.0),
        (true, _) => Rotation::from_xyzw(0.0, 0.0, 1.0, 0.0),
    };
    let mut locked = JointAxesMask::LOCKED_FIXED_AXES;
    locked.remove(free);
    let mut builder = GenericJointBuilder::new(locked)
        .local_frame1(Pose::from_parts(anchor, rotation))
        .local_frame2(Pose::from_parts(Vector::ZERO, rotation));
    if let Some(range) = hinge.range {
        builder = builder.limits(joint_axis, range);
    }
    (builder.build(), 3 + i)
}

/// A built robot: the live state, its initial snapshot, and the stepping machinery.
pub struct Sim {
    state: SimState,
    initial: SimState,
    pipeline: PhysicsPipeline,
    params: IntegrationParameters,
    gravity: Vector,
    frame_skip: usize,
    root: MultibodyJointHandle,
    root_kind: RootJoint,
    links: Vec<RigidBodyHandle>,
    motors: Vec<Motor>,
    ndofs: usize,
    /// As-built values that [`Sim::set_dynamics`] scales.
    nominal: Nominal,
    /// Drag of the fluid around the robot ([`Sim::set_fluid`]).
    fluid: Option<FluidDrag>,
    /// MuJoCo physics that replaces rapier's once attached ([`Sim::attach_mujoco`]).
    #[cfg(feature = "mujoco")]
    mujoco: Option<Box<super::mujoco::MjPhysics>>,
}

impl Sim {
    /// Builds the robot of `spec` standing on a flat ground plane at `z = 0`.
    pub fn new(spec: &RobotSpec) -> Self {
        let mut bodies = RigidBodySet::new();
        let mut colliders = ColliderSet::new();
        let mut multibody_joints = MultibodyJointSet::new();

        let ground = bodies.insert(RigidBodyBuilder::fixed());
        let ground_collider = colliders.insert_with_parent(
            ColliderBuilder::halfspace(rapier3d::na::Unit::new_unchecked(Vector::Z))
                .friction(spec.ground_friction)
                .friction_combine_rule(CoefficientCombineRule::Max)
                .collision_groups(InteractionGroups::new(
                    GROUND_GROUP,
                    ROBOT_GROUP,
                    InteractionTestMode::And,
                )),
            ground,
            &mut bodies,
        );

        let density = match spec.mass {
            MassSpec::Total(total) => {
                let volume: f32 = spec
                    .bodies
                    .iter()
                    .flat_map(|b| &b.geoms)
                    .map(CapsuleSpec::volume)
                    .sum();
                total / volume
            }
            MassSpec::Density(density) => density,
        };

        // World positions: every body frame of these models is axis-aligned with its parent.
        let mut world = Vec::with_capacity(spec.bodies.len());
        let mut links = Vec::with_capacity(spec.bodies.len());
        let mut geoms = Vec::new();
        for body in &spec.bodies {
            let offset = Vector::from(body.pos);
            let pos = match body.parent {
                Some(p) => world[p] + offset,
                None => offset,
            };
            world.push(pos);
            let handle = bodies.insert(
                RigidBodyBuilder::dynamic()
                    .translation(pos)
                    .can_sleep(false),
            );
            for geom in &body.geoms {
                let shape = if geom.is_sphere() {
                    ColliderBuilder::ball(geom.radius).translation(Vector::from(geom.a))
                } else {
                    ColliderBuilder::capsule_from_endpoints(
                        Vector::from(geom.a),
                        Vector::from(geom.b),
                        geom.radius,
                    )
                };
                let geom = colliders.insert_with_parent(
                    shape
                        .density(density)
                        .friction(geom.friction.unwrap_or(spec.friction))
                        .friction_combine_rule(CoefficientCombineRule::Max)
                        .collision_groups(InteractionGroups::new(
                            ROBOT_GROUP,
                            GROUND_GROUP,
                            InteractionTestMode::And,
                        )),
                    handle,
                    &mut bodies,
                );
                geoms.push(geom);
            }
            links.push(handle);
        }

        // The root joint, then one hinge per body; DoFs follow insertion order.
        let anchor = bodies.insert(RigidBodyBuilder::fixed());
        let root_joint = match spec.root {
            RootJoint::Planar => GenericJointBuilder::new(
                JointAxesMask::LIN_Y | JointAxesMask::ANG_X | JointAxesMask::ANG_Z,
            )
            .local_anchor1(world[0])
            .local_anchor2(Vector::ZERO)
            .build(),
            RootJoint::PlanarXY => GenericJointBuilder::new(
                JointAxesMask::LIN_Z | JointAxesMask::ANG_X | JointAxesMask::ANG_Y,
            )
            .local_anchor1(world[0])
            .local_anchor2(Vector::ZERO)
            .build(),
            // Anchored at the origin: the free coordinates are set to the absolute position below.
            RootJoint::Free => GenericJointBuilder::new(JointAxesMask::FREE_FIXED_AXES)
                .local_anchor1(Vector::ZERO)
                .local_anchor2(Vector::ZERO)
                .build(),
            RootJoint::Fixed => GenericJointBuilder::new(JointAxesMask::LOCKED_FIXED_AXES)
                .local_anchor1(world[0])
                .local_anchor2(Vector::ZERO)
                .build(),
        };
        let mut joint_handles = Vec::with_capacity(spec.bodies.len());
        let mut motors = Vec::new();
        let mut root = None;
        for (i, body) in spec.bodies.iter().enumerate() {
            match (body.parent, body.hinge) {
                (Some(p), Some(hinge)) => {
                    let axis = Vector::from(hinge.axis).normalize();
                    let (joint, free_axis) = hinge_joint(&hinge, Vector::from(body.pos));
                    let h = multibody_joints.insert(links[p], links[i], joint, true);
                    joint_handles.push((h, Some((hinge, free_axis))));
                    if hinge.gear != 0.0 {
                        motors.push(Motor {
                            child: links[i],
                            parent: links[p],
                            axis,
                            gear: hinge.gear,
                        });
                    }
                }
                _ => {
                    let h = multibody_joints.insert(anchor, links[i], root_joint, true);
                    root = h;
                    joint_handles.push((h, None));
                }
            }
        }
        let root = root.expect("RobotSpec has a root body");

        // Collapse the fixed anchor to zero DoFs, then set the per-DoF joint properties.
        let mut ndofs = 0;
        let mut hinge_damping = Vec::new();
        if let Some((mb, _)) = multibody_joints.get_mut(root) {
            mb.forward_kinematics(&bodies, true);
            mb.damping_mut().fill(0.0);
            ndofs = mb.ndofs();
        }
        for (handle, (hinge, free_axis)) in joint_handles
            .iter()
            .filter_map(|(h, s)| Some(((*h)?, (*s)?)))
        {
            if let Some((mb, link_id)) = multibody_joints.get_mut(handle) {
                let dof = mb.link(link_id).map(|l| l.assembly_id()).unwrap_or(0);
                mb.damping_mut()[dof] = hinge.damping;
                hinge_damping.push((dof, hinge.damping));
                mb.armature_mut()[dof] = hinge.armature;
                if let Some(link) = mb.link_mut(link_id) {
                    link.joint.set_spring(free_axis, hinge.stiffness, 0.0);
                }
            }
        }
        if let Some((mb, _)) = multibody_joints.get_mut(root) {
            if spec.root == RootJoint::Free {
                // The free joint's translation is the absolute position (MuJoCo's qpos[0..3]).
                let mut disp = vec![0.0; mb.ndofs()];
                disp[..3].copy_from_slice(&world[0].to_array());
                mb.apply_displacements(&disp);
            }
            mb.forward_kinematics(&bodies, true);
            mb.update_rigid_bodies(&mut bodies, true);
        }

        let params = IntegrationParameters {
            dt: spec.dt,
            num_solver_iterations: spec.solver_iterations,
            ..IntegrationParameters::default()
        };
        let state = SimState {
            bodies,
            colliders,
            impulse_joints: ImpulseJointSet::new(),
            multibody_joints,
            islands: IslandManager::new(),
            broad_phase: DefaultBroadPhase::new(),
            narrow_phase: NarrowPhase::new(),
            ccd: CCDSolver::new(),
            soft_bodies: SoftBodySet::new(),
        };
        let nominal = Nominal::of(&state, &links, geoms, ground_collider, hinge_damping);
        Self {
            initial: state.clone(),
            state,
            pipeline: PhysicsPipeline::new(),
            params,
            gravity: Vector::new(0.0, 0.0, -9.81),
            frame_skip: spec.frame_skip,
            nominal,
            root,
            root_kind: spec.root,
            links,
            motors,
            ndofs,
            fluid: None,
            #[cfg(feature = "mujoco")]
            mujoco: None,
        }
    }

    /// Hands the physics to MuJoCo: from now on reset, step, `qpos`, `qvel` and the body
    /// masses are `physics`'s, and the rapier scene only mirrors MuJoCo's body poses after
    /// each reset and step, for drawing (issue 7's optional backend).
    #[cfg(feature = "mujoco")]
    pub(crate) fn attach_mujoco(&mut self, physics: super::mujoco::MjPhysics) {
        self.mujoco = Some(Box::new(physics));
        self.mirror_mujoco();
    }

    /// Moves the rapier bodies and their colliders to MuJoCo's body poses (the body frames
    /// of both are the spec's), so [`Self::state`] draws the MuJoCo simulation.
    #[cfg(feature = "mujoco")]
    fn mirror_mujoco(&mut self) {
        let Some(mj) = &mut self.mujoco else {
            return;
        };
        let SimState {
            bodies, colliders, ..
        } = &mut self.state;
        for (&link, (p, q)) in self.links.iter().zip(mj.body_poses()) {
            let pose = Pose::from_parts(
                Vector::new(p[0] as f32, p[1] as f32, p[2] as f32),
                Rotation::from_xyzw(q[1] as f32, q[2] as f32, q[3] as f32, q[0] as f32).normalize(),
            );
            let Some(rb) = bodies.get_mut(link) else {
                continue;
            };
            rb.set_position(pose, false);
            for &handle in rb.colliders() {
                if let Some(collider) = colliders.get_mut(handle) {
                    if let Some(&local) = collider.position_wrt_parent() {
                        collider.set_position(pose * local);
                    }
                }
            }
        }
    }

    /// Number of generalized velocities (MuJoCo's `nv`).
    pub fn ndofs(&self) -> usize {
        self.ndofs
    }

    /// Number of motors (the action dimension).
    pub fn num_motors(&self) -> usize {
        self.motors.len()
    }

    /// Control time step: `dt * frame_skip`.
    pub fn control_dt(&self) -> f32 {
        self.params.dt * self.frame_skip as f32
    }

    /// The live simulation state (for rendering).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// The live simulation state, mutable (terrain that changes with the task).
    pub(crate) fn state_mut(&mut self) -> &mut SimState {
        &mut self.state
    }

    /// Makes the live state the reset snapshot; called right after building, once fixed
    /// surroundings (terrain every task shares) have been added.
    pub(crate) fn snapshot_initial(&mut self) {
        self.initial = self.state.clone();
    }

    /// The gravity vector.
    pub fn gravity(&self) -> [f32; 3] {
        self.gravity.into()
    }

    /// Sets the gravity vector (tilting it emulates a sloped ground).
    pub fn set_gravity(&mut self, gravity: [f32; 3]) {
        self.gravity = Vector::from(gravity);
    }

    /// Restores the initial snapshot, then adds `dq` to the generalized coordinates and sets
    /// the generalized velocities to `v` (both of length [`Self::ndofs`]).
    pub fn reset(&mut self, dq: &[f32], v: &[f32]) {
        #[cfg(feature = "mujoco")]
        if let Some(mj) = &mut self.mujoco {
            mj.reset(dq, v);
            return self.mirror_mujoco();
        }
        self.state = self.initial.clone();
        self.pipeline = PhysicsPipeline::new();
        let SimState {
            bodies,
            multibody_joints,
            ..
        } = &mut self.state;
        if let Some((mb, link_id)) = multibody_joints.get_mut(self.root) {
            if dq.len() == mb.ndofs() && v.len() == mb.ndofs() {
                mb.apply_displacements(dq);
                mb.generalized_velocity_mut().copy_from_slice(v);
                if self.root_kind == RootJoint::Free {
                    // `v` gives the angular velocity in the body frame (MuJoCo); rapier's
                    // free-joint DoFs are in the world frame.
                    let rot = mb.link(link_id).map(|l| l.joint().joint_rot());
                    if let Some(rot) = rot {
                        let w = rot * Vector::new(v[3], v[4], v[5]);
                        mb.generalized_velocity_mut()
                            .rows_mut(3, 3)
                            .copy_from_slice(&w.to_array());
                    }
                }
            }
            mb.forward_kinematics(bodies, false);
            mb.update_rigid_bodies(bodies, true);
        }
    }

    /// Advances one control step (`frame_skip` physics steps) with motor torques
    /// `gear_i * ctrl_i`; `ctrl` has one entry per motor.
    pub fn step(&mut self, ctrl: &[f32]) {
        #[cfg(feature = "mujoco")]
        if let Some(mj) = &mut self.mujoco {
            mj.step(ctrl);
            return self.mirror_mujoco();
        }
        for _ in 0..self.frame_skip {
            for &link in &self.links {
                if let Some(rb) = self.state.bodies.get_mut(link) {
                    rb.reset_torques(false);
                }
            }
            if let Some(fluid) = &self.fluid {
                if let Some((mb, _)) = self.state.multibody_joints.get(self.root) {
                    fluid.apply(&mut self.state.bodies, mb);
                }
            }
            for (motor, &u) in self.motors.iter().zip(ctrl) {
                let Some(child) = self.state.bodies.get(motor.child) else {
                    continue;
                };
                let torque = (*child.rotation() * motor.axis) * (motor.gear * u);
                if let Some(rb) = self.state.bodies.get_mut(motor.child) {
                    rb.add_torque(torque, false);
                }
                if let Some(rb) = self.state.bodies.get_mut(motor.parent) {
                    rb.add_torque(-torque, false);
                }
            }
            let s = &mut self.state;
            self.pipeline.step(
                self.gravity,
                &self.params,
                &mut s.islands,
                &mut s.broad_phase,
                &mut s.narrow_phase,
                &mut s.bodies,
                &mut s.colliders,
                &mut s.impulse_joints,
                &mut s.multibody_joints,
                &mut s.soft_bodies,
                &mut s.ccd,
                &(),
                &(),
            );
        }
    }

    /// Generalized coordinates (MuJoCo's `qpos`): the root's coordinates (planar: x, z, pitch;
    /// free: x, y, z, qw, qx, qy, qz; fixed: none), then each hinge angle, in body order.
    pub fn qpos(&self) -> Vec<f32> {
        #[cfg(feature = "mujoco")]
        if let Some(mj) = &self.mujoco {
            return mj.qpos();
        }
        let mut q = Vec::with_capacity(self.ndofs);
        if let Some((mb, _)) = self.state.multibody_joints.get(self.root) {
            for link in mb.links() {
                let locked = link.joint().data.locked_axes.bits();
                let coords = link.joint().coords();
                if locked == 0 {
                    // A free joint: position, then the quaternion as MuJoCo (w, x, y, z).
                    let r = link.joint().joint_rot();
                    q.extend([coords[0], coords[1], coords[2], r.w, r.x, r.y, r.z]);
                } else {
                    q.extend((0..6).filter(|a| locked & (1 << a) == 0).map(|a| coords[a]));
                }
            }
        }
        q
    }

    /// Generalized velocities (MuJoCo's `qvel`), in the order of [`Self::qpos`]; a free root
    /// has 6 (linear velocity in the world frame, angular velocity in the body frame).
    pub fn qvel(&self) -> Vec<f32> {
        #[cfg(feature = "mujoco")]
        if let Some(mj) = &self.mujoco {
            return mj.qvel();
        }
        let Some((mb, link_id)) = self.state.multibody_joints.get(self.root) else {
            return Vec::new();
        };
        let mut v: Vec<f32> = mb.generalized_velocity().iter().copied().collect();
        if self.root_kind == RootJoint::Free {
            // rapier's free-joint angular DoFs are in the world frame; MuJoCo's in the body's.
            if let Some(link) = mb.link(link_id) {
                let w = link.joint().joint_rot().inverse() * Vector::new(v[3], v[4], v[5]);
                v[3..6].copy_from_slice(&w.to_array());
            }
        }
        v
    }

    /// World position of the point `local` given in the frame of body `body` (spec order);
    /// `None` when there is no such body.
    pub fn point_in_body(&self, body: usize, local: [f32; 3]) -> Option<[f32; 3]> {
        let rb = self.state.bodies.get(*self.links.get(body)?)?;
        Some(rb.position().transform_point(Vector::from(local)).into())
    }

    /// Mass of each body, in spec order.
    pub fn body_masses(&self) -> Vec<f32> {
        #[cfg(feature = "mujoco")]
        if let Some(mj) = &self.mujoco {
            return mj.body_masses();
        }
        self.links
            .iter()
            .map(|&h| self.state.bodies.get(h).map(|rb| rb.mass()).unwrap_or(0.0))
            .collect()
    }
}

//! Terrain of the half-cheetah's adaptation families (thesis Sec. 9.4): the `hill` test task
//! of `sloped-terrain` (ground rising, then falling) and the `pier` (a row of floating blocks
//! that sink and bob when stepped on, each with its own damping).
//!
//! Both are fixed or dynamic rapier bodies in the robot's [`SimState`], in the ground's
//! collision group, so they touch the robot only. Geometry and constants are documented on
//! [`Hill`] and [`PierConfig`] and in `docs/robots.md`.

use rapier3d::prelude::*;

use super::sim::{SimState, GROUND_GROUP, ROBOT_GROUP};

/// Collision groups of terrain: member of the ground group, touching the robot only.
fn terrain_groups() -> InteractionGroups {
    InteractionGroups::new(GROUND_GROUP, ROBOT_GROUP, InteractionTestMode::And)
}

/// Half width (y) of the hill, far wider than the planar robot.
const HILL_HALF_WIDTH: f32 = 0.5;

/// A hill across the x axis: flat ground up to `start`, a ramp rising at `slope` over the
/// horizontal distance `run`, then falling at the same slope over `run`, back to the flat
/// ground. The solid is a triangular prism (the convex hull of six points) with its base on
/// the ground plane `z = 0`, 1 m wide in y; its crest is `run * tan(slope)` high at
/// `start + run`. Gravity stays vertical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hill {
    /// Incline of both sides, in radians (`0 < slope < 1.2`).
    pub slope: f32,
    /// x of the foot of the rising side (m).
    pub start: f32,
    /// Horizontal length of each side (m).
    pub run: f32,
}

impl Hill {
    /// Height of the crest above the flat ground.
    pub fn crest_height(&self) -> f32 {
        self.run * self.slope.tan()
    }

    /// Ground height at `x`: 0 on the flat parts, the ramps in between.
    pub fn height(&self, x: f32) -> f32 {
        let d = (x - self.start).min(self.start + 2.0 * self.run - x);
        d.clamp(0.0, self.run) * self.slope.tan()
    }

    /// Adds the hill's fixed collider (sliding friction `friction`) to `state`.
    pub(crate) fn insert(&self, state: &mut SimState, friction: f32) -> Option<ColliderHandle> {
        let (x0, x1, x2, h) = (
            self.start,
            self.start + self.run,
            self.start + 2.0 * self.run,
            self.crest_height(),
        );
        let points: Vec<Vector> = [-HILL_HALF_WIDTH, HILL_HALF_WIDTH]
            .into_iter()
            .flat_map(|y| {
                [
                    Vector::new(x0, y, 0.0),
                    Vector::new(x1, y, h),
                    Vector::new(x2, y, 0.0),
                ]
            })
            .collect();
        let collider = ColliderBuilder::convex_hull(&points)?
            .friction(friction)
            .friction_combine_rule(CoefficientCombineRule::Max)
            .collision_groups(terrain_groups());
        Some(state.parts_mut().colliders.insert(collider))
    }
}

/// Removes a parentless terrain collider from `state`.
pub(crate) fn remove_collider(state: &mut SimState, handle: ColliderHandle) {
    let parts = state.parts_mut();
    parts
        .colliders
        .remove(handle, parts.islands, parts.bodies, parts.soft_bodies, true);
}

/// Geometry and physics of the pier. The layout follows the GrBAL authors' MuJoCo model
/// (`half_cheetah_blocks.xml` of `iclavera/learning_to_adapt`: 10 kg blocks 4 m long and
/// 0.1 m thick on vertical slide joints with a range of ±0.15 m); the spring and damping are
/// our choices (there a weak spring leaves the blocks resting on their lower limit, and the
/// damping is `U(0, 10)`):
///
/// - the cheetah starts on a fixed shore (top at `z = 0`, from `x = -10` to the first block);
///   below the blocks is water, emulated by a lake bed (a ground plane `lake_depth` lower)
///   that only a robot falling off the pier's end reaches;
/// - each block is a dynamic cuboid on a vertical prismatic joint to the world (no tilt, no
///   drift); buoyancy balances its weight at rest (gravity scale 0), and the water's
///   restoring force is a spring-damper on the joint, `F = -k z - c_i dz/dt` (rapier's
///   force-based joint motor, integrated implicitly), with `z` the displacement from rest;
/// - per task, each block `i` draws its damping `c_i` uniformly from `damping_range`.
///
/// With the defaults a block alone bobs at `sqrt(k / m) = 24.5 rad/s`; critical damping is
/// `2 sqrt(k m) = 490 N s/m`, so the damping range spans damping ratios 0.2 (a block springs
/// back and bobs) to 2 (it sinks and recovers slowly). The cheetah's weight sinks a block
/// by 2.3 cm at rest and by 4 to 10 cm while running. A softer or less damped pier
/// becomes a trampoline the cheetah pumps at its stride frequency and flips on: with
/// `k = 1500`, open-loop gaits that run 15 to 25 m on flat ground flipped within 5 m.
#[derive(Debug, Clone, PartialEq)]
pub struct PierConfig {
    /// Number of blocks. Default 12 (the pier ends 49 m ahead, beyond what a horizon of 100
    /// control steps covers).
    pub blocks: usize,
    /// x of the first block's back edge (m). Default 1.0: the cheetah starts on the shore,
    /// its front foot near `x = 0.6`.
    pub start: f32,
    /// Block length along x (m). Default 4.0 (the authors' model).
    pub block_length: f32,
    /// Gap between neighbouring blocks and between the shore and the first block (m).
    /// Default 0.01.
    pub gap: f32,
    /// Block width along y (m). Default 1.0.
    pub width: f32,
    /// Block thickness (m); the top is at `z = 0` at rest. Default 0.1 (the authors' model).
    pub thickness: f32,
    /// Block mass (kg). Default 10 (the authors' model).
    pub mass: f32,
    /// Spring stiffness `k` of the water's restoring force (N/m). Default 6000.
    pub stiffness: f32,
    /// Range of the per-block damping `c_i` (N s/m). Default `[100, 1000]`.
    pub damping_range: [f32; 2],
    /// Largest displacement of a block from rest, up or down (joint limits, m). Default 0.15
    /// (the authors' model).
    pub travel: f32,
    /// Sliding friction of the blocks and the shore. Default 0.4 (the half-cheetah's).
    pub friction: f32,
    /// Depth of the lake bed below the shore (m). Default 1.
    pub lake_depth: f32,
    /// Seed of the held-out test configuration of dampings. Default 0.
    pub test_seed: u64,
}

impl Default for PierConfig {
    fn default() -> Self {
        Self {
            blocks: 12,
            start: 1.0,
            block_length: 4.0,
            gap: 0.01,
            width: 1.0,
            thickness: 0.1,
            mass: 10.0,
            stiffness: 6000.0,
            damping_range: [100.0, 1000.0],
            travel: 0.15,
            friction: 0.4,
            lake_depth: 1.0,
            test_seed: 0,
        }
    }
}

impl PierConfig {
    /// Checks that every size, mass and range is usable.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("block_length", self.block_length),
            ("width", self.width),
            ("thickness", self.thickness),
            ("mass", self.mass),
            ("stiffness", self.stiffness),
            ("travel", self.travel),
            ("lake_depth", self.lake_depth),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("pier.{name} must be positive, got {v}"));
        }
        let [lo, hi] = self.damping_range;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return Err(format!(
                "pier.damping_range must be [low, high] with 0 <= low <= high, got {:?}",
                self.damping_range
            ));
        }
        if self.blocks == 0 || !(self.gap.is_finite() && self.gap >= 0.0) {
            return Err(format!(
                "pier needs at least one block and a gap >= 0, got {} blocks and gap {}",
                self.blocks, self.gap
            ));
        }
        if !(self.friction.is_finite() && self.friction >= 0.0 && self.start.is_finite()) {
            return Err("pier.friction must be >= 0 and pier.start finite".into());
        }
        Ok(())
    }

    /// x of block `i`'s centre.
    pub fn block_center(&self, i: usize) -> f32 {
        self.start + self.block_length / 2.0 + i as f32 * (self.block_length + self.gap)
    }
}

/// A built pier: the blocks' bodies and joints in a [`SimState`].
#[derive(Debug, Clone)]
pub(crate) struct Pier {
    config: PierConfig,
    blocks: Vec<RigidBodyHandle>,
    joints: Vec<ImpulseJointHandle>,
}

impl Pier {
    /// Replaces the flat ground of `state` by the shore, the floating blocks (with damping
    /// `damping_range[0]` until a task sets them) and the lake bed.
    pub(crate) fn build(config: &PierConfig, state: &mut SimState) -> Self {
        let parts = state.parts_mut();
        // The robot's flat ground plane (`z = 0`) gives way to water.
        let ground: Vec<ColliderHandle> = parts
            .colliders
            .iter()
            .filter(|(_, c)| c.shape().as_halfspace().is_some())
            .map(|(h, _)| h)
            .collect();
        for h in ground {
            if let Some(c) = parts.colliders.get_mut(h) {
                c.set_enabled(false);
            }
        }
        let fixed = |builder: ColliderBuilder| {
            builder
                .friction(config.friction)
                .friction_combine_rule(CoefficientCombineRule::Max)
                .collision_groups(terrain_groups())
        };
        parts.colliders.insert(
            fixed(ColliderBuilder::halfspace(
                rapier3d::na::Unit::new_unchecked(Vector::Z),
            ))
            .translation(Vector::new(0.0, 0.0, -config.lake_depth)),
        );
        let shore_back = -10.0;
        let shore_front = config.start - config.gap;
        parts.colliders.insert(
            fixed(ColliderBuilder::cuboid(
                (shore_front - shore_back) / 2.0,
                config.width / 2.0,
                config.lake_depth / 2.0,
            ))
            .translation(Vector::new(
                (shore_front + shore_back) / 2.0,
                0.0,
                -config.lake_depth / 2.0,
            )),
        );

        let anchor = parts.bodies.insert(RigidBodyBuilder::fixed());
        let mut blocks = Vec::with_capacity(config.blocks);
        let mut joints = Vec::with_capacity(config.blocks);
        for i in 0..config.blocks {
            let rest = Vector::new(config.block_center(i), 0.0, -config.thickness / 2.0);
            let body = parts.bodies.insert(
                RigidBodyBuilder::dynamic()
                    .translation(rest)
                    .gravity_scale(0.0),
            );
            parts.colliders.insert_with_parent(
                fixed(ColliderBuilder::cuboid(
                    config.block_length / 2.0,
                    config.width / 2.0,
                    config.thickness / 2.0,
                ))
                .mass(config.mass),
                body,
                parts.bodies,
            );
            let joint = PrismaticJointBuilder::new(Vector::Z)
                .local_anchor1(rest)
                .local_anchor2(Vector::ZERO)
                .limits([-config.travel, config.travel])
                .motor_model(MotorModel::ForceBased)
                .set_motor(0.0, 0.0, config.stiffness, config.damping_range[0]);
            joints.push(parts.impulse_joints.insert(anchor, body, joint, true));
            blocks.push(body);
        }
        Self {
            config: config.clone(),
            blocks,
            joints,
        }
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Sets block `i`'s damping to `damping[i]` (N s/m), waking the blocks.
    pub(crate) fn set_damping(&self, state: &mut SimState, damping: &[f32]) {
        let parts = state.parts_mut();
        for (&handle, &c) in self.joints.iter().zip(damping) {
            if let Some(joint) = parts.impulse_joints.get_mut(handle, true) {
                joint
                    .data
                    .set_motor(JointAxis::LinX, 0.0, 0.0, self.config.stiffness, c);
            }
        }
    }

    /// A configuration of dampings drawn uniformly from the configured range.
    pub(crate) fn sample_damping(&self, rng: &mut dyn rand::RngCore) -> Vec<f32> {
        use rand::Rng;
        let [lo, hi] = self.config.damping_range;
        (0..self.blocks.len())
            .map(|_| {
                if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                }
            })
            .collect()
    }

    /// Each block's displacement from its rest height (m, negative when sunk).
    pub(crate) fn displacements(&self, state: &SimState) -> Vec<f32> {
        self.blocks
            .iter()
            .map(|&h| {
                state
                    .bodies()
                    .get(h)
                    .map(|b| b.translation().z + self.config.thickness / 2.0)
                    .unwrap_or(0.0)
            })
            .collect()
    }
}

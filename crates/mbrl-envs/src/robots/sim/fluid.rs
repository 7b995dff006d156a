//! Fluid drag for robots that swim: MuJoCo's inertia-based fluid model (enabled in an MJCF
//! file by `<option density=".." viscosity=".."/>`, e.g. Gymnasium's swimmer), since rapier
//! has no fluid model.
//!
//! Each body is treated as its *equivalent inertia box*, whose half-sizes follow from its mass
//! `M` and principal moments `I`: `r_x = sqrt(3 / (2M) (I_yy + I_zz - I_xx))` and cyclically.
//! With `v`, `w` the linear velocity of the centre of mass and the angular velocity in the
//! principal frame, the fluid exerts, per component `i` (`j`, `k` the other two),
//!
//! - quadratic drag (density `rho`): `f_i = -2 rho r_j r_k |v_i| v_i`,
//!   `g_i = -1/2 rho r_i (r_j^4 + r_k^4) |w_i| w_i`;
//! - viscous resistance of the sphere of radius `r_eq = (r_x + r_y + r_z) / 3` (viscosity
//!   `beta`): `f_i = -6 pi beta r_eq v_i`, `g_i = -8 pi beta r_eq^3 w_i`;
//!
//! applied at the centre of mass, as MuJoCo's `mj_inertiaBoxFluidModel` (see MuJoCo's
//! "Fluid forces" documentation). The forces are evaluated from the velocities at the start of
//! every physics step (explicit), where MuJoCo's RK4 integrates them within the step. The
//! velocities come from the multibody's generalized velocities through the link Jacobians:
//! rapier refreshes the links' rigid-body velocities only when its solver starts, so between
//! steps (and after a reset) they are one physics step old.

use rapier3d::prelude::*;

use super::Sim;

/// The medium around a robot (MJCF `<option density viscosity>`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fluid {
    /// Density of the medium (kg/m^3), for the quadratic drag.
    pub density: f32,
    /// Viscosity of the medium, for the linear viscous resistance.
    pub viscosity: f32,
}

/// The fluid and each link's equivalent inertia box.
pub(super) struct FluidDrag {
    fluid: Fluid,
    /// Half-sizes of each link's equivalent inertia box, by multibody link id; `None` for
    /// massless links (the fixed anchor the root joint hangs from).
    boxes: Vec<Option<[f32; 3]>>,
}

impl FluidDrag {
    /// Resets the links' user forces and adds the fluid's force and torque to each; the motor
    /// torques are added after this.
    pub(super) fn apply(&self, bodies: &mut RigidBodySet, multibody: &Multibody) {
        let Fluid {
            density: rho,
            viscosity: beta,
        } = self.fluid;
        let qdot = multibody.generalized_velocity();
        for (link, r) in multibody.links().zip(&self.boxes) {
            let (Some(r), Some(rb)) = (r, bodies.get_mut(link.rigid_body_handle())) else {
                continue;
            };
            // Jacobian rows: the velocity of the link's centre of mass, then its spin.
            let jv = multibody.body_jacobian(link.link_id()) * qdot;
            let linvel = Vector::new(jv[0], jv[1], jv[2]);
            let spin = Vector::new(jv[3], jv[4], jv[5]);
            let frame = *rb.rotation()
                * rb.mass_properties()
                    .local_mprops
                    .principal_inertia_local_frame;
            let to_local = frame.inverse();
            let v: [f32; 3] = (to_local * linvel).into();
            let w: [f32; 3] = (to_local * spin).into();
            let r_eq = (r[0] + r[1] + r[2]) / 3.0;
            let pi = std::f32::consts::PI;
            let mut force = [0.0f32; 3];
            let mut torque = [0.0f32; 3];
            for i in 0..3 {
                let (j, k) = ((i + 1) % 3, (i + 2) % 3);
                force[i] =
                    -2.0 * rho * r[j] * r[k] * v[i].abs() * v[i] - 6.0 * pi * beta * r_eq * v[i];
                torque[i] = -0.5 * rho * r[i] * (r[j].powi(4) + r[k].powi(4)) * w[i].abs() * w[i]
                    - 8.0 * pi * beta * r_eq.powi(3) * w[i];
            }
            rb.reset_forces(false);
            rb.add_force(frame * Vector::from(force), false);
            rb.add_torque(frame * AngVector::from(torque), false);
        }
    }
}

impl Sim {
    /// Immerses the robot in `fluid` (or takes it out with `None`): from the next step on,
    /// every body feels MuJoCo's inertia-box drag (see the module docs).
    pub fn set_fluid(&mut self, fluid: Option<Fluid>) {
        let bodies = &self.state.bodies;
        let boxes = self
            .state
            .multibody_joints
            .get(self.root)
            .map(|(mb, _)| {
                mb.links()
                    .map(|link| {
                        let props = bodies
                            .get(link.rigid_body_handle())
                            .map(|rb| rb.mass_properties().local_mprops)
                            .unwrap_or_default();
                        let m = props.mass();
                        let i: [f32; 3] = props.principal_inertia().into();
                        let half = |a: usize, b: usize, c: usize| {
                            (1.5 / m * (i[b] + i[c] - i[a])).max(1e-15).sqrt()
                        };
                        (m > 0.0).then(|| [half(0, 1, 2), half(1, 2, 0), half(2, 0, 1)])
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.fluid = fluid.map(|fluid| FluidDrag { fluid, boxes });
    }

    /// Turns off every contact of the robot's geoms (MJCF `contype="0" conaffinity="0"`, as
    /// the swimmer's), in the live state and the reset snapshot.
    pub fn disable_contacts(&mut self) {
        for state in [&mut self.state, &mut self.initial] {
            for handle in self.nominal.geom_handles() {
                if let Some(co) = state.colliders.get_mut(handle) {
                    co.set_collision_groups(InteractionGroups::none());
                }
            }
        }
    }
}

//! Scaling a built robot's physical parameters (the `random-dynamics` task family): body
//! masses, principal moments of inertia, joint damping and friction, each multiplied by a
//! factor relative to the as-built value. The change goes into both the live state and the
//! reset snapshot, so a reset keeps it.

use rapier3d::prelude::*;

use super::{Sim, SimState};

/// How many factors a [`DynamicsScale`] of a robot has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicsLayout {
    /// Bodies (one mass and three inertia factors each).
    pub bodies: usize,
    /// Hinges (one damping factor each).
    pub hinges: usize,
    /// Robot geoms; the friction factors are one per geom plus one for the ground.
    pub geoms: usize,
}

impl DynamicsLayout {
    /// Number of friction factors: every geom, then the ground.
    pub fn frictions(&self) -> usize {
        self.geoms + 1
    }
}

/// Factors on a robot's as-built physical parameters, like the `body_mass`, `body_inertia`,
/// `dof_damping` and `geom_friction` multipliers of the ProMP / rand_param_envs code.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicsScale {
    /// Mass of each body, in spec order. Inertia is scaled separately (as MuJoCo's
    /// `body_mass` and `body_inertia` are separate).
    pub mass: Vec<f32>,
    /// The three principal moments of inertia of each body, in spec order.
    pub inertia: Vec<[f32; 3]>,
    /// Damping of each hinge, in body order (the root has none).
    pub damping: Vec<f32>,
    /// Sliding friction of each geom in spec order, then of the ground.
    pub friction: Vec<f32>,
}

impl DynamicsScale {
    /// All factors 1: the robot as built.
    pub fn nominal(layout: DynamicsLayout) -> Self {
        Self {
            mass: vec![1.0; layout.bodies],
            inertia: vec![[1.0; 3]; layout.bodies],
            damping: vec![1.0; layout.hinges],
            friction: vec![1.0; layout.frictions()],
        }
    }

    /// The factors as one flat list: masses, inertias (3 per body), dampings, frictions.
    pub fn to_flat(&self) -> Vec<f32> {
        let mut v = self.mass.clone();
        v.extend(self.inertia.iter().flatten());
        v.extend(&self.damping);
        v.extend(&self.friction);
        v
    }

    /// The inverse of [`Self::to_flat`]; `None` when `flat` does not have the layout's length.
    pub fn from_flat(layout: DynamicsLayout, flat: &[f32]) -> Option<Self> {
        let n = layout.bodies * 4 + layout.hinges + layout.frictions();
        if flat.len() != n {
            return None;
        }
        let (mass, rest) = flat.split_at(layout.bodies);
        let (inertia, rest) = rest.split_at(3 * layout.bodies);
        let (damping, friction) = rest.split_at(layout.hinges);
        Some(Self {
            mass: mass.to_vec(),
            inertia: inertia
                .chunks_exact(3)
                .map(|c| [c[0], c[1], c[2]])
                .collect(),
            damping: damping.to_vec(),
            friction: friction.to_vec(),
        })
    }

    fn fits(&self, layout: DynamicsLayout) -> bool {
        self.mass.len() == layout.bodies
            && self.inertia.len() == layout.bodies
            && self.damping.len() == layout.hinges
            && self.friction.len() == layout.frictions()
    }
}

/// The as-built values a [`DynamicsScale`] multiplies.
pub(super) struct Nominal {
    mass_props: Vec<MassProperties>,
    geoms: Vec<(ColliderHandle, f32)>,
    ground: (ColliderHandle, f32),
    hinge_damping: Vec<(usize, f32)>,
}

impl Nominal {
    /// Records the values of a freshly built state.
    pub(super) fn of(
        state: &SimState,
        links: &[RigidBodyHandle],
        geoms: Vec<ColliderHandle>,
        ground: ColliderHandle,
        hinge_damping: Vec<(usize, f32)>,
    ) -> Self {
        let friction = |h: ColliderHandle| state.colliders.get(h).map_or(0.0, |c| c.friction());
        Self {
            mass_props: links
                .iter()
                .map(|&h| {
                    state
                        .bodies
                        .get(h)
                        .map(|rb| rb.mass_properties().local_mprops)
                        .unwrap_or_default()
                })
                .collect(),
            geoms: geoms.into_iter().map(|h| (h, friction(h))).collect(),
            ground: (ground, friction(ground)),
            hinge_damping,
        }
    }

    /// Robot colliders, in spec order.
    pub(super) fn geom_handles(&self) -> impl Iterator<Item = ColliderHandle> + '_ {
        self.geoms.iter().map(|&(h, _)| h)
    }
}

impl Sim {
    /// How many factors [`Self::set_dynamics`] takes.
    pub fn dynamics_layout(&self) -> DynamicsLayout {
        DynamicsLayout {
            bodies: self.links.len(),
            hinges: self.nominal.hinge_damping.len(),
            geoms: self.nominal.geoms.len(),
        }
    }

    /// Sets every mass, principal inertia, hinge damping and friction to its as-built value
    /// times `scale`'s factor, in the live state and in the reset snapshot (takes effect at
    /// the next step, and survives resets). Factors must be finite and positive.
    pub fn set_dynamics(&mut self, scale: &DynamicsScale) -> mbrl_core::Result<()> {
        let layout = self.dynamics_layout();
        if !scale.fits(layout) {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "dynamics scale does not fit the robot ({layout:?}): {scale:?}"
            )));
        }
        if let Some(bad) = scale
            .to_flat()
            .into_iter()
            .find(|f| !(f.is_finite() && *f > 0.0))
        {
            return Err(mbrl_core::Error::InvalidArgument(format!(
                "dynamics scale factors must be finite and positive, got {bad}"
            )));
        }
        for state in [&mut self.state, &mut self.initial] {
            apply(state, &self.nominal, &self.links, self.root, scale);
        }
        Ok(())
    }
}

/// Writes the scaled values into one state.
fn apply(
    state: &mut SimState,
    nominal: &Nominal,
    links: &[RigidBodyHandle],
    root: MultibodyJointHandle,
    scale: &DynamicsScale,
) {
    let SimState {
        bodies,
        colliders,
        multibody_joints,
        ..
    } = state;
    for (i, (&link, base)) in links.iter().zip(&nominal.mass_props).enumerate() {
        let Some(rb) = bodies.get_mut(link) else {
            continue;
        };
        // The colliders stop contributing mass; the body's whole mass is set explicitly.
        for &c in rb.colliders() {
            if let Some(co) = colliders.get_mut(c) {
                co.set_density(0.0);
            }
        }
        let props = MassProperties::with_principal_inertia_frame(
            base.local_com,
            base.mass() * scale.mass[i],
            base.principal_inertia() * AngVector::from(scale.inertia[i]),
            base.principal_inertia_local_frame,
        );
        rb.set_additional_mass_properties(props, false);
        rb.recompute_mass_properties_from_colliders(colliders);
    }
    let frictions = nominal.geoms.iter().chain(std::iter::once(&nominal.ground));
    for (&(handle, base), factor) in frictions.zip(&scale.friction) {
        if let Some(co) = colliders.get_mut(handle) {
            co.set_friction(base * factor);
        }
    }
    if let Some((mb, _)) = multibody_joints.get_mut(root) {
        for (&(dof, base), factor) in nominal.hinge_damping.iter().zip(&scale.damping) {
            mb.damping_mut()[dof] = base * factor;
        }
        mb.update_rigid_bodies(bodies, true);
    }
}

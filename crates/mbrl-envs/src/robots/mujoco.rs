//! The optional MuJoCo physics backend (cargo feature `mujoco`, issue 7): the same robots,
//! observations, rewards and task families, with MuJoCo 3.17.0 (through `mujoco-rs`) in
//! place of rapier.
//!
//! - [`mjcf`] writes a robot's MJCF model from its [`RobotSpec`] (the values the rapier
//!   robots already take from Gymnasium's models) and an [`MjcfStyle`] holding what rapier
//!   has no use for (solver impedances, contact dimension, integrator): one source of truth
//!   for the physical constants, no MJCF files copied into the repository;
//! - [`MjPhysics`] owns the compiled model and its data, and offers what [`super::Sim`]
//!   forwards to it once attached: `qpos`/`qvel` in MuJoCo's layout, reset to the initial
//!   pose plus a displacement (then `mj_forward`, as Gymnasium's `set_state`), and a control
//!   step (`ctrl` set, `frame_skip` calls of `mj_step`, as Gymnasium's `do_simulation`);
//! - [`make_robot`] builds a robot by registry name on MuJoCo; families that change the
//!   rapier scene (terrain, random dynamics) are refused with the list of those that apply.
//!
//! Rendering still draws the rapier scene, which does not move under this backend.

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};

use super::half_cheetah::{self, HalfCheetah, HalfCheetahConfig};
use super::sim::{RobotSpec, RootJoint};
use super::{RewardKind, RobotEnv};

/// What an MJCF model needs beyond the [`RobotSpec`]: MuJoCo's contact and limit solver
/// settings and its integrator, written as MJCF attribute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MjcfStyle {
    /// Model name.
    pub model: &'static str,
    /// `<option integrator>`: `Euler` or `RK4`.
    pub integrator: &'static str,
    /// Geom `solimp`.
    pub geom_solimp: &'static str,
    /// Geom `solref`.
    pub geom_solref: &'static str,
    /// Geom `condim`.
    pub condim: u32,
    /// Joint `solimplimit`.
    pub limit_solimp: &'static str,
    /// Joint `solreflimit`.
    pub limit_solref: &'static str,
}

/// Gymnasium's `half_cheetah.xml` defaults: geoms `solimp="0.0 0.8 0.01" solref="0.02 1"
/// condim="3"`, joints `solimplimit="0 .8 .03" solreflimit=".02 1"`, Euler integrator.
pub const HALF_CHEETAH_STYLE: MjcfStyle = MjcfStyle {
    model: "cheetah",
    integrator: "Euler",
    geom_solimp: "0.0 0.8 0.01",
    geom_solref: "0.02 1",
    condim: 3,
    limit_solimp: "0 .8 .03",
    limit_solref: ".02 1",
};

fn v3(v: [f32; 3]) -> String {
    format!("{} {} {}", v[0], v[1], v[2])
}

/// The MJCF model of `spec` in `style`: a ground plane, the bodies nested as in `spec`, each
/// capsule as `fromto` (a sphere as `pos`), the root joints (planar: `rootx`, `rootz`,
/// `rooty`; free: a free joint), one hinge per non-root body with its range, spring,
/// damping and armature, and one motor per geared hinge. `f32` values print in their
/// shortest round-trip form, so a constant written `0.046` in the spec reaches MuJoCo as
/// the same decimal Gymnasium's file has.
pub fn mjcf(spec: &RobotSpec, style: &MjcfStyle) -> String {
    let mass = match spec.mass {
        super::sim::MassSpec::Total(m) => format!(" settotalmass=\"{m}\""),
        super::sim::MassSpec::Density(_) => String::new(),
    };
    let density = match spec.mass {
        super::sim::MassSpec::Density(d) => format!(" density=\"{d}\""),
        super::sim::MassSpec::Total(_) => String::new(),
    };
    let mut xml = format!(
        "<mujoco model=\"{}\">\n<compiler angle=\"radian\" inertiafromgeom=\"true\"{mass}/>\n\
         <option timestep=\"{}\" gravity=\"0 0 -9.81\" integrator=\"{}\"/>\n\
         <default>\n<joint solimplimit=\"{}\" solreflimit=\"{}\"/>\n\
         <geom contype=\"1\" conaffinity=\"0\" condim=\"{}\" friction=\"{} 0.1 0.1\" \
         solimp=\"{}\" solref=\"{}\"{density}/>\n\
         <motor ctrllimited=\"true\" ctrlrange=\"-1 1\"/>\n</default>\n<worldbody>\n\
         <geom name=\"floor\" type=\"plane\" size=\"40 40 40\" conaffinity=\"1\" \
         friction=\"{} 0.1 0.1\"/>\n",
        style.model,
        spec.dt,
        style.integrator,
        style.limit_solimp,
        style.limit_solref,
        style.condim,
        spec.friction,
        style.geom_solimp,
        style.geom_solref,
        spec.ground_friction,
    );
    write_body(spec, 0, &mut xml);
    xml.push_str("</worldbody>\n<actuator>\n");
    for body in &spec.bodies {
        if let Some(h) = body.hinge.filter(|h| h.gear != 0.0) {
            xml.push_str(&format!(
                "<motor name=\"{0}\" joint=\"{0}\" gear=\"{1}\"/>\n",
                body.name, h.gear
            ));
        }
    }
    xml.push_str("</actuator>\n</mujoco>\n");
    xml
}

/// Appends body `i` and, nested inside it, its children in spec order.
fn write_body(spec: &RobotSpec, i: usize, xml: &mut String) {
    let body = &spec.bodies[i];
    xml.push_str(&format!(
        "<body name=\"{}\" pos=\"{}\">\n",
        body.name,
        v3(body.pos)
    ));
    if i == 0 {
        let free = "armature=\"0\" damping=\"0\" stiffness=\"0\" limited=\"false\" pos=\"0 0 0\"";
        match spec.root {
            RootJoint::Planar => xml.push_str(&format!(
                "<joint name=\"rootx\" type=\"slide\" axis=\"1 0 0\" {free}/>\n\
                 <joint name=\"rootz\" type=\"slide\" axis=\"0 0 1\" {free}/>\n\
                 <joint name=\"rooty\" type=\"hinge\" axis=\"0 1 0\" {free}/>\n"
            )),
            RootJoint::PlanarXY => xml.push_str(&format!(
                "<joint name=\"slider1\" type=\"slide\" axis=\"1 0 0\" {free}/>\n\
                 <joint name=\"slider2\" type=\"slide\" axis=\"0 1 0\" {free}/>\n\
                 <joint name=\"free_body_rot\" type=\"hinge\" axis=\"0 0 1\" {free}/>\n"
            )),
            RootJoint::Free => xml.push_str(
                "<joint name=\"root\" type=\"free\" armature=\"0\" damping=\"0\" limited=\"false\"/>\n",
            ),
            RootJoint::Fixed => {}
        }
    }
    if let Some(h) = &body.hinge {
        let range = match h.range {
            Some([lo, hi]) => format!("limited=\"true\" range=\"{lo} {hi}\""),
            None => "limited=\"false\"".to_string(),
        };
        xml.push_str(&format!(
            "<joint name=\"{}\" type=\"hinge\" pos=\"0 0 0\" axis=\"{}\" {range} \
             stiffness=\"{}\" damping=\"{}\" armature=\"{}\"/>\n",
            body.name,
            v3(h.axis),
            h.stiffness,
            h.damping,
            h.armature
        ));
    }
    for g in &body.geoms {
        let friction = g
            .friction
            .map(|f| format!(" friction=\"{f} 0.1 0.1\""))
            .unwrap_or_default();
        if g.is_sphere() {
            xml.push_str(&format!(
                "<geom type=\"sphere\" pos=\"{}\" size=\"{}\"{friction}/>\n",
                v3(g.a),
                g.radius
            ));
        } else {
            xml.push_str(&format!(
                "<geom type=\"capsule\" fromto=\"{} {}\" size=\"{}\"{friction}/>\n",
                v3(g.a),
                v3(g.b),
                g.radius
            ));
        }
    }
    for (j, child) in spec.bodies.iter().enumerate() {
        if child.parent == Some(i) {
            write_body(spec, j, xml);
        }
    }
    xml.push_str("</body>\n");
}

/// A compiled MuJoCo model and its data: the physics a [`super::Sim`] forwards to.
pub struct MjPhysics {
    data: MjData<Box<MjModel>>,
    frame_skip: usize,
    /// MuJoCo body ids of the spec's bodies, in spec order.
    body_ids: Vec<usize>,
}

impl MjPhysics {
    /// Compiles the model of `spec` in `style`.
    pub fn new(spec: &RobotSpec, style: &MjcfStyle) -> crate::Result<Self> {
        let model = MjModel::from_xml_string(&mjcf(spec, style)).map_err(|e| {
            mbrl_core::Error::InvalidArgument(format!(
                "mujoco backend: MuJoCo rejected the {} model: {e}",
                style.model
            ))
        })?;
        let body_ids = spec
            .bodies
            .iter()
            .map(|b| {
                model
                    .name_to_id(MjtObjBase::mjOBJ_BODY, b.name)
                    .unwrap_or(0)
            })
            .collect();
        let mut data = MjData::new(Box::new(model));
        data.forward();
        Ok(Self {
            data,
            frame_skip: spec.frame_skip,
            body_ids,
        })
    }

    /// Generalized coordinates (MuJoCo's `qpos`).
    pub fn qpos(&self) -> Vec<f32> {
        self.data.qpos().iter().map(|&q| q as f32).collect()
    }

    /// Generalized velocities (MuJoCo's `qvel`).
    pub fn qvel(&self) -> Vec<f32> {
        self.data.qvel().iter().map(|&v| v as f32).collect()
    }

    /// `mj_resetData`, then `qpos = qpos0 + dq` (integrated with `mj_integratePos` semantics
    /// for free joints) and `qvel = v`, then `mj_forward`.
    pub fn reset(&mut self, dq: &[f32], v: &[f32]) {
        self.data.reset();
        let nq = self.data.qpos().len();
        let nv = self.data.qvel().len();
        if dq.len() == nv && v.len() == nv {
            let dq: Vec<f64> = dq.iter().map(|&d| f64::from(d)).collect();
            if nq == nv {
                for (q, d) in self.data.qpos_mut().iter_mut().zip(&dq) {
                    *q += d;
                }
            } else {
                integrate_free_root(self.data.qpos_mut(), &dq);
            }
            for (q, &x) in self.data.qvel_mut().iter_mut().zip(v) {
                *q = f64::from(x);
            }
        }
        self.data.forward();
    }

    /// One control step: `ctrl` into MuJoCo's controls, then `frame_skip` calls of `mj_step`.
    pub fn step(&mut self, ctrl: &[f32]) {
        for (c, &u) in self.data.ctrl_mut().iter_mut().zip(ctrl) {
            *c = f64::from(u);
        }
        for _ in 0..self.frame_skip {
            self.data.step();
        }
    }

    /// Mass of each body, in spec order.
    pub fn body_masses(&self) -> Vec<f32> {
        let masses = self.data.model().body_mass();
        self.body_ids.iter().map(|&i| masses[i] as f32).collect()
    }
}

/// Adds the displacement `dq` (`nv` entries, a free root's first 6) to `qpos` (`nq = nv + 1`):
/// the translation adds, the orientation turns by the rotation vector `dq[3..6]` in the
/// body frame (MuJoCo's `mj_integratePos`), the remaining hinges add.
fn integrate_free_root(qpos: &mut [f64], dq: &[f64]) {
    for i in 0..3 {
        qpos[i] += dq[i];
    }
    let w = [dq[3], dq[4], dq[5]];
    let angle = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
    if angle > 0.0 {
        let (s, c) = (angle / 2.0).sin_cos();
        let r = [c, s * w[0] / angle, s * w[1] / angle, s * w[2] / angle];
        let q = [qpos[3], qpos[4], qpos[5], qpos[6]];
        let p = [
            q[0] * r[0] - q[1] * r[1] - q[2] * r[2] - q[3] * r[3],
            q[0] * r[1] + q[1] * r[0] + q[2] * r[3] - q[3] * r[2],
            q[0] * r[2] - q[1] * r[3] + q[2] * r[0] + q[3] * r[1],
            q[0] * r[3] + q[1] * r[2] - q[2] * r[1] + q[3] * r[0],
        ];
        let n = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (dst, x) in qpos[3..7].iter_mut().zip(p) {
            *dst = x / n;
        }
    }
    for (q, d) in qpos[7..].iter_mut().zip(&dq[6..]) {
        *q += d;
    }
}

/// Task families of each robot that only change rewards or motor commands, which the MuJoCo
/// backend supports.
pub const FAMILIES: &[(&str, &[&str])] = &[
    (
        half_cheetah::NAME,
        &[
            half_cheetah::FAMILY_FORWARD_BACKWARD,
            half_cheetah::FAMILY_DISABLED_JOINT,
        ],
    ),
    (
        half_cheetah::NAME_V5,
        &[
            half_cheetah::FAMILY_FORWARD_BACKWARD,
            half_cheetah::FAMILY_DISABLED_JOINT,
        ],
    ),
];

/// The half-cheetah with `reward` and `family` on MuJoCo (Gymnasium's `half_cheetah.xml`
/// physics); `family` must be one [`FAMILIES`] lists.
pub fn half_cheetah(reward: RewardKind, family: Option<&str>) -> crate::Result<HalfCheetah> {
    let name = match reward {
        RewardKind::MeTrpo => half_cheetah::NAME,
        RewardKind::GymnasiumV5 => half_cheetah::NAME_V5,
    };
    check_family(name, family)?;
    let config = HalfCheetahConfig {
        reward,
        ..HalfCheetahConfig::default()
    };
    let physics = MjPhysics::new(
        &half_cheetah::spec(config.solver_iterations),
        &HALF_CHEETAH_STYLE,
    )?;
    let mut env = HalfCheetah::new(config, family)?;
    env.sim.attach_mujoco(physics);
    Ok(env)
}

/// Errors unless `family` is none or one the MuJoCo backend supports for `name`.
fn check_family(name: &str, family: Option<&str>) -> crate::Result<()> {
    let valid = FAMILIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    match family {
        Some(f) if !valid.contains(&f) => Err(crate::Error::UnknownTaskFamily {
            env: format!("{name} (mujoco backend)"),
            family: f.to_string(),
            valid: valid.iter().map(|s| s.to_string()).collect(),
        }),
        _ => Ok(()),
    }
}

/// Registry names the MuJoCo backend builds.
pub const NAMES: &[&str] = &[half_cheetah::NAME, half_cheetah::NAME_V5];

/// Builds the robot registered as `name` with `family` on MuJoCo; names without a MuJoCo
/// model yet are errors listing [`NAMES`].
pub fn make_robot(name: &str, family: Option<&str>) -> crate::Result<Box<dyn RobotEnv>> {
    match name {
        half_cheetah::NAME => Ok(Box::new(half_cheetah(RewardKind::MeTrpo, family)?)),
        half_cheetah::NAME_V5 => Ok(Box::new(half_cheetah(RewardKind::GymnasiumV5, family)?)),
        _ => Err(crate::Error::Backend {
            backend: "mujoco".into(),
            message: format!(
                "env `{name}` has no MuJoCo model; envs on the mujoco backend: {}",
                NAMES.join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_cheetah_mjcf_compiles_with_gymnasium_masses() {
        let physics = MjPhysics::new(&half_cheetah::spec(4), &HALF_CHEETAH_STYLE).unwrap();
        let masses = physics.body_masses();
        // docs/robots.md: torso 6.25, bthigh 1.54, ..., total 14 kg (settotalmass).
        assert!(
            (masses.iter().sum::<f32>() - 14.0).abs() < 1e-4,
            "{masses:?}"
        );
        assert!((masses[0] - 6.25).abs() < 0.01, "{masses:?}");
        assert_eq!(physics.qpos().len(), 9);
    }
}

//! The MJCF text of a robot: written from its [`RobotSpec`] (the physical values the rapier
//! robots already take from Gymnasium's models) and an [`MjcfStyle`] holding what rapier has
//! no use for (contact and limit solver settings, contact filtering and margin, integrator,
//! the medium, the root joints' armature). One source of truth for the physical constants;
//! no MJCF file is copied into the repository.
//!
//! One style per robot, each citing the `<default>`, `<option>` and root-joint attributes of
//! Gymnasium's model file (`gymnasium/envs/mujoco/assets/*.xml`, Gymnasium 1.2.2).

use super::super::sim::{Fluid, MassSpec, RobotSpec, RootJoint};
use super::super::swimmer;

/// What an MJCF model needs beyond the [`RobotSpec`]: MuJoCo's contact and limit solver
/// settings, contact filtering, its integrator and medium, written as MJCF attribute values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MjcfStyle {
    /// Model name.
    pub model: &'static str,
    /// `<option integrator>`: `Euler` or `RK4`.
    pub integrator: &'static str,
    /// `<option density viscosity>`: the medium around the robot, `None` for none.
    pub medium: Option<Fluid>,
    /// Geom `solimp` (every geom, the floor included).
    pub geom_solimp: &'static str,
    /// Geom `solref` (every geom, the floor included).
    pub geom_solref: &'static str,
    /// Geom `condim` of the robot's geoms (the floor's is 3 in every Gymnasium model; a
    /// contact takes the larger of its two geoms').
    pub condim: u32,
    /// Geom `contype` (every geom, the floor included).
    pub contype: u32,
    /// Geom `conaffinity` of the robot's geoms (the floor's is 1): 1 lets non-adjacent links
    /// collide with each other (the hopper's), 0 lets them touch the floor only.
    pub conaffinity: u32,
    /// Geom `margin` (every geom, the floor included): contacts act from this distance on.
    pub margin: f32,
    /// Joint `solimplimit`.
    pub limit_solimp: &'static str,
    /// Joint `solreflimit`.
    pub limit_solref: &'static str,
    /// `armature` of the root joints (the swimmer's inherit its joint default 0.1).
    pub root_armature: f32,
}

/// MuJoCo's default `solimp` (and `solimplimit`), where a model sets none.
const MJ_SOLIMP: &str = "0.9 0.95 0.001 0.5 2";
/// MuJoCo's default `solref` (and `solreflimit`), where a model sets none.
const MJ_SOLREF: &str = "0.02 1";

/// Gymnasium's `half_cheetah.xml`: geoms `solimp="0.0 0.8 0.01" solref="0.02 1" condim="3"
/// contype="1" conaffinity="0"`, joints `solimplimit="0 .8 .03" solreflimit=".02 1"`, Euler
/// integrator.
pub const HALF_CHEETAH_STYLE: MjcfStyle = MjcfStyle {
    model: "cheetah",
    integrator: "Euler",
    medium: None,
    geom_solimp: "0.0 0.8 0.01",
    geom_solref: "0.02 1",
    condim: 3,
    contype: 1,
    conaffinity: 0,
    margin: 0.0,
    limit_solimp: "0 .8 .03",
    limit_solref: ".02 1",
    root_armature: 0.0,
};

/// What Gymnasium's hopper, walker2d, swimmer and ant models leave at MuJoCo's defaults: RK4,
/// no medium, default solver settings, geoms `contype="1" conaffinity="0" condim="3"`, no
/// margin, no root armature. Each robot's style below overrides its own differences.
const RK4_DEFAULTS: MjcfStyle = MjcfStyle {
    model: "",
    integrator: "RK4",
    medium: None,
    geom_solimp: MJ_SOLIMP,
    geom_solref: MJ_SOLREF,
    condim: 3,
    contype: 1,
    conaffinity: 0,
    margin: 0.0,
    limit_solimp: MJ_SOLIMP,
    limit_solref: MJ_SOLREF,
    root_armature: 0.0,
};

/// Gymnasium's `hopper.xml` (Hopper-v5): geoms `conaffinity="1" condim="1" contype="1"
/// margin="0.001" solimp=".8 .8 .01" solref=".02 1"` (so the torso, thigh and foot can hit
/// the non-adjacent links), joint limits at MuJoCo's defaults, RK4 integrator.
pub const HOPPER_STYLE: MjcfStyle = MjcfStyle {
    model: "hopper",
    geom_solimp: ".8 .8 .01",
    geom_solref: ".02 1",
    condim: 1,
    conaffinity: 1,
    margin: 0.001,
    ..RK4_DEFAULTS
};

/// Gymnasium's `walker2d_v5.xml` (Walker2d-v5): geoms `conaffinity="0" condim="3"
/// contype="1"`, solver settings at MuJoCo's defaults, RK4 integrator.
pub const WALKER2D_STYLE: MjcfStyle = MjcfStyle {
    model: "walker2d",
    ..RK4_DEFAULTS
};

/// Gymnasium's `swimmer.xml` (Swimmer-v5): `<option density="4000" viscosity="0.1"
/// integrator="RK4">` (MuJoCo's inertia-box fluid model, [`swimmer::FLUID`]), geoms
/// `contype="0" conaffinity="0" condim="1"` (no contacts at all), and the joint default
/// `armature="0.1"`, which the root joints `slider1`, `slider2`, `free_body_rot` inherit.
pub const SWIMMER_STYLE: MjcfStyle = MjcfStyle {
    model: "swimmer",
    medium: Some(swimmer::FLUID),
    condim: 1,
    contype: 0,
    root_armature: 0.1,
    ..RK4_DEFAULTS
};

/// Gymnasium's `ant.xml` (Ant-v5): geoms `conaffinity="0" condim="3" margin="0.01"`, solver
/// settings at MuJoCo's defaults, RK4 integrator.
pub const ANT_STYLE: MjcfStyle = MjcfStyle {
    model: "ant",
    margin: 0.01,
    ..RK4_DEFAULTS
};

fn v3(v: [f32; 3]) -> String {
    format!("{} {} {}", v[0], v[1], v[2])
}

/// The MJCF model of `spec` in `style`: a ground plane, the bodies nested as in `spec`, each
/// capsule as `fromto` (a sphere as `pos`), the root joints (planar: `rootx`, `rootz`,
/// `rooty`; horizontal planar: `slider1`, `slider2`, `free_body_rot`; free: a free joint),
/// one hinge per non-root body with its range, spring, damping and armature, and one motor
/// per geared hinge, in body order. `f32` values print in their shortest round-trip form, so
/// a constant written `0.046` in the spec reaches MuJoCo as the same decimal Gymnasium's file
/// has. A total mass ([`MassSpec::Total`]) is not written: MuJoCo 3.17 deprecates the
/// compiler's `settotalmass` (with a warning on every compile), so
/// [`MjPhysics::new`](super::physics::MjPhysics::new) scales the compiled model instead.
pub fn mjcf(spec: &RobotSpec, style: &MjcfStyle) -> String {
    let density = match spec.mass {
        MassSpec::Density(d) => format!(" density=\"{d}\""),
        MassSpec::Total(_) => String::new(),
    };
    let medium = style
        .medium
        .map(|f| format!(" density=\"{}\" viscosity=\"{}\"", f.density, f.viscosity))
        .unwrap_or_default();
    let mut xml = format!(
        "<mujoco model=\"{}\">\n<compiler angle=\"radian\" inertiafromgeom=\"true\"/>\n\
         <option timestep=\"{}\" gravity=\"0 0 -9.81\" integrator=\"{}\"{medium}/>\n\
         <default>\n<joint solimplimit=\"{}\" solreflimit=\"{}\"/>\n\
         <geom contype=\"{}\" conaffinity=\"{}\" condim=\"{}\" friction=\"{} 0.1 0.1\" \
         margin=\"{}\" solimp=\"{}\" solref=\"{}\"{density}/>\n\
         <motor ctrllimited=\"true\" ctrlrange=\"-1 1\"/>\n</default>\n<worldbody>\n\
         <geom name=\"floor\" type=\"plane\" size=\"40 40 40\" conaffinity=\"1\" condim=\"3\" \
         friction=\"{} 0.1 0.1\"/>\n",
        style.model,
        spec.dt,
        style.integrator,
        style.limit_solimp,
        style.limit_solref,
        style.contype,
        style.conaffinity,
        style.condim,
        spec.friction,
        style.margin,
        style.geom_solimp,
        style.geom_solref,
        spec.ground_friction,
    );
    write_body(spec, style, 0, &mut xml);
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
fn write_body(spec: &RobotSpec, style: &MjcfStyle, i: usize, xml: &mut String) {
    let body = &spec.bodies[i];
    xml.push_str(&format!(
        "<body name=\"{}\" pos=\"{}\">\n",
        body.name,
        v3(body.pos)
    ));
    if i == 0 {
        let root = format!(
            "armature=\"{}\" damping=\"0\" stiffness=\"0\" limited=\"false\" pos=\"0 0 0\"",
            style.root_armature
        );
        match spec.root {
            RootJoint::Planar => xml.push_str(&format!(
                "<joint name=\"rootx\" type=\"slide\" axis=\"1 0 0\" {root}/>\n\
                 <joint name=\"rootz\" type=\"slide\" axis=\"0 0 1\" {root}/>\n\
                 <joint name=\"rooty\" type=\"hinge\" axis=\"0 1 0\" {root}/>\n"
            )),
            RootJoint::PlanarXY => xml.push_str(&format!(
                "<joint name=\"slider1\" type=\"slide\" axis=\"1 0 0\" {root}/>\n\
                 <joint name=\"slider2\" type=\"slide\" axis=\"0 1 0\" {root}/>\n\
                 <joint name=\"free_body_rot\" type=\"hinge\" axis=\"0 0 1\" {root}/>\n"
            )),
            RootJoint::Free => xml.push_str(&format!(
                "<joint name=\"root\" type=\"free\" armature=\"{}\" damping=\"0\"/>\n",
                style.root_armature
            )),
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
            write_body(spec, style, j, xml);
        }
    }
    xml.push_str("</body>\n");
}

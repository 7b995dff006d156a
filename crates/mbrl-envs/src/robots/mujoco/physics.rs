//! [`MjPhysics`]: a compiled MuJoCo model and its data, offering what [`Sim`] forwards to
//! it once attached: `qpos`/`qvel` in MuJoCo's layout, reset to the initial pose plus a
//! displacement (then `mj_forward`, as Gymnasium's `set_state`), a control step (`ctrl` set,
//! `frame_skip` calls of `mj_step`, as Gymnasium's `do_simulation`) and the body masses.
//!
//! [`Sim`]: crate::robots::Sim

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};

use super::super::sim::{MassSpec, RobotSpec};
use super::mjcf::{mjcf, MjcfStyle};

/// A compiled MuJoCo model and its data: the physics a [`Sim`](crate::robots::Sim) forwards to.
pub struct MjPhysics {
    data: MjData<Box<MjModel>>,
    frame_skip: usize,
    /// MuJoCo body ids of the spec's bodies, in spec order.
    body_ids: Vec<usize>,
}

impl MjPhysics {
    /// Compiles the model of `spec` in `style`. A total mass scales the compiled bodies' masses
    /// and inertias (`mj_setTotalmass`, then `mj_setConst` for the constants that depend on
    /// them), which is what the compiler's deprecated `settotalmass` did.
    pub fn new(spec: &RobotSpec, style: &MjcfStyle) -> crate::Result<Self> {
        let mut model = MjModel::from_xml_string(&mjcf(spec, style)).map_err(|e| {
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
        if let MassSpec::Total(total) = spec.mass {
            model.set_totalmass(f64::from(total));
        }
        let mut data = MjData::new(Box::new(model));
        if matches!(spec.mass, MassSpec::Total(_)) {
            data.set_const();
        }
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

    /// World pose of each body, in spec order: position and orientation quaternion
    /// `(w, x, y, z)`. Runs `mj_kinematics` first: after `mj_step` MuJoCo's body poses are
    /// those of the state before its last integration (the next step recomputes them anyway).
    pub fn body_poses(&mut self) -> Vec<([f64; 3], [f64; 4])> {
        self.data.kinematics();
        let (xpos, xquat) = (self.data.xpos(), self.data.xquat());
        self.body_ids.iter().map(|&i| (xpos[i], xquat[i])).collect()
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

//! The optional MuJoCo physics backend (cargo feature `mujoco`, issue 7): the same robots,
//! observations, rewards and task families, with MuJoCo 3.17.0 (through `mujoco-rs`) in
//! place of rapier.
//!
//! - [`mjcf`] writes a robot's MJCF model from its [`RobotSpec`](super::sim::RobotSpec) and
//!   an [`MjcfStyle`] per robot ([`HALF_CHEETAH_STYLE`], [`HOPPER_STYLE`],
//!   [`WALKER2D_STYLE`], [`SWIMMER_STYLE`], [`ANT_STYLE`]);
//! - [`MjPhysics`] owns the compiled model and its data, and is what [`super::Sim`] forwards
//!   reset, step, `qpos`, `qvel` and the body masses to once attached;
//! - this module builds each robot on MuJoCo (the rapier environment with its physics
//!   replaced), and [`make_robot`] by registry name; families that change the rapier scene
//!   (terrain, random dynamics) are refused with the list of those that apply ([`FAMILIES`]).
//!
//! The rapier scene stays built but does not simulate: after each reset and step its bodies
//! and colliders take MuJoCo's body poses, so rendering draws the MuJoCo simulation.

mod mjcf;
mod physics;

pub use mjcf::{
    mjcf, MjcfStyle, ANT_STYLE, HALF_CHEETAH_STYLE, HOPPER_STYLE, SWIMMER_STYLE, WALKER2D_STYLE,
};
pub use physics::MjPhysics;

use super::ant::{self, Ant, AntConfig};
use super::half_cheetah::{self, HalfCheetah, HalfCheetahConfig};
use super::hopper::{self, Hopper};
use super::swimmer::{self, Swimmer};
use super::walker2d::{self, Walker2d};
use super::{RewardKind, RobotEnv};

/// Task families of each robot that only change rewards or motor commands, which the MuJoCo
/// backend supports (`random-dynamics`, `sloped-terrain` and `pier` change the rapier scene).
pub const FAMILIES: &[(&str, &[&str])] = &[
    (half_cheetah::NAME, HALF_CHEETAH_FAMILIES),
    (half_cheetah::NAME_V5, HALF_CHEETAH_FAMILIES),
    (hopper::NAME, &[]),
    (hopper::NAME_V5, &[]),
    (walker2d::NAME, WALKER2D_FAMILIES),
    (walker2d::NAME_V5, WALKER2D_FAMILIES),
    (swimmer::NAME, &[]),
    (swimmer::NAME_V5, &[]),
    (ant::NAME, ant::FAMILIES),
    (ant::NAME_V5, ant::FAMILIES),
];

const HALF_CHEETAH_FAMILIES: &[&str] = &[
    half_cheetah::FAMILY_FORWARD_BACKWARD,
    half_cheetah::FAMILY_DISABLED_JOINT,
];

const WALKER2D_FAMILIES: &[&str] = &[walker2d::FAMILY_FORWARD_BACKWARD];

/// Registry names the MuJoCo backend builds.
pub const NAMES: &[&str] = &[
    half_cheetah::NAME,
    half_cheetah::NAME_V5,
    hopper::NAME,
    hopper::NAME_V5,
    walker2d::NAME,
    walker2d::NAME_V5,
    swimmer::NAME,
    swimmer::NAME_V5,
    ant::NAME,
    ant::NAME_V5,
];

/// The registry name of a robot's variant: `me_trpo` or `v5`.
fn variant(reward: RewardKind, me_trpo: &'static str, v5: &'static str) -> &'static str {
    match reward {
        RewardKind::MeTrpo => me_trpo,
        RewardKind::GymnasiumV5 => v5,
    }
}

/// The half-cheetah with `reward` and `family` on MuJoCo (Gymnasium's `half_cheetah.xml`
/// physics); `family` must be one [`FAMILIES`] lists.
pub fn half_cheetah(reward: RewardKind, family: Option<&str>) -> crate::Result<HalfCheetah> {
    check_family(
        variant(reward, half_cheetah::NAME, half_cheetah::NAME_V5),
        family,
    )?;
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

/// The hopper with `reward` on MuJoCo (Gymnasium's `hopper.xml` physics); no task family
/// applies (`random-dynamics` changes the rapier scene).
pub fn hopper(reward: RewardKind, family: Option<&str>) -> crate::Result<Hopper> {
    check_family(variant(reward, hopper::NAME, hopper::NAME_V5), family)?;
    let physics = MjPhysics::new(&hopper::spec(), &HOPPER_STYLE)?;
    let mut env = Hopper::new(reward)?;
    env.sim.attach_mujoco(physics);
    Ok(env)
}

/// The walker with `reward` and `family` on MuJoCo (Gymnasium's `walker2d_v5.xml` physics);
/// `family` must be one [`FAMILIES`] lists.
pub fn walker2d(reward: RewardKind, family: Option<&str>) -> crate::Result<Walker2d> {
    check_family(variant(reward, walker2d::NAME, walker2d::NAME_V5), family)?;
    let physics = MjPhysics::new(&walker2d::spec(), &WALKER2D_STYLE)?;
    let mut env = Walker2d::new(reward, family)?;
    env.sim.attach_mujoco(physics);
    Ok(env)
}

/// The swimmer with `reward` on MuJoCo (Gymnasium's `swimmer.xml` physics: MuJoCo's own
/// fluid model and RK4); no task family applies.
pub fn swimmer(reward: RewardKind, family: Option<&str>) -> crate::Result<Swimmer> {
    check_family(variant(reward, swimmer::NAME, swimmer::NAME_V5), family)?;
    let physics = MjPhysics::new(&swimmer::spec(), &SWIMMER_STYLE)?;
    // The rapier scene is only drawn: no fluid to set up for it.
    let mut env = Swimmer::with_fluid(reward, None)?;
    env.sim.attach_mujoco(physics);
    Ok(env)
}

/// The ant with `reward` and `family` on MuJoCo (Gymnasium's `ant.xml` physics); `family`
/// must be one [`FAMILIES`] lists. The observation is the rapier ant's (Ant-v5 with
/// `include_cfrc_ext_in_observation=False`), the reward has no contact cost.
pub fn ant(reward: RewardKind, family: Option<&str>) -> crate::Result<Ant> {
    check_family(variant(reward, ant::NAME, ant::NAME_V5), family)?;
    let config = AntConfig {
        reward,
        ..AntConfig::default()
    };
    let physics = MjPhysics::new(&ant::spec(config.solver_iterations.max(1)), &ANT_STYLE)?;
    let mut env = Ant::new(config, family)?;
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

/// Builds the robot registered as `name` with `family` on MuJoCo; names without a MuJoCo
/// model are errors listing [`NAMES`].
pub fn make_robot(name: &str, family: Option<&str>) -> crate::Result<Box<dyn RobotEnv>> {
    let reward = if name.ends_with("-v5") {
        RewardKind::GymnasiumV5
    } else {
        RewardKind::MeTrpo
    };
    match name {
        half_cheetah::NAME | half_cheetah::NAME_V5 => Ok(Box::new(half_cheetah(reward, family)?)),
        hopper::NAME | hopper::NAME_V5 => Ok(Box::new(hopper(reward, family)?)),
        walker2d::NAME | walker2d::NAME_V5 => Ok(Box::new(walker2d(reward, family)?)),
        swimmer::NAME | swimmer::NAME_V5 => Ok(Box::new(swimmer(reward, family)?)),
        ant::NAME | ant::NAME_V5 => Ok(Box::new(ant(reward, family)?)),
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
    use mbrl_core::env::Env;

    #[test]
    fn half_cheetah_mjcf_compiles_with_gymnasium_masses() {
        let physics = MjPhysics::new(&half_cheetah::spec(4), &HALF_CHEETAH_STYLE).unwrap();
        let masses = physics.body_masses();
        // docs/robots.md: torso 6.25, bthigh 1.54, ..., total 14 kg (scaled after compiling).
        assert!(
            (masses.iter().sum::<f32>() - 14.0).abs() < 1e-4,
            "{masses:?}"
        );
        assert!((masses[0] - 6.25).abs() < 0.01, "{masses:?}");
        assert_eq!(physics.qpos().len(), 9);
    }

    /// Body masses and `nq` of Gymnasium 1.2.2's compiled models (`env.unwrapped.model`):
    /// `body_mass[1..]` and `nq`; the ant's fixed `*_leg` bodies (0.0392 kg each) are part
    /// of our torso.
    #[test]
    fn every_mjcf_compiles_with_gymnasium_masses() {
        let cases: [(RobotSpecAndStyle, &[f32], usize); 4] = [
            (
                (hopper::spec(), HOPPER_STYLE),
                &[3.6652, 4.0579, 2.7814, 5.3156],
                6,
            ),
            (
                (walker2d::spec(), WALKER2D_STYLE),
                &[3.6652, 4.0579, 2.7814, 3.1667, 4.0579, 2.7814, 3.1667],
                9,
            ),
            (
                (swimmer::spec(), SWIMMER_STYLE),
                &[35.6047, 35.6047, 35.6047],
                5,
            ),
            (
                (ant::spec(4), ANT_STYLE),
                &[
                    0.3272 + 4.0 * 0.0392,
                    0.0392,
                    0.0676,
                    0.0392,
                    0.0676,
                    0.0392,
                    0.0676,
                    0.0392,
                    0.0676,
                ],
                15,
            ),
        ];
        for ((spec, style), expected, nq) in cases {
            let physics = MjPhysics::new(&spec, &style).unwrap();
            let masses = physics.body_masses();
            assert_eq!(masses.len(), expected.len(), "{}", style.model);
            for (m, e) in masses.iter().zip(expected) {
                assert!((m - e).abs() < 1e-3, "{}: {masses:?}", style.model);
            }
            assert_eq!(physics.qpos().len(), nq, "{}", style.model);
        }
    }

    type RobotSpecAndStyle = (super::super::sim::RobotSpec, MjcfStyle);

    #[test]
    fn every_robot_builds_and_families_that_change_the_scene_are_refused() {
        for name in NAMES {
            let mut env = make_robot(name, None).unwrap();
            env.reset(Some(0)).unwrap();
        }
        let err = make_robot("hopper", Some("random-dynamics"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("mujoco") && err.contains("none"), "{err}");
        let err = make_robot("walker2d-v5", Some("random-dynamics"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("forward-backward"), "{err}");
        assert!(make_robot("ant", Some("crippled-leg")).is_ok());
    }

    /// `make_robot_with` (what `mbrl-cli render` builds) honours `[env] backend`.
    #[test]
    fn make_robot_with_builds_on_the_configured_backend() {
        let rollout = |env: &mut dyn RobotEnv| {
            env.reset(Some(1)).unwrap();
            let a = mbrl_core::env::vector(&[0.5, -0.5, 0.9]).unwrap();
            (0..20)
                .map(|_| env.step(&a).unwrap().obs.to_vec1::<f32>().unwrap())
                .collect::<Vec<_>>()
        };
        let config = |backend| crate::EnvConfig {
            name: hopper::NAME.into(),
            backend,
            ..crate::EnvConfig::default()
        };
        let (mut on_mujoco, _) =
            super::super::make_robot_with(&config(crate::PhysicsBackend::Mujoco)).unwrap();
        let (mut on_rapier, _) =
            super::super::make_robot_with(&config(crate::PhysicsBackend::Rapier)).unwrap();
        let mujoco = rollout(on_mujoco.as_mut());
        assert_eq!(
            mujoco,
            rollout(make_robot(hopper::NAME, None).unwrap().as_mut())
        );
        assert_ne!(mujoco, rollout(on_rapier.as_mut()));
    }

    /// The drawn (rapier) scene follows MuJoCo: the ant's torso body and its sphere collider
    /// sit at MuJoCo's free-joint position after some steps.
    #[test]
    fn the_rapier_scene_mirrors_mujoco_body_poses() {
        let mut env = ant(RewardKind::MeTrpo, None).unwrap();
        env.reset(Some(3)).unwrap();
        let action = mbrl_core::env::vector(&[0.8, -0.5, 0.3, 1.0, -1.0, 0.2, 0.6, -0.7]).unwrap();
        for _ in 0..10 {
            env.step(&action).unwrap();
        }
        let qpos = env.qpos();
        assert!(
            qpos[0].abs() + qpos[1].abs() > 1e-3,
            "the ant moved: {qpos:?}"
        );
        let torso = env.sim().point_in_body(0, [0.0; 3]).unwrap();
        let sphere = env
            .sim_state()
            .colliders()
            .iter()
            .find(|(_, c)| c.shape().as_ball().is_some())
            .map(|(_, c)| c.position().translation)
            .unwrap();
        for i in 0..3 {
            assert!((torso[i] - qpos[i]).abs() < 1e-6, "{torso:?} vs {qpos:?}");
            assert!((sphere[i] - qpos[i]).abs() < 1e-6, "{sphere:?} vs {qpos:?}");
        }
    }
}

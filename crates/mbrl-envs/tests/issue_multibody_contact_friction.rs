//! Regression: contacts of multibody links below a hinge had almost no friction (a torso on
//! two hinged legs slid down a 0.3 rad incline at nearly `g sin(theta)`, the half-cheetah slid
//! ~71 m in 15 s down a 0.1 rad slope with zero action). The hinges' inexact joint frames left
//! ~1e-8 in their Jacobians out of the plane, which rapier's multibody friction turned into a
//! huge effective mass along the locked lateral tangent (see `hinge_joint` in
//! `robots/sim.rs`). These tests check Coulomb's law on robots built with [`Sim`].

use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::robots::half_cheetah::{HalfCheetah, HalfCheetahConfig, FAMILY_SLOPED_TERRAIN};
use mbrl_envs::robots::sim::{
    BodySpec, CapsuleSpec, HingeSpec, MassSpec, RobotSpec, RootJoint, Sim,
};

const G: f32 = 9.81;
const MU: f32 = 0.4;

fn hinge(axis: [f32; 3]) -> HingeSpec {
    HingeSpec {
        axis,
        range: Some([-0.3, 0.3]),
        stiffness: 500.0,
        damping: 5.0,
        armature: 0.01,
        gear: 0.0,
    }
}

fn spec(bodies: Vec<BodySpec>) -> RobotSpec {
    RobotSpec {
        bodies,
        root: RootJoint::Planar,
        mass: MassSpec::Density(1000.0),
        friction: MU,
        ground_friction: MU,
        dt: 0.01,
        frame_skip: 5,
        solver_iterations: 4,
    }
}

/// A horizontal torso on two legs hinged about `axis` (`±y`), feet on the ground.
fn table(axis: [f32; 3]) -> RobotSpec {
    let leg = |name, x: f32| BodySpec {
        name,
        parent: Some(0),
        pos: [x, 0.0, 0.0],
        geoms: vec![CapsuleSpec::fromto([0.0; 3], [0.0, 0.0, -0.5], 0.05)],
        hinge: Some(hinge(axis)),
    };
    spec(vec![
        BodySpec {
            name: "torso",
            parent: None,
            pos: [0.0, 0.0, 0.55],
            geoms: vec![CapsuleSpec::fromto([-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], 0.05)],
            hinge: None,
        },
        leg("back_leg", -0.5),
        leg("front_leg", 0.5),
    ])
}

/// The smallest failing case: a ball (out of contact) with a sled hinged below it.
fn sled() -> RobotSpec {
    spec(vec![
        BodySpec {
            name: "ball",
            parent: None,
            pos: [0.0, 0.0, 0.3],
            geoms: vec![CapsuleSpec::sphere([0.0; 3], 0.05)],
            hinge: None,
        },
        BodySpec {
            name: "sled",
            parent: Some(0),
            pos: [0.0, 0.0, -0.25],
            geoms: vec![CapsuleSpec::fromto([-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], 0.05)],
            hinge: Some(hinge([0.0, 1.0, 0.0])),
        },
    ])
}

/// Settles the robot on flat ground for 1 s, then tilts gravity by `theta` (an incline whose
/// downhill is -x), sets the root x velocity to `v0` and runs `secs`; returns the root x
/// displacement and final x velocity.
fn slide(spec: &RobotSpec, theta: f32, v0: f32, secs: f32) -> (f32, f32) {
    let mut sim = Sim::new(spec);
    let steps = |secs: f32, sim: &Sim| (secs / sim.control_dt()).round() as usize;
    for _ in 0..steps(1.0, &sim) {
        sim.step(&[]);
    }
    let (s, c) = theta.sin_cos();
    sim.set_gravity([-G * s, 0.0, -G * c]);
    if v0 != 0.0 {
        // Keep the settled pose: restart from it with the root velocity set.
        let mut v = sim.qvel();
        v[0] = v0;
        let q = sim.qpos();
        let q0 = {
            sim.reset(&vec![0.0; sim.ndofs()], &vec![0.0; sim.ndofs()]);
            sim.qpos()
        };
        let dq: Vec<f32> = q.iter().zip(&q0).map(|(a, b)| a - b).collect();
        sim.reset(&dq, &v);
    }
    let x0 = sim.qpos()[0];
    for _ in 0..steps(secs, &sim) {
        sim.step(&[]);
    }
    (sim.qpos()[0] - x0, sim.qvel()[0])
}

/// Coulomb: `a = g (sin - mu cos)` down the incline when `tan(theta) > mu`, else at rest.
fn coulomb_distance(theta: f32, secs: f32) -> f32 {
    let a = (G * (theta.sin() - MU * theta.cos())).max(0.0);
    0.5 * a * secs * secs
}

#[test]
fn hinged_links_obey_coulomb_on_an_incline() {
    for (name, spec) in [
        ("sled", sled()),
        ("table +y", table([0.0, 1.0, 0.0])),
        ("table -y", table([0.0, -1.0, 0.0])),
    ] {
        // tan(0.3) = 0.31 < mu = 0.4 < tan(0.5) = 0.55.
        for theta in [0.0, 0.2, 0.3] {
            let (dx, v) = slide(&spec, theta, 0.0, 5.0);
            assert!(
                dx.abs() < 0.03 && v.abs() < 0.02,
                "{name} slides on a {theta} rad incline with mu = {MU}: dx = {dx}, v = {v}"
            );
        }
        let theta = 0.5;
        let expected = coulomb_distance(theta, 5.0);
        let (dx, _) = slide(&spec, theta, 0.0, 5.0);
        assert!(
            (-dx - expected).abs() < 0.1 * expected,
            "{name} on a {theta} rad incline: slid {} m, Coulomb {expected} m",
            -dx
        );
    }
}

#[test]
fn sliding_on_flat_ground_stops_after_v_over_mu_g() {
    let v0 = 3.0;
    let stop_time = v0 / (MU * G);
    let stop_distance = v0 * v0 / (2.0 * MU * G);
    for (name, spec) in [("sled", sled()), ("table", table([0.0, 1.0, 0.0]))] {
        // Halfway to the stop time the velocity is about halved...
        let (_, v_half) = slide(&spec, 0.0, v0, 0.5 * stop_time);
        assert!(
            (v_half - 0.5 * v0).abs() < 0.1 * v0,
            "{name}: v = {v_half} after {} s",
            0.5 * stop_time
        );
        // ...and it has stopped after the stop time, having slid v0^2 / (2 mu g) (the table
        // then rocks a little on its sprung legs).
        let (dx, v) = slide(&spec, 0.0, v0, stop_time + 1.5);
        assert!(v.abs() < 0.05, "{name}: still moving at {v} m/s");
        assert!(
            (dx - stop_distance).abs() < 0.1 * stop_distance,
            "{name}: slid {dx} m, Coulomb {stop_distance} m"
        );
    }
}

/// With zero action the cheetah holds still on the training slopes (it slid 16 m in 5 s down
/// 0.1 rad before the fix) and on the steep test slopes (`tan 0.3 = 0.31 < mu = 0.4`).
#[test]
fn half_cheetah_with_zero_action_holds_on_a_slope() {
    let mut env =
        HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_SLOPED_TERRAIN)).unwrap();
    let zero = vector(&[0.0; 6]).unwrap();
    for slope in [0.1, -0.1, 0.3, -0.3] {
        env.task_distribution()
            .unwrap()
            .set_task(&Task::new("slope", vec![slope]))
            .unwrap();
        env.reset(Some(0)).unwrap();
        // 1 s to land from the initial height, then 5 s at rest.
        for _ in 0..20 {
            env.step(&zero).unwrap();
        }
        let x0 = env.qpos()[0];
        for _ in 0..100 {
            env.step(&zero).unwrap();
        }
        let dx = env.qpos()[0] - x0;
        assert!(
            dx.abs() < 0.03,
            "half-cheetah moved {dx} m in 5 s on a {slope} rad slope with zero action"
        );
    }
}

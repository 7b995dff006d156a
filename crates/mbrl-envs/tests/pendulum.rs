//! `pendulum` passes `check_env`, and its reward, clipping and `mass-length` family behave as
//! documented. Exactness against Gymnasium is checked in `gymnasium_fixtures.rs`.

mod common;

use std::f64::consts::PI;

use mbrl_core::env::vector;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::task::Task;
use mbrl_core::Env;
use mbrl_envs::pendulum::{angle_normalize, Pendulum, HORIZON, LENGTH_RANGE, MASS_RANGE};

const NAME: &str = "pendulum";
const FAMILY: &str = "mass-length";

#[test]
fn passes_check_env_with_and_without_the_family() {
    let report = common::passes_check_env(NAME, None);
    assert!(
        report.max_reward_error < 1e-5,
        "{}",
        report.max_reward_error
    );
    common::passes_check_env(NAME, Some(FAMILY));
}

#[test]
fn deterministic_under_a_seed() {
    common::deterministic_under_a_seed(NAME);
}

#[test]
fn ten_thousand_random_steps_stay_finite() {
    common::random_steps_stay_finite(NAME, 10_000);
}

#[test]
fn angle_normalize_uses_a_floored_modulo_like_python() {
    // Expected values from Python: ((x + pi) % (2 * pi)) - pi.
    assert!((angle_normalize(0.5) - 0.5).abs() < 1e-15);
    assert!((angle_normalize(-0.5) + 0.5).abs() < 1e-15);
    assert!((angle_normalize(3.0 * PI / 2.0) + PI / 2.0).abs() < 1e-12);
    assert!((angle_normalize(-7.0) - (-7.0 + 2.0 * PI)).abs() < 1e-12);
    assert_eq!(angle_normalize(PI), -PI);
}

#[test]
fn reward_uses_the_state_before_the_step_and_the_clipped_torque() {
    let mut env = Pendulum::new(false).unwrap();
    assert_eq!(env.spec().max_episode_steps, Some(HORIZON));
    env.set_state([4.0, -3.0]).unwrap();
    let step = env.step(&vector(&[7.0]).unwrap()).unwrap();
    let th = angle_normalize(4.0);
    let expected = -(th * th + 0.1 * 9.0 + 0.001 * 4.0);
    assert!(
        (step.reward - expected).abs() < 1e-12,
        "{} vs {expected}",
        step.reward
    );
    // thdot' = -3 + (15 sin 4 + 3 * 2) * 0.05, th' = 4 + thdot' * 0.05.
    let thdot = -3.0 + (15.0 * 4f64.sin() + 6.0) * 0.05;
    assert_eq!(env.state(), [4.0 + thdot * 0.05, thdot]);
}

#[test]
fn set_state_rejects_states_outside_the_observation_space() {
    let mut env = Pendulum::new(false).unwrap();
    assert!(env.set_state([0.0, 9.0]).is_err());
    assert!(env.set_state([f64::NAN, 0.0]).is_err());
    let obs = env
        .set_state([PI / 2.0, 1.0])
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(obs[0].abs() < 1e-7 && obs[1] == 1.0 && obs[2] == 1.0);
}

#[test]
fn the_mass_length_family_samples_in_range_and_changes_the_dynamics_mid_episode() {
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    assert!(common::factory(NAME, None)()
        .unwrap()
        .task_distribution()
        .is_none());
    let dist = env.task_distribution().unwrap();
    for task in dist.sample_tasks(100, &mut stream_rng(1, Stream::Custom(0))) {
        let [m, l] = task.params[..] else {
            panic!("{task:?}")
        };
        assert!((MASS_RANGE.0..=MASS_RANGE.1).contains(&m));
        assert!((LENGTH_RANGE.0..=LENGTH_RANGE.1).contains(&l));
    }
    let held_out = dist.test_tasks();
    assert_eq!(held_out.len(), 2);
    for task in &held_out {
        let [m, l] = task.params[..] else {
            panic!("{task:?}")
        };
        let inside = (MASS_RANGE.0..=MASS_RANGE.1).contains(&m)
            && (LENGTH_RANGE.0..=LENGTH_RANGE.1).contains(&l);
        assert!(!inside, "held-out task {task:?} lies in the training box");
        dist.set_task(task).unwrap();
    }
    assert!(dist.set_task(&Task::new("bad", vec![-1.0, 1.0])).is_err());
    assert!(dist.set_task(&Task::new("bad", vec![1.0])).is_err());

    let mut pendulum = Pendulum::new(true).unwrap();
    let torque = vector(&[1.0]).unwrap();
    pendulum.set_state([1.0, 0.0]).unwrap();
    let default = pendulum
        .step(&torque)
        .unwrap()
        .obs
        .to_vec1::<f32>()
        .unwrap();
    pendulum.set_state([1.0, 0.0]).unwrap();
    pendulum
        .task_distribution()
        .unwrap()
        .set_task(&Task::new("m=0.5,l=1.5", vec![0.5, 1.5]))
        .unwrap();
    let changed = pendulum.step(&torque).unwrap();
    let expected_thdot = (3.0 * 10.0 / 3.0 * 1f64.sin() + 3.0 / (0.5 * 2.25)) * 0.05;
    assert_ne!(default, changed.obs.to_vec1::<f32>().unwrap());
    assert!((pendulum.state()[1] - expected_thdot).abs() < 1e-12);
}

#[test]
fn the_motor_family_scales_and_flips_the_applied_torque() {
    use mbrl_envs::pendulum::{Family, MOTOR_GAIN_RANGE};
    let mut env = common::factory(NAME, Some("motor"))().unwrap();
    let dist = env.task_distribution().unwrap();
    assert_eq!(dist.family(), "motor");
    let sampled = dist.sample_tasks(200, &mut stream_rng(1, Stream::Custom(0)));
    for task in &sampled {
        let g = task.params[0].abs();
        assert!(
            (MOTOR_GAIN_RANGE.0..=MOTOR_GAIN_RANGE.1).contains(&g),
            "{task:?}"
        );
    }
    let negative = sampled.iter().filter(|t| t.params[0] < 0.0).count();
    assert!(
        (70..130).contains(&negative),
        "both signs: {negative} of 200 negative"
    );
    for task in dist.test_tasks() {
        assert!(
            task.params[0].abs() > MOTOR_GAIN_RANGE.1,
            "held out: {task:?}"
        );
    }
    assert!(dist.set_task(&Task::new("bad", vec![1.0, 1.0])).is_err());

    let mut pendulum = Pendulum::with_family(Some(Family::Motor)).unwrap();
    let torque = vector(&[1.0]).unwrap();
    let mut thdot_after = |gain: f64| {
        pendulum
            .task_distribution()
            .unwrap()
            .set_task(&Task::new("g", vec![gain]))
            .unwrap();
        pendulum.set_state([0.0, 0.0]).unwrap();
        let reward = pendulum.step(&torque).unwrap().reward;
        assert!(
            (reward + 0.001).abs() < 1e-12,
            "the commanded torque is charged"
        );
        pendulum.state()[1]
    };
    let (plus, minus) = (thdot_after(1.5), thdot_after(-1.5));
    assert!((plus - 3.0 * 1.5 * 0.05).abs() < 1e-12);
    assert!((minus + plus).abs() < 1e-12);
}

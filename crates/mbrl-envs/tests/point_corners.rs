//! `point-corners` passes `check_env`, follows Appendix C.4.2 and switches corners at once.

mod common;

use mbrl_core::env::vector;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::task::Task;
use mbrl_envs::point_corners::{CORNERS, GOAL_RADIUS, HORIZON};

const NAME: &str = "point-corners";
const FAMILY: &str = "corner-goals";

#[test]
fn passes_check_env_with_and_without_the_family() {
    common::passes_check_env(NAME, None);
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
fn the_family_is_exposed_only_when_active() {
    let mut plain = common::factory(NAME, None)().unwrap();
    assert!(plain.task_distribution().is_none());
    assert_eq!(plain.spec().max_episode_steps, Some(HORIZON));
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    let dist = env.task_distribution().unwrap();
    assert_eq!(dist.family(), FAMILY);
    let tasks = dist.sample_tasks(200, &mut stream_rng(0, Stream::Custom(0)));
    for corner in CORNERS {
        let params = vec![corner[0] as f64, corner[1] as f64];
        assert!(
            tasks.iter().any(|t| t.params == params),
            "corner {corner:?} never sampled"
        );
    }
    assert!(dist.set_task(&Task::new("bad", vec![1.0, 1.0])).is_err());
    assert!(dist.set_task(&Task::new("bad", vec![2.0])).is_err());
}

#[test]
fn reward_is_minus_the_distance_inside_the_radius_and_constant_outside() {
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    env.task_distribution()
        .unwrap()
        .set_task(&Task::new("(+2,+2)", vec![2.0, 2.0]))
        .unwrap();
    let s0 = env.reset(Some(1)).unwrap().0.to_vec1::<f32>().unwrap();
    // Far from the goal: the reward is the constant -radius.
    let step = env.step(&vector(&[0.0, 0.0]).unwrap()).unwrap();
    assert_eq!(step.reward, -(GOAL_RADIUS as f64));
    // Drive to the goal at full (clipped) speed; the reward rises to almost zero.
    let mut s = s0;
    let mut best = f64::NEG_INFINITY;
    for _ in 0..30 {
        let a = [(2.0 - s[0]).clamp(-1.0, 1.0), (2.0 - s[1]).clamp(-1.0, 1.0)];
        let step = env.step(&vector(&a).unwrap()).unwrap();
        let next = step.obs.to_vec1::<f32>().unwrap();
        for i in 0..2 {
            assert!(
                (next[i] - s[i]).abs() <= 0.2 + 1e-6,
                "actions are clipped to 0.2"
            );
        }
        let dist = (((next[0] - 2.0) as f64).powi(2) + ((next[1] - 2.0) as f64).powi(2)).sqrt();
        assert!((step.reward + dist.min(GOAL_RADIUS as f64)).abs() < 1e-6);
        best = best.max(step.reward);
        s = next;
    }
    assert!(best > -1e-3, "best reward {best}");
}

#[test]
fn switching_the_task_mid_episode_changes_the_reward_at_the_next_step() {
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    let dist = env.task_distribution().unwrap();
    dist.set_task(&Task::new("(+2,+2)", vec![2.0, 2.0]))
        .unwrap();
    env.reset(Some(0)).unwrap();
    // Walk towards (2, 2): 10 steps of (0.2, 0.2) from within 0.2 of the origin end within
    // 0.3 of the goal.
    let towards = vector(&[0.2, 0.2]).unwrap();
    let mut last = None;
    for _ in 0..10 {
        last = Some(env.step(&towards).unwrap());
    }
    let near_goal = last.unwrap().reward;
    assert!(near_goal > -(GOAL_RADIUS as f64), "{near_goal}");
    let stay = vector(&[0.0, 0.0]).unwrap();
    let before = env.step(&stay).unwrap().reward;
    env.task_distribution()
        .unwrap()
        .set_task(&Task::new("(-2,-2)", vec![-2.0, -2.0]))
        .unwrap();
    let after = env.step(&stay).unwrap();
    assert!(before > -(GOAL_RADIUS as f64));
    assert_eq!(
        after.reward,
        -(GOAL_RADIUS as f64),
        "the new corner is far away"
    );
    assert_eq!(
        env.task_functions()
            .reward(
                &after.obs.unsqueeze(0).unwrap(),
                &stay.unsqueeze(0).unwrap(),
                &after.obs.unsqueeze(0).unwrap(),
            )
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        vec![-GOAL_RADIUS]
    );
    assert_eq!(
        env.task_distribution().unwrap().current_task().params,
        vec![-2.0, -2.0]
    );
}

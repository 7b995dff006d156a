//! `point1d-goal` passes `check_env`, follows Sec. 6.7.4 and switches goals at once.

mod common;

use mbrl_core::env::vector;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::task::Task;
use mbrl_envs::point1d_goal::{HORIZON, INIT_RANGE, MAX_ACTION};

const NAME: &str = "point1d-goal";
const FAMILY: &str = "goal-sign";

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
fn starts_on_the_line_clips_actions_and_rewards_closeness_to_the_goal() {
    let mut env = common::factory(NAME, None)().unwrap();
    assert_eq!(env.spec().max_episode_steps, Some(HORIZON));
    assert!(env.task_distribution().is_none());
    for seed in 0..50 {
        let s0 = env.reset(Some(seed)).unwrap().0.to_vec1::<f32>().unwrap()[0];
        assert!(s0.abs() <= INIT_RANGE);
    }
    let s = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap()[0];
    let step = env.step(&vector(&[5.0]).unwrap()).unwrap();
    let next = step.obs.to_vec1::<f32>().unwrap()[0];
    assert_eq!(next, s + MAX_ACTION);
    assert_eq!(step.reward, -((next - 1.0) as f64).powi(2));
}

#[test]
fn the_family_samples_both_signs_and_rejects_other_goals() {
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    let dist = env.task_distribution().unwrap();
    let tasks = dist.sample_tasks(100, &mut stream_rng(0, Stream::Custom(0)));
    assert!(tasks.iter().any(|t| t.params == [1.0]) && tasks.iter().any(|t| t.params == [-1.0]));
    assert!(tasks
        .iter()
        .all(|t| t.params == [1.0] || t.params == [-1.0]));
    assert!(dist.set_task(&Task::new("goal=0.5", vec![0.5])).is_err());
    assert!(dist.set_task(&Task::new("empty", vec![])).is_err());
}

#[test]
fn switching_the_goal_mid_episode_changes_the_reward_at_the_next_step() {
    let mut env = common::factory(NAME, Some(FAMILY))().unwrap();
    env.reset(Some(0)).unwrap();
    let stay = vector(&[0.0]).unwrap();
    let s = env.step(&stay).unwrap().obs.to_vec1::<f32>().unwrap()[0];
    env.task_distribution()
        .unwrap()
        .set_task(&Task::new("goal=-1", vec![-1.0]))
        .unwrap();
    let step = env.step(&stay).unwrap();
    assert_eq!(step.reward, -((s + 1.0) as f64).powi(2));
    assert_eq!(step.info["goal"], -1.0);
}

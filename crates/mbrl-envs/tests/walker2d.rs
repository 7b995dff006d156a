//! `walker2d` and `walker2d-v5`: `check_env` on every task family, task functions equal `step`
//! rewards and terminations under every task, long rollouts stay finite, determinism (also
//! across processes), random dynamics change the motion, and the v5 early termination.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions};
use mbrl_envs::robots::make_robot;
use mbrl_envs::robots::random_dynamics::RandomDynamicsConfig;
use mbrl_envs::robots::walker2d::{
    Walker2d, ACT_DIM, FAMILIES, FAMILY_FORWARD_BACKWARD, FAMILY_RANDOM_DYNAMICS, NAME, NAME_V5,
    OBS_DIM,
};
use mbrl_envs::robots::RewardKind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use robots_common::{batch, config, Pattern};

/// The square wave of these rollouts: flips every 10 steps.
const SQUARE_WAVE: Pattern = Pattern::SquareWave { half_period: 10 };

/// Every pattern, for the long rollouts.
const PATTERNS: [Pattern; 3] = [Pattern::Random, Pattern::BangBang, SQUARE_WAVE];

fn action(pattern: Pattern, t: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    pattern.action(ACT_DIM, t, rng)
}

/// Observations and rewards of `steps` random steps from `reset(seed)` (resetting at
/// terminations), as raw bits.
fn trajectory(env: &mut dyn Env, seed: u64, steps: usize) -> Vec<u32> {
    robots_common::trajectory(env, seed, steps, |t, rng| action(Pattern::Random, t, rng))
}

#[test]
fn passes_check_env_with_every_task_family() {
    for name in [NAME, NAME_V5] {
        for family in robots_common::with_no_family(FAMILIES) {
            let report = check_env(
                &make_factory(&config(name, family)).unwrap(),
                &CheckEnvOptions {
                    steps: 300,
                    ..CheckEnvOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name} {family:?}: {e}"));
            assert!(report.max_reward_error < 1e-5, "{name} {family:?}");
            if name == NAME_V5 {
                // Random actions topple the walker: episodes end early.
                assert!(report.episodes > 1, "{name} {family:?}: {report:?}");
            }
        }
    }
}

#[test]
fn spaces_and_masses_follow_the_mjcf_model() {
    let mut env = Walker2d::new(RewardKind::MeTrpo, None).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    assert_eq!(env.spec().max_episode_steps, Some(200));
    // Density 1000: the torso capsule (r = 0.05, length 0.4) weighs about 3.67 kg; the two
    // legs are identical.
    let masses = env.body_masses();
    assert_eq!(masses.len(), 7);
    assert!((masses[0] - 3.665).abs() < 0.01, "{masses:?}");
    assert_eq!(masses[1..4], masses[4..7]);
    let obs = env.reset(Some(0)).unwrap().0.to_vec1::<f32>().unwrap();
    assert!((obs[0] - 1.25).abs() < 0.01, "starts at z = 1.25: {obs:?}");
}

/// Task functions reproduce `step`'s reward and termination under every task of every family,
/// including tasks switched in the middle of an episode.
#[test]
fn task_functions_equal_step_rewards_and_terminations_under_every_task() {
    for name in [NAME, NAME_V5] {
        for family in FAMILIES {
            let mut env = make_factory(&config(name, Some(family))).unwrap()().unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut obs = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap();
            let mut terminations = 0;
            for t in 0..240 {
                if t % 40 == 0 {
                    let dist = env.task_distribution().unwrap();
                    let task = dist.sample_tasks(1, &mut rng).remove(0);
                    dist.set_task(&task).unwrap();
                }
                let a = action(Pattern::Random, t, &mut rng);
                let step = env.step(&vector(&a).unwrap()).unwrap();
                let next = step.obs.to_vec1::<f32>().unwrap();
                let fns = env.task_functions();
                let (o, u, n) = (batch(&obs), batch(&a), batch(&next));
                let r = fns.reward(&o, &u, &n).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
                let done = fns
                    .terminated(&o, &u, &n)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()[0];
                assert!(
                    (r - step.reward).abs() <= 1e-5 * (1.0 + step.reward.abs()),
                    "{name} {family} t={t}: task fn {r} vs step {}",
                    step.reward
                );
                assert_eq!(done == 1.0, step.terminated, "{name} {family} t={t}");
                obs = next;
                if step.terminated || step.truncated {
                    terminations += 1;
                    obs = env.reset(None).unwrap().0.to_vec1::<f32>().unwrap();
                }
            }
            if name == NAME_V5 {
                assert!(terminations > 0, "{name} {family}: never terminated");
            }
        }
    }
}

/// Every family and action pattern (tasks switched every 250 steps), random dynamics also
/// with the ProMP code's wide range (`L = 3`: factors in `[0.30, 3.4]`).
#[test]
fn long_rollouts_stay_finite_under_every_family_and_action_pattern() {
    let wide = RandomDynamicsConfig {
        log_scale_limit: 3.0,
    };
    let families = std::iter::once(None)
        .chain(FAMILIES.iter().map(|f| Some(*f)))
        .map(|f| (f, RandomDynamicsConfig::default()))
        .chain([(Some(FAMILY_RANDOM_DYNAMICS), wide)]);
    for (family, range) in families {
        for pattern in PATTERNS {
            let mut env = Walker2d::new(RewardKind::MeTrpo, family)
                .unwrap()
                .with_random_dynamics(range);
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            env.reset(Some(11)).unwrap();
            for t in 0..1000 {
                if t % 250 == 0 {
                    if let Some(dist) = env.task_distribution() {
                        let task = dist.sample_tasks(1, &mut rng).remove(0);
                        dist.set_task(&task).unwrap();
                    }
                }
                let a = action(pattern, t, &mut rng);
                let step = env
                    .step(&vector(&a).unwrap())
                    .unwrap_or_else(|e| panic!("{family:?} {range:?} {pattern:?} t={t}: {e}"));
                let obs = step.obs.to_vec1::<f32>().unwrap();
                assert!(
                    obs.iter().all(|v| v.is_finite() && v.abs() < 1e3) && step.reward.is_finite(),
                    "{family:?} {range:?} {pattern:?} t={t}: {obs:?}"
                );
                assert!(!step.terminated, "the A.2 variant never terminates");
            }
        }
    }
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let mut a = Walker2d::new(RewardKind::MeTrpo, None).unwrap();
    let mut b = Walker2d::new(RewardKind::MeTrpo, None).unwrap();
    let first = trajectory(&mut a, 5, 200);
    assert_eq!(first, trajectory(&mut b, 5, 200));
    // A reset is a snapshot restore: the used environment replays the fresh one exactly.
    assert_eq!(first, trajectory(&mut a, 5, 200));
    assert_ne!(first, trajectory(&mut b, 6, 200));
}

/// A random-dynamics walker with a fixed sampled task: the cross-process check covers the
/// modified snapshot too.
fn random_dynamics_walker() -> Walker2d {
    let mut env = Walker2d::new(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    let dist = env.task_distribution().unwrap();
    let task = dist
        .sample_tasks(1, &mut ChaCha8Rng::seed_from_u64(4))
        .remove(0);
    dist.set_task(&task).unwrap();
    env
}

/// Runs in a child process of this test binary when `MBRL_WALKER2D_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut plain = Walker2d::new(RewardKind::MeTrpo, None).unwrap();
    let mut bits = trajectory(&mut plain, 9, 300);
    bits.extend(trajectory(&mut random_dynamics_walker(), 9, 300));
    let digest = robots_common::digest(&bits);
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_WALKER2D_CHILD",
        digest,
    );
}

/// Joint angles and torso motion after 40 steps of a fixed gait from `reset(1)` under `task`.
fn motion_under(task: &Task) -> Vec<f32> {
    let mut env = Walker2d::new(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    env.task_distribution().unwrap().set_task(task).unwrap();
    env.reset(Some(1)).unwrap();
    let mut obs = Vec::new();
    for t in 0..40 {
        let a = action(SQUARE_WAVE, t, &mut ChaCha8Rng::seed_from_u64(0));
        obs = env
            .step(&vector(&a).unwrap())
            .unwrap()
            .obs
            .to_vec1::<f32>()
            .unwrap();
    }
    obs
}

/// Different random-dynamics tasks give different trajectories for the same actions from the
/// same state; the task survives resets; heavier bodies respond more slowly to the torques.
#[test]
fn random_dynamics_change_the_motion() {
    let mut env = Walker2d::new(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    let dist = env.task_distribution().unwrap();
    let tasks = dist.sample_tasks(2, &mut ChaCha8Rng::seed_from_u64(0));
    assert_ne!(tasks[0], tasks[1]);
    assert_eq!(tasks[0].params.len(), 7 * 4 + 6 + 7 + 1);
    let n = tasks[0].params.len();
    let nominal = Task::new("nominal", vec![1.0; n]);
    let (a, b, base) = (
        motion_under(&tasks[0]),
        motion_under(&tasks[1]),
        motion_under(&nominal),
    );
    assert_ne!(a, b);
    assert_ne!(a, base);
    // Setting a task twice and resetting in between replays exactly: reset keeps the task.
    assert_eq!(a, motion_under(&tasks[0]));

    // Twice the mass and inertia everywhere: the same torques swing the joints less.
    let mut heavy = vec![2.0; 7 * 4];
    heavy.extend(vec![1.0; n - 7 * 4]);
    let heavy = motion_under(&Task::new("heavy", heavy));
    let swing = |obs: &[f32]| obs[11..17].iter().map(|v| v.abs()).sum::<f32>();
    assert!(
        swing(&heavy) < 0.8 * swing(&base),
        "joint speeds heavy {} vs nominal {}",
        swing(&heavy),
        swing(&base)
    );
    let mut env = Walker2d::new(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    env.task_distribution()
        .unwrap()
        .set_task(&Task::new("heavy", vec![2.0; n]))
        .unwrap();
    let masses = env.body_masses();
    let nominal_masses = Walker2d::new(RewardKind::MeTrpo, None)
        .unwrap()
        .body_masses();
    for (m, m0) in masses.iter().zip(&nominal_masses) {
        assert!(
            (m / m0 - 2.0).abs() < 1e-4,
            "{masses:?} vs {nominal_masses:?}"
        );
    }
    let dist = env.task_distribution().unwrap();
    assert!(dist.set_task(&Task::new("short", vec![1.0; 5])).is_err());
    assert!(dist
        .set_task(&Task::new("negative", vec![-1.0; n]))
        .is_err());
}

/// Walking backward is rewarded under the backward task and penalised under the forward one.
#[test]
fn direction_flips_the_velocity_reward() {
    let mut env = Walker2d::new(RewardKind::MeTrpo, Some(FAMILY_FORWARD_BACKWARD)).unwrap();
    env.reset(Some(4)).unwrap();
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let forward = env.step(&zero).unwrap();
    env.reset(Some(4)).unwrap();
    let dist = env.task_distribution().unwrap();
    dist.set_task(&Task::new("backward", vec![-1.0])).unwrap();
    let back = env.step(&zero).unwrap();
    assert_eq!(
        forward.obs.to_vec1::<f32>().unwrap(),
        back.obs.to_vec1::<f32>().unwrap()
    );
    let velocity = forward.info["x_velocity"];
    assert!(velocity != 0.0);
    assert!((forward.reward - back.reward - 2.0 * velocity).abs() < 1e-5);
    assert!(env
        .task_distribution()
        .unwrap()
        .set_task(&Task::new("bad", vec![0.5]))
        .is_err());
}

/// Doing nothing, the walker falls and v5 ends the episode exactly when Gymnasium's health
/// test fails; the A.2 variant keeps going.
#[test]
fn falling_terminates_only_the_v5_variant() {
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let mut v5 = Walker2d::new(RewardKind::GymnasiumV5, None).unwrap();
    v5.reset(Some(1)).unwrap();
    let mut fell = None;
    for t in 0..1000 {
        let step = v5.step(&zero).unwrap();
        let obs = step.obs.to_vec1::<f32>().unwrap();
        let healthy = obs[0] > 0.8 && obs[0] < 2.0 && obs[1] > -1.0 && obs[1] < 1.0;
        assert_eq!(step.terminated, !healthy, "t={t}: {obs:?}");
        // Zero action: the reward is the healthy bonus plus the velocity.
        let bonus = f64::from(u8::from(healthy));
        assert!(
            (step.reward - bonus - step.info["x_velocity"]).abs() < 1e-5,
            "t={t}"
        );
        if step.terminated {
            fell = Some(t);
            break;
        }
    }
    let t = fell.expect("the passive walker falls");
    assert!(t > 5, "terminated after {t} steps");
    let mut a2 = Walker2d::new(RewardKind::MeTrpo, None).unwrap();
    a2.reset(Some(1)).unwrap();
    assert!((0..300).all(|_| !a2.step(&zero).unwrap().terminated));
}

#[test]
fn renders_an_episode_and_rejects_bad_input() {
    let mut env = make_robot(NAME, Some(FAMILY_FORWARD_BACKWARD)).unwrap();
    env.reset(Some(0)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..20 {
        env.step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
            .unwrap();
        frames.push(env.sim_state().clone());
    }
    let gif = render_gif(&frames, &RenderOptions::default()).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    assert!(make_robot(NAME, Some("disabled-joint")).is_err());
    assert!(env.step(&vector(&[0.0; 5]).unwrap()).is_err());
    assert!(env.step(&vector(&[f32::NAN; ACT_DIM]).unwrap()).is_err());
}

/// Regenerates `docs/robots/walker2d.gif` (run with `--ignored`).
#[test]
#[ignore]
fn write_docs_gif() {
    let mut env = make_robot(NAME, None).unwrap();
    env.reset(Some(1)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..300 {
        env.step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
            .unwrap();
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        height: 200,
        stride: 3,
        frame_delay_cs: 2,
        ..RenderOptions::default()
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/robots/walker2d.gif"
    );
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

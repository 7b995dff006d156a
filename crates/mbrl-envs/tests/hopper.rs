//! `hopper` and `hopper-v5`: `check_env` (also with the `random-dynamics` family), task
//! functions equal `step` rewards and terminations, long rollouts stay finite, determinism
//! (also across processes and under a random-dynamics task), the v5 early termination, and
//! random dynamics change the motion.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions};
use mbrl_envs::robots::hopper::{Hopper, ACT_DIM, FAMILY_RANDOM_DYNAMICS, NAME, NAME_V5, OBS_DIM};
use mbrl_envs::robots::random_dynamics::RandomDynamicsConfig;
use mbrl_envs::robots::{make_robot, RewardKind};
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

#[test]
fn passes_check_env() {
    for (name, family) in [
        (NAME, None),
        (NAME_V5, None),
        (NAME, Some(FAMILY_RANDOM_DYNAMICS)),
        (NAME_V5, Some(FAMILY_RANDOM_DYNAMICS)),
    ] {
        let report = check_env(
            &make_factory(&config(name, family)).unwrap(),
            &CheckEnvOptions {
                steps: 400,
                ..CheckEnvOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.max_reward_error < 1e-5, "{name}");
        if name == NAME_V5 {
            // Random actions topple the hopper: episodes end early.
            assert!(report.episodes > 1, "{name}: {report:?}");
        }
    }
}

#[test]
fn spaces_and_masses_follow_the_mjcf_model() {
    let mut env = Hopper::new(RewardKind::MeTrpo).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    // Density 1000: the torso capsule (r = 0.05, length 0.4) weighs about 3.67 kg.
    let masses = env.body_masses();
    assert!((masses[0] - 3.665).abs() < 0.01, "{masses:?}");
    let obs = env.reset(Some(0)).unwrap().0.to_vec1::<f32>().unwrap();
    assert!((obs[0] - 1.25).abs() < 0.01, "starts at z = 1.25: {obs:?}");
}

/// Every action pattern, plain and under random-dynamics tasks (switched every 250 steps),
/// also with the ProMP code's wide range (`L = 3`: factors in `[0.30, 3.4]`).
#[test]
fn long_rollouts_stay_finite_under_every_action_pattern() {
    let configs = [
        None,
        Some(RandomDynamicsConfig::default()),
        Some(RandomDynamicsConfig {
            log_scale_limit: 3.0,
        }),
    ];
    for (pattern, config) in PATTERNS
        .into_iter()
        .flat_map(|p| configs.iter().map(move |c| (p, c)))
    {
        let family = config.map(|_| FAMILY_RANDOM_DYNAMICS);
        let mut env = Hopper::with_family(RewardKind::MeTrpo, family).unwrap();
        if let Some(c) = config {
            env = env.with_random_dynamics(*c);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        env.reset(Some(7)).unwrap();
        for t in 0..1000 {
            if t % 250 == 0 {
                if let Some(dist) = env.task_distribution() {
                    let task = dist.sample_tasks(1, &mut rng).remove(0);
                    dist.set_task(&task).unwrap();
                }
            }
            let step = env
                .step(&vector(&action(pattern, t, &mut rng)).unwrap())
                .unwrap();
            let obs = step.obs.to_vec1::<f32>().unwrap();
            assert!(
                obs.iter().all(|v| v.is_finite() && v.abs() < 1e3) && step.reward.is_finite(),
                "{pattern:?} {config:?} t={t}: {obs:?}"
            );
            assert!(!step.terminated, "the A.2 variant never terminates");
        }
    }
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let run = |env: &mut Hopper| {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut bits: Vec<u32> = Vec::new();
        env.reset(Some(2)).unwrap();
        for t in 0..300 {
            let step = env
                .step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
                .unwrap();
            bits.extend(robots_common::bits(&step.obs));
        }
        bits
    };
    let mut a = Hopper::new(RewardKind::GymnasiumV5).unwrap();
    let mut b = Hopper::new(RewardKind::GymnasiumV5).unwrap();
    let first = run(&mut a);
    assert_eq!(first, run(&mut b));
    assert_eq!(first, run(&mut a));
}

/// Doing nothing, the hopper falls over and v5 ends the episode; the A.2 variant keeps going
/// and its soft constraint only penalises a torso below 0.45 m.
#[test]
fn falling_terminates_only_the_v5_variant() {
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let mut v5 = Hopper::new(RewardKind::GymnasiumV5).unwrap();
    v5.reset(Some(1)).unwrap();
    let steps = (0..1000)
        .position(|_| v5.step(&zero).unwrap().terminated)
        .expect("the passive hopper falls");
    assert!(steps > 5, "terminated after {steps} steps");
    let mut a2 = Hopper::new(RewardKind::MeTrpo).unwrap();
    a2.reset(Some(1)).unwrap();
    assert!((0..300).all(|_| !a2.step(&zero).unwrap().terminated));
}

/// Task functions reproduce `step`'s reward and termination under random-dynamics tasks
/// switched mid-episode.
#[test]
fn task_functions_equal_step_under_random_dynamics() {
    for name in [NAME, NAME_V5] {
        let mut env = make_factory(&config(name, Some(FAMILY_RANDOM_DYNAMICS))).unwrap()().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut obs = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap();
        for t in 0..240 {
            if t % 40 == 0 {
                let dist = env.task_distribution().unwrap();
                let task = dist.sample_tasks(1, &mut rng).remove(0);
                dist.set_task(&task).unwrap();
                assert_eq!(dist.current_task(), task);
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
                "{name} t={t}: task fn {r} vs step {}",
                step.reward
            );
            assert_eq!(done == 1.0, step.terminated, "{name} t={t}");
            obs = next;
            if step.terminated || step.truncated {
                obs = env.reset(None).unwrap().0.to_vec1::<f32>().unwrap();
            }
        }
    }
}

/// Observations of 30 steps of a square wave from `reset(1)` under `task`.
fn trace_under(task: &Task) -> Vec<Vec<f32>> {
    let mut env = Hopper::with_family(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    env.task_distribution().unwrap().set_task(task).unwrap();
    env.reset(Some(1)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    (0..30)
        .map(|t| {
            let a = vector(&action(SQUARE_WAVE, t, &mut rng)).unwrap();
            env.step(&a).unwrap().obs.to_vec1::<f32>().unwrap()
        })
        .collect()
}

/// Observations after 30 steps of a square wave from `reset(1)` under `task`.
fn motion_under(task: &Task) -> Vec<f32> {
    trace_under(task).pop().unwrap_or_default()
}

/// Different random-dynamics tasks give different trajectories for the same actions from the
/// same state, the task survives resets, and heavier bodies swing their joints more slowly.
#[test]
fn random_dynamics_change_the_motion() {
    let mut env = Hopper::with_family(RewardKind::MeTrpo, Some(FAMILY_RANDOM_DYNAMICS)).unwrap();
    let dist = env.task_distribution().unwrap();
    let tasks = dist.sample_tasks(20, &mut ChaCha8Rng::seed_from_u64(0));
    // 4 masses, 12 inertias, 3 dampings, 4 geom frictions and the ground's.
    let n = 4 * 4 + 3 + 4 + 1;
    assert!(tasks.iter().all(|t| t.params.len() == n));
    // Default range: masses, inertias and frictions in [1/1.5, 1.5], dampings in [1/1.3, 1.3].
    let all: Vec<f64> = tasks.iter().flat_map(|t| t.params.clone()).collect();
    assert!(all
        .iter()
        .all(|&f| (1.0 / 1.5 - 1e-6..=1.5 + 1e-6).contains(&f)));
    assert!(all.iter().any(|&f| f > 1.3) && all.iter().any(|&f| f < 0.75));
    let (a, b) = (motion_under(&tasks[0]), motion_under(&tasks[1]));
    let base = motion_under(&Task::new("nominal", vec![1.0; n]));
    assert_ne!(a, b);
    assert_ne!(a, base);
    assert_eq!(a, motion_under(&tasks[0]));

    let mut heavy = vec![2.0; 16];
    heavy.extend(vec![1.0; n - 16]);
    // Joint speeds after the first step from rest: later ones hit the joint limits and the
    // observation's clip at 10, and depend on how the foot grips. The hopper's armature (1)
    // dominates the joints' inertia, so doubling the bodies' masses and inertias slows them
    // by only ~8%.
    let swing = |task: &Task| {
        trace_under(task)[0][8..11]
            .iter()
            .map(|v| v.abs())
            .sum::<f32>()
    };
    let (heavy, base) = (
        swing(&Task::new("heavy", heavy)),
        swing(&Task::new("nominal", vec![1.0; n])),
    );
    assert!(
        heavy < 0.95 * base,
        "first-step joint speeds heavy {heavy} vs nominal {base}"
    );
    let dist = env.task_distribution().unwrap();
    dist.set_task(&Task::new("heavy", vec![2.0; n])).unwrap();
    let masses = env.body_masses();
    assert!((masses[0] - 2.0 * 3.665).abs() < 0.02, "{masses:?}");
    let dist = env.task_distribution().unwrap();
    assert!(dist.set_task(&Task::new("short", vec![1.0; 3])).is_err());
    assert!(dist.set_task(&Task::new("zero", vec![0.0; n])).is_err());
}

/// Runs in a child process of this test binary when `MBRL_HOPPER_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut bits: Vec<u32> = Vec::new();
    for family in [None, Some(FAMILY_RANDOM_DYNAMICS)] {
        let mut env = Hopper::with_family(RewardKind::GymnasiumV5, family).unwrap();
        if let Some(dist) = env.task_distribution() {
            let task = dist
                .sample_tasks(1, &mut ChaCha8Rng::seed_from_u64(4))
                .remove(0);
            dist.set_task(&task).unwrap();
        }
        bits.extend(robots_common::trajectory(&mut env, 9, 300, |t, rng| {
            action(Pattern::Random, t, rng)
        }));
    }
    let digest = robots_common::digest(&bits);
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_HOPPER_CHILD",
        digest,
    );
}

#[test]
fn renders_an_episode() {
    let mut env = make_robot(NAME, None).unwrap();
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
    assert!(make_robot(NAME, Some("forward-backward")).is_err());
}

/// Regenerates `docs/robots/hopper.gif` (run with `--ignored`).
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
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/robots/hopper.gif");
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

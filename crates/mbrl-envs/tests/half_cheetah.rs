//! `half-cheetah` and `half-cheetah-v5`: `check_env` on every task family, task functions equal
//! `step` rewards under every task, long rollouts stay finite, trajectories are deterministic
//! (also across processes), and each task family changes what it claims to change.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions};
use mbrl_envs::robots::half_cheetah::{
    HalfCheetah, HalfCheetahConfig, ACT_DIM, FAMILIES, FAMILY_DISABLED_JOINT,
    FAMILY_FORWARD_BACKWARD, FAMILY_SLOPED_TERRAIN, NAME, NAME_V5, OBS_DIM,
};
use mbrl_envs::robots::make_robot;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use robots_common::{batch, config, Pattern};

/// The square wave of these rollouts: flips every 5 steps.
const SQUARE_WAVE: Pattern = Pattern::SquareWave { half_period: 5 };

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
        }
    }
}

#[test]
fn spaces_and_masses_follow_the_mjcf_model() {
    let env = HalfCheetah::new(HalfCheetahConfig::default(), None).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    assert_eq!(env.spec().max_episode_steps, Some(100));
    // settotalmass="14": masses are proportional to geom volume and sum to 14 kg.
    let masses = env.body_masses();
    assert_eq!(masses.len(), 7);
    assert!(
        (masses.iter().sum::<f32>() - 14.0).abs() < 1e-3,
        "{masses:?}"
    );
    assert!(masses[0] > 6.0 && masses[0] < 6.5, "torso {masses:?}");
}

/// Task functions reproduce `step`'s reward under every task of every family, including
/// tasks switched in the middle of an episode.
#[test]
fn task_functions_equal_step_rewards_under_every_task() {
    for name in [NAME, NAME_V5] {
        for family in FAMILIES {
            let mut env = make_factory(&config(name, Some(family))).unwrap()().unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut obs = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap();
            for t in 0..120 {
                if t % 40 == 0 {
                    let dist = env.task_distribution().unwrap();
                    let mut tasks = dist.sample_tasks(1, &mut rng);
                    tasks.extend(dist.test_tasks());
                    let task = tasks[(t / 40) % tasks.len()].clone();
                    dist.set_task(&task).unwrap();
                }
                let a = action(Pattern::Random, t, &mut rng);
                let step = env.step(&vector(&a).unwrap()).unwrap();
                let next = step.obs.to_vec1::<f32>().unwrap();
                let r = env
                    .task_functions()
                    .reward(&batch(&obs), &batch(&a), &batch(&next))
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()[0] as f64;
                assert!(
                    (r - step.reward).abs() <= 1e-5 * (1.0 + step.reward.abs()),
                    "{name} {family} t={t}: task fn {r} vs step {}",
                    step.reward
                );
                obs = next;
            }
        }
    }
}

#[test]
fn long_rollouts_stay_finite_under_every_family_and_action_pattern() {
    for family in robots_common::with_no_family(FAMILIES) {
        for pattern in PATTERNS {
            let mut env = HalfCheetah::new(HalfCheetahConfig::default(), family).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            env.reset(Some(11)).unwrap();
            if let Some(dist) = env.task_distribution() {
                let mut tasks = dist.sample_tasks(1, &mut rng);
                tasks.extend(dist.test_tasks());
                dist.set_task(tasks.last().unwrap()).unwrap();
            }
            for t in 0..1000 {
                let a = action(pattern, t, &mut rng);
                let step = env
                    .step(&vector(&a).unwrap())
                    .unwrap_or_else(|e| panic!("{family:?} {pattern:?} t={t}: {e}"));
                let obs = step.obs.to_vec1::<f32>().unwrap();
                assert!(
                    obs.iter().all(|v| v.is_finite() && v.abs() < 1e3) && step.reward.is_finite(),
                    "{family:?} {pattern:?} t={t}: {obs:?}"
                );
            }
        }
    }
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let mut a = HalfCheetah::new(HalfCheetahConfig::default(), None).unwrap();
    let mut b = HalfCheetah::new(HalfCheetahConfig::default(), None).unwrap();
    let first = trajectory(&mut a, 5, 200);
    assert_eq!(first, trajectory(&mut b, 5, 200));
    // A reset is a snapshot restore: the used environment replays the fresh one exactly.
    assert_eq!(first, trajectory(&mut a, 5, 200));
    assert_ne!(first, trajectory(&mut b, 6, 200));
}

/// Runs in a child process of this test binary when `MBRL_HALF_CHEETAH_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut env = HalfCheetah::new(HalfCheetahConfig::default(), None).unwrap();
    let digest = robots_common::digest(&trajectory(&mut env, 9, 300));
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_HALF_CHEETAH_CHILD",
        digest,
    );
}

/// A disabled joint's command has no effect; the same command on a working joint does.
#[test]
fn a_disabled_joint_ignores_its_command() {
    let run = |disabled: Option<usize>, command: f32| {
        let mut env =
            HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_DISABLED_JOINT)).unwrap();
        env.reset(Some(1)).unwrap();
        if let Some(j) = disabled {
            let task = Task::new("test", vec![j as f64]);
            env.task_distribution().unwrap().set_task(&task).unwrap();
        }
        let mut a = [0.3f32; ACT_DIM];
        a[3] = command;
        let mut obs = Vec::new();
        for _ in 0..30 {
            obs = env
                .step(&vector(&a).unwrap())
                .unwrap()
                .obs
                .to_vec1::<f32>()
                .unwrap();
        }
        obs
    };
    assert_eq!(run(Some(3), 1.0), run(Some(3), -1.0));
    assert_ne!(run(Some(2), 1.0), run(Some(2), -1.0));
    assert_ne!(run(None, 1.0), run(None, -1.0));
    let env = HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_DISABLED_JOINT)).unwrap();
    let mut env = env;
    let dist = env.task_distribution().unwrap();
    assert_eq!(
        dist.test_tasks(),
        vec![Task::new("disabled_joint=fthigh", vec![3.0])]
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(dist
        .sample_tasks(50, &mut rng)
        .iter()
        .all(|t| t.params[0] != 3.0));
    assert!(dist.set_task(&Task::new("bad", vec![6.0])).is_err());
}

/// The same actions (an open-loop gait, the hill gait of `half_cheetah_terrain.rs`) make
/// less forward progress uphill than downhill. (With zero action the cheetah holds on these
/// slopes: `tan 0.3 < 0.4`, the friction coefficient.)
#[test]
fn a_slope_changes_forward_progress() {
    let progress = |slope: f64| {
        let mut env =
            HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_SLOPED_TERRAIN)).unwrap();
        env.reset(Some(2)).unwrap();
        let task = Task::new("slope", vec![slope]);
        env.task_distribution().unwrap().set_task(&task).unwrap();
        const PHASES: [f32; ACT_DIM] = [4.63, 4.57, 3.80, 0.76, 1.86, 4.74];
        for t in 0..60 {
            let time = t as f32 * 0.05;
            let a: [f32; ACT_DIM] = std::array::from_fn(|i| {
                (2.0 * std::f32::consts::PI * 2.40 * time + PHASES[i]).sin()
            });
            env.step(&vector(&a).unwrap()).unwrap();
        }
        env.qpos()[0]
    };
    let (up, flat, down) = (progress(0.3), progress(0.0), progress(-0.3));
    assert!(up < flat - 0.2 && flat < down - 0.2, "{up} {flat} {down}");
}

/// Running backward is rewarded under the backward task and penalised under the forward one.
#[test]
fn direction_flips_the_velocity_reward() {
    let mut env =
        HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_FORWARD_BACKWARD)).unwrap();
    env.reset(Some(4)).unwrap();
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let forward = env.step(&zero).unwrap();
    env.reset(Some(4)).unwrap();
    let backward = Task::new("backward", vec![-1.0]);
    env.task_distribution()
        .unwrap()
        .set_task(&backward)
        .unwrap();
    let back = env.step(&zero).unwrap();
    assert_eq!(
        forward.obs.to_vec1::<f32>().unwrap(),
        back.obs.to_vec1::<f32>().unwrap()
    );
    assert!((forward.reward + back.reward).abs() < 1e-9 && forward.reward != 0.0);
    assert!(env
        .task_distribution()
        .unwrap()
        .set_task(&Task::new("bad", vec![0.5]))
        .is_err());
}

#[test]
fn bad_actions_and_families_are_errors() {
    let mut env = HalfCheetah::new(HalfCheetahConfig::default(), None).unwrap();
    env.reset(Some(0)).unwrap();
    assert!(env.step(&vector(&[0.0; 5]).unwrap()).is_err());
    assert!(env.step(&vector(&[f32::NAN; ACT_DIM]).unwrap()).is_err());
    assert!(HalfCheetah::new(HalfCheetahConfig::default(), Some("nope")).is_err());
    let bad_joint = HalfCheetahConfig {
        test_disabled_joints: vec![7],
        ..HalfCheetahConfig::default()
    };
    assert!(HalfCheetah::new(bad_joint, None).is_err());
}

/// Frames of a random episode of `steps` steps of the robot `name`.
fn random_episode(
    name: &str,
    steps: usize,
    seed: u64,
) -> (Vec<mbrl_envs::robots::SimState>, RenderOptions) {
    let mut env = make_robot(name, None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    env.reset(Some(seed)).unwrap();
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..steps {
        let a = action(Pattern::Random, t, &mut rng);
        env.step(&vector(&a).unwrap()).unwrap();
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        ..RenderOptions::default()
    };
    (frames, options)
}

#[test]
fn renders_an_episode_to_a_small_gif() {
    let (frames, options) = random_episode(NAME, 20, 0);
    let gif = render_gif(&frames, &options).unwrap();
    assert!(gif.starts_with(b"GIF89a"), "not a GIF");
    assert!(gif.len() < 1 << 20, "{} bytes", gif.len());
    assert!(render_gif(&[], &options).is_err());
    assert!(make_robot("half-cheeta", None).is_err());
}

/// Regenerates `docs/robots/half-cheetah.gif` (run with `--ignored`).
#[test]
#[ignore]
fn write_docs_gif() {
    let (frames, options) = random_episode(NAME, 100, 1);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/robots/half-cheetah.gif"
    );
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

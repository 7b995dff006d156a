//! `ant` and `ant-v5`: `check_env` on every task family, task functions equal `step` rewards
//! and terminations, long rollouts stay finite, trajectories are deterministic (also across
//! processes), the free root follows MuJoCo's conventions, and each task family changes what
//! it claims to change.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions, View};
use mbrl_envs::robots::ant::{
    Ant, AntConfig, ACTION_JOINT, ACT_DIM, FAMILIES, FAMILY_CRIPPLED_LEG, FAMILY_FORWARD_BACKWARD,
    FAMILY_RANDOM_DIRECTION, FAMILY_RANDOM_GOAL, INIT_Z, NAME, NAME_V5, OBS_DIM, OBS_DIM_GOAL,
};
use mbrl_envs::robots::{make_robot, RewardKind};
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

fn v5() -> AntConfig {
    AntConfig {
        reward: RewardKind::GymnasiumV5,
        ..AntConfig::default()
    }
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
    let mut env = Ant::new(AntConfig::default(), None).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    assert_eq!(env.spec().max_episode_steps, Some(100));
    let goal = Ant::new(AntConfig::default(), Some(FAMILY_RANDOM_GOAL)).unwrap();
    assert_eq!(goal.observation_space().flat_dim(), OBS_DIM_GOAL);
    assert_eq!(
        Ant::new(v5(), None).unwrap().spec().max_episode_steps,
        Some(1000)
    );
    // Density 5: the torso sphere (r = 0.25) and its four aux capsules (r = 0.08, length
    // 0.283) weigh 0.327 + 4 * 0.039 kg; the whole ant about 0.91 kg (MuJoCo's ant).
    let masses = env.body_masses();
    assert_eq!(masses.len(), 9);
    let sphere = 4.0 / 3.0 * std::f32::consts::PI * 0.25f32.powi(3) * 5.0;
    let aux = (std::f32::consts::PI * 0.08f32.powi(2) * 0.2 * 2f32.sqrt()
        + 4.0 / 3.0 * std::f32::consts::PI * 0.08f32.powi(3))
        * 5.0;
    assert!(
        (masses[0] - (sphere + 4.0 * aux)).abs() < 1e-4,
        "{masses:?}"
    );
    let total: f32 = masses.iter().sum();
    assert!((total - 0.911).abs() < 0.005, "{total}");
    let obs = env.reset(Some(0)).unwrap().0.to_vec1::<f32>().unwrap();
    assert!(
        (obs[0] - INIT_Z).abs() < 0.11,
        "starts at z = 0.75: {obs:?}"
    );
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
            for t in 0..300 {
                if t % 40 == 0 {
                    let dist = env.task_distribution().unwrap();
                    let mut tasks = dist.sample_tasks(1, &mut rng);
                    tasks.extend(dist.test_tasks());
                    let task = tasks[(t / 40) % tasks.len()].clone();
                    dist.set_task(&task).unwrap();
                }
                let a = action(Pattern::BangBang, t, &mut rng);
                let step = env.step(&vector(&a).unwrap()).unwrap();
                let next = step.obs.to_vec1::<f32>().unwrap();
                let f = env.task_functions();
                let (o, a, n) = (batch(&obs), batch(&a), batch(&next));
                let r = f.reward(&o, &a, &n).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
                assert!(
                    (r - step.reward).abs() <= 1e-5 * (1.0 + step.reward.abs()),
                    "{name} {family} t={t}: task fn {r} vs step {}",
                    step.reward
                );
                let done = f.terminated(&o, &a, &n).unwrap().to_vec1::<f32>().unwrap()[0];
                assert_eq!(done == 1.0, step.terminated, "{name} {family} t={t}");
                obs = next;
                if step.terminated || step.truncated {
                    terminations += usize::from(step.terminated);
                    obs = env.reset(None).unwrap().0.to_vec1::<f32>().unwrap();
                }
            }
            // Bang-bang actions flip or launch the ant: terminations are exercised too.
            assert!(
                terminations > 0,
                "{name} {family}: no termination in 300 steps"
            );
        }
    }
}

#[test]
fn long_rollouts_stay_finite_under_every_family_and_action_pattern() {
    for family in robots_common::with_no_family(FAMILIES) {
        for pattern in PATTERNS {
            let mut env = Ant::new(AntConfig::default(), family).unwrap();
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
                if step.terminated {
                    env.reset(None).unwrap();
                }
            }
        }
    }
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let mut a = Ant::new(AntConfig::default(), None).unwrap();
    let mut b = Ant::new(AntConfig::default(), None).unwrap();
    let first = trajectory(&mut a, 5, 200);
    assert_eq!(first, trajectory(&mut b, 5, 200));
    // A reset is a snapshot restore: the used environment replays the fresh one exactly.
    assert_eq!(first, trajectory(&mut a, 5, 200));
    assert_ne!(first, trajectory(&mut b, 6, 200));
}

/// Runs in a child process of this test binary when `MBRL_ANT_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut env = Ant::new(v5(), None).unwrap();
    let digest = robots_common::digest(&trajectory(&mut env, 9, 300));
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_ANT_CHILD",
        digest,
    );
}

/// Joint displacements that put every ankle inside its range (50 degrees), so no joint limit
/// pushes on the legs.
fn legs_in_range() -> Vec<f32> {
    let a = 50f32.to_radians();
    let mut dq = vec![0.0; 14];
    dq[6..].copy_from_slice(&[0.0, a, 0.0, -a, 0.0, -a, 0.0, a]);
    dq
}

/// The free root's `qpos` is `x y z qw qx qy qz`, the quaternion stays normalised, and an ant
/// dropped from 1.75 m falls with g: after one control step (five 0.01 s steps) its vertical
/// velocity is `-9.81 * 0.05`.
#[test]
fn the_free_root_follows_mujoco_conventions_and_falls_with_g() {
    let mut env = Ant::new(AntConfig::default(), None).unwrap();
    let mut dq = legs_in_range();
    dq[2] = 1.0;
    env.reset_to(&dq, &[0.0; 14]).unwrap();
    let q0 = env.qpos();
    assert_eq!(q0.len(), 15);
    assert_eq!(&q0[..7], &[0.0, 0.0, 1.75, 1.0, 0.0, 0.0, 0.0]);
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let step = env.step(&zero).unwrap();
    let (q, v) = (env.qpos(), env.qvel());
    assert!((v[2] + 9.81 * 0.05).abs() < 1e-4, "vz {}", v[2]);
    // The drop lies between the exact g t^2 / 2 and explicit-velocity Euler's
    // g dt^2 (1 + 2 + 3 + 4 + 5).
    let drop = q0[2] - q[2];
    assert!(
        (0.5 * 9.81 * 0.05 * 0.05..=9.81e-4 * 15.0).contains(&drop),
        "{drop}"
    );
    assert!(
        v[..2].iter().chain(&v[3..6]).all(|x| x.abs() < 1e-4),
        "{v:?}"
    );
    assert!(step.terminated, "z = {} is above the healthy range", q[2]);

    // Yawed by 90 degrees and spinning about its own x axis (MuJoCo's body-frame angular
    // velocity), the torso turns about the world y axis.
    let mut dq = legs_in_range();
    dq[5] = std::f32::consts::FRAC_PI_2;
    let mut qvel = [0.0; 14];
    qvel[3] = 1.0;
    env.reset_to(&dq, &qvel).unwrap();
    let q = env.qpos();
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert!((q[3] - h).abs() < 1e-5 && (q[6] - h).abs() < 1e-5, "{q:?}");
    assert!(
        (env.qvel()[3] - 1.0).abs() < 1e-5,
        "round trip {:?}",
        env.qvel()
    );
    env.step(&zero).unwrap();
    let q = env.qpos();
    let norm: f32 = q[3..7].iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-5, "|q|^2 = {norm}");
    // After 0.05 s at 1 rad/s: q = rot_y(0.05) * rot_z(pi / 2), whose (w, x, y, z) is
    // (cos 0.025, sin 0.025, sin 0.025, cos 0.025) / sqrt(2).
    let (s, c) = 0.025f32.sin_cos();
    let expected = [c * h, s * h, s * h, c * h];
    for (got, want) in q[3..7].iter().zip(expected) {
        assert!((got - want).abs() < 2e-3, "{:?} vs {expected:?}", &q[3..7]);
    }

    // Random rollouts keep the quaternion normalised.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    env.reset(Some(4)).unwrap();
    for t in 0..300 {
        let step = env
            .step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
            .unwrap();
        let q = env.qpos();
        let norm: f32 = q[3..7].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "t={t}: |q|^2 = {norm}");
        if step.terminated {
            env.reset(None).unwrap();
        }
    }
}

/// A crippled leg's commands have no effect on the trajectory; the same commands on a
/// working leg do.
#[test]
fn a_crippled_legs_actions_have_no_effect() {
    let run = |crippled: Option<usize>, leg: usize, command: f32| {
        let mut env = Ant::new(AntConfig::default(), Some(FAMILY_CRIPPLED_LEG)).unwrap();
        env.reset(Some(1)).unwrap();
        if let Some(k) = crippled {
            let task = Task::new("test", vec![k as f64]);
            env.task_distribution().unwrap().set_task(&task).unwrap();
        }
        let mut a = [0.2f32; ACT_DIM];
        for (i, &j) in ACTION_JOINT.iter().enumerate() {
            if j / 2 == leg {
                a[i] = command;
            }
        }
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
    for leg in 0..4 {
        assert_eq!(
            run(Some(leg), leg, 1.0),
            run(Some(leg), leg, -1.0),
            "leg {leg}"
        );
        assert_ne!(
            run(Some((leg + 1) % 4), leg, 1.0),
            run(Some((leg + 1) % 4), leg, -1.0)
        );
    }
    assert_ne!(run(None, 3, 1.0), run(None, 3, -1.0));
    let mut env = Ant::new(AntConfig::default(), Some(FAMILY_CRIPPLED_LEG)).unwrap();
    let dist = env.task_distribution().unwrap();
    assert_eq!(
        dist.test_tasks(),
        vec![Task::new("crippled_leg=back_right", vec![3.0])]
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let train = dist.sample_tasks(60, &mut rng);
    assert!(train.iter().all(|t| t.params[0] != 3.0));
    assert!((0..3).all(|k| train.iter().any(|t| t.params[0] == k as f64)));
    assert!(dist.set_task(&Task::new("bad", vec![4.0])).is_err());
    let held_out = AntConfig {
        train_crippled_legs: vec![1, 3],
        test_crippled_legs: vec![0, 2],
        ..AntConfig::default()
    };
    let mut env = Ant::new(held_out, Some(FAMILY_CRIPPLED_LEG)).unwrap();
    assert_eq!(env.task_distribution().unwrap().test_tasks().len(), 2);
}

/// The same transition is rewarded differently under different directions and goals, and a
/// direction and its opposite give opposite velocity rewards.
#[test]
fn directions_and_goals_change_the_reward() {
    let zero = vector(&[0.0; ACT_DIM]).unwrap();
    let reward_under = |family: &str, params: Vec<f64>| {
        let mut env = Ant::new(AntConfig::default(), Some(family)).unwrap();
        env.reset(Some(2)).unwrap();
        env.task_distribution()
            .unwrap()
            .set_task(&Task::new("t", params))
            .unwrap();
        let step = env.step(&zero).unwrap();
        (step.reward, step.obs.to_vec1::<f32>().unwrap())
    };
    let pi = std::f64::consts::PI;
    let (east, obs_east) = reward_under(FAMILY_RANDOM_DIRECTION, vec![0.0]);
    let (west, obs_west) = reward_under(FAMILY_RANDOM_DIRECTION, vec![pi]);
    let (north, _) = reward_under(FAMILY_RANDOM_DIRECTION, vec![pi / 2.0]);
    assert_eq!(obs_east, obs_west, "the task does not change the dynamics");
    // r = v.d + 0.05 (zero action): opposite directions are symmetric about 0.05.
    assert!(((east - 0.05) + (west - 0.05)).abs() < 1e-6 && (east - 0.05).abs() > 1e-4);
    assert!((north - east).abs() > 1e-4);
    let (fwd, _) = reward_under(FAMILY_FORWARD_BACKWARD, vec![1.0]);
    assert!((fwd - east).abs() < 1e-6, "forward is direction 0");

    let (near, obs) = reward_under(FAMILY_RANDOM_GOAL, vec![0.0, 0.0]);
    let (far, _) = reward_under(FAMILY_RANDOM_GOAL, vec![3.0, 4.0]);
    let d = ((obs[0] - 3.0).powi(2) + (obs[1] - 4.0).powi(2)).sqrt() as f64;
    assert!((far - (0.05 - d)).abs() < 1e-5, "{far} vs {}", 0.05 - d);
    assert!(near > far + 4.0);
    // Goals are drawn on the circle of radius goal_radius.
    let env = Ant::new(AntConfig::default(), Some(FAMILY_RANDOM_GOAL)).unwrap();
    let mut env = env;
    let dist = env.task_distribution().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for task in dist.sample_tasks(20, &mut rng) {
        let r = (task.params[0].powi(2) + task.params[1].powi(2)).sqrt();
        assert!((r - 2.0).abs() < 1e-9, "{task:?}");
    }
    assert!(dist.set_task(&Task::new("bad", vec![1.0])).is_err());
}

#[test]
fn bad_actions_and_families_are_errors() {
    let mut env = Ant::new(AntConfig::default(), None).unwrap();
    env.reset(Some(0)).unwrap();
    assert!(env.step(&vector(&[0.0; 5]).unwrap()).is_err());
    assert!(env.step(&vector(&[f32::NAN; ACT_DIM]).unwrap()).is_err());
    assert!(Ant::new(AntConfig::default(), Some("nope")).is_err());
    let bad_leg = AntConfig {
        test_crippled_legs: vec![4],
        ..AntConfig::default()
    };
    assert!(Ant::new(bad_leg, None).is_err());
    assert!(env.reset_to(&[0.0; 3], &[0.0; 14]).is_err());
}

/// Frames of a random episode of the ant (reset when it falls).
fn random_episode(steps: usize, seed: u64) -> (Vec<mbrl_envs::robots::SimState>, RenderOptions) {
    let mut env = make_robot(NAME_V5, None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    env.reset(Some(seed)).unwrap();
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..steps {
        let a = action(Pattern::Random, t, &mut rng);
        if env.step(&vector(&a).unwrap()).unwrap().terminated {
            env.reset(None).unwrap();
        }
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        ..RenderOptions::default()
    };
    (frames, options)
}

#[test]
fn renders_an_episode_from_the_top_and_the_side() {
    let (frames, options) = random_episode(20, 0);
    assert_eq!(options.view, View::TopAndSide);
    let gif = render_gif(&frames, &options).unwrap();
    assert!(gif.starts_with(b"GIF89a"), "not a GIF");
    assert!(gif.len() < 1 << 20, "{} bytes", gif.len());
}

/// Regenerates `docs/robots/ant.gif` (run with `--ignored`).
#[test]
#[ignore]
fn write_docs_gif() {
    let (frames, options) = random_episode(200, 1);
    let options = RenderOptions {
        stride: 2,
        frame_delay_cs: 10,
        ..options
    };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/robots/ant.gif");
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

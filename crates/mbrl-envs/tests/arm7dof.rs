//! `arm7dof`: `check_env` with and without the goal family, task functions equal `step`
//! rewards, long rollouts stay finite, determinism (also across processes), the simulated end
//! effector equals the forward kinematics, every goal of the goal box is reachable, and a PD
//! controller drives the end effector to a goal.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions, View};
use mbrl_envs::robots::arm7dof::{
    forward_kinematics, Arm7Dof, ACT_DIM, EE_INDEX, FAMILY_RANDOM_GOAL, GEAR, GOAL_HIGH,
    GOAL_INDEX, GOAL_LOW, NAME, OBS_DIM, RANGES,
};
use mbrl_envs::robots::make_robot;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use robots_common::{batch, config, Pattern};

/// The square wave of these rollouts: flips every 10 steps.
const SQUARE_WAVE: Pattern = Pattern::SquareWave { half_period: 10 };

/// Every pattern, for the long rollouts.
const PATTERNS: [Pattern; 3] = [Pattern::Random, Pattern::BangBang, SQUARE_WAVE];

fn action(pattern: Pattern, t: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    pattern.action(ACT_DIM, t, rng)
}

fn joints(obs: &[f32]) -> [f32; ACT_DIM] {
    std::array::from_fn(|i| obs[i])
}

#[test]
fn passes_check_env_with_and_without_the_goal_family() {
    for family in [None, Some(FAMILY_RANDOM_GOAL)] {
        let report = check_env(
            &make_factory(&config(NAME, family)).unwrap(),
            &CheckEnvOptions {
                steps: 300,
                ..CheckEnvOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{family:?}: {e}"));
        assert!(report.max_reward_error < 1e-5, "{family:?}");
    }
    let env = Arm7Dof::new(None).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    assert_eq!(env.spec().max_episode_steps, Some(200));
    assert!(Arm7Dof::new(Some("crippled-leg")).is_err());
}

/// Task functions reproduce `step`'s reward, also after switching goals mid-episode.
#[test]
fn task_functions_equal_step_rewards() {
    let mut env = make_factory(&config(NAME, Some(FAMILY_RANDOM_GOAL))).unwrap()().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut obs = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap();
    for t in 0..200 {
        if t % 50 == 0 {
            let dist = env.task_distribution().unwrap();
            let task = dist.sample_tasks(1, &mut rng).remove(0);
            dist.set_task(&task).unwrap();
        }
        let a = action(Pattern::Random, t, &mut rng);
        let step = env.step(&vector(&a).unwrap()).unwrap();
        let next = step.obs.to_vec1::<f32>().unwrap();
        let f = env.task_functions();
        let (o, a, n) = (batch(&obs), batch(&a), batch(&next));
        let r = f.reward(&o, &a, &n).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
        assert!(
            (r - step.reward).abs() <= 1e-5 * (1.0 + step.reward.abs()),
            "t={t}: task fn {r} vs step {}",
            step.reward
        );
        assert_eq!(
            f.terminated(&o, &a, &n).unwrap().to_vec1::<f32>().unwrap(),
            [0.0]
        );
        let goal = env.task_distribution().unwrap().current_task().params;
        let observed: Vec<f64> = next[GOAL_INDEX..].iter().map(|&g| g as f64).collect();
        assert!(goal
            .iter()
            .zip(&observed)
            .all(|(a, b)| (a - b).abs() < 1e-6));
        obs = next;
    }
}

#[test]
fn long_rollouts_stay_finite_under_every_action_pattern() {
    for family in [None, Some(FAMILY_RANDOM_GOAL)] {
        for pattern in PATTERNS {
            let mut env = Arm7Dof::new(family).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            env.reset(Some(7)).unwrap();
            for t in 0..1000 {
                let step = env
                    .step(&vector(&action(pattern, t, &mut rng)).unwrap())
                    .unwrap();
                let obs = step.obs.to_vec1::<f32>().unwrap();
                assert!(
                    obs.iter().all(|v| v.is_finite() && v.abs() < 1e3) && step.reward.is_finite(),
                    "{family:?} {pattern:?} t={t}: {obs:?}"
                );
                // The joint limits hold (up to the solver's softness).
                for (q, r) in obs[..ACT_DIM].iter().zip(RANGES) {
                    assert!(q > &(r[0] - 0.1) && q < &(r[1] + 0.1), "t={t}: {obs:?}");
                }
            }
        }
    }
}

fn trajectory(env: &mut dyn Env, seed: u64, steps: usize) -> Vec<u32> {
    robots_common::trajectory(env, seed, steps, |t, rng| action(Pattern::Random, t, rng))
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let mut a = Arm7Dof::new(None).unwrap();
    let mut b = Arm7Dof::new(None).unwrap();
    let first = trajectory(&mut a, 5, 200);
    assert_eq!(first, trajectory(&mut b, 5, 200));
    assert_eq!(first, trajectory(&mut a, 5, 200));
    assert_ne!(first, trajectory(&mut b, 6, 200));
}

/// Runs in a child process of this test binary when `MBRL_ARM7DOF_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut env = Arm7Dof::new(None).unwrap();
    let digest = robots_common::digest(&trajectory(&mut env, 9, 300));
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_ARM7DOF_CHILD",
        digest,
    );
}

/// Along random trajectories, the observed end effector (the simulated wrist-roll body's
/// point) equals the forward kinematics of the observed joint angles.
#[test]
fn the_simulated_end_effector_equals_the_forward_kinematics() {
    let mut env = Arm7Dof::new(None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let obs = env.reset(Some(1)).unwrap().0.to_vec1::<f32>().unwrap();
    // The straight arm points along x: shoulder + 0.1 + 0.4 + 0.321 + 0.1.
    let straight = forward_kinematics(&[0.0; ACT_DIM]);
    assert!((straight[0] - (-0.05 + 0.921)).abs() < 1e-6, "{straight:?}");
    let mut max_err = 0f32;
    let mut obs = obs;
    for t in 0..300 {
        let fk = forward_kinematics(&joints(&obs));
        for (a, b) in fk.iter().zip(&obs[EE_INDEX..EE_INDEX + 3]) {
            max_err = max_err.max((a - b).abs());
        }
        obs = env
            .step(&vector(&action(Pattern::BangBang, t, &mut rng)).unwrap())
            .unwrap()
            .obs
            .to_vec1::<f32>()
            .unwrap();
    }
    assert!(max_err < 1e-4, "max |fk - ee| = {max_err}");
}

/// Joint angles within the ranges whose end effector is at `goal` (damped least squares on
/// the forward kinematics with a numerical Jacobian, from a few starting poses), and the
/// remaining distance.
fn inverse_kinematics(goal: [f32; 3]) -> ([f32; ACT_DIM], f32) {
    let err = |q: &[f32; ACT_DIM]| {
        let p = forward_kinematics(q);
        [goal[0] - p[0], goal[1] - p[1], goal[2] - p[2]]
    };
    let norm = |e: [f32; 3]| (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).sqrt();
    let starts = [
        [0.0f32, 0.3, 0.0, -1.0, 0.0, -0.5, 0.0],
        [-0.5, 0.0, 1.0, -2.0, 0.0, -0.5, 0.0],
        [-1.0, 0.5, -1.0, -1.5, 0.5, -0.8, 0.0],
    ];
    let mut best = (starts[0], f32::INFINITY);
    for start in starts {
        let mut q = start;
        for _ in 0..300 {
            let e = err(&q);
            // J (3 x 7) by forward differences.
            let mut jac = [[0.0f32; ACT_DIM]; 3];
            let p = forward_kinematics(&q);
            for j in 0..ACT_DIM {
                let mut qh = q;
                qh[j] += 1e-3;
                let ph = forward_kinematics(&qh);
                for i in 0..3 {
                    jac[i][j] = (ph[i] - p[i]) / 1e-3;
                }
            }
            // dq = J^T (J J^T + l^2 I)^-1 e, the 3 x 3 system by Cramer's rule.
            let mut m = [[0.0f32; 3]; 3];
            for (i, row) in m.iter_mut().enumerate() {
                for (k, v) in row.iter_mut().enumerate() {
                    *v = (0..ACT_DIM).map(|j| jac[i][j] * jac[k][j]).sum::<f32>()
                        + if i == k { 1e-4 } else { 0.0 };
                }
            }
            let det = |m: &[[f32; 3]; 3]| {
                m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                    - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                    + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
            };
            let d = det(&m);
            let y: [f32; 3] = std::array::from_fn(|c| {
                let mut mc = m;
                for (r, row) in mc.iter_mut().enumerate() {
                    row[c] = e[r];
                }
                det(&mc) / d
            });
            for j in 0..ACT_DIM {
                let dq: f32 = (0..3).map(|i| jac[i][j] * y[i]).sum();
                q[j] = (q[j] + 0.5 * dq).clamp(RANGES[j][0], RANGES[j][1]);
            }
        }
        let dist = norm(err(&q));
        if dist < best.1 {
            best = (q, dist);
        }
    }
    best
}

#[test]
fn every_goal_of_the_box_is_reachable() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let corners = (0..8).map(|c| {
        std::array::from_fn(|i| {
            if c >> i & 1 == 0 {
                GOAL_LOW[i]
            } else {
                GOAL_HIGH[i]
            }
        })
    });
    let random =
        (0..12).map(|_| std::array::from_fn(|i| rng.random_range(GOAL_LOW[i]..GOAL_HIGH[i])));
    for goal in corners.chain(random) {
        let (_, dist) = inverse_kinematics(goal);
        assert!(dist < 0.01, "goal {goal:?} missed by {dist}");
    }
}

/// A joint-space PD controller towards an inverse-kinematics solution brings the end
/// effector within 3 cm of the goal, and the reward rises to near zero.
#[test]
fn a_pd_controller_reaches_the_goal() {
    let mut env = Arm7Dof::new(None).unwrap();
    let mut obs = env.reset(Some(4)).unwrap().0.to_vec1::<f32>().unwrap();
    let goal: [f32; 3] = std::array::from_fn(|i| obs[GOAL_INDEX + i]);
    let (target, dist) = inverse_kinematics(goal);
    assert!(dist < 0.01);
    let mut reward = f64::NEG_INFINITY;
    for _ in 0..200 {
        let a: Vec<f32> = (0..ACT_DIM)
            .map(|j| (8.0 * (target[j] - obs[j]) - 1.0 * obs[ACT_DIM + j]) / GEAR)
            .collect();
        let step = env.step(&vector(&a).unwrap()).unwrap();
        reward = step.reward;
        obs = step.obs.to_vec1::<f32>().unwrap();
    }
    let ee = &obs[EE_INDEX..EE_INDEX + 3];
    let d = ee
        .iter()
        .zip(goal)
        .map(|(e, g)| (e - g).powi(2))
        .sum::<f32>()
        .sqrt();
    assert!(d < 0.03, "end effector {ee:?} is {d} m from {goal:?}");
    assert!(reward > -0.01, "{reward}");
}

/// Without a family every reset draws a new goal in the box; with `random-goal` the goal is
/// the task and survives resets.
#[test]
fn goals_are_drawn_per_episode_or_fixed_by_the_task() {
    let mut env = Arm7Dof::new(None).unwrap();
    let mut goals = Vec::new();
    for seed in 0..10 {
        env.reset(Some(seed)).unwrap();
        let g = env.goal();
        assert!(
            (0..3).all(|i| g[i] >= GOAL_LOW[i] && g[i] <= GOAL_HIGH[i]),
            "{g:?}"
        );
        goals.push(g);
    }
    goals.dedup();
    assert_eq!(goals.len(), 10);

    let mut env = Arm7Dof::new(Some(FAMILY_RANDOM_GOAL)).unwrap();
    let task = Task::new("goal", vec![0.5, -0.4, 0.9]);
    env.task_distribution().unwrap().set_task(&task).unwrap();
    for seed in 0..3 {
        let obs = env.reset(Some(seed)).unwrap().0.to_vec1::<f32>().unwrap();
        assert_eq!(&obs[GOAL_INDEX..], &[0.5, -0.4, 0.9]);
    }
    let dist = env.task_distribution().unwrap();
    assert!(dist.set_task(&Task::new("bad", vec![0.5, 0.4])).is_err());
    assert!(dist.test_tasks().is_empty());
}

fn random_episode(steps: usize, seed: u64) -> (Vec<mbrl_envs::robots::SimState>, RenderOptions) {
    let mut env = make_robot(NAME, None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    env.reset(Some(seed)).unwrap();
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..steps {
        env.step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
            .unwrap();
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
    assert!(gif.starts_with(b"GIF89a"));
}

/// Regenerates `docs/robots/arm7dof.gif` (run with `--ignored`).
#[test]
#[ignore]
fn write_docs_gif() {
    let (frames, options) = random_episode(200, 1);
    let options = RenderOptions {
        stride: 2,
        frame_delay_cs: 10,
        pixels_per_meter: 120.0,
        height: 180,
        ..options
    };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/robots/arm7dof.gif");
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

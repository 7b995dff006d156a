//! `hopper` and `hopper-v5`: `check_env`, task functions equal `step` rewards and
//! terminations, long rollouts stay finite, determinism, and the v5 early termination.

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_envs::render::{render_gif, RenderOptions};
use mbrl_envs::robots::hopper::{Hopper, ACT_DIM, NAME, NAME_V5, OBS_DIM};
use mbrl_envs::robots::{make_robot, RewardKind};
use mbrl_envs::{make_factory, EnvConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn action(pattern: usize, t: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match pattern {
        0 => (0..ACT_DIM).map(|_| rng.random_range(-1.0..=1.0)).collect(),
        1 => (0..ACT_DIM)
            .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
            .collect(),
        _ => {
            let s = if (t / 10).is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            vec![s, -s, s]
        }
    }
}

#[test]
fn passes_check_env() {
    for name in [NAME, NAME_V5] {
        let config = EnvConfig {
            name: name.into(),
            ..EnvConfig::default()
        };
        let report = check_env(
            &make_factory(&config).unwrap(),
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

#[test]
fn long_rollouts_stay_finite_under_every_action_pattern() {
    for pattern in 0..3 {
        let mut env = Hopper::new(RewardKind::MeTrpo).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        env.reset(Some(7)).unwrap();
        for t in 0..1000 {
            let step = env
                .step(&vector(&action(pattern, t, &mut rng)).unwrap())
                .unwrap();
            let obs = step.obs.to_vec1::<f32>().unwrap();
            assert!(
                obs.iter().all(|v| v.is_finite() && v.abs() < 1e3) && step.reward.is_finite(),
                "pattern {pattern} t={t}: {obs:?}"
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
            let step = env.step(&vector(&action(0, t, &mut rng)).unwrap()).unwrap();
            bits.extend(
                step.obs
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits()),
            );
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

#[test]
fn renders_an_episode() {
    let mut env = make_robot(NAME, None).unwrap();
    env.reset(Some(0)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..20 {
        env.step(&vector(&action(0, t, &mut rng)).unwrap()).unwrap();
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
        env.step(&vector(&action(0, t, &mut rng)).unwrap()).unwrap();
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

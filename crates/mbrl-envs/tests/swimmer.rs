//! `swimmer` and `swimmer-v5`: `check_env`, task functions equal `step` rewards, long rollouts
//! stay finite, determinism (also across processes), and the hand-made fluid: its drag matches
//! MuJoCo's inertia-box formulas, and it is what lets an undulating swimmer move forward.

#[path = "common/robots.rs"]
mod robots_common;

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::{vector, Env};
use mbrl_envs::make_factory;
use mbrl_envs::render::{render_gif, RenderOptions, View};
use mbrl_envs::robots::make_robot;
use mbrl_envs::robots::sim::{Fluid, Sim};
use mbrl_envs::robots::swimmer::{self, Swimmer, ACT_DIM, FLUID, NAME, NAME_V5, OBS_DIM};
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

/// A travelling wave down the body: the second joint lags the first by a quarter period.
fn wave(t: usize) -> Vec<f32> {
    let phase = 2.0 * std::f32::consts::PI * t as f32 / 50.0;
    vec![phase.sin(), (phase - std::f32::consts::FRAC_PI_2).sin()]
}

/// Observations and rewards of `steps` random steps from `reset(seed)` (resetting at
/// terminations), as raw bits.
fn trajectory(env: &mut dyn Env, seed: u64, steps: usize) -> Vec<u32> {
    robots_common::trajectory(env, seed, steps, |t, rng| action(Pattern::Random, t, rng))
}

#[test]
fn passes_check_env() {
    for name in [NAME, NAME_V5] {
        let report = check_env(
            &make_factory(&config(name, None)).unwrap(),
            &CheckEnvOptions {
                steps: 400,
                ..CheckEnvOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.max_reward_error < 1e-5, "{name}");
    }
    assert!(make_robot(NAME, Some("forward-backward")).is_err());
}

#[test]
fn spaces_and_masses_follow_the_mjcf_model() {
    let mut env = Swimmer::new(RewardKind::MeTrpo).unwrap();
    assert_eq!(env.observation_space().flat_dim(), OBS_DIM);
    assert_eq!(env.action_space().flat_dim(), ACT_DIM);
    assert_eq!(env.spec().max_episode_steps, Some(200));
    // Density 1000: a capsule of radius 0.1 and length 1 weighs 35.6 kg.
    for m in env.body_masses() {
        assert!((m - 35.60).abs() < 0.01, "{m}");
    }
    let obs = env.reset(Some(0)).unwrap().0.to_vec1::<f32>().unwrap();
    assert!(obs.iter().all(|v| v.abs() <= 0.1 + 1e-6), "{obs:?}");
}

/// Task functions reproduce `step`'s reward for both variants.
#[test]
fn task_functions_equal_step_rewards() {
    for name in [NAME, NAME_V5] {
        let mut env = make_robot(name, None).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut obs = env.reset(Some(3)).unwrap().0.to_vec1::<f32>().unwrap();
        for t in 0..100 {
            let a = action(Pattern::Random, t, &mut rng);
            let step = env.step(&vector(&a).unwrap()).unwrap();
            let next = step.obs.to_vec1::<f32>().unwrap();
            let fns = env.task_functions();
            let (o, u, n) = (batch(&obs), batch(&a), batch(&next));
            let r = fns.reward(&o, &u, &n).unwrap().to_vec1::<f32>().unwrap()[0] as f64;
            assert!(
                (r - step.reward).abs() <= 1e-5 * (1.0 + step.reward.abs()),
                "{name} t={t}: task fn {r} vs step {}",
                step.reward
            );
            let done = fns
                .terminated(&o, &u, &n)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0];
            assert!(done == 0.0 && !step.terminated);
            obs = next;
        }
    }
}

#[test]
fn long_rollouts_stay_finite_under_every_action_pattern() {
    for pattern in PATTERNS {
        let mut env = Swimmer::new(RewardKind::MeTrpo).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        env.reset(Some(7)).unwrap();
        for t in 0..1000 {
            let step = env
                .step(&vector(&action(pattern, t, &mut rng)).unwrap())
                .unwrap_or_else(|e| panic!("{pattern:?} t={t}: {e}"));
            let obs = step.obs.to_vec1::<f32>().unwrap();
            assert!(
                obs.iter().all(|v| v.is_finite() && v.abs() < 1e2) && step.reward.is_finite(),
                "{pattern:?} t={t}: {obs:?}"
            );
            // The joints stay within their +-100 degree range (small solver slack).
            let limit = 100f32.to_radians() + 0.05;
            assert!(obs[1].abs() < limit && obs[2].abs() < limit, "{obs:?}");
        }
    }
}

#[test]
fn same_seed_and_actions_give_bitwise_identical_trajectories() {
    let mut a = Swimmer::new(RewardKind::MeTrpo).unwrap();
    let mut b = Swimmer::new(RewardKind::MeTrpo).unwrap();
    let first = trajectory(&mut a, 5, 200);
    assert_eq!(first, trajectory(&mut b, 5, 200));
    assert_eq!(first, trajectory(&mut a, 5, 200));
    assert_ne!(first, trajectory(&mut b, 6, 200));
}

/// Runs in a child process of this test binary when `MBRL_SWIMMER_CHILD` is set.
#[test]
fn trajectories_are_identical_across_processes() {
    let mut env = Swimmer::new(RewardKind::MeTrpo).unwrap();
    let digest = robots_common::digest(&trajectory(&mut env, 9, 300));
    robots_common::same_digest_in_a_child_process(
        "trajectories_are_identical_across_processes",
        "MBRL_SWIMMER_CHILD",
        digest,
    );
}

/// Half-sizes `(along, across)` of the equivalent inertia box of a capsule of radius `r` and
/// length `l` (uniform density): MuJoCo's `r_i = sqrt(3 / (2M) (I_j + I_k - I_i))`.
fn capsule_box(r: f64, l: f64) -> (f64, f64, f64) {
    let pi = std::f64::consts::PI;
    let (mc, mh) = (pi * r * r * l, 4.0 / 3.0 * pi * r.powi(3));
    let m = mc + mh;
    let i_axis = mc * r * r / 2.0 + mh * 2.0 * r * r / 5.0;
    let i_perp = mc * (l * l / 12.0 + r * r / 4.0)
        + mh * (2.0 * r * r / 5.0 + l * l / 4.0 + 3.0 * l * r / 8.0);
    let along = (1.5 / m * (2.0 * i_perp - i_axis)).sqrt();
    let across = (1.5 / m * i_axis).sqrt();
    (along, across, m)
}

/// The straight swimmer given velocity `v` (x, y) glides for one control step; returns the
/// new root velocity.
fn glide(fluid: Option<Fluid>, v: [f32; 2]) -> [f32; 2] {
    let mut sim = Sim::new(&swimmer::spec());
    sim.disable_contacts();
    sim.set_fluid(fluid);
    sim.reset(&[0.0; 5], &[v[0], v[1], 0.0, 0.0, 0.0]);
    sim.step(&[0.0; ACT_DIM]);
    let qvel = sim.qvel();
    assert!(qvel[2..].iter().all(|w| w.abs() < 1e-4), "{qvel:?}");
    [qvel[0], qvel[1]]
}

/// A straight swimmer sliding sideways or lengthwise slows down exactly as MuJoCo's
/// inertia-box drag says (integrated with the same explicit steps), and sideways drag is much
/// stronger: the anisotropy that makes swimming possible.
#[test]
fn fluid_drag_matches_mujocos_inertia_box_model() {
    let (along, across, unit_mass) = capsule_box(0.1, 1.0);
    let density = f64::from(FLUID.density);
    let mass = 1000.0 * unit_mass;
    let r_eq = (along + 2.0 * across) / 3.0;
    let viscous = 6.0 * std::f64::consts::PI * f64::from(FLUID.viscosity) * r_eq;
    // Each link feels the same force per unit mass, so the whole body decelerates like one.
    let expected = |quadratic: f64, v0: f64| {
        let mut v = v0;
        for _ in 0..4 {
            v -= 0.01 * (quadratic * v.abs() * v + viscous * v) / mass;
        }
        v
    };
    let sideways = glide(Some(FLUID), [0.0, 0.5])[1] as f64;
    let want = expected(2.0 * density * along * across, 0.5);
    assert!((sideways - want).abs() < 1e-3 * 0.5, "{sideways} vs {want}");
    let lengthwise = glide(Some(FLUID), [0.5, 0.0])[0] as f64;
    let want = expected(2.0 * density * across * across, 0.5);
    assert!(
        (lengthwise - want).abs() < 1e-3 * 0.5,
        "{lengthwise} vs {want}"
    );
    assert!(0.5 - sideways > 4.0 * (0.5 - lengthwise));
    // Without a fluid nothing slows it down.
    let free = glide(None, [0.3, 0.4]);
    assert!(
        (free[0] - 0.3).abs() < 1e-5 && (free[1] - 0.4).abs() < 1e-5,
        "{free:?}"
    );
}

/// Centre of mass (x, y) of the swimmer.
fn centre_of_mass(sim: &Sim) -> [f32; 2] {
    let (mut c, mut m) = ([0.0f32; 2], 0.0);
    for (_, rb) in sim
        .state()
        .bodies()
        .iter()
        .filter(|(_, rb)| rb.is_dynamic())
    {
        let p: [f32; 3] = rb.center_of_mass().into();
        c = [c[0] + rb.mass() * p[0], c[1] + rb.mass() * p[1]];
        m += rb.mass();
    }
    [c[0] / m, c[1] / m]
}

/// Centre-of-mass displacement after 200 steps (8 s) of a travelling wave of period
/// `period` steps, amplitude `amp`, second joint lagging by `lag` quarter periods.
fn swim(fluid: Option<Fluid>, period: f32, amp: f32, lag: f32) -> [f32; 2] {
    let mut sim = Sim::new(&swimmer::spec());
    sim.disable_contacts();
    sim.set_fluid(fluid);
    sim.reset(&[0.0; 5], &[0.0; 5]);
    let start = centre_of_mass(&sim);
    for t in 0..200 {
        let phase = 2.0 * std::f32::consts::PI * t as f32 / period;
        let lagged = phase - lag * std::f32::consts::FRAC_PI_2;
        sim.step(&[amp * phase.sin(), amp * lagged.sin()]);
    }
    let end = centre_of_mass(&sim);
    [end[0] - start[0], end[1] - start[1]]
}

/// In the fluid a travelling wave propels the swimmer along its body, and the wave running
/// the other way propels it backward; without the fluid no external force acts, so a gentle
/// wave (one that stays off the joint limits, see docs/robots.md) leaves the centre of mass
/// where it was.
#[test]
fn undulation_swims_only_in_the_fluid() {
    let forward = swim(Some(FLUID), 50.0, 1.0, 1.0);
    let backward = swim(Some(FLUID), 50.0, 1.0, -1.0);
    assert!(
        forward[0] > 0.3 && forward[1].abs() < 0.5 * forward[0],
        "{forward:?}"
    );
    assert!(backward[0] < -0.3, "{backward:?}");
    let dry = swim(None, 50.0, 0.05, 1.0);
    assert!(dry[0].abs() < 0.01 && dry[1].abs() < 0.01, "{dry:?}");
}

#[test]
fn renders_an_episode_from_above() {
    let mut env = make_robot(NAME_V5, None).unwrap();
    assert_eq!(env.default_view(), View::TopAndSide);
    env.reset(Some(0)).unwrap();
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..20 {
        env.step(&vector(&wave(t)).unwrap()).unwrap();
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        ..RenderOptions::default()
    };
    assert!(render_gif(&frames, &options)
        .unwrap()
        .starts_with(b"GIF89a"));
    assert!(env.step(&vector(&[0.0; 3]).unwrap()).is_err());
}

/// Regenerates `docs/robots/swimmer.gif` (run with `--ignored`).
#[test]
#[ignore]
fn write_docs_gif() {
    let mut env = make_robot(NAME, None).unwrap();
    env.reset(Some(1)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..200 {
        env.step(&vector(&action(Pattern::Random, t, &mut rng)).unwrap())
            .unwrap();
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        pixels_per_meter: 40.0,
        stride: 2,
        frame_delay_cs: 4,
        ..RenderOptions::default()
    };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/robots/swimmer.gif");
    std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
}

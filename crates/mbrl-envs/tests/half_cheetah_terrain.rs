//! The half-cheetah's adaptation terrain (thesis Sec. 9.4): the `hill` test task of
//! `sloped-terrain`, the `pier` family's floating blocks, and switching a perturbation in the
//! middle of an episode (disabled joint, slope, hill, pier damping).

use mbrl_core::env::{vector, Env};
use mbrl_core::task::Task;
use mbrl_envs::render::{render_gif, render_rgb, RenderOptions};
use mbrl_envs::robots::half_cheetah::{
    HalfCheetah, HalfCheetahConfig, ACT_DIM, FAMILY_DISABLED_JOINT, FAMILY_PIER,
    FAMILY_SLOPED_TERRAIN, OBS_DIM,
};
use mbrl_envs::robots::terrain::{Hill, PierConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Sines of `freq` Hz with these phases: an open-loop gait.
fn sines(t: usize, freq: f32, phases: [f32; ACT_DIM]) -> [f32; ACT_DIM] {
    let time = t as f32 * 0.05;
    std::array::from_fn(|i| (2.0 * std::f32::consts::PI * freq * time + phases[i]).sin())
}

/// A gait that climbs the test hill: found by random search over frequencies and phases
/// (the best of 1800 sines, then refined around it). From `reset(0)` it runs 9.4 m in 300
/// steps on flat ground and crosses the hill (10.1 m).
fn gait(t: usize) -> [f32; ACT_DIM] {
    sines(t, 2.40, [4.63, 4.57, 3.80, 0.76, 1.86, 4.74])
}

/// A gait that crosses the test pier, from the same search (the hill gait sinks between
/// the blocks at 8 m).
fn pier_gait(t: usize) -> [f32; ACT_DIM] {
    sines(t, 1.53, [2.88, 5.97, 2.06, 5.48, 3.95, 2.64])
}

fn set_task(env: &mut HalfCheetah, task: &Task) {
    env.task_distribution().unwrap().set_task(task).unwrap();
}

/// Observations (with the root x appended) of `steps` steps from `reset(seed)`, calling
/// `switch` before every step. Tasks persist across resets, so compared rollouts use fresh
/// environments.
fn rollout(
    env: &mut HalfCheetah,
    seed: u64,
    steps: usize,
    mut action: impl FnMut(usize) -> [f32; ACT_DIM],
    mut switch: impl FnMut(usize, &mut HalfCheetah),
) -> Vec<Vec<f32>> {
    env.reset(Some(seed)).unwrap();
    (0..steps)
        .map(|t| {
            switch(t, env);
            let step = env.step(&vector(&action(t)).unwrap()).unwrap();
            let mut row = step.obs.to_vec1::<f32>().unwrap();
            row.push(env.qpos()[0]);
            row
        })
        .collect()
}

#[test]
fn sloped_terrain_tests_steep_up_steep_down_and_a_hill() {
    let mut env =
        HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_SLOPED_TERRAIN)).unwrap();
    let dist = env.task_distribution().unwrap();
    let tests = dist.test_tasks();
    let params: Vec<Vec<f64>> = tests.iter().map(|t| t.params.clone()).collect();
    assert_eq!(params.len(), 3, "{tests:?}");
    assert!((params[0][0] - 0.3).abs() < 1e-6 && (params[1][0] + 0.3).abs() < 1e-6);
    assert_eq!(
        params[2].len(),
        3,
        "the hill is [slope, start, run]: {tests:?}"
    );
    assert!((params[2][0] - 0.3).abs() < 1e-6);
    // A hill task round-trips through current_task; bad hills are errors.
    dist.set_task(&tests[2]).unwrap();
    assert_eq!(dist.current_task(), tests[2]);
    for bad in [
        vec![0.0, 2.0, 2.5],
        vec![0.3, 2.0, -1.0],
        vec![0.3, f64::NAN, 1.0],
    ] {
        assert!(dist.set_task(&Task::new("bad", bad)).is_err());
    }
    assert!(dist.set_task(&Task::new("bad", vec![0.1, 2.0])).is_err());
}

#[test]
fn hill_profile_rises_then_falls() {
    let hill = Hill {
        slope: 0.3,
        start: 2.0,
        run: 2.5,
    };
    let crest = 2.5 * 0.3f32.tan();
    assert!((hill.crest_height() - crest).abs() < 1e-6);
    for (x, h) in [
        (0.0, 0.0),
        (2.0, 0.0),
        (3.25, crest / 2.0),
        (4.5, crest),
        (5.75, crest / 2.0),
        (7.0, 0.0),
        (9.0, 0.0),
    ] {
        assert!(
            (hill.height(x) - h).abs() < 1e-5,
            "x={x}: {}",
            hill.height(x)
        );
    }
}

/// The hill is solid: the gait runs identically until the cheetah reaches the ramp, then
/// differently; the cheetah climbs over the hill, its torso lifted over the upper half of
/// either side (it never passes through the hill).
#[test]
fn the_hill_is_an_obstacle_the_cheetah_meets_on_its_way() {
    let hill = Hill {
        slope: 0.3,
        start: 2.0,
        run: 2.5,
    };
    let hill_task = Task::new("hill", vec![0.3, 2.0, 2.5]);
    let mut env =
        HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_SLOPED_TERRAIN)).unwrap();
    let flat = rollout(&mut env, 0, 300, gait, |_, _| {});
    // The hill task is set after the flat rollout, so this env can be reused.
    let hilly = rollout(&mut env, 0, 300, gait, |t, env| {
        if t == 0 {
            set_task(env, &hill_task);
        }
    });
    let x = |row: &Vec<f32>| row[OBS_DIM];
    let far = flat.iter().take_while(|r| x(r) < hill.start - 1.5).count();
    assert!(
        far > 10,
        "the gait reaches the hill too early ({far} steps)"
    );
    assert!(
        flat[..far] == hilly[..far],
        "the hill changed the flat approach"
    );
    assert!(flat.last() != hilly.last(), "the hill changed nothing");
    assert!(x(flat.last().unwrap()) > hill.start + 2.0 * hill.run);
    let end = x(hilly.last().unwrap());
    assert!(
        end > hill.start + 2.0 * hill.run,
        "did not get over the hill: x = {end}"
    );
    let over_upper_half: Vec<_> = hilly
        .iter()
        .filter(|row| (x(row) - (hill.start + hill.run)).abs() < hill.run / 2.0)
        .collect();
    assert!(
        over_upper_half.len() >= 5,
        "{} steps over the upper half",
        over_upper_half.len()
    );
    for row in over_upper_half {
        // Root z (obs[0]) is relative to the start height, so standing on the hill lifts it.
        assert!(
            row[0] > 0.3 * hill.crest_height(),
            "through the hill at x = {}, z = {}",
            x(row),
            row[0]
        );
    }
}

fn pier_config_starting_on_block_0() -> HalfCheetahConfig {
    HalfCheetahConfig {
        pier: PierConfig {
            start: -2.0,
            ..PierConfig::default()
        },
        ..HalfCheetahConfig::default()
    }
}

/// The cheetah standing on block 0 sinks it by its weight over the spring stiffness; the
/// other blocks stay at rest; a lightly damped block overshoots, a heavily damped one does
/// not.
#[test]
fn a_block_sinks_under_the_cheetah_and_bobs_with_little_damping() {
    let config = pier_config_starting_on_block_0();
    let (k, blocks) = (config.pier.stiffness, config.pier.blocks);
    let mut env = HalfCheetah::new(config, Some(FAMILY_PIER)).unwrap();
    let weight = 14.0 * 9.81;
    let mut sink = |damping: f64| {
        let mut trace = Vec::new();
        rollout(
            &mut env,
            0,
            80,
            |_| [0.0; ACT_DIM],
            |t, env| {
                if t == 0 {
                    set_task(env, &Task::new("pier", vec![damping; blocks]));
                }
                trace.push(env.pier_displacements());
            },
        );
        trace.push(env.pier_displacements());
        trace
    };
    let light = sink(50.0);
    let heavy = sink(5000.0);
    let rest = light.last().unwrap();
    let expected = -weight / k;
    assert!(
        (rest[0] - expected).abs() < 0.25 * expected.abs(),
        "block 0 rests at {} m, expected {expected} m",
        rest[0]
    );
    assert!(rest[1..].iter().all(|d| d.abs() < 1e-4), "{rest:?}");
    let lowest = |trace: &[Vec<f32>]| trace.iter().map(|d| d[0]).fold(0.0f32, f32::min);
    assert!(
        lowest(&light) < 1.3 * expected,
        "light damping overshoots: {}",
        lowest(&light)
    );
    assert!(
        lowest(&heavy) > 1.1 * expected,
        "heavy damping does not: {}",
        lowest(&heavy)
    );
}

/// With the held-out test dampings, the gait crosses the first gaps between blocks (at 5 m
/// and 9 m).
#[test]
fn the_cheetah_runs_across_the_pier() {
    let mut env = HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_PIER)).unwrap();
    let test = env.task_distribution().unwrap().test_tasks().remove(0);
    let rows = rollout(&mut env, 0, 300, pier_gait, |t, env| {
        if t == 0 {
            set_task(env, &test);
        }
    });
    let x = rows.last().unwrap()[OBS_DIM];
    assert!(x > 10.0, "reached x = {x}");
    let sunk = env.pier_displacements();
    assert!(sunk.iter().any(|&d| d < -0.005), "no block moved: {sunk:?}");
}

#[test]
fn pier_tasks_draw_one_damping_per_block_in_range() {
    let config = HalfCheetahConfig::default();
    let [lo, hi] = config.pier.damping_range;
    let blocks = config.pier.blocks;
    let mut env = HalfCheetah::new(config, Some(FAMILY_PIER)).unwrap();
    let dist = env.task_distribution().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let tasks = dist.sample_tasks(5, &mut rng);
    for task in &tasks {
        assert_eq!(task.params.len(), blocks);
        assert!(task
            .params
            .iter()
            .all(|&c| c >= lo as f64 && c <= hi as f64));
    }
    assert_ne!(tasks[0], tasks[1]);
    // The test configuration is fixed (its own seed), whatever the sampling generator.
    assert_eq!(dist.test_tasks(), dist.test_tasks());
    dist.set_task(&tasks[2]).unwrap();
    assert_eq!(dist.current_task(), tasks[2]);
    assert!(dist.set_task(&Task::new("bad", vec![1.0; 3])).is_err());
    assert!(dist
        .set_task(&Task::new("bad", vec![-1.0; blocks]))
        .is_err());
    let bad = HalfCheetahConfig {
        pier: PierConfig {
            mass: 0.0,
            ..PierConfig::default()
        },
        ..HalfCheetahConfig::default()
    };
    assert!(HalfCheetah::new(bad.clone(), Some(FAMILY_PIER)).is_err());
    // Other families do not build the pier, so its config does not matter there.
    assert!(HalfCheetah::new(bad, None).is_ok());
}

/// Thesis Sec. 9.4: "switching between disabled joints during a rollout". From the switch
/// on, the disabled joint's command has no effect: two rollouts whose commands differ only
/// on that joint after the switch stay bitwise identical; without the switch they part.
#[test]
fn disabling_a_joint_mid_episode_takes_effect_at_once() {
    let fresh =
        || HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_DISABLED_JOINT)).unwrap();
    let action = |sign: f32| {
        move |t: usize| {
            let mut a = gait(t);
            if t >= 20 {
                a[3] = sign;
            }
            a
        }
    };
    let disable_at_20 = |t: usize, env: &mut HalfCheetah| {
        if t == 20 {
            set_task(env, &Task::new("fthigh", vec![3.0]));
        }
    };
    let up = rollout(&mut fresh(), 3, 60, action(1.0), disable_at_20);
    let down = rollout(&mut fresh(), 3, 60, action(-1.0), disable_at_20);
    assert!(
        up == down,
        "the disabled joint's command changed the rollout"
    );
    let up = rollout(&mut fresh(), 3, 60, action(1.0), |_, _| {});
    let down = rollout(&mut fresh(), 3, 60, action(-1.0), |_, _| {});
    assert!(up[..20] == down[..20] && up[20..] != down[20..]);
}

/// Tilting the ground mid-episode: the rollout is unchanged up to the switch, then the
/// steep upward slope pulls the cheetah back.
#[test]
fn switching_the_slope_mid_episode_changes_the_progress() {
    let fresh =
        || HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_SLOPED_TERRAIN)).unwrap();
    let flat = rollout(&mut fresh(), 2, 60, gait, |_, _| {});
    let tilted = rollout(&mut fresh(), 2, 60, gait, |t, env| {
        if t == 20 {
            set_task(env, &Task::new("up", vec![0.3]));
        }
    });
    assert!(flat[..20] == tilted[..20], "changed before the switch");
    let x = |rows: &Vec<Vec<f32>>| rows.last().unwrap()[OBS_DIM];
    assert!(
        x(&tilted) < x(&flat) - 0.2,
        "{} vs {}",
        x(&tilted),
        x(&flat)
    );
    // Back to flat mid-episode, then a hill: both switches are accepted and take effect.
    let back = rollout(&mut fresh(), 2, 60, gait, |t, env| match t {
        20 => set_task(env, &Task::new("up", vec![0.3])),
        40 => set_task(env, &Task::new("hill", vec![0.3, 5.0, 2.0])),
        _ => {}
    });
    assert!(back[..40] == tilted[..40] && back[40..] != tilted[40..]);
}

/// New dampings mid-episode change how the block under the cheetah moves from then on.
#[test]
fn switching_pier_damping_mid_episode_changes_the_blocks() {
    let config = pier_config_starting_on_block_0();
    let blocks = config.pier.blocks;
    let fresh = || HalfCheetah::new(config.clone(), Some(FAMILY_PIER)).unwrap();
    let switch_to = |c: f64| {
        move |t: usize, env: &mut HalfCheetah| match t {
            0 => set_task(env, &Task::new("pier", vec![100.0; blocks])),
            10 => set_task(env, &Task::new("pier", vec![c; blocks])),
            _ => {}
        }
    };
    let same = rollout(&mut fresh(), 0, 40, pier_gait, switch_to(100.0));
    let changed = rollout(&mut fresh(), 0, 40, pier_gait, switch_to(1000.0));
    assert!(same[..10] == changed[..10] && same[10..] != changed[10..]);
}

/// Frames of the gait on `family` with `task`, and how to draw them.
fn terrain_episode(
    family: &str,
    task: Task,
    gait: fn(usize) -> [f32; ACT_DIM],
    steps: usize,
) -> (Vec<mbrl_envs::robots::SimState>, RenderOptions) {
    use mbrl_envs::robots::RobotEnv;
    let mut env = HalfCheetah::new(HalfCheetahConfig::default(), Some(family)).unwrap();
    env.reset(Some(0)).unwrap();
    set_task(&mut env, &task);
    let mut frames = vec![env.sim_state().clone()];
    for t in 0..steps {
        env.step(&vector(&gait(t)).unwrap()).unwrap();
        frames.push(env.sim_state().clone());
    }
    let options = RenderOptions {
        view: env.default_view(),
        width: 480,
        ..RenderOptions::default()
    };
    (frames, options)
}

/// The renderer draws the terrain: the hill and the pier's blocks change the picture.
#[test]
fn the_renderer_draws_the_hill_and_the_pier() {
    let sky = [245u8, 247, 250];
    let non_sky = |family: &str, task: Task| {
        let (frames, options) = terrain_episode(family, task, gait, 0);
        let rgb = render_rgb(&frames, &options).unwrap().remove(0);
        rgb.pixels.chunks(3).filter(|p| *p != sky).count()
    };
    let flat = non_sky(FAMILY_SLOPED_TERRAIN, Task::new("flat", vec![0.0]));
    let hill = non_sky(
        FAMILY_SLOPED_TERRAIN,
        Task::new("hill", vec![0.3, 1.0, 1.0]),
    );
    let pier = non_sky(FAMILY_PIER, Task::new("pier", vec![500.0; 12]));
    // A hill 0.31 m high over 2 m adds about 0.31 m^2 = 2000 pixels at 80 px/m.
    assert!(hill > flat + 1000, "hill {hill} vs flat {flat}");
    // The pier's 0.1 m blocks replace the 0.3 m band of flat ground below z = 0.
    assert!(
        pier + 1000 < flat && pier > flat / 5,
        "pier {pier} vs flat {flat}"
    );
}

/// Regenerates `docs/robots/half-cheetah-hill.gif` and `half-cheetah-pier.gif` (run with
/// `--ignored`).
#[test]
#[ignore]
fn write_docs_gifs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/robots");
    std::fs::create_dir_all(dir).unwrap();
    let hill = Task::new("hill", vec![0.3, 2.0, 2.5]);
    let pier = HalfCheetah::new(HalfCheetahConfig::default(), Some(FAMILY_PIER))
        .unwrap()
        .task_distribution()
        .unwrap()
        .test_tasks()
        .remove(0);
    for (name, family, task, gait) in [
        (
            "hill",
            FAMILY_SLOPED_TERRAIN,
            hill,
            gait as fn(usize) -> [f32; ACT_DIM],
        ),
        ("pier", FAMILY_PIER, pier, pier_gait),
    ] {
        let (frames, options) = terrain_episode(family, task, gait, 200);
        let options = RenderOptions {
            stride: 2,
            frame_delay_cs: 10,
            ..options
        };
        let path = format!("{dir}/half-cheetah-{name}.gif");
        std::fs::write(path, render_gif(&frames, &options).unwrap()).unwrap();
    }
}

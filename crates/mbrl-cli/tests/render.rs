//! `mbrl-cli render` used as a user would: random actions on a robot (GIF and PNG strip), a
//! tiny trained run's policy, and every bad input exits 2 with a clear message.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn cli() -> Command {
    Command::cargo_bin("mbrl-cli").unwrap()
}

/// Frames of a GIF: one graphic control extension (`21 F9 04`) per frame, as the renderer
/// writes a delay for every frame.
fn gif_frames(bytes: &[u8]) -> usize {
    assert!(bytes.starts_with(b"GIF89a"), "not a GIF");
    bytes
        .windows(3)
        .filter(|w| *w == [0x21, 0xF9, 0x04])
        .count()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn env_mode_writes_an_animated_gif_of_random_actions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cheetah.gif");
    cli()
        .args(["render", "--env", "half-cheetah", "--task-family", "pier"])
        .args(["--steps", "12", "--seed", "3", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("13 states"));
    // The reset state and one frame per step.
    assert_eq!(gif_frames(&std::fs::read(&out).unwrap()), 13);
    // The same seed draws the same episode.
    let again = dir.path().join("again.gif");
    cli()
        .args(["render", "--env", "half-cheetah", "--task-family", "pier"])
        .args(["--steps", "12", "--seed", "3", "--out"])
        .arg(&again)
        .assert()
        .success();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn png_strips_tile_frames_in_rows_of_eight() {
    let dir = tempfile::tempdir().unwrap();
    // Planar robot: one 320x160 side view per frame; 21 states at stride 2 give 11 frames.
    let out = dir.path().join("hopper.png");
    cli()
        .args([
            "render", "--env", "hopper", "--steps", "20", "--stride", "2", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(png_size(&std::fs::read(&out).unwrap()), (8 * 320, 2 * 160));
    // The ant has a top and a side view (321 rows); --format png with the default name.
    cli()
        .current_dir(dir.path())
        .args(["render", "--env", "ant", "--steps", "3", "--format", "png"])
        .assert()
        .success();
    assert_eq!(
        png_size(&std::fs::read(dir.path().join("ant.png")).unwrap()),
        (4 * 320, 321)
    );
}

/// The single run directory under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let parent = out.join("random").join("half-cheetah");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

#[test]
fn run_mode_draws_the_checkpointed_policy_in_the_run_env() {
    let out = tempfile::tempdir().unwrap();
    cli()
        .args(["train", "--out"])
        .arg(out.path())
        .args(["--set", "algo=random", "--set", "env.name=half-cheetah"])
        .args([
            "--set",
            "env.max_episode_steps=15",
            "--set",
            "run.iterations=1",
        ])
        .args(["--set", "random.steps_per_iteration=30"])
        .args(["--set", "run.eval_episodes=1"])
        .assert()
        .success();
    let run = run_dir(out.path());
    cli()
        .args(["render", "--run"])
        .arg(&run)
        .args(["--episodes", "2", "--deterministic", "--stride", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("32 states"));
    // Two episodes of the run's 15-step limit: 2 x 16 states, every second drawn.
    let gif = std::fs::read(run.join("render.gif")).unwrap();
    assert_eq!(gif_frames(&gif), 16);
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&str], message: &str| {
        cli()
            .current_dir(dir.path())
            .arg("render")
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    };
    fails(
        &["--env", "pendulum"],
        "env `pendulum` cannot be rendered (it has no simulation to draw); renderable envs: \
         half-cheetah",
    );
    fails(&["--env", "half-cheeta"], "renderable envs:");
    fails(
        &["--env", "hopper", "--task-family", "pier"],
        "no task family `pier`",
    );
    fails(&[], "--run <RUN>");
    fails(&["--env", "hopper", "--run", "."], "cannot be used with");
    fails(
        &["--env", "hopper", "--episodes", "2"],
        "cannot be used with",
    );
    fails(&["--run", "."], "is not a run directory");
    fails(
        &["--env", "hopper", "--stride", "0"],
        "--stride must be at least 1",
    );
    fails(&["--env", "hopper", "--steps", "0"], "at least 1");
    fails(
        &["--env", "hopper", "--format", "png", "--out", "x.gif"],
        "--format png writes a .png file",
    );
    fails(
        &["--env", "hopper", "--format", "jpeg"],
        "invalid value 'jpeg'",
    );
}

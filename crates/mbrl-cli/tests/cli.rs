//! The command line used as a user would: train (random baseline, tiny budget), resume, eval,
//! validate, envs, algos, Ctrl-C; and every bad input gets a clear message and exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

fn cli() -> Command {
    Command::cargo_bin("mbrl-cli").unwrap()
}

/// The single run directory under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let parent = out.join("random").join("point2d");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn train_tiny(out: &Path, iterations: u32) -> PathBuf {
    cli()
        .args(["train", "--out"])
        .arg(out)
        .args(["--set", "algo=random", "--set", "env.name=point2d"])
        .args(["--set", &format!("run.iterations={iterations}")])
        .args([
            "--set",
            "random.steps_per_iteration=60",
            "--set",
            "run.eval_episodes=3",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("finished"));
    run_dir(out)
}

/// Metrics rows without the wall-time column (which differs between runs).
fn metrics_without_time(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(3);
            cells.join(",")
        })
        .collect()
}

#[test]
fn train_writes_a_complete_run_directory() {
    let out = tempfile::tempdir().unwrap();
    let dir = train_tiny(out.path(), 2);
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.ends_with("-s0") && name.len() == "20261126-010203-s0".len(),
        "{name}"
    );
    for file in ["config.toml", "metrics.csv", "metrics.jsonl", "train.log"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("iteration,env_steps,eval_return,wall_time_s"));
    assert_eq!(lines.count(), 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    let checkpoints: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .collect();
    assert_eq!(checkpoints.len(), 2, "one .safetensors and one .json");
    let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
    assert!(log.contains("iteration 2/2"));
    // The log names the machine and the kernels chosen for it (benchmark records).
    assert!(
        log.contains("machine: ") && log.contains("matmul "),
        "{log}"
    );
}

#[test]
fn same_seed_gives_the_same_run() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (da, db) = (train_tiny(a.path(), 2), train_tiny(b.path(), 2));
    assert_eq!(metrics_without_time(&da), metrics_without_time(&db));
}

#[test]
fn resume_continues_exactly_like_an_uninterrupted_run() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let straight = train_tiny(a.path(), 4);
    let resumed = train_tiny(b.path(), 2);
    cli()
        .args(["train", "--resume"])
        .arg(&resumed)
        .args(["--set", "run.iterations=4"])
        .assert()
        .success();
    assert_eq!(
        metrics_without_time(&straight),
        metrics_without_time(&resumed)
    );
}

#[test]
fn eval_reports_the_mean_return_of_the_latest_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let dir = train_tiny(out.path(), 1);
    cli()
        .args(["eval", "--run"])
        .arg(&dir)
        .args(["--episodes", "4"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"eval_return -?\d+\.\d+ \+- \d+\.\d+ over 4 episodes")
                .unwrap(),
        );
}

#[test]
fn validate_envs_and_algos_describe_what_exists() {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("default.toml");
    cli()
        .args(["validate", "--config"])
        .arg(&default)
        .assert()
        .success()
        .stdout(predicate::str::contains("OK"));
    cli()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"point2d\s+2\s+2\s+30").unwrap());
    // A family's held-out tasks, one label per line (pendulum's motor gains +-1.8).
    cli()
        .args(["envs", "--env", "pendulum", "--task-family", "motor"])
        .assert()
        .success()
        .stdout("gain=+1.800\ngain=-1.800\n");
    cli()
        .args([
            "envs",
            "--env",
            "point1d-goal",
            "--task-family",
            "goal-sign",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds no tasks out"));
    cli()
        .arg("algos")
        .assert()
        .success()
        .stdout(predicate::str::contains("random"));
}

/// Writes `text` to a config file in `dir`.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_configs_exit_2_with_file_key_and_choices() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "algo = \"random\"\n[run]\niteratons = 3\n",
            "key `run.iteratons`: unknown field `iteratons`, expected one of `iterations`",
        ),
        (
            "algo = \"random\"\nseed = \"x\"\n",
            "key `seed`: invalid type: string \"x\", expected u64",
        ),
        (
            "algo = \"random\"\n[env]\nname = \"pendulm\"\n",
            "key `env.name`: unknown env `pendulm`; valid envs: point2d",
        ),
        (
            "algo = \"sca\"\n",
            "key `algo`: unknown algorithm `sca`; valid algorithms: random, trpo, ppo, me-trpo, mb-bptt",
        ),
        (
            "algo = \"grbal\"\n[adapt]\npast_steps = 0\n",
            "key `adapt.past_steps`: invalid argument: adapt.past_steps must be at least 1, got 0",
        ),
        (
            "algo = \"grbal\"\n[adapt.planner]\ncandidates = 0\n",
            "key `adapt.planner.candidates`",
        ),
        (
            "algo = \"random\"\n[run]\neval_episodes = 0\n",
            "key `run.eval_episodes`: must be at least 1",
        ),
        ("algo = [\n", "invalid TOML"),
    ];
    for (text, message) in cases {
        let path = config_file(dir.path(), text);
        let out = dir.path().to_string_lossy().to_string();
        for args in [vec!["validate"], vec!["train", "--out", out.as_str()]] {
            cli()
                .args(args)
                .arg("--config")
                .arg(&path)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(message))
                .stderr(predicate::str::contains("bad.toml"))
                .stderr(predicate::str::contains("panicked").not());
        }
    }
}

#[test]
fn grbal_evaluates_in_held_out_tasks_with_a_mid_episode_switch() {
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        "algo=\"grbal\"",
        "env.name=\"pendulum\"",
        "env.task_family=\"motor\"",
        "run.iterations=1",
        "run.eval_episodes=1",
        "adapt.rollouts_per_iteration=1",
        "adapt.hidden_sizes=[8]",
        "adapt.max_epochs=2",
        "adapt.planner.candidates=8",
        "adapt.planner.horizon=2",
    ];
    let mut train = cli();
    train.args(["train", "--out"]).arg(dir.path());
    for s in settings {
        train.args(["--set", s]);
    }
    train.assert().success();
    let parent = dir.path().join("grbal").join("pendulum");
    let run = std::fs::read_dir(&parent)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    cli()
        .args(["eval", "--run"])
        .arg(&run)
        .args(["--task", "gain=-1.800", "--switch-step", "50"])
        .args(["--switch-task", "gain=+1.800"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "task `gain=-1.800`, switched to `gain=+1.800` at step 50",
        ));
    cli()
        .args(["eval", "--run"])
        .arg(&run)
        .args(["--task", "gain=9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown task `gain=9` of family `motor`; valid tasks: `gain=+1.800`, `gain=-1.800`",
        ));
    cli()
        .args(["eval", "--run"])
        .arg(&run)
        .args(["--task-family", "mass-length", "--task", "m=1.800,l=1.200"])
        .assert()
        .success();
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    cli()
        .args(["train", "--set", "run.iterations=abc", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "(--set run.iterations=abc): key `run.iterations`: invalid type",
        ));
    cli()
        .args(["validate", "--config"])
        .arg(dir.path().join("missing.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the file"));
    cli()
        .args(["eval", "--run"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a run directory"));
    cli()
        .args(["eval", "--run"])
        .arg(dir.path())
        .args(["--horizon", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--planner"));
    cli()
        .args(["train", "--resume"])
        .arg(dir.path())
        .assert()
        .code(2);
    cli().arg("bogus").assert().code(2);
    cli()
        .args(["train", "--seed", "minus-one"])
        .assert()
        .code(2);
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_0() {
    let out = tempfile::tempdir().unwrap();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("mbrl-cli"))
        .args([
            "train",
            "--set",
            "algo=random",
            "--set",
            "env.name=point2d",
            "--set",
            "run.iterations=100000",
            "--set",
            "run.checkpoint_every=0",
            "--out",
        ])
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let found = std::fs::read_dir(out.path().join("random/point2d"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("metrics.csv"));
        if let Some(m) = found.filter(|m| {
            std::fs::read_to_string(m)
                .map(|t| t.lines().count() > 2)
                .unwrap_or(false)
        }) {
            break m;
        }
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert!(code.success(), "exit status {code:?}");
    let dir = metrics.parent().unwrap();
    let ckpts = std::fs::read_dir(dir.join("checkpoints")).unwrap().count();
    assert_eq!(ckpts, 2);
    let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
    assert!(log.contains("interrupted: checkpoint saved"));
}

#[test]
fn plot_draws_mean_and_spread_over_seeds() {
    let out = tempfile::tempdir().unwrap();
    for seed in ["1", "2"] {
        cli()
            .args(["train", "--out"])
            .arg(out.path())
            .args([
                "--seed",
                seed,
                "--set",
                "algo=random",
                "--set",
                "env.name=point2d",
            ])
            .args([
                "--set",
                "run.iterations=3",
                "--set",
                "random.steps_per_iteration=60",
            ])
            .args(["--set", "run.eval_episodes=2"])
            .assert()
            .success();
    }
    let png = out.path().join("curves.png");
    cli()
        .arg("plot")
        .arg(out.path().join("random/point2d"))
        .arg("--out")
        .arg(&png)
        .args(["--threshold", "-1000"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| random | 60 |"));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..4], b"\x89PNG");
    let csv = std::fs::read_to_string(png.with_extension("csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "group,x,mean,std,seeds");
    assert_eq!(rows.len(), 4);
    assert!(
        rows[1].starts_with("random,60,") && rows[1].ends_with(",2"),
        "{csv}"
    );
    // Redrawn from its CSV: the same table, no CSV rewritten.
    let redrawn = out.path().join("redrawn.png");
    cli()
        .arg("plot")
        .arg("--from-csv")
        .arg(png.with_extension("csv"))
        .arg("--out")
        .arg(&redrawn)
        .args(["--threshold", "-1000"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| random | 60 |"));
    assert_eq!(&std::fs::read(&redrawn).unwrap()[..4], b"\x89PNG");
    assert!(!redrawn.with_extension("csv").exists());
    cli()
        .arg("plot")
        .arg(out.path())
        .args(["--y", "no_such_column"])
        .assert()
        .code(2);
    let not_ours = out.path().join("other.csv");
    std::fs::write(&not_ours, "a,b\n1,2\n").unwrap();
    cli()
        .args(["plot", "--from-csv"])
        .arg(&not_ours)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("group,x,mean,std,seeds"));
}

/// Every shipped config validates, and the SAC / MBPO / MAAC configs train (one iteration, with
/// their budgets cut down) end to end: run directory, metrics with their own columns.
#[test]
fn shipped_configs_validate_and_the_actor_critic_ones_train() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for dir in std::fs::read_dir(&configs).unwrap() {
        let dir = dir.unwrap().path();
        let files: Vec<PathBuf> = if dir.is_dir() {
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|f| f.unwrap().path())
                .collect()
        } else {
            vec![dir]
        };
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        {
            let text: toml::Value =
                toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            let mujoco = text.get("env").and_then(|e| e.get("backend"))
                == Some(&toml::Value::String("mujoco".into()));
            let validate = cli().args(["validate", "--config"]).arg(file).assert();
            if mujoco && !cfg!(feature = "mujoco") {
                // Without the feature the config is refused with the way to enable it.
                validate
                    .failure()
                    .stderr(predicate::str::contains("mujoco` cargo feature"));
            } else {
                validate.success();
            }
        }
    }
    for algo in ["sac", "mbpo", "maac"] {
        let out = tempfile::tempdir().unwrap();
        cli()
            .args(["train", "--out"])
            .arg(out.path())
            .arg("--config")
            .arg(configs.join(algo).join("pendulum.toml"))
            .args(["--set", "run.iterations=1", "--set", "run.eval_episodes=1"])
            .args(["--set", "env.max_episode_steps=40"])
            .args(["--set", "off_policy.steps_per_iteration=40"])
            .args([
                "--set",
                "off_policy.random_steps=20",
                "--set",
                "off_policy.updates_per_step=1",
            ])
            .args([
                "--set",
                "imagination.rollout_batch=64",
                "--set",
                "imagination.model_train_every=10",
            ])
            .args([
                "--set",
                "imagination.rollout_every=10",
                "--set",
                "model.max_epochs=3",
            ])
            .assert()
            .success()
            .stdout(predicate::str::contains("finished"));
        let runs = out.path().join(algo).join("pendulum");
        let dir = std::fs::read_dir(&runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let header = metrics.lines().next().unwrap();
        assert!(
            header.contains("critic_loss") && header.contains("alpha"),
            "{algo}: {header}"
        );
        if algo != "sac" {
            assert!(header.contains("imagined_transitions"), "{algo}: {header}");
        }
        // Test-time MPC in the run's model, from its policy and Q (thesis Table 1).
        let eval_mpc = |planner: &str, extra: &[&str]| {
            cli()
                .args(["eval", "--run"])
                .arg(&dir)
                .args(["--episodes", "2", "--planner", planner])
                .args(["--horizon", "2", "--candidates", "16", "--iterations", "2"])
                .args(extra)
                .assert()
        };
        if algo == "sac" {
            eval_mpc("cem", &[])
                .code(2)
                .stderr(predicate::str::contains(
                    "`sac` has no fitted dynamics model",
                ));
        } else {
            // 2 episodes x 40 plans, each in 5 members: the proposal's rollout (one model
            // step: the last action needs no next state), 2 iterations x 2 steps x 16
            // candidates, and the final evaluation of the plan (2 steps, one row).
            let rows = 2 * 40 * 5 * (1 + 2 * 2 * 16 + 2);
            eval_mpc("cem", &[])
                .success()
                .stdout(predicate::str::contains(format!(
                    "over 2 episodes (mean length 40.0), MPC (Cem, horizon 2, 16 candidates, 2 \
                 iterations; {rows} model rows)"
                )));
            eval_mpc("random-shooting", &["--no-proposal", "--no-terminal-value"])
                .success()
                .stdout(predicate::str::contains("MPC (RandomShooting"));
            cli()
                .args(["eval", "--run"])
                .arg(&dir)
                .args(["--planner", "mppi", "--candidates", "0"])
                .assert()
                .code(2)
                .stderr(predicate::str::contains(
                    "planner settings: invalid argument: planner.candidates must be positive",
                ));
        }
    }
}

#[test]
fn an_asynchronous_run_shows_versions_and_staleness_on_its_progress_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/async/point2d.toml");
    cli()
        .args(["train", "--out"])
        .arg(tmp.path())
        .arg("--config")
        .arg(config)
        .args([
            "--set",
            "run.iterations=1",
            "--set",
            "async.step_seconds=0.01",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("iteration 1/1 env_steps 90")
                .and(predicate::str::contains("policy_version"))
                .and(predicate::str::contains("staleness")),
        );
}

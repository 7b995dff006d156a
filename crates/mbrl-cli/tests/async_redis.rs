//! Asynchronous ME-TRPO with its servers in a real `redis-server` and every worker a separate
//! `mbrl-cli worker` process: the model and the policy workers are killed with SIGKILL in the
//! middle of the run and restarted; the run still finishes, the restarted model worker
//! rebuilds its data from the rollouts it had taken, and every pushed rollout was taken by the
//! model worker at most once (none pending, its count matches its data). A finished run
//! resumes with new workers, whose model worker starts from the checkpoint's data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mbrl_async::testing::RedisServer;

const RUN: &str = "kill-test";

fn overrides(server: &RedisServer, run: &str) -> Vec<String> {
    [
        "async.backend=\"redis\"".to_string(),
        format!("async.redis_url=\"{}\"", server.url("")),
        format!("async.run_id=\"{run}\""),
        "async.step_seconds=0.05".into(),
        "run.checkpoint_every=0".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

fn spawn(args: &[&str], extra: &[String], log: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("mbrl-cli"))
        .args(args)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn worker(role: &str, config: &Path, extra: &[String], log: &Path) -> Child {
    let config = config.to_str().unwrap();
    spawn(&["worker", "--role", role, "--config", config], extra, log)
}

/// `redis-cli` against the test server.
fn redis_cli(server: &RedisServer, args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server)");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The value after `name` in a flat `redis-cli` reply.
fn field(reply: &[String], name: &str) -> String {
    let i = reply
        .iter()
        .position(|l| l == name)
        .unwrap_or_else(|| panic!("{name} in {reply:?}"));
    reply[i + 1].clone()
}

fn metrics_rows(out: &Path) -> usize {
    let Some(csv) = walk(out).into_iter().find(|p| p.ends_with("metrics.csv")) else {
        return 0;
    };
    std::fs::read_to_string(csv).map_or(0, |t| t.lines().count().saturating_sub(1))
}

/// The one run directory under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let csv = walk(out)
        .into_iter()
        .find(|p| p.ends_with("metrics.csv"))
        .unwrap();
    csv.parent().unwrap().to_path_buf()
}

/// Starts the three workers.
fn crew(config: &Path, extra: &[String], tmp: &Path, tag: &str) -> Vec<Child> {
    ["data", "model", "policy"]
        .into_iter()
        .map(|role| worker(role, config, extra, &tmp.join(format!("{role}-{tag}.log"))))
        .collect()
}

/// The model worker's transitions and the entries its group has read.
fn model_counts(server: &RedisServer, run: &str) -> (usize, usize, String) {
    let stream = format!("mbrl:{run}:rollouts");
    let groups = redis_cli(server, &["XINFO", "GROUPS", &stream]);
    let model_group = &groups[groups.iter().position(|l| l == "model").unwrap() - 1..];
    let read: usize = field(model_group, "entries-read").parse().unwrap();
    let reports = redis_cli(server, &["HGETALL", &format!("mbrl:{run}:reports")]);
    let held: f64 = field(&reports, "model_transitions").parse().unwrap();
    (held as usize, read, field(model_group, "pending"))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn killed_workers_restart_and_the_run_finishes_with_every_rollout_taken_once() {
    let server = RedisServer::start(None);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("configs/async/point2d.toml");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let extra = overrides(&server, RUN);
    let log = |name: &str| tmp.path().join(format!("{name}.log"));
    let mut coordinator = spawn(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &extra,
        &log("train"),
    );
    let mut data = worker("data", &config, &extra, &log("data"));
    let mut model = worker("model", &config, &extra, &log("model"));
    let mut policy = worker("policy", &config, &extra, &log("policy"));

    // Once the first iteration is logged, kill the model and policy workers and restart them.
    let deadline = Instant::now() + Duration::from_secs(90);
    while metrics_rows(&out) < 1 {
        assert!(Instant::now() < deadline, "no iteration finished");
        thread::sleep(Duration::from_millis(100));
    }
    model.kill().unwrap();
    policy.kill().unwrap();
    model.wait().unwrap();
    policy.wait().unwrap();
    thread::sleep(Duration::from_millis(500));
    let mut model = worker("model", &config, &extra, &log("model-restarted"));
    let mut policy = worker("policy", &config, &extra, &log("policy-restarted"));

    let status = coordinator.wait().unwrap();
    let train_log = std::fs::read_to_string(log("train")).unwrap();
    assert!(status.success(), "{train_log}");
    for (name, child) in [
        ("data", &mut data),
        ("model", &mut model),
        ("policy", &mut policy),
    ] {
        let status = child.wait().unwrap();
        assert!(status.success(), "the {name} worker failed");
    }
    assert_eq!(metrics_rows(&out), 4, "{train_log}");

    let stream = format!("mbrl:{RUN}:rollouts");
    assert_eq!(redis_cli(&server, &["XLEN", &stream]), vec!["12"]);
    let groups = redis_cli(&server, &["XINFO", "GROUPS", &stream]);
    let model_group = &groups[groups.iter().position(|l| l == "model").unwrap() - 1..];
    assert_eq!(field(model_group, "pending"), "0", "{groups:?}");
    let read: usize = field(model_group, "entries-read").parse().unwrap();
    let reports = redis_cli(&server, &["HGETALL", &format!("mbrl:{RUN}:reports")]);
    let held: f64 = field(&reports, "model_transitions").parse().unwrap();
    assert_eq!(
        held as usize,
        30 * read,
        "the model worker's data vs the rollouts it took"
    );
    let restarted = std::fs::read_to_string(log("model-restarted")).unwrap();
    assert!(restarted.contains("model worker"), "{restarted}");
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn a_finished_run_resumes_with_new_workers_and_its_data() {
    let server = RedisServer::start(None);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("configs/async/point2d.toml");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let mut extra = overrides(&server, "resume-test");
    extra.extend(["--set".to_string(), "run.iterations=2".to_string()]);
    let config_arg = config.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let mut coordinator = spawn(
        &["train", "--config", config_arg, "--out", out_arg],
        &extra,
        &tmp.path().join("train.log"),
    );
    let workers = crew(&config, &extra, tmp.path(), "first");
    assert!(coordinator.wait().unwrap().success());
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(metrics_rows(&out), 2);

    let dir = run_dir(&out);
    let mut resumed = spawn(
        &[
            "train",
            "--resume",
            dir.to_str().unwrap(),
            "--set",
            "run.iterations=3",
        ],
        &[],
        &tmp.path().join("resumed.log"),
    );
    let workers = crew(&config, &extra, tmp.path(), "resumed");
    let status = resumed.wait().unwrap();
    let log = std::fs::read_to_string(tmp.path().join("resumed.log")).unwrap();
    assert!(status.success(), "{log}");
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(metrics_rows(&out), 3, "{log}");
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(csv.lines().last().unwrap().starts_with("3,270,"), "{csv}");
    // The stream of the resumed session starts with the snapshot of the 180 checkpointed
    // transitions; each rollout after it adds 30.
    let (held, read, pending) = model_counts(&server, "resume-test");
    assert_eq!(pending, "0");
    assert!(read >= 1, "the model worker took nothing");
    assert_eq!(
        held,
        180 + 30 * (read - 1),
        "held {held} after {read} entries"
    );
}

//! The `redis` backend against a real `redis-server`: the servers keep their contracts
//! (latest version wins; each reader takes every rollout exactly once, also across threads;
//! the budget is exact), a server restarted from its append-only file loses nothing while
//! clients reconnect, and wrong passwords, unreachable servers and runs of another id or
//! shape are clear errors, never hangs.

use std::thread;
use std::time::{Duration, Instant};

use mbrl_async::redis_backend::{RedisRun, RunMeta};
use mbrl_async::servers::Servers;
use mbrl_async::testing::{free_port, RedisServer};

const PATIENCE: Duration = Duration::from_secs(10);

fn meta(obs_dim: usize) -> RunMeta {
    RunMeta {
        algo: "async-me-trpo".into(),
        obs_dim,
        act_dim: 2,
    }
}

fn servers(server: &RedisServer, run: &str) -> Servers {
    let run = RedisRun::connect(&server.url(""), run, PATIENCE).unwrap();
    run.create(&meta(3)).unwrap();
    run.servers()
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn the_servers_keep_their_contracts_on_redis() {
    let server = RedisServer::start(None);
    let s = servers(&server, "contracts");
    assert!(s.policy.pull_newer(0).unwrap().is_none());
    assert_eq!(s.policy.push(vec![1; 10]).unwrap(), 1);
    assert_eq!(s.policy.push(vec![2; 10]).unwrap(), 2);
    let newest = s.policy.pull_newer(1).unwrap().unwrap();
    assert_eq!((newest.version, newest.bytes[0]), (2, 2));
    assert!(s.policy.pull_newer(2).unwrap().is_none());
    assert_eq!(
        s.model.version().unwrap(),
        0,
        "the two parameter servers are separate"
    );

    // Four writers, one reader taking as they write: every entry once, none lost.
    let writers: Vec<_> = (0..4u8)
        .map(|w| {
            let s = s.clone();
            thread::spawn(move || {
                for i in 0..25u8 {
                    s.rollouts.push(vec![w, i]).unwrap();
                }
            })
        })
        .collect();
    let mut taken = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while taken.len() < 100 && Instant::now() < deadline {
        let new = s
            .rollouts
            .take_new("model", Duration::from_millis(200))
            .unwrap();
        taken.extend(new.iter().map(|b| (b[0], b[1])));
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(s
        .rollouts
        .take_new("model", Duration::ZERO)
        .unwrap()
        .is_empty());
    let mut unique = taken.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((taken.len(), unique.len()), (100, 100));
    let history: Vec<(u8, u8)> = s
        .rollouts
        .taken("model")
        .unwrap()
        .iter()
        .map(|b| (b[0], b[1]))
        .collect();
    assert_eq!(
        history, taken,
        "a restarted reader rebuilds the same history"
    );
    assert_eq!(
        s.rollouts.take_new("other", Duration::ZERO).unwrap().len(),
        100
    );

    // The budget is exact under contention.
    s.control.add_budget(30).unwrap();
    let granted: usize = (0..3)
        .map(|_| {
            let s = s.clone();
            thread::spawn(move || {
                (0..20)
                    .filter(|_| s.control.reserve_rollout().unwrap())
                    .count()
            })
        })
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(granted, 30);
    s.control.report("model_epochs", 7.0).unwrap();
    assert_eq!(s.control.reports().unwrap()["model_epochs"], 7.0);
    assert!(!s.control.stop_requested().unwrap());
    s.control.request_stop().unwrap();
    assert!(s.control.stop_requested().unwrap());
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn a_restarted_server_loses_nothing_and_clients_reconnect() {
    let mut server = RedisServer::start(None);
    let s = servers(&server, "restart");
    s.policy.push(vec![1]).unwrap();
    s.policy.push(vec![2]).unwrap();
    for i in 0..3u8 {
        s.rollouts.push(vec![i]).unwrap();
    }
    assert_eq!(
        s.rollouts.take_new("model", Duration::ZERO).unwrap().len(),
        3
    );
    for i in 3..5u8 {
        s.rollouts.push(vec![i]).unwrap();
    }
    server.kill();
    // A push during the outage waits for the server (backoff) instead of failing.
    let pusher = {
        let s = s.clone();
        thread::spawn(move || s.rollouts.push(vec![5]))
    };
    thread::sleep(Duration::from_millis(500));
    server.restart();
    pusher.join().unwrap().unwrap();
    assert_eq!(s.policy.version().unwrap(), 2);
    let rest: Vec<u8> = s
        .rollouts
        .take_new("model", Duration::ZERO)
        .unwrap()
        .iter()
        .map(|b| b[0])
        .collect();
    assert_eq!(rest, vec![3, 4, 5], "the reader continues where it was");
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn bad_credentials_unreachable_servers_and_foreign_runs_are_clear_errors() {
    let server = RedisServer::start(Some("s3cret"));
    let err = RedisRun::connect(&server.url(":wrong@"), "r", PATIENCE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked into {err}");
    let err = RedisRun::connect(&server.url(""), "r", PATIENCE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rejected the credentials"), "{err}");
    let run = RedisRun::connect(&server.url(":s3cret@"), "r", PATIENCE).unwrap();
    run.create(&meta(3)).unwrap();
    assert!(run.join(&meta(3)).is_ok());
    let err = run.join(&meta(4)).err().unwrap().to_string();
    assert!(err.contains("obs 3") && err.contains("obs 4"), "{err}");
    let other =
        RedisRun::connect(&server.url(":s3cret@"), "other", Duration::from_millis(500)).unwrap();
    let clock = Instant::now();
    let err = other.join(&meta(3)).err().unwrap().to_string();
    assert!(err.contains("no run `other`"), "{err}");
    assert!(clock.elapsed() < Duration::from_secs(5));

    let port = free_port();
    let clock = Instant::now();
    let err = RedisRun::connect(
        &format!("redis://127.0.0.1:{port}"),
        "r",
        Duration::from_secs(1),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "took {:?}",
        clock.elapsed()
    );
    assert!(RedisRun::connect("not a url", "r", PATIENCE).is_err());
    assert!(RedisRun::connect(&server.url(":s3cret@"), "two words", PATIENCE).is_err());
}

#[test]
#[ignore = "needs redis-server on PATH; .ci/run runs it with --ignored"]
fn a_blob_of_another_shape_is_refused_by_name() {
    let server = RedisServer::start(None);
    let s = servers(&server, "shapes");
    let wrong: std::collections::HashMap<String, candle_core::Tensor> = [(
        "policy.0".to_string(),
        candle_core::Tensor::zeros((7, 7), candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap(),
    )]
    .into_iter()
    .collect();
    s.policy
        .push(mbrl_async::codec::encode_tensors(&wrong).unwrap())
        .unwrap();
    let blob = s.policy.pull_newer(0).unwrap().unwrap();
    let tensors = mbrl_async::codec::decode_tensors(&blob.bytes, "the policy blob").unwrap();
    let policy = mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy::new(
        3,
        2,
        Default::default(),
        &mut mbrl_core::seeding::stream_rng(0, mbrl_core::seeding::Stream::Policy),
    )
    .unwrap();
    let err = mbrl_policy_opt::model_free::load_policy_tensors(&policy, &tensors)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("policy.0"), "{err}");
}

/// TLS end to end (the `tls` feature): a server that speaks only TLS and checks client
/// certificates serves a run; a client that does not trust the server's certificate
/// authority, or that has no client certificate, gets an error naming the server and the
/// handshake at once, not after the reconnect patience.
#[cfg(feature = "tls")]
#[test]
#[ignore = "needs redis-server and openssl on PATH; .ci/run runs it with --ignored"]
fn a_tls_server_that_checks_clients_serves_a_run_and_refuses_wrong_certificates() {
    use mbrl_async::redis_tls::TlsFiles;
    let server = RedisServer::start_tls(Some("s3cret"));
    let url = server.url(":s3cret@");
    assert!(url.starts_with("rediss://"));
    let run = RedisRun::connect_with_tls(&url, &server.tls_files(), "tls", PATIENCE).unwrap();
    run.create(&meta(3)).unwrap();
    let s = run.servers();
    assert_eq!(s.policy.push(vec![7; 1 << 20]).unwrap(), 1);
    let pulled = s.policy.pull_newer(0).unwrap().unwrap();
    assert_eq!((pulled.version, pulled.bytes.len()), (1, 1 << 20));
    s.rollouts.push(vec![1, 2, 3]).unwrap();
    let taken = s.rollouts.take_new("model", Duration::ZERO).unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(*taken[0], vec![1, 2, 3]);

    let stranger = RedisServer::start_tls(None);
    let wrong_ca = TlsFiles {
        ca: stranger.tls_files().ca,
        ..server.tls_files()
    };
    let no_client_certificate = TlsFiles {
        ca: server.tls_files().ca,
        ..TlsFiles::default()
    };
    for (case, files) in [
        ("an unknown CA", wrong_ca),
        ("no client certificate", no_client_certificate),
    ] {
        let clock = Instant::now();
        let err = RedisRun::connect_with_tls(&url, &files, "tls", PATIENCE)
            .err()
            .unwrap_or_else(|| panic!("{case}: connected"))
            .to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{}", server.port)),
            "{case}: {err}"
        );
        assert!(
            !err.contains("s3cret"),
            "{case}: the password leaked into {err}"
        );
        assert!(err.contains("TLS handshake"), "{case}: {err}");
        // A setting to fix: reported at once, not retried for the reconnect patience.
        assert!(
            clock.elapsed() < PATIENCE / 2,
            "{case}: took {:?}",
            clock.elapsed()
        );
    }
    let missing = TlsFiles {
        ca: Some(server.dir().join("no-such-ca.crt")),
        ..server.tls_files()
    };
    let err = RedisRun::connect_with_tls(&url, &missing, "tls", PATIENCE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no-such-ca.crt"), "{err}");
}

/// Without the `tls` feature a `rediss://` URL is refused with a message saying how to build.
#[cfg(not(feature = "tls"))]
#[test]
fn a_tls_url_without_the_tls_feature_says_how_to_build() {
    let err = RedisRun::connect("rediss://:s3cret@127.0.0.1:6380", "r", PATIENCE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--features tls"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

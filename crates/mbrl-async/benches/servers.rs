//! What a remote worker costs: push + pull of parameter blobs (0.1, 1 and 10 MB, the last the
//! size of a 5 x 512-512 ensemble's parameters) and push + take of one 200-step half-cheetah
//! rollout (obs 17, act 6), on the `threads` backend (in memory) and the `redis` backend (a
//! `redis-server` on loopback that the bench starts, with its append-only file on).
//!
//! Run: `cargo bench -p mbrl-async --bench servers` (needs `redis-server` on `PATH`).

use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use mbrl_async::codec::RolloutRecord;
use mbrl_async::memory::memory_servers;
use mbrl_async::redis_backend::{RedisRun, RunMeta};
use mbrl_async::servers::Servers;
use mbrl_core::data::Trajectory;

fn rollout() -> Vec<u8> {
    let mut t = Trajectory::new(vec![0.1; 17], 6);
    for i in 0..200 {
        t.push(&[0.5; 6], i as f64, vec![i as f32; 17]).unwrap();
    }
    RolloutRecord {
        trajectory: t,
        policy_version: 1,
        worker: 0,
    }
    .encode()
    .unwrap()
}

fn backends(server: &mbrl_async::testing::RedisServer) -> Vec<(&'static str, Servers)> {
    let run = RedisRun::connect(&server.url(""), "bench", Duration::from_secs(10)).unwrap();
    run.create(&RunMeta {
        algo: "async-me-trpo".into(),
        obs_dim: 17,
        act_dim: 6,
    })
    .unwrap();
    vec![("threads", memory_servers()), ("redis", run.servers())]
}

fn servers(c: &mut Criterion) {
    let server = mbrl_async::testing::RedisServer::start(None);
    let backends = backends(&server);
    let mut group = c.benchmark_group("parameters_push_pull");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for megabytes in [0.1, 1.0, 10.0] {
        let blob = vec![7u8; (megabytes * 1e6) as usize];
        group.throughput(Throughput::Bytes(blob.len() as u64));
        for (name, s) in &backends {
            group.bench_with_input(
                BenchmarkId::new(*name, format!("{megabytes}MB")),
                &blob,
                |b, blob| {
                    b.iter(|| {
                        let version = s.policy.push(blob.clone()).unwrap();
                        s.policy.pull_newer(version - 1).unwrap().unwrap()
                    })
                },
            );
        }
    }
    group.finish();
    let record = rollout();
    let mut group = c.benchmark_group("rollout_push_take");
    group.throughput(Throughput::Bytes(record.len() as u64));
    for (name, s) in &backends {
        group.bench_function(*name, |b| {
            b.iter(|| {
                s.rollouts.push(record.clone()).unwrap();
                s.rollouts.take_new("bench", Duration::ZERO).unwrap()
            })
        });
    }
    group.finish();
}

/// criterion's macros generate the undocumented `benches` function.
mod group {
    use super::servers;
    criterion::criterion_group!(benches, servers);
}
criterion_main!(group::benches);

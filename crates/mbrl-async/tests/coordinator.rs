//! The coordinator and its workers, end to end on the threads backend: every rollout reaches
//! the model worker and the checkpoint exactly once (several data workers), a checkpoint
//! resumes, a worker's NaN ends the run with an error naming it, and bad `[async]` values are
//! errors naming the key.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use mbrl_async::recipe::Improvement;
use mbrl_async::trainer::{AsyncTrainer, Drive, ASYNC_ME_PPO_ENTRY, ASYNC_ME_TRPO_ENTRY};
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext};
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_models::{ensemble_factory, EnsembleConfig};

/// `point2d` episodes are 30 steps long.
const EPISODE: u64 = 30;

fn build(
    entry: &AlgorithmEntry,
    model: EnsembleConfig,
    config: serde_json::Value,
) -> mbrl_core::Result<Box<dyn Algorithm>> {
    (entry.build)(BuildContext {
        env_factory: make_factory(&EnvConfig::default()).unwrap(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed: 3,
        config,
    })
}

fn small_model() -> EnsembleConfig {
    EnsembleConfig {
        members: 3,
        hidden_sizes: vec![32, 32],
        batch_size: 64,
        ..EnsembleConfig::default()
    }
}

fn config() -> serde_json::Value {
    serde_json::json!({
        "me_trpo": {"imagined_rollouts": 20, "start_state_pool": 100},
        "async": {"rollouts_per_iteration": 4, "data_workers": 2, "step_seconds": 0.002},
    })
}

fn buffer_len(
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    prefix: &str,
) -> u64 {
    let name = tensors
        .keys()
        .find(|k| k.starts_with(prefix) && k.ends_with("obs") && !k.contains("next"))
        .unwrap_or_else(|| panic!("no {prefix}*obs among {:?}", tensors.keys()));
    tensors[name].dim(0).unwrap() as u64
}

#[test]
fn every_rollout_arrives_once_and_a_checkpoint_resumes() {
    let mut algo = build(&ASYNC_ME_PPO_ENTRY, small_model(), config()).unwrap();
    let mut stats = None;
    for i in 1..=2 {
        stats = Some(algo.train_iteration(i).unwrap());
    }
    let stats = stats.unwrap();
    assert_eq!(stats.env_steps, 8 * EPISODE);
    assert_eq!(stats.metrics["rollouts"], 8.0);
    let by_workers = stats.metrics["data_0_rollouts"]
        + stats.metrics.get("data_1_rollouts").copied().unwrap_or(0.0);
    assert_eq!(by_workers, 8.0, "{:?}", stats.metrics);

    let (tensors, state) = algo.save_state().unwrap();
    let held = buffer_len(&tensors, "train_buffer.") + buffer_len(&tensors, "validation_buffer.");
    assert_eq!(held, 8 * EPISODE, "the checkpoint's data");
    drop(algo);

    // Resumed: the restored policy acts as the saved one, and the run continues its counts.
    let mut resumed = build(&ASYNC_ME_PPO_ENTRY, small_model(), config()).unwrap();
    resumed.load_state(tensors.clone(), state).unwrap();
    let factory = make_factory(&EnvConfig::default()).unwrap();
    let seeds = eval_seeds(1, 5);
    let mut saved = build(&ASYNC_ME_PPO_ENTRY, small_model(), config()).unwrap();
    saved
        .load_state(
            tensors,
            serde_json::json!({"rollouts": 8, "env_steps": 240, "model_fitted": true}),
        )
        .unwrap();
    let score = |a: &dyn Algorithm| {
        evaluate(factory().unwrap().as_mut(), a.policy(), &seeds)
            .unwrap()
            .mean_return()
    };
    assert_eq!(score(resumed.as_ref()), score(saved.as_ref()));
    let next = resumed.train_iteration(3).unwrap();
    assert_eq!(next.env_steps, 12 * EPISODE);
    assert_eq!(next.metrics["rollouts"], 12.0);
}

#[test]
fn the_model_worker_takes_every_rollout_exactly_once() {
    let ctx = BuildContext {
        env_factory: make_factory(&EnvConfig::default()).unwrap(),
        model_factory: Some(ensemble_factory(small_model()).unwrap()),
        seed: 5,
        config: config(),
    };
    let mut algo =
        AsyncTrainer::new(ctx, &ASYNC_ME_TRPO_ENTRY, Improvement::Trpo, Drive::Threads).unwrap();
    let mut last = None;
    for i in 1..=3 {
        last = Some(algo.train_iteration(i).unwrap());
    }
    assert_eq!(last.unwrap().env_steps, 12 * EPISODE);
    // The model worker's count catches up with the coordinator's and stays there: no
    // rollout lost, none taken twice.
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = loop {
        let held = algo
            .worker_reports()
            .unwrap()
            .get("model_transitions")
            .copied();
        if held == Some(12.0 * EPISODE as f64) || Instant::now() > deadline {
            break held;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(held, Some(12.0 * EPISODE as f64));
    std::thread::sleep(Duration::from_millis(300));
    let after = algo.worker_reports().unwrap()["model_transitions"];
    assert_eq!(after, 12.0 * EPISODE as f64);
}

#[test]
fn a_diverging_model_stops_the_run_with_an_error_naming_the_worker() {
    let model = EnsembleConfig {
        learning_rate: 1e30,
        ..small_model()
    };
    let mut algo = build(&ASYNC_ME_TRPO_ENTRY, model, config()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = loop {
        match algo.train_iteration(1) {
            Err(e) => break e.to_string(),
            Ok(_) => assert!(Instant::now() < deadline, "the NaN was never reported"),
        }
    };
    assert!(
        err.contains("model worker") && err.contains("non-finite"),
        "{err}"
    );
}

#[test]
fn bad_async_values_name_the_key() {
    for (table, key) in [
        (serde_json::json!({"time_scale": 0.0}), "async.time_scale"),
        (serde_json::json!({"data_workers": 0}), "async.data_workers"),
        (serde_json::json!({"time_scal": 1.0}), "time_scal"),
    ] {
        let err = build(
            &ASYNC_ME_TRPO_ENTRY,
            small_model(),
            serde_json::json!({ "async": table }),
        )
        .err()
        .expect("a bad value was accepted")
        .to_string();
        assert!(err.contains(key), "{err}");
    }
}

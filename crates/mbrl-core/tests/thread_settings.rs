//! `cargo test` (the README's test command) runs every test binary through the workspace's
//! runner (`.cargo/config.toml`, `scripts/cargo-runner.sh`), which gives it candle's thread
//! settings unless they are set: the tests behave alike under `cargo test` and `.ci/run`.

#[test]
fn cargo_test_sets_candle_thread_counts() {
    let rayon = std::env::var("RAYON_NUM_THREADS")
        .expect("RAYON_NUM_THREADS unset: is the runner of .cargo/config.toml in use?");
    assert!(rayon.parse::<usize>().is_ok_and(|n| n >= 1), "{rayon}");
    let candle = std::env::var("CANDLE_NUM_THREADS")
        .expect("CANDLE_NUM_THREADS unset: is the runner of .cargo/config.toml in use?");
    assert!(candle.parse::<usize>().is_ok_and(|n| n >= 1), "{candle}");
}

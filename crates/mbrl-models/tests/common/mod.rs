//! Data builders shared by the integration tests.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use mbrl_core::data::ReplayBuffer;
use mbrl_models::EnsembleConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The known dynamics of the tests: `s' = s + 0.5 sin(2 s) + 0.3 a`, one state and one action.
pub fn sin_dynamics(s: f32, a: f32) -> f32 {
    s + 0.5 * (2.0 * s).sin() + 0.3 * a
}

/// `n` transitions of `sin_dynamics` with `s ~ U(-2, 2)`, `a ~ U(-1, 1)`.
pub fn sin_buffer(n: usize, seed: u64) -> ReplayBuffer {
    let mut r = rng(seed);
    let mut buffer = ReplayBuffer::new(n, 1, 1).unwrap();
    for _ in 0..n {
        let s: f32 = r.random_range(-2.0..2.0);
        let a: f32 = r.random_range(-1.0..1.0);
        buffer
            .push(&[s], &[a], &[sin_dynamics(s, a)], 0.0, false)
            .unwrap();
    }
    buffer
}

/// A small, fast ensemble configuration.
pub fn small_config() -> EnsembleConfig {
    EnsembleConfig {
        members: 3,
        hidden_sizes: vec![32, 32],
        activation: mbrl_models::Activation::Tanh,
        batch_size: 64,
        learning_rate: 3e-3,
        sample_with_replacement: false,
        validate_every: 2,
        patience: 10,
        max_epochs: 150,
        reinit_every: 0,
        ..Default::default()
    }
}

/// `[n, 1]` tensor of evenly spaced values in `[lo, hi]`.
pub fn column(lo: f32, hi: f32, n: usize) -> Tensor {
    let v: Vec<f32> = (0..n)
        .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
        .collect();
    Tensor::from_vec(v, (n, 1), &Device::Cpu).unwrap()
}

/// A tensor's values as a flat vector.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

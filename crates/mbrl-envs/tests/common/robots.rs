//! Helpers the rapier robots' integration tests share (included with
//! `#[path = "common/robots.rs"] mod robots_common;`): registry configs, open-loop action
//! patterns, trajectories as bits, their digests and the cross-process determinism harness.
// Each test file includes this module and uses only some of its helpers.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use mbrl_core::env::{vector, Env};
use mbrl_envs::EnvConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The registry config of `name` with `family` active (default horizon).
pub fn config(name: &str, family: Option<&str>) -> EnvConfig {
    EnvConfig {
        name: name.into(),
        task_family: family.map(str::to_string),
        ..EnvConfig::default()
    }
}

/// No task family, then each of `families`.
pub fn with_no_family(
    families: &'static [&'static str],
) -> impl Iterator<Item = Option<&'static str>> {
    std::iter::once(None).chain(families.iter().map(|f| Some(*f)))
}

/// A `[1, len]` batch of one row, for the task functions.
pub fn batch(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, (1, v.len()), &Device::Cpu).unwrap()
}

/// The open-loop action patterns the rollouts use.
#[derive(Clone, Copy, Debug)]
pub enum Pattern {
    /// Each joint uniform in [-1, 1].
    Random,
    /// Each joint at -1 or 1 with equal probability.
    BangBang,
    /// Neighbouring joints at opposite full torque, flipping every `half_period` steps.
    SquareWave { half_period: usize },
}

impl Pattern {
    /// The action of this pattern at step `t` for a robot with `act_dim` joints.
    pub fn action(self, act_dim: usize, t: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        match self {
            Pattern::Random => (0..act_dim).map(|_| rng.random_range(-1.0..=1.0)).collect(),
            Pattern::BangBang => (0..act_dim)
                .map(|_| if rng.random_bool(0.5) { 1.0 } else { -1.0 })
                .collect(),
            Pattern::SquareWave { half_period } => {
                let s = if (t / half_period).is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                };
                (0..act_dim)
                    .map(|i| if i % 2 == 0 { s } else { -s })
                    .collect()
            }
        }
    }
}

/// The bit patterns of a rank-1 `f32` tensor, to compare trajectories exactly.
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// FNV-1a-style digest of trajectory bits.
pub fn digest(bits: &[u32]) -> u64 {
    bits.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Cross-process determinism: run inside the test `test` of the current test binary. In the
/// parent, reruns `test` in a child process with `child_var` set and asserts that the child
/// computed the same `digest`; in the child (`child_var` set), prints the digest.
pub fn same_digest_in_a_child_process(test: &str, child_var: &str, digest: u64) {
    if std::env::var_os(child_var).is_some() {
        println!("DIGEST={digest:016x}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(child_var, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains(&format!("DIGEST={digest:016x}")),
        "child digest differs from {digest:016x}: {stdout}"
    );
}

/// The bits of a trajectory: `reset(seed)`, then `steps` steps of `action(t, rng)` with `rng`
/// seeded by `seed`, recording each observation and `f32` reward (and the observation of the
/// reset after an episode ends).
pub fn trajectory(
    env: &mut dyn Env,
    seed: u64,
    steps: usize,
    mut action: impl FnMut(usize, &mut ChaCha8Rng) -> Vec<f32>,
) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = bits(&env.reset(Some(seed)).unwrap().0);
    for t in 0..steps {
        let step = env.step(&vector(&action(t, &mut rng)).unwrap()).unwrap();
        out.extend(bits(&step.obs));
        out.push((step.reward as f32).to_bits());
        if step.terminated {
            out.extend(bits(&env.reset(None).unwrap().0));
        }
    }
    out
}

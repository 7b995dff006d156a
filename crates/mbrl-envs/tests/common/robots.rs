//! Helpers the rapier robots' integration tests share (included with
//! `#[path = "common/robots.rs"] mod robots_common;`): trajectories as bits, their digests
//! and the cross-process determinism harness.

use candle_core::Tensor;
use mbrl_core::env::{vector, Env};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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

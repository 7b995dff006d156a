//! One binary on every x86-64 CPU: the matrix and element-wise kernels pick their vector unit
//! at run time (`mbrl_core::kernels::cpu`).
//!
//! In-process, the reported units must match the CPU's features. The ignored test re-runs this
//! test binary under `qemu-x86_64` (Debian's `qemu-user`; `.ci/run` installs it) emulating a
//! Haswell (AVX2 + FMA, no AVX-512) and a Nehalem (SSE4.2, no AVX). qemu's emulator implements
//! no AVX-512 (nor, for Nehalem, AVX), so an instruction the emulated CPU lacks kills the child
//! with SIGILL: the child passing shows that the dispatch chose kernels the CPU has. The child
//! checks which units it reports, that a fused ensemble layer's forward and backward match
//! an `f64` reference computed by hand, and that the fused policy MLP gives the parent's bits
//! (its kernels use fused multiply-adds in a fixed order on every vector unit).

use std::process::Command;

use candle_core::{Device, Var};
use mbrl_core::kernels::cpu::{elementwise_unit, matmul_unit, VectorUnit};
use mbrl_core::kernels::{fused_mlp, linear, Activation};

/// The child's expected vector unit, set by the parent.
const EXPECTED_UNIT: &str = "MBRL_EXPECTED_VECTOR_UNIT";
/// The parent's [`fused_mlp_bits`], for the child to reproduce.
const EXPECTED_BITS: &str = "MBRL_EXPECTED_FUSED_MLP_BITS";

#[test]
fn the_reported_units_follow_the_cpu_features() {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let fma = std::arch::is_x86_feature_detected!("fma");
        let expected = if avx512 {
            VectorUnit::Avx512
        } else if fma {
            VectorUnit::Avx2Fma
        } else {
            VectorUnit::Baseline
        };
        assert_eq!(matmul_unit(), expected);
        if !avx512 {
            assert_ne!(elementwise_unit(), VectorUnit::Avx512);
        }
    }
}

/// `tanh(x W + b)` of a 2-member ensemble layer and the gradients of the sum of its outputs,
/// against a plain `f64` computation.
fn check_a_fused_layer_against_f64() {
    let (k, rows, inputs, outputs) = (2, 70, 40, 33);
    let value = |i: usize, scale: f64| ((i * 7919 % 1000) as f64 / 1000.0 - 0.5) * scale;
    let x: Vec<f64> = (0..k * rows * inputs).map(|i| value(i, 2.0)).collect();
    let w: Vec<f64> = (0..k * inputs * outputs)
        .map(|i| value(i + 17, 0.4))
        .collect();
    let b: Vec<f64> = (0..k * outputs).map(|i| value(i + 5, 1.0)).collect();
    let dev = Device::Cpu;
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let xt = Var::from_vec(f32s(&x), (k, rows, inputs), &dev).unwrap();
    let wt = Var::from_vec(f32s(&w), (k, inputs, outputs), &dev).unwrap();
    let bt = Var::from_vec(f32s(&b), (k, 1, outputs), &dev).unwrap();
    let out = linear(&xt, &wt, &bt, Some(Activation::Tanh)).unwrap();
    let grads = out.sum_all().unwrap().backward().unwrap();
    let got: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    let flat = |v: &Var| -> Vec<f32> {
        grads
            .get(v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (gx, gw) = (flat(&xt), flat(&wt));
    let mut worst = 0.0f64;
    for m in 0..k {
        for r in 0..rows {
            for o in 0..outputs {
                let z: f64 = (0..inputs)
                    .map(|i| x[(m * rows + r) * inputs + i] * w[(m * inputs + i) * outputs + o])
                    .sum::<f64>()
                    + b[m * outputs + o];
                let y = z.tanh();
                worst = worst.max((got[(m * rows + r) * outputs + o] as f64 - y).abs());
            }
        }
        // d sum / d x[r, i] = sum_o (1 - y^2) w[i, o]; d sum / d w[i, o] = sum_r (1 - y^2) x[r, i].
        let dz = |r: usize, o: usize| 1.0 - (got[(m * rows + r) * outputs + o] as f64).powi(2);
        for r in 0..rows {
            for i in 0..inputs {
                let e: f64 = (0..outputs)
                    .map(|o| dz(r, o) * w[(m * inputs + i) * outputs + o])
                    .sum();
                worst = worst.max((gx[(m * rows + r) * inputs + i] as f64 - e).abs());
            }
        }
        for i in 0..inputs {
            for o in 0..outputs {
                let e: f64 = (0..rows)
                    .map(|r| dz(r, o) * x[(m * rows + r) * inputs + i])
                    .sum();
                worst = worst.max((gw[(m * inputs + i) * outputs + o] as f64 - e).abs() / 10.0);
            }
        }
    }
    assert!(
        worst < 1e-4,
        "largest deviation from the f64 reference: {worst}"
    );
}

/// A hash of the bits of the policy-shaped fused MLP's output and parameter gradients (17 ->
/// 32 -> 32 -> 6, tanh, 1100 rows: two tasks, a ragged last chunk).
fn fused_mlp_bits() -> u64 {
    let value = |i: usize, scale: f32| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * scale;
    let dev = Device::Cpu;
    let widths = [17, 32, 32, 6];
    let rows = 1100;
    let x: Vec<f32> = (0..rows * 17).map(|i| value(i, 2.0)).collect();
    let x = candle_core::Tensor::from_vec(x, (rows, 17), &dev).unwrap();
    let params: Vec<Var> = widths
        .windows(2)
        .enumerate()
        .flat_map(|(l, io)| {
            let w = (0..io[0] * io[1]).map(|i| value(i + 31 * l, 0.5)).collect();
            let b = (0..io[1]).map(|i| value(i + 7 * l, 0.2)).collect();
            [
                Var::from_vec(w, (io[0], io[1]), &dev).unwrap(),
                Var::from_vec(b, io[1], &dev).unwrap(),
            ]
        })
        .collect();
    let tensors: Vec<_> = params.iter().map(|p| p.as_tensor().clone()).collect();
    let out = fused_mlp(&x, &tensors, Activation::Tanh).unwrap();
    let probe: Vec<f32> = (0..rows * 6).map(|i| value(i + 3, 1.0)).collect();
    let probe = candle_core::Tensor::from_vec(probe, (rows, 6), &dev).unwrap();
    let grads = (&out * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    for p in &params {
        values.extend(
            grads
                .get(p)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
        );
    }
    // FNV-1a over the bits.
    values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn a_fused_layer_matches_an_f64_reference_here() {
    check_a_fused_layer_against_f64();
}

/// Run by [`the_same_binary_runs_on_cpus_without_avx512`] inside qemu.
#[test]
#[ignore = "the child half of the qemu test"]
fn child_under_emulation() {
    // Only meaningful as the child of the qemu test, which sets the expected unit.
    let Ok(expected) = std::env::var(EXPECTED_UNIT) else {
        return;
    };
    assert_eq!(matmul_unit().to_string(), expected, "matmul unit");
    assert_eq!(
        elementwise_unit().to_string(),
        expected,
        "element-wise unit"
    );
    check_a_fused_layer_against_f64();
    if let Ok(bits) = std::env::var(EXPECTED_BITS) {
        assert_eq!(fused_mlp_bits().to_string(), bits, "fused MLP bits");
    }
}

#[test]
#[ignore = "needs qemu-x86_64 (Debian's qemu-user); .ci/run runs it"]
fn the_same_binary_runs_on_cpus_without_avx512() {
    let exe = std::env::current_exe().unwrap();
    for (cpu, expected) in [
        ("Haswell", VectorUnit::Avx2Fma),
        ("Nehalem", VectorUnit::Baseline),
    ] {
        let output = Command::new("qemu-x86_64")
            .args(["-cpu", cpu])
            .arg(&exe)
            .args([
                "--exact",
                "child_under_emulation",
                "--ignored",
                "--test-threads",
                "1",
            ])
            .env(EXPECTED_UNIT, expected.to_string())
            .env(EXPECTED_BITS, fused_mlp_bits().to_string())
            .output()
            .expect("qemu-x86_64 (install Debian's qemu-user)");
        assert!(
            output.status.success(),
            "emulated {cpu}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("1 passed"), "emulated {cpu}: {stdout}");
        println!("emulated {cpu}: {}", stdout.trim());
    }
}

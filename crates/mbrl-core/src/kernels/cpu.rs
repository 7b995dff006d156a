//! Which vector unit the CPU kernels run on, and the CPU's name, for logs and benchmark records.
//!
//! Every build carries three versions of the hot loops and picks one at run time, so one binary
//! runs on any x86-64 CPU and uses the widest vector unit it finds:
//! - **matrix products**: candle's `gemm` crate, built with its `x86-v4` feature (the
//!   workspace's `gemm` dependency), chooses its microkernels when first called
//!   (`gemm-common`'s `init_gemm_fn`): AVX-512 if `is_x86_feature_detected!("avx512f")`, else
//!   AVX2 + FMA if `fma`, else scalar;
//! - **element-wise loops** ([`super::simd::widest`]): pulp's `Arch::dispatch`, x86-64-v4
//!   (AVX-512 F/BW/CD/DQ/VL), else x86-64-v3 (AVX2, FMA, BMI), else the SSE2 baseline.
//!
//! [`matmul_unit`] and [`elementwise_unit`] apply the same rules, so a log or a benchmark can say
//! what ran. `tests/cpu_dispatch.rs` runs the kernels under `qemu-x86_64` emulating CPUs
//! without AVX-512 and without AVX, where an AVX-512 instruction would kill the process.

use std::fmt;

/// A family of vector instructions the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorUnit {
    /// 512-bit AVX-512 (16 `f32` lanes).
    Avx512,
    /// 256-bit AVX2 with fused multiply-add (8 lanes).
    Avx2Fma,
    /// The architecture's baseline (SSE2 on x86-64, or scalar code).
    Baseline,
}

impl fmt::Display for VectorUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2Fma => "AVX2+FMA",
            Self::Baseline => "baseline",
        })
    }
}

/// The vector unit of gemm's matrix-product microkernels on this CPU.
pub fn matmul_unit() -> VectorUnit {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return VectorUnit::Avx512;
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return VectorUnit::Avx2Fma;
        }
    }
    VectorUnit::Baseline
}

/// The vector unit of the element-wise kernels ([`super::simd::widest`]) on this CPU.
pub fn elementwise_unit() -> VectorUnit {
    #[cfg(target_arch = "x86_64")]
    {
        if pulp::x86::V4::is_available() {
            return VectorUnit::Avx512;
        }
        if pulp::x86::V3::is_available() {
            return VectorUnit::Avx2Fma;
        }
    }
    VectorUnit::Baseline
}

/// The CPU's model name (`/proc/cpuinfo`), or `"unknown CPU"`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// One line for logs: the CPU, its logical CPUs, the threads the kernels run on (rayon's pool,
/// `RAYON_NUM_THREADS`) and the kernels chosen for it, e.g.
/// `AMD EPYC, 2 logical CPUs, 1 thread; matmul AVX-512, element-wise AVX-512`.
pub fn summary() -> String {
    let threads = rayon::current_num_threads();
    format!(
        "{}, {} logical CPUs, {threads} thread{}; matmul {}, element-wise {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, usize::from),
        if threads == 1 { "" } else { "s" },
        matmul_unit(),
        elementwise_unit()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_cpu_and_both_units() {
        let s = summary();
        assert!(s.contains(&cpu_model()), "{s}");
        let threads = rayon::current_num_threads();
        assert!(s.contains(&format!(", {threads} thread")), "{s}");
        assert!(s.contains(&format!("matmul {}", matmul_unit())), "{s}");
        assert!(
            s.contains(&format!("element-wise {}", elementwise_unit())),
            "{s}"
        );
    }

    /// pulp's x86-64-v4 needs AVX-512 F plus more, so it never claims AVX-512 where gemm does not.
    #[test]
    fn elementwise_avx512_implies_matmul_avx512() {
        if elementwise_unit() == VectorUnit::Avx512 {
            assert_eq!(matmul_unit(), VectorUnit::Avx512);
        }
    }
}

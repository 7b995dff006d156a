//! Runs a loop compiled for the widest vector unit this CPU has.
//!
//! Release builds target the x86-64 baseline (SSE2, 4 lanes), so the kernels' branch-free loops
//! vectorise only 4 wide. [`widest`] inlines a loop body into functions compiled with AVX-512
//! (16 lanes) or AVX2 + FMA (8 lanes) enabled and picks the widest the CPU has at run time
//! (pulp's `Arch::dispatch` with its `x86-v4` feature, the mechanism candle's gemm crate uses;
//! safe code, detection cached by the standard library). Rust never contracts `a * b + c` into
//! an FMA on its own, so every variant computes bit-identical results: runs stay reproducible
//! across machines with different vector units (tested below against the baseline loop).

/// Calls `body`, inlined into a function compiled for the widest vector unit available.
#[inline(always)]
pub fn widest<R>(body: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched loop gives the baseline loop's bits.
    #[test]
    fn the_dispatched_loop_computes_the_baseline_bits() {
        let xs: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5000.0) * 1.3e-3).collect();
        let loop_body = |xs: &[f32]| -> Vec<f32> {
            xs.iter()
                .map(|&x| super::super::fast_math::tanh(x) * 0.5 + x)
                .collect()
        };
        let baseline = loop_body(&xs);
        assert_eq!(widest(|| loop_body(&xs)), baseline);
    }
}

//! CPU kernels for the hot paths of training, shared by the model and policy crates.
//!
//! candle's generic CPU path spends most of a small network's time outside the matmuls
//! (`../shared/PERFORMANCE_NOTES.md`, causes 2-4): `tanh` is a scalar libm call per element,
//! a broadcast bias's gradient is a reduction over a non-last dimension (~30x slower than a
//! matmul with a row of ones), and every op allocates. The kernels here remove those costs
//! without giving up automatic differentiation:
//! - [`fast_math`]: a vectorisable `tanh` with a stated error bound;
//! - `simd`: those loops compiled for the widest vector unit the CPU has;
//! - [`bias_activation()`]: `act(x + b)` as one custom op with a hand-written backward. When a
//!   second-order graph is being built (`CANDLE_GRAD_DO_NOT_DETACH=1`, used by the meta-learning
//!   crates) its backward is written in differentiable candle ops instead, so Hessian-vector
//!   products through it stay exact;
//! - [`linear()`]: a whole dense layer `act(x W + b)` as one custom op, so the pre-activation
//!   is no graph node (no gradient buffer for it) and data inputs get no gradient;
//! - [`fused_mlp()`]: a whole narrow MLP (the policies) as one op, vectorised over rows in
//!   cache-sized chunks, so narrow layers cost no more per row than wide ones;
//! - [`gaussian_log_prob()`]: a diagonal Gaussian's log-density with a shared log-std, one op
//!   in place of seven;
//! - [`mlp_forward_with_tape()`]: a stacked MLP's forward that keeps what its hand-written
//!   backward ([`MlpTape::backward`]) needs: the dynamics ensembles' training step without
//!   candle's gradient bookkeeping;
//! - [`packed_linear()`]: a dense layer through constant weights laid out once
//!   ([`PackedWeights`]) for gemm's microkernels: frozen ensembles' imagined rollouts;
//! - `matmul`: the layers' matrix products as row tiles shared by the threads (one fork per
//!   product instead of one per ensemble member); [`cpu`]: which vector unit they run on.

mod bias_activation;
pub mod cpu;
mod elementwise;
pub mod fast_math;
mod fused_mlp;
mod gaussian;
mod linear;
mod matmul;
mod mlp_tape;
mod packed;
mod simd;
#[cfg(test)]
mod test_support;

pub use bias_activation::bias_activation;
pub use fused_mlp::fused_mlp;
pub use gaussian::gaussian_log_prob;
pub use linear::linear;
pub use mlp_tape::{mlp_forward_with_tape, LayerGrads, MlpTape};
pub use packed::{packed_linear, PackedWeights};
pub use simd::widest;

use serde::{Deserialize, Serialize};

/// Non-linearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)` (ME-TRPO and MB-MPO dynamics models).
    #[default]
    Relu,
    /// `tanh(x)` (the policies of the thesis).
    Tanh,
    /// `x * sigmoid(x)` (MAAC, PETS).
    Swish,
}

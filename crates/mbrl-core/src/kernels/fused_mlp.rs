//! A whole small MLP `act(... act(x W1 + b1) ...) Wn + bn` as one candle custom op, for the
//! policies' narrow layers (widths 6 to 64) over tens of thousands of rows.
//!
//! Layer by layer, such a network is a chain of products whose width (6-32 columns) is too
//! small for gemm's microkernels, with a fresh output buffer, a thread handoff and a gradient
//! accumulation in candle's `GradStore` per layer (issue 22's profile). Here the rows are cut
//! into chunks of [`ROWS`], each chunk is turned feature-major (one `[f32; ROWS]` per feature)
//! and pushed through every layer while it is in cache, vectorised over its rows: the layers'
//! widths no longer matter to the vector units. The hidden activations are kept in the op for
//! the hand-written backward, so the graph holds one node (the output) where the layered path
//! holds one per layer. Fixed chunks and tasks, and partial sums added in task order, make the
//! bits independent of the number of threads; `f32::mul_add` rounds once on every vector unit
//! (hardware FMA where the dispatched code has it), so they do not depend on the CPU either.
//!
//! Its backward is not differentiable again, so when candle keeps the backward graph
//! (`CANDLE_GRAD_DO_NOT_DETACH=1`, the meta-learning crates) [`fused_mlp`] runs the per-layer
//! [`super::linear()`] ops instead, as it does for swish (whose backward needs pre-activations).

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::elementwise::{add_in_order, contiguous_f32, keeps_backward_graph, with_f32};
use pulp::{Simd, WithSimd};

use super::{fast_math, linear, Activation};
use crate::{Error, Result};

/// Rows per chunk: a multiple of the widest vector (16 lanes).
const ROWS: usize = 64;
/// Chunks per rayon task: fixed, so that the gradient's summation order is too.
const CHUNKS_PER_TASK: usize = 16;

thread_local! {
    /// Each thread's buffer of weight-gradient partial sums, reused across calls (fresh
    /// memory costs a page fault per 4 KiB).
    static PARTIALS: std::cell::RefCell<Vec<Lanes>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One feature of a chunk, over its rows.
type Column = [f32; ROWS];

/// Partial sums of a weight's gradient: row `r` of every chunk adds to lane `r % 16`, so the
/// order of the sums is the same for 16-, 8- and 1-lane vector units.
const LANES: usize = 16;
type Lanes = [f32; LANES];
const _: () = assert!(ROWS == 4 * LANES, "weight_partial folds four row groups");

/// The MLP with parameters `[W1, b1, ..., Wn, bn]` (`W` `[I, O]`, `b` `[O]`) on `x` `[B, I]`:
/// `act` after every layer but the last.
pub fn fused_mlp(x: &Tensor, params: &[Tensor], act: Activation) -> Result<Tensor> {
    let widths = layer_widths(x, params)?;
    if keeps_backward_graph() || act == Activation::Swish {
        let layers = params.len() / 2;
        let mut h = x.clone();
        for l in 0..layers {
            let activation = (l + 1 < layers).then_some(act);
            h = linear(&h, &params[2 * l], &params[2 * l + 1], activation)?;
        }
        return Ok(h);
    }
    let flat: Vec<Tensor> = params
        .iter()
        .map(|p| p.flatten_all())
        .collect::<candle_core::Result<_>>()?;
    let flat = Tensor::cat(&flat, 0)?;
    let op = FusedMlp {
        widths,
        act,
        hidden: OnceLock::new(),
    };
    Ok(x.contiguous()?.apply_op2(&flat, op)?)
}

/// `[I, H1, ..., O]` from the parameters' shapes, checked against each other and `x`.
fn layer_widths(x: &Tensor, params: &[Tensor]) -> Result<Vec<usize>> {
    let bad = || {
        Error::shape(
            "fused MLP",
            "x [B, I] and parameters [W1 [I, H1], b1 [H1], ..., Wn [H, O], bn [O]]",
            format!(
                "x {:?}, parameters {:?}",
                x.dims(),
                params.iter().map(|p| p.dims().to_vec()).collect::<Vec<_>>()
            ),
        )
    };
    let &[_, inputs] = x.dims() else {
        return Err(bad());
    };
    if params.is_empty() || !params.len().is_multiple_of(2) {
        return Err(bad());
    }
    let mut widths = vec![inputs];
    for pair in params.chunks_exact(2) {
        match (pair[0].dims(), pair[1].dims()) {
            (&[i, o], &[ob]) if i == *widths.last().expect("non-empty") && o == ob => {
                widths.push(o)
            }
            _ => return Err(bad()),
        }
    }
    Ok(widths)
}

/// One backward task's inputs: its rows of `x`, its saved activations, its rows of the
/// output gradient, and its rows of the input gradient when one is wanted.
type TaskRows<'a> = (
    ((&'a [f32], &'a [Column]), &'a [f32]),
    Option<&'a mut [f32]>,
);

struct FusedMlp {
    /// `[I, H1, ..., O]`.
    widths: Vec<usize>,
    act: Activation,
    /// The hidden layers' outputs, chunk by chunk, layer by layer within a chunk.
    hidden: OnceLock<Vec<Column>>,
}

/// Where one layer's weights and bias sit in the flat parameter vector.
struct LayerParams {
    inputs: usize,
    outputs: usize,
    w: usize,
    b: usize,
}

impl FusedMlp {
    #[inline(always)]
    fn layers(&self) -> Vec<LayerParams> {
        let mut offset = 0;
        self.widths
            .windows(2)
            .map(|io| {
                let (inputs, outputs) = (io[0], io[1]);
                let layer = LayerParams {
                    inputs,
                    outputs,
                    w: offset,
                    b: offset + inputs * outputs,
                };
                offset += inputs * outputs + outputs;
                layer
            })
            .collect()
    }

    #[inline(always)]
    fn num_params(&self) -> usize {
        self.widths.windows(2).map(|io| io[0] * io[1] + io[1]).sum()
    }

    /// Hidden features per chunk (all hidden layers).
    #[inline(always)]
    fn hidden_per_chunk(&self) -> usize {
        self.widths[1..self.widths.len() - 1].iter().sum()
    }

    /// Columns saved per chunk: the hidden features, at least one so that a network without
    /// hidden layers still has one (unused) block per chunk to iterate over.
    #[inline(always)]
    fn hidden_stride(&self) -> usize {
        self.hidden_per_chunk().max(1)
    }

    #[inline(always)]
    fn activate(&self, column: &mut Column) {
        match self.act {
            Activation::Tanh => column.iter_mut().for_each(|v| *v = fast_math::tanh(*v)),
            Activation::Relu => column.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Swish => unreachable!("fused_mlp runs swish layer by layer"),
        }
    }

    /// `grad *= act'` at the activation's output `h`.
    #[inline(always)]
    fn scale_by_derivative(&self, grad: &mut Column, h: &Column) {
        match self.act {
            Activation::Tanh => grad
                .iter_mut()
                .zip(h)
                .for_each(|(g, h)| *g *= h.mul_add(-h, 1.0)),
            Activation::Relu => grad
                .iter_mut()
                .zip(h)
                .for_each(|(g, h)| *g = if *h > 0.0 { *g } else { 0.0 }),
            Activation::Swish => unreachable!("fused_mlp runs swish layer by layer"),
        }
    }

    /// The forward pass of one task's chunks: `x` its rows, `hidden` and `out` its parts of
    /// the saved activations and of the output.
    #[inline(always)]
    fn forward_task<S: Simd>(
        &self,
        simd: S,
        params: &[f32],
        x: &[f32],
        hidden: &mut [Column],
        out: &mut [f32],
    ) {
        let layers = self.layers();
        let (inputs, outputs) = (self.widths[0], *self.widths.last().expect("non-empty"));
        let mut input = vec![[0.0; ROWS]; inputs];
        let mut last = vec![[0.0; ROWS]; outputs];
        for ((x, hidden), out) in x
            .chunks(ROWS * inputs)
            .zip(hidden.chunks_mut(self.hidden_stride()))
            .zip(out.chunks_mut(ROWS * outputs))
        {
            gather_columns(x, &mut input);
            let mut offset = 0;
            for (l, layer) in layers.iter().enumerate() {
                let (w, b) = layer_slices(params, layer);
                if l + 1 == layers.len() {
                    let source = if l == 0 {
                        &input[..]
                    } else {
                        &hidden[offset - layer.inputs..offset]
                    };
                    affine(simd, source, w, b, &mut last);
                    scatter_columns(&last, out);
                } else {
                    let (before, rest) = hidden.split_at_mut(offset);
                    let source = if l == 0 {
                        &input[..]
                    } else {
                        &before[offset - layer.inputs..]
                    };
                    let target = &mut rest[..layer.outputs];
                    affine(simd, source, w, b, target);
                    target.iter_mut().for_each(|c| self.activate(c));
                    offset += layer.outputs;
                }
            }
        }
    }

    /// The backward pass of one task's chunks: returns the task's parameter gradient (summed
    /// in `partials`, a reused buffer) and writes the input gradient of its rows into `grad_x`
    /// when asked for.
    #[inline(always)]
    fn backward_task<S: Simd>(&self, simd: S, task: BackwardTask<'_>) -> Vec<f32> {
        let BackwardTask {
            params,
            x,
            hidden,
            grad_out,
            mut grad_x,
            partials,
            ..
        } = task;
        partials.clear();
        partials.resize(self.num_params(), [0.0; LANES]);
        let layers = self.layers();
        let (inputs, outputs) = (self.widths[0], *self.widths.last().expect("non-empty"));
        let per_chunk = self.hidden_per_chunk();
        let widest = *self.widths.iter().max().expect("non-empty");
        let mut input = vec![[0.0; ROWS]; inputs];
        let mut grad = vec![[0.0; ROWS]; widest];
        let mut grad_in = vec![[0.0; ROWS]; widest];
        for (c, ((x, hidden), grad_out)) in x
            .chunks(ROWS * inputs)
            .zip(hidden.chunks(self.hidden_stride()))
            .zip(grad_out.chunks(ROWS * outputs))
            .enumerate()
        {
            gather_columns(x, &mut input);
            gather_columns(grad_out, &mut grad[..outputs]);
            let mut offset = per_chunk;
            for (l, layer) in layers.iter().enumerate().rev() {
                let source = if l == 0 {
                    &input[..]
                } else {
                    &hidden[offset - layer.inputs..offset]
                };
                let g = &grad[..layer.outputs];
                let (dw, db) =
                    partials[layer.w..layer.b + layer.outputs].split_at_mut(layer.b - layer.w);
                accumulate_weight_partials(simd, source, g, dw, db);
                let wants_input_grad = l > 0 || grad_x.is_some();
                if wants_input_grad {
                    let (w, _) = layer_slices(params, layer);
                    transposed_product(simd, g, w, &mut grad_in[..layer.inputs]);
                }
                if l > 0 {
                    for (gi, h) in grad_in[..layer.inputs].iter_mut().zip(source) {
                        self.scale_by_derivative(gi, h);
                    }
                    std::mem::swap(&mut grad, &mut grad_in);
                    offset -= layer.inputs;
                } else if let Some(grad_x) = grad_x.as_deref_mut() {
                    let rows = x.len() / inputs;
                    let start = c * ROWS * inputs;
                    scatter_columns(
                        &grad_in[..inputs],
                        &mut grad_x[start..start + rows * inputs],
                    );
                }
            }
        }
        reduce_partials(partials)
    }
}

#[inline(always)]
fn layer_slices<'a>(params: &'a [f32], layer: &LayerParams) -> (&'a [f32], &'a [f32]) {
    (
        &params[layer.w..layer.b],
        &params[layer.b..layer.b + layer.outputs],
    )
}

/// Row-major `[rows, width]` into `width` columns (rows past the data are zero).
#[inline(always)]
fn gather_columns(rows: &[f32], columns: &mut [Column]) {
    let width = columns.len();
    columns.iter_mut().for_each(|c| *c = [0.0; ROWS]);
    for (r, row) in rows.chunks_exact(width).enumerate() {
        for (c, &v) in columns.iter_mut().zip(row) {
            c[r] = v;
        }
    }
}

/// The inverse of [`gather_columns`] for the rows that `rows` holds.
#[inline(always)]
fn scatter_columns(columns: &[Column], rows: &mut [f32]) {
    let width = columns.len();
    for (r, row) in rows.chunks_exact_mut(width).enumerate() {
        for (v, c) in row.iter_mut().zip(columns) {
            *v = c[r];
        }
    }
}

/// [`FusedMlp::forward_task`] on the widest vector unit (`pulp` dispatch).
struct ForwardTask<'a> {
    op: &'a FusedMlp,
    params: &'a [f32],
    x: &'a [f32],
    hidden: &'a mut [Column],
    out: &'a mut [f32],
}

impl WithSimd for ForwardTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let t = self;
        t.op.forward_task(simd, t.params, t.x, t.hidden, t.out)
    }
}

/// [`FusedMlp::backward_task`] on the widest vector unit.
struct BackwardTask<'a> {
    op: &'a FusedMlp,
    params: &'a [f32],
    x: &'a [f32],
    hidden: &'a [Column],
    grad_out: &'a [f32],
    grad_x: Option<&'a mut [f32]>,
    partials: &'a mut Vec<Lanes>,
}

impl WithSimd for BackwardTask<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Vec<f32> {
        self.op.backward_task(simd, self)
    }
}

/// `out[j] = b[j] + sum_i w[i, j] input[i]` (`w` `[I, O]` row-major), summed in order of `i`.
#[inline(always)]
fn affine<S: Simd>(simd: S, input: &[Column], w: &[f32], b: &[f32], out: &mut [Column]) {
    let outputs = out.len();
    combine(
        simd,
        input,
        out,
        #[inline(always)]
        |j| b[j],
        #[inline(always)]
        |i, j| w[i * outputs + j],
    );
}

/// `out[i] = sum_j w[i, j] g[j]`: the input gradient of a layer, summed in order of `j`.
#[inline(always)]
fn transposed_product<S: Simd>(simd: S, g: &[Column], w: &[f32], out: &mut [Column]) {
    let outputs = g.len();
    combine(
        simd,
        g,
        out,
        #[inline(always)]
        |_| 0.0,
        #[inline(always)]
        |j, i| w[i * outputs + j],
    );
}

/// `out[o] = init(o) + sum_k coeff(k, o) input[k]` for every output `o`, each a chain of fused
/// multiply-adds in order of `k` (so the same bits on every vector unit). Outputs go in blocks
/// of up to 8 whose sums stay in registers while the inputs stream past.
#[inline(always)]
fn combine<S: Simd>(
    simd: S,
    input: &[Column],
    out: &mut [Column],
    init: impl Fn(usize) -> f32,
    coeff: impl Fn(usize, usize) -> f32,
) {
    let mut first = 0;
    while first < out.len() {
        let block = &mut out[first..];
        first += match block.len() {
            8.. => combine_block::<S, 8>(simd, input, block, first, &init, &coeff),
            4.. => combine_block::<S, 4>(simd, input, block, first, &init, &coeff),
            2.. => combine_block::<S, 2>(simd, input, block, first, &init, &coeff),
            _ => combine_block::<S, 1>(simd, input, block, first, &init, &coeff),
        };
    }
}

/// [`combine`] for outputs `first..first + N` (the first `N` of `out`); returns `N`.
#[inline(always)]
fn combine_block<S: Simd, const N: usize>(
    simd: S,
    input: &[Column],
    out: &mut [Column],
    first: usize,
    init: &impl Fn(usize) -> f32,
    coeff: &impl Fn(usize, usize) -> f32,
) -> usize {
    for v in 0..ROWS / S::F32_LANES {
        let mut acc = [simd.splat_f32s(0.0); N];
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = simd.splat_f32s(init(first + k));
        }
        for (i, x) in input.iter().enumerate() {
            let x = S::as_simd_f32s(x).0[v];
            for (k, acc) in acc.iter_mut().enumerate() {
                *acc = simd.mul_add_f32s(simd.splat_f32s(coeff(i, first + k)), x, *acc);
            }
        }
        for (out, acc) in out.iter_mut().zip(acc) {
            S::as_mut_simd_f32s(out).0[v] = acc;
        }
    }
    N
}

/// `dw[i, j] += input[i] * g[j]` and `db[j] += g[j]` into 16 partial sums per weight
/// ([`Lanes`]), reduced once per task by [`reduce_partials`].
#[inline(always)]
fn accumulate_weight_partials<S: Simd>(
    simd: S,
    input: &[Column],
    g: &[Column],
    dw: &mut [Lanes],
    db: &mut [Lanes],
) {
    for (x, dw) in input.iter().zip(dw.chunks_exact_mut(g.len())) {
        for (d, g) in dw.iter_mut().zip(g) {
            fold_into(simd, d, x, Some(g));
        }
    }
    for (d, g) in db.iter_mut().zip(g) {
        fold_into(simd, d, g, None);
    }
}

/// `lanes += (p0 + p1) + (p2 + p3)` where `p` are the chunk's four 16-row groups of
/// `a * b` (or of `a` alone), lane by lane.
#[inline(always)]
fn fold_into<S: Simd>(simd: S, lanes: &mut Lanes, a: &Column, b: Option<&Column>) {
    let per_group = LANES / S::F32_LANES;
    let a = S::as_simd_f32s(a).0;
    let b = b.map(|b| S::as_simd_f32s(b).0);
    let (lanes, _) = S::as_mut_simd_f32s(lanes);
    for (s, lane) in lanes.iter_mut().enumerate() {
        let v = [s, per_group + s, 2 * per_group + s, 3 * per_group + s];
        let [p0, p1, p2, p3] = match b {
            Some(b) => [
                simd.mul_f32s(a[v[0]], b[v[0]]),
                simd.mul_f32s(a[v[1]], b[v[1]]),
                simd.mul_f32s(a[v[2]], b[v[2]]),
                simd.mul_f32s(a[v[3]], b[v[3]]),
            ],
            None => [a[v[0]], a[v[1]], a[v[2]], a[v[3]]],
        };
        let sum = simd.add_f32s(simd.add_f32s(p0, p1), simd.add_f32s(p2, p3));
        *lane = simd.add_f32s(*lane, sum);
    }
}

/// Each weight's total of its partial sums, by a fixed pairwise tree.
#[inline(always)]
fn reduce_partials(partials: &mut [Lanes]) -> Vec<f32> {
    partials
        .iter_mut()
        .map(|p| {
            let mut width = LANES / 2;
            while width > 0 {
                let (low, high) = p.split_at_mut(width);
                for (l, &h) in low.iter_mut().zip(&high[..width]) {
                    *l += h;
                }
                width /= 2;
            }
            p[0]
        })
        .collect()
}

impl CustomOp2 for FusedMlp {
    fn name(&self) -> &'static str {
        "fused-mlp"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, params) = (contiguous_f32(s1, l1)?, contiguous_f32(s2, l2)?);
        let (inputs, outputs) = (self.widths[0], *self.widths.last().expect("non-empty"));
        if params.len() != self.num_params() || x.len() % inputs != 0 {
            candle_core::bail!("fused-mlp: x {:?}, parameters {:?}", l1.dims(), l2.dims());
        }
        let rows = x.len() / inputs;
        let stride = self.hidden_stride();
        let mut hidden = vec![[0.0; ROWS]; rows.div_ceil(ROWS) * stride];
        let mut out = vec![0.0f32; rows * outputs];
        let task_rows = ROWS * CHUNKS_PER_TASK;
        let run = |((x, hidden), out): ((&[f32], &mut [Column]), &mut [f32])| {
            pulp::Arch::new().dispatch(ForwardTask {
                op: self,
                params,
                x,
                hidden,
                out,
            })
        };
        if rows <= task_rows {
            run(((x, &mut hidden[..]), &mut out[..]));
        } else {
            x.par_chunks(task_rows * inputs)
                .zip(hidden.par_chunks_mut(CHUNKS_PER_TASK * stride))
                .zip(out.par_chunks_mut(task_rows * outputs))
                .for_each(run);
        }
        // Set once: candle runs an op's forward once.
        let _ = self.hidden.set(hidden);
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(hidden) = self.hidden.get() else {
            candle_core::bail!("fused-mlp: backward before forward");
        };
        let (inputs, outputs) = (self.widths[0], *self.widths.last().expect("non-empty"));
        let rows = x.dim(0)?;
        let stride = self.hidden_stride();
        let task_rows = ROWS * CHUNKS_PER_TASK;
        let grad_res = grad_res.contiguous()?;
        let mut grad_x = x.track_op().then(|| vec![0.0f32; rows * inputs]);
        let partial: Vec<Vec<f32>> = with_f32(x, |x| {
            with_f32(params, |params| {
                with_f32(&grad_res, |grad_out| {
                    let tasks = x
                        .chunks(task_rows * inputs)
                        .zip(hidden.chunks(CHUNKS_PER_TASK * stride))
                        .zip(grad_out.chunks(task_rows * outputs));
                    let run = |(((x, hidden), grad_out), grad_x): TaskRows| {
                        PARTIALS.with_borrow_mut(|partials| {
                            pulp::Arch::new().dispatch(BackwardTask {
                                op: self,
                                params,
                                x,
                                hidden,
                                grad_out,
                                grad_x,
                                partials,
                            })
                        })
                    };
                    // Each task's rows of the input gradient, when one is wanted.
                    let grad_x_parts: Vec<&mut [f32]> = match grad_x.as_deref_mut() {
                        Some(gx) => gx.chunks_mut(task_rows * inputs).collect(),
                        None => Vec::new(),
                    };
                    let mut grad_x_parts = grad_x_parts.into_iter();
                    let tasks: Vec<TaskRows> = tasks.map(|t| (t, grad_x_parts.next())).collect();
                    if tasks.len() > 1 {
                        tasks.into_par_iter().map(run).collect()
                    } else {
                        tasks.into_iter().map(run).collect()
                    }
                })
            })
        })???;
        let grad_params = add_in_order(partial, self.num_params());
        let grad_params = Tensor::from_vec(grad_params, params.shape(), params.device())?;
        let grad_x = grad_x
            .map(|g| Tensor::from_vec(g, x.shape(), x.device()))
            .transpose()?;
        Ok((grad_x, Some(grad_params)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use candle_core::{Device, Var};

    fn layered(x: &Tensor, params: &[Var], act: Activation) -> Tensor {
        let layers = params.len() / 2;
        let mut h = x.clone();
        for l in 0..layers {
            let a = (l + 1 < layers).then_some(act);
            h = linear(&h, &params[2 * l], &params[2 * l + 1], a).unwrap();
        }
        h
    }

    fn random_params(widths: &[usize]) -> Vec<Var> {
        let dev = Device::Cpu;
        widths
            .windows(2)
            .flat_map(|io| {
                [
                    Var::randn(0f32, 0.4, (io[0], io[1]), &dev).unwrap(),
                    Var::randn(0f32, 0.2, io[1], &dev).unwrap(),
                ]
            })
            .collect()
    }

    /// Same values and gradients (parameters and input) as the per-layer ops, for one and
    /// several chunks and tasks, ragged last chunks, a single layer and the policy's shape.
    #[test]
    fn matches_the_layered_ops_in_value_and_gradient() {
        for (widths, rows) in [
            (vec![3, 5, 2], 1),
            (vec![3, 5, 2], 70),
            (vec![4, 3], 130),
            (vec![17, 32, 32, 6], 1100),
            (vec![6, 64, 1, 8], 513),
        ] {
            for act in [Activation::Tanh, Activation::Relu] {
                let x = Var::randn(0f32, 1.0, (rows, widths[0]), &Device::Cpu).unwrap();
                let params = random_params(&widths);
                let tensors: Vec<Tensor> = params.iter().map(|p| p.as_tensor().clone()).collect();
                let fused = fused_mlp(&x, &tensors, act).unwrap();
                let reference = layered(&x, &params, act);
                let context = format!("{act:?} {widths:?} x {rows}");
                assert!(max_diff(&fused, &reference) < 1e-5, "{context} value");
                let (g1, g2) = probed_gradients(&fused, &reference);
                let mut tolerances = vec![(&x, 1e-5)];
                tolerances.extend(params.iter().map(|p| (p, 1e-4)));
                assert_gradients_match(&g1, &g2, &tolerances, &context);
            }
        }
    }

    /// The bits do not depend on the number of threads.
    #[test]
    fn one_and_two_threads_give_the_same_bits() {
        let widths = [17, 32, 32, 6];
        let x = Tensor::randn(0f32, 1.0, (3000, 17), &Device::Cpu).unwrap();
        let params = random_params(&widths);
        let tensors: Vec<Tensor> = params.iter().map(|p| p.as_tensor().clone()).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let out = fused_mlp(&x, &tensors, Activation::Tanh).unwrap();
                let grads = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let mut bits: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
                for p in &params {
                    bits.extend(
                        grads
                            .get(p)
                            .unwrap()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap(),
                    );
                }
                bits.into_iter().map(f32::to_bits).collect::<Vec<u32>>()
            })
        };
        assert_eq!(run(1), run(2));
    }

    /// Data inputs get no gradient; bad shapes are errors.
    #[test]
    fn constant_inputs_and_bad_shapes() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let params = random_params(&[3, 4, 2]);
        let tensors: Vec<Tensor> = params.iter().map(|p| p.as_tensor().clone()).collect();
        let grads = fused_mlp(&x, &tensors, Activation::Tanh)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        assert!(params.iter().all(|p| grads.get(p).is_some()));
        assert!(fused_mlp(&x, &tensors[..3], Activation::Tanh).is_err());
        let wrong_input = Tensor::zeros((5, 4), candle_core::DType::F32, &dev).unwrap();
        assert!(fused_mlp(&wrong_input, &tensors, Activation::Tanh).is_err());
    }
}

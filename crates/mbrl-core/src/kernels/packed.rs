//! Dense layers through constant weights (a frozen ensemble's imagined rollouts and
//! evaluations), with the weights laid out once in the order gemm's microkernels read them.
//!
//! Before its microkernels run, gemm copies ("packs") the weight matrix of a product into panels
//! of output columns, unless the product has few rows. Imagined rollouts multiply 100-500 rows
//! by the same 512 x 512 weights at every step, so the same matrices were packed again at every
//! step, in every row tile [`super::matmul`] gives a thread: 14% of a single-threaded ME-TRPO
//! imagination, and no faster on two threads, where each thread packed the whole matrix of every
//! member it worked on (docs/performance.md). Here [`PackedWeights`] holds the panels, each
//! `[inputs, PANEL]` row-major (for AVX-512's 64-row microkernels the layout gemm's packing
//! produces), and [`packed_linear`] multiplies at most [`ROW_CHUNK`] rows at a time, below
//! gemm's packing threshold, so the microkernels read the panels in place. The threads share
//! (member, row chunk) tiles, each writing whole output rows and adding the bias and activation
//! while they are in cache. The microkernels and their summation order are gemm's own, so the
//! result has the bits of [`super::linear()`] on the shapes tested below, whatever the number of
//! threads.

use std::mem::MaybeUninit;

use candle_core::Tensor;
use rayon::prelude::*;

use super::elementwise::{self, with_f32};
use super::matmul::row_tiles;
use super::Activation;
use crate::{Error, Result};

/// Output columns per panel: the row count of gemm's AVX-512 `f32` microkernel (4 x 16 lanes),
/// a multiple of its AVX2 one (2 x 8).
const PANEL: usize = 64;
/// Most rows per product: gemm packs the weights of a product with more than its single-thread
/// packing threshold (8) times its microkernel's column count (6, for AVX-512 and AVX2) rows.
const ROW_CHUNK: usize = 48;
/// Columns of gemm's `f32` microkernels (AVX-512 and AVX2): a product over a multiple of it
/// rows leaves no microkernel partly used.
const KERNEL_COLUMNS: usize = 6;
/// Products with fewer multiply-adds run on the calling thread alone.
const SERIAL_WORK: usize = 1 << 20;

/// A layer's weights `[I, O]`, or one matrix per ensemble member `[K, I, O]`, stored as panels
/// of [`PANEL`] output columns (the last one narrower when `O` is not a multiple): member `k`'s
/// panel `p` is `[I, width]` row-major. Built once, then read by every [`packed_linear`].
#[derive(Debug, Clone)]
pub struct PackedWeights {
    panels: Vec<f32>,
    members: usize,
    inputs: usize,
    outputs: usize,
}

impl PackedWeights {
    /// Lays out `w` (`[I, O]` or `[K, I, O]`, `f32`) in panels.
    pub fn new(w: &Tensor) -> Result<Self> {
        let (members, inputs, outputs) = match *w.dims() {
            [i, o] => (1, i, o),
            [k, i, o] => (k, i, o),
            _ => {
                return Err(Error::shape(
                    "packed weights",
                    "[I, O] or [K, I, O]",
                    format!("{:?}", w.dims()),
                ))
            }
        };
        let panels = with_f32(&w.contiguous()?, |data| {
            let mut panels = Vec::with_capacity(data.len());
            for member in data.chunks_exact(inputs * outputs) {
                for first in (0..outputs).step_by(PANEL) {
                    let width = PANEL.min(outputs - first);
                    for row in member.chunks_exact(outputs) {
                        panels.extend_from_slice(&row[first..first + width]);
                    }
                }
            }
            panels
        })?;
        Ok(Self {
            panels,
            members,
            inputs,
            outputs,
        })
    }

    /// `(first output column, width, data)` of each panel of member `k`.
    fn panels_of(&self, k: usize) -> impl Iterator<Item = (usize, usize, &[f32])> {
        let member = &self.panels[k * self.inputs * self.outputs..][..self.inputs * self.outputs];
        (0..self.outputs).step_by(PANEL).map(move |first| {
            let width = PANEL.min(self.outputs - first);
            (
                first,
                width,
                &member[first * self.inputs..][..width * self.inputs],
            )
        })
    }
}

/// `act(x W + b)` with `W` packed: `x` `[B, I]` with `b` `[O]` for a single matrix, or `x`
/// `[K, B, I]` with `b` `[K, 1, O]` for one per member; `None` is the identity. Values only:
/// inputs that need gradients are an error (use [`super::linear()`]).
pub fn packed_linear(
    x: &Tensor,
    w: &PackedWeights,
    b: &Tensor,
    act: Option<Activation>,
) -> Result<Tensor> {
    let (k, rows) = match *x.dims() {
        [rows, i] if w.members == 1 && i == w.inputs => (1, rows),
        [k, rows, i] if k == w.members && i == w.inputs => (k, rows),
        _ => (0, 0),
    };
    let out_dims: Vec<usize> = match x.rank() {
        2 => vec![rows, w.outputs],
        _ => vec![k, rows, w.outputs],
    };
    if k == 0 || !elementwise::bias_fits(&out_dims, b.dims()) {
        return Err(Error::shape(
            "packed linear layer",
            format!(
                "x [B, {i}] and b [{o}], or x [{k}, B, {i}] and b [{k}, 1, {o}]",
                i = w.inputs,
                o = w.outputs,
                k = w.members
            ),
            format!("x {:?}, b {:?}", x.dims(), b.dims()),
        ));
    }
    if x.track_op() || b.track_op() {
        return Err(Error::InvalidArgument(
            "packed_linear computes values only; inputs that need gradients go through linear"
                .into(),
        ));
    }
    let (x, b) = (x.contiguous()?, b.contiguous()?);
    let out = with_f32(&x, |x| with_f32(&b, |b| forward(x, w, b, rows, act)))??;
    Ok(Tensor::from_vec(out, out_dims, x.device())?)
}

/// The layer's `[K, rows, O]` output: (member, row chunk) tiles on rayon's threads.
fn forward(
    x: &[f32],
    w: &PackedWeights,
    b: &[f32],
    rows: usize,
    act: Option<Activation>,
) -> Vec<f32> {
    let (k, o) = (w.members, w.outputs);
    let len = k * rows * o;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && len * w.inputs >= SERIAL_WORK;
    let chunk_rows = chunk_rows(k, rows, if parallel { threads } else { 1 });
    let tiles = row_tiles(&mut out.spare_capacity_mut()[..len], rows, o, chunk_rows);
    let run = |(member, first_row, dst): (usize, usize, &mut [MaybeUninit<f32>])| {
        let n = dst.len() / o;
        let x = &x[(member * rows + first_row) * w.inputs..][..n * w.inputs];
        let dst = tile_product(dst, x, w, member, n);
        elementwise::add_bias_then_activate(dst, &b[member * o..][..o], n, o, act);
    };
    if parallel {
        tiles.into_par_iter().for_each(run);
    } else {
        tiles.into_iter().for_each(run);
    }
    // SAFETY: the capacity is `len`, and the tiles cover all `K x rows` output rows, every value
    // of which `tile_product` wrote.
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len);
    }
    out
}

/// Rows per product: at most [`ROW_CHUNK`], a multiple of [`KERNEL_COLUMNS`] (or all rows), and
/// small enough that the `k` members' chunks, about equal, share evenly among `threads`.
fn chunk_rows(k: usize, rows: usize, threads: usize) -> usize {
    let mut chunks = rows.div_ceil(ROW_CHUNK).max(1);
    while !(k * chunks).is_multiple_of(threads) && chunks < rows {
        chunks += 1;
    }
    rows.div_ceil(chunks)
        .next_multiple_of(KERNEL_COLUMNS)
        .min(ROW_CHUNK)
        .min(rows.max(1))
}

/// `x w[member]` for the `n` rows of `x` (`[n, I]`) into `dst` (`[n, O]`), panel by panel, every
/// value written without reading `dst`; returns `dst` as the values it now holds.
#[allow(unsafe_code)]
fn tile_product<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    x: &[f32],
    w: &PackedWeights,
    member: usize,
    n: usize,
) -> &'a mut [f32] {
    let (inputs, o) = (w.inputs, w.outputs);
    assert!(dst.len() == n * o && x.len() == n * inputs);
    for (first, width, panel) in w.panels_of(member) {
        // SAFETY: the destination is the `n x width` block of `dst` at column `first` and row
        // stride `o` (inside `dst`, as `first + width <= o`); `x` holds `n x inputs` values at
        // strides `(inputs, 1)`; `panel` holds `inputs x width` at `(width, 1)`. Nothing else
        // accesses `dst` during the call (`&mut`). With `read_dst = false` gemm writes every
        // value of its destination block without reading it (zeros when `inputs = 0`).
        unsafe {
            gemm::gemm(
                n,
                width,
                inputs,
                dst.as_mut_ptr().add(first).cast::<f32>(),
                1,
                o as isize,
                false,
                x.as_ptr(),
                1,
                inputs as isize,
                panel.as_ptr(),
                1,
                width as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
    // SAFETY: the panels' blocks cover all `o` columns of all `n` rows, so every value of `dst`
    // was written above; `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { &mut *(std::ptr::from_mut(dst) as *mut [f32]) }
}

#[cfg(test)]
mod tests {
    use super::super::linear;
    use super::*;
    use candle_core::{Device, Var};

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    /// The bits of the unpacked layer: the ensembles' shapes (imagination, validation, the
    /// narrow output layer, 1024-wide hidden layers), a single matrix, widths that are not a
    /// multiple of a panel, every activation, serial and on a pool of three threads.
    #[test]
    fn gives_the_bits_of_the_unpacked_layer() {
        let dev = Device::Cpu;
        let shapes: [(&[usize], &[usize], &[usize]); 8] = [
            (&[5, 100, 23], &[5, 23, 512], &[5, 1, 512]),
            (&[5, 100, 512], &[5, 512, 512], &[5, 1, 512]),
            (&[5, 500, 512], &[5, 512, 17], &[5, 1, 17]),
            (&[5, 37, 512], &[5, 512, 512], &[5, 1, 512]),
            (&[3, 100, 1024], &[3, 1024, 1024], &[3, 1, 1024]),
            (&[2, 50, 70], &[2, 70, 130], &[2, 1, 130]),
            (&[500, 512], &[512, 512], &[512]),
            (&[1, 3], &[3, 2], &[2]),
        ];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for (x_dims, w_dims, b_dims) in shapes {
            let x = Tensor::randn(0f32, 1.0, x_dims, &dev).unwrap();
            let w = Tensor::randn(0f32, 0.05, w_dims, &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, b_dims, &dev).unwrap();
            let packed = PackedWeights::new(&w).unwrap();
            for act in [None, Some(Activation::Relu), Some(Activation::Tanh)] {
                let expected = bits(&linear(&x, &w, &b, act).unwrap());
                let serial = packed_linear(&x, &packed, &b, act).unwrap();
                assert_eq!(serial.dims(), {
                    let mut d = x_dims.to_vec();
                    *d.last_mut().unwrap() = *w_dims.last().unwrap();
                    d
                });
                assert!(
                    bits(&serial) == expected,
                    "{x_dims:?} x {w_dims:?}, {act:?}"
                );
                let threaded = pool.install(|| packed_linear(&x, &packed, &b, act).unwrap());
                assert!(bits(&threaded) == expected, "{x_dims:?} threaded, {act:?}");
            }
        }
    }

    #[test]
    fn products_have_whole_microkernels_and_share_evenly() {
        assert_eq!(chunk_rows(5, 100, 1), 36);
        assert_eq!(chunk_rows(5, 100, 2), 30);
        assert_eq!(chunk_rows(5, 500, 2), 42);
        assert_eq!(chunk_rows(1, 1, 2), 1);
        assert_eq!(chunk_rows(1, 4, 1), 4);
        for (k, rows, threads) in [(5, 100, 2), (3, 1000, 4), (1, 7, 3), (5, 48, 2), (2, 49, 1)] {
            let chunk = chunk_rows(k, rows, threads);
            assert!(chunk <= ROW_CHUNK && chunk > 0, "{k} {rows} {threads}");
            assert!(
                chunk.is_multiple_of(KERNEL_COLUMNS) || chunk == rows,
                "{k} {rows} {threads}"
            );
        }
    }

    #[test]
    fn rejects_other_shapes_and_inputs_that_need_gradients() {
        let dev = Device::Cpu;
        let w =
            PackedWeights::new(&Tensor::ones((2, 4, 3), candle_core::DType::F32, &dev).unwrap())
                .unwrap();
        let b = Tensor::zeros((2, 1, 3), candle_core::DType::F32, &dev).unwrap();
        let zeros = |d: &[usize]| Tensor::zeros(d, candle_core::DType::F32, &dev).unwrap();
        assert!(packed_linear(&zeros(&[2, 5, 3]), &w, &b, None).is_err());
        assert!(packed_linear(&zeros(&[3, 5, 4]), &w, &b, None).is_err());
        assert!(packed_linear(&zeros(&[5, 4]), &w, &b, None).is_err());
        assert!(packed_linear(&zeros(&[2, 5, 4]), &w, &zeros(&[3]), None).is_err());
        let tracked = Var::zeros((2, 5, 4), candle_core::DType::F32, &dev).unwrap();
        let err = packed_linear(tracked.as_tensor(), &w, &b, None).unwrap_err();
        assert!(err.to_string().contains("gradients"), "{err}");
        assert!(packed_linear(&zeros(&[2, 5, 4]), &w, &b, None).is_ok());
        assert!(PackedWeights::new(&zeros(&[4])).is_err());
    }
}

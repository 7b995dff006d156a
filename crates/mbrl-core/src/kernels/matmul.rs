//! Matrix products of the fused layers, scheduled for small ensembles on few cores.
//!
//! candle hands each member of a batched product to `gemm` on its own, and each call splits its
//! work across all threads. For the shapes of imagined rollouts (`[5, 100, 512] x [5, 512, 512]`)
//! and the narrow layers (`[., 512] x [512, 17]`, the policy's 32-wide layers) the per-call fork,
//! join and thread wake-ups cost about as much as the arithmetic (docs/performance.md). Here a
//! product is cut into tiles of rows of each member, which rayon's threads share, every tile one
//! single-threaded `gemm` call; a product of big square-ish blocks keeps gemm's own threading
//! (it packs the right operand once for all threads). gemm computes each output row the same way
//! whatever block of rows it is called with (checked below), so the split changes no bits, and
//! results do not depend on the number of threads.
//!
//! gemm chooses its microkernels when it is first called, by run-time CPU detection (AVX-512,
//! AVX2 + FMA, or scalar: [`crate::kernels::cpu`]).

use std::mem::MaybeUninit;

use candle_core::Tensor;
use rayon::prelude::*;

use super::elementwise::with_f32;

/// Per-member products with at least this many rows, and [`LARGE_BLOCK`] columns and depth,
/// keep gemm's own threading (it packs the right operand once for both threads; below this,
/// tiles that skip the packing were faster on the shapes of docs/performance.md).
const LARGE_ROWS: usize = 384;
/// See [`LARGE_ROWS`].
const LARGE_BLOCK: usize = 256;
/// `f32` lanes of the widest vector unit: gemm packs a left operand whose row count is not a
/// multiple of it (a copy per call), so tiles are cut at multiples of it.
const LANES: usize = 16;
/// Smallest tile, in rows.
const MIN_TILE_ROWS: usize = 32;
/// Tiles per thread aimed at, so that uneven tiles still balance.
const TILES_PER_THREAD: usize = 4;
/// Products with fewer multiply-adds run on the calling thread alone.
const SERIAL_WORK: usize = 1 << 20;

/// One operand of [`matmul`]: `members` row-major matrices stored back to back, used as stored
/// (`transposed = false`: `[rows, cols]` data) or transposed (`[cols, rows]` data).
#[derive(Debug, Clone, Copy)]
pub(super) struct Operand<'a> {
    /// The members' data, `members * rows * cols` values.
    pub data: &'a [f32],
    /// Matrices in `data`: the product's batch size, or 1 to share one matrix across it.
    pub members: usize,
    /// Rows of the operand as used in the product.
    pub rows: usize,
    /// Columns of the operand as used in the product.
    pub cols: usize,
    /// Whether `data` holds the transpose (`[cols, rows]` per member).
    pub transposed: bool,
}

impl Operand<'_> {
    fn member_len(&self) -> usize {
        self.rows * self.cols
    }

    /// `(row stride, column stride)` of the operand as used.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.rows as isize)
        } else {
            (self.cols as isize, 1)
        }
    }

    fn member(&self, k: usize) -> &[f32] {
        let k = if self.members == 1 { 0 } else { k };
        &self.data[k * self.member_len()..(k + 1) * self.member_len()]
    }
}

/// `out[k] = a[k] b[k]` for each of `batch` members: `[batch, a.rows, b.cols]`, row-major.
/// Panics on inconsistent shapes (callers check them and report errors first).
pub(super) fn matmul(batch: usize, a: Operand<'_>, b: Operand<'_>) -> Vec<f32> {
    let len = check_shapes(batch, &a, &b);
    if len == 0 || a.cols == 0 {
        return vec![0.0f32; len];
    }
    // Not zero-filled first (a memset was ~5% of an ensemble training step): every tile's
    // gemm call writes all of its values without reading them.
    let mut out: Vec<f32> = Vec::with_capacity(len);
    write_products(&mut out.spare_capacity_mut()[..len], &a, &b, Accumulate::No);
    // SAFETY: the capacity is `len`, and the member products above wrote all `len` values
    // (each member's `m` rows, as whole products or as tiles covering them; `gemm_rows`).
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len);
    }
    out
}

/// `out[k] += a[k] b[k]` for each of `batch` members, `out` being `[batch, a.rows, b.cols]`,
/// row-major. Panics on inconsistent shapes (callers check them and report errors first).
pub(super) fn matmul_add(out: &mut [f32], batch: usize, a: Operand<'_>, b: Operand<'_>) {
    let len = check_shapes(batch, &a, &b);
    assert_eq!(out.len(), len, "product size");
    if len == 0 || a.cols == 0 {
        return;
    }
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and what is written through the view
    // is always an initialised `f32` (gemm's `dst = dst + a b`).
    #[allow(unsafe_code)]
    let view = unsafe { &mut *(std::ptr::from_mut(out) as *mut [MaybeUninit<f32>]) };
    write_products(view, &a, &b, Accumulate::Yes);
}

/// The product's length, after checking that the operands fit.
fn check_shapes(batch: usize, a: &Operand<'_>, b: &Operand<'_>) -> usize {
    assert_eq!(a.cols, b.rows, "inner dimensions of a matrix product");
    for op in [a, b] {
        assert!(op.members == 1 || op.members == batch, "operand batch");
        assert_eq!(op.data.len(), op.members * op.member_len(), "operand size");
    }
    batch * a.rows * b.cols
}

/// Whether a product overwrites its destination (which may then be uninitialised) or is added
/// to it.
#[derive(Clone, Copy)]
enum Accumulate {
    No,
    Yes,
}

/// The member products into `out` (`[batch, m, n]`): each whole, on all threads, when large,
/// otherwise as row tiles ([`run_tiles`]).
fn write_products(
    out: &mut [MaybeUninit<f32>],
    a: &Operand<'_>,
    b: &Operand<'_>,
    accumulate: Accumulate,
) {
    let (m, n) = (a.rows, b.cols);
    let threads = rayon::current_num_threads();
    let work = out.len() * a.cols;
    if threads > 1 && m >= LARGE_ROWS && n >= LARGE_BLOCK && a.cols >= LARGE_BLOCK {
        for (k, dst) in out.chunks_exact_mut(m * n).enumerate() {
            let parallelism = gemm::Parallelism::Rayon(threads);
            gemm_rows(dst, a, b, (k, 0, m), parallelism, accumulate);
        }
    } else {
        run_tiles(out, a, b, threads, work, accumulate);
    }
}

/// Member products cut into row tiles shared by rayon's threads (or one tile per member when
/// the work is small), written into `out` (`[batch, m, n]`).
fn run_tiles(
    out: &mut [MaybeUninit<f32>],
    a: &Operand<'_>,
    b: &Operand<'_>,
    threads: usize,
    work: usize,
    accumulate: Accumulate,
) {
    let (m, n) = (a.rows, b.cols);
    let batch = out.len() / (m * n);
    let tile_rows = if threads > 1 && work >= SERIAL_WORK {
        (batch * m)
            .div_ceil(TILES_PER_THREAD * threads)
            .max(MIN_TILE_ROWS)
            .next_multiple_of(LANES)
    } else {
        m
    };
    let tiles = row_tiles(out, m, n, tile_rows);
    let run = |(k, first_row, dst): (usize, usize, &mut [MaybeUninit<f32>])| {
        let rows = dst.len() / n;
        gemm_rows(
            dst,
            a,
            b,
            (k, first_row, rows),
            gemm::Parallelism::None,
            accumulate,
        );
    };
    if tiles.len() > 1 {
        tiles.into_par_iter().for_each(run);
    } else {
        tiles.into_iter().for_each(run);
    }
}

/// A `[batch, rows, width]` output cut into tiles of at most `tile_rows` rows of one member:
/// `(member, first row, the tile's values)`, in order.
pub(super) fn row_tiles<T>(
    out: &mut [T],
    rows: usize,
    width: usize,
    tile_rows: usize,
) -> Vec<(usize, usize, &mut [T])> {
    out.chunks_exact_mut(rows * width)
        .enumerate()
        .flat_map(|(member, block)| {
            block
                .chunks_mut(tile_rows * width)
                .enumerate()
                .map(move |(t, dst)| (member, t * tile_rows, dst))
        })
        .collect()
}

/// `op(a) op(b)` of contiguous `f32` CPU tensors, both `[R, C]` or both `[K, R, C]` as stored,
/// `op` transposing the last two dimensions where asked; not differentiable (for hand-written
/// first-order backward passes).
pub(super) fn tensor_matmul(
    a: &Tensor,
    transpose_a: bool,
    b: &Tensor,
    transpose_b: bool,
) -> candle_core::Result<Tensor> {
    let (batch, (ar, ac), (br, bc)) = match (a.dims(), b.dims()) {
        (&[ar, ac], &[br, bc]) => (1, (ar, ac), (br, bc)),
        (&[k, ar, ac], &[kb, br, bc]) if k == kb => (k, (ar, ac), (br, bc)),
        (da, db) => candle_core::bail!("matmul of {da:?} and {db:?}"),
    };
    fn operand(
        data: &[f32],
        batch: usize,
        stored: (usize, usize),
        transposed: bool,
    ) -> Operand<'_> {
        let (rows, cols) = if transposed {
            (stored.1, stored.0)
        } else {
            stored
        };
        Operand {
            data,
            members: batch,
            rows,
            cols,
            transposed,
        }
    }
    let (a_c, b_c) = (a.contiguous()?, b.contiguous()?);
    let out = with_f32(&a_c, |a_data| {
        with_f32(&b_c, |b_data| {
            let a_op = operand(a_data, batch, (ar, ac), transpose_a);
            let b_op = operand(b_data, batch, (br, bc), transpose_b);
            if a_op.cols != b_op.rows {
                candle_core::bail!(
                    "matmul of {:?} and {:?} (transposed: {transpose_a}, {transpose_b})",
                    a.dims(),
                    b.dims()
                );
            }
            Ok((matmul(batch, a_op, b_op), a_op.rows, b_op.cols))
        })
    })???;
    let (data, m, n) = out;
    if a.rank() == 2 {
        Tensor::from_vec(data, (m, n), a.device())
    } else {
        Tensor::from_vec(data, (batch, m, n), a.device())
    }
}

/// Rows `first_row .. first_row + rows` of member `k`'s product into `dst` (`[rows, n]`):
/// every value written, without reading what `dst` held, or added to it
/// (`Accumulate::Yes`, `dst` initialised).
#[allow(unsafe_code)]
fn gemm_rows(
    dst: &mut [MaybeUninit<f32>],
    a: &Operand<'_>,
    b: &Operand<'_>,
    (k, first_row, rows): (usize, usize, usize),
    parallelism: gemm::Parallelism,
    accumulate: Accumulate,
) {
    let n = b.cols;
    let depth = a.cols;
    let (a_data, b_data) = (a.member(k), b.member(k));
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    assert!(dst.len() == rows * n && first_row + rows <= a.rows);
    let a_start = &a_data[first_row * a_rs as usize..];
    // SAFETY: `dst` holds `rows x n` values at row stride `n`; `a_start` holds the `rows x depth`
    // block of `a` at strides `(a_rs, a_cs)` (the member slice covers `a.rows x depth` values,
    // and `first_row + rows <= a.rows`); `b_data` holds `depth x n` values at `(b_rs, b_cs)`.
    // Nothing else accesses `dst` during the call (`&mut`). With `read_dst = false` gemm sets
    // `alpha = 0` and writes every value of `dst` without reading it (`dst = 1 * a b`; zeros
    // when `depth = 0`), so `dst` may be uninitialised; with `read_dst = true` (`dst = 1 * dst
    // + 1 * a b`) the caller guarantees it is initialised (`matmul_add`).
    let read_dst = matches!(accumulate, Accumulate::Yes);
    unsafe {
        gemm::gemm(
            rows,
            n,
            depth,
            dst.as_mut_ptr().cast::<f32>(),
            1,
            n as isize,
            read_dst,
            a_start.as_ptr(),
            a_cs,
            a_rs,
            b_data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    /// The tiled products give candle's bits (one whole gemm call per member), for every
    /// schedule (serial, tiles, gemm's own threading) and with either operand transposed.
    #[test]
    fn tiles_compute_the_bits_of_one_whole_product() {
        let dev = Device::Cpu;
        for (batch, m, depth, n) in [
            (1, 7, 3, 5),
            (5, 100, 23, 512),
            (5, 115, 512, 17),
            (3, 300, 64, 33),
            (2, 300, 300, 300),
            (1, 2000, 17, 32),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let a = data(batch * m * depth, 1);
                let b = data(batch * depth * n, 2);
                let a_t = if ta {
                    Tensor::from_slice(&a, (batch, depth, m), &dev)
                        .unwrap()
                        .transpose(1, 2)
                        .unwrap()
                } else {
                    Tensor::from_slice(&a, (batch, m, depth), &dev).unwrap()
                };
                let b_t = if tb {
                    Tensor::from_slice(&b, (batch, n, depth), &dev)
                        .unwrap()
                        .transpose(1, 2)
                        .unwrap()
                } else {
                    Tensor::from_slice(&b, (batch, depth, n), &dev).unwrap()
                };
                let expected: Vec<f32> = a_t
                    .matmul(&b_t)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let got = matmul(
                    batch,
                    Operand {
                        data: &a,
                        members: batch,
                        rows: m,
                        cols: depth,
                        transposed: ta,
                    },
                    Operand {
                        data: &b,
                        members: batch,
                        rows: depth,
                        cols: n,
                        transposed: tb,
                    },
                );
                let same = got
                    .iter()
                    .zip(&expected)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{batch}x{m}x{depth}x{n} transposed ({ta}, {tb})");
            }
        }
    }

    /// A right operand shared by every member equals the same matrix repeated.
    #[test]
    fn a_shared_operand_is_used_for_every_member() {
        let (batch, m, depth, n) = (3, 40, 8, 6);
        let a = data(batch * m * depth, 3);
        let b = data(depth * n, 4);
        let repeated: Vec<f32> = b.iter().copied().cycle().take(batch * b.len()).collect();
        let shared = matmul(
            batch,
            Operand {
                data: &a,
                members: batch,
                rows: m,
                cols: depth,
                transposed: false,
            },
            Operand {
                data: &b,
                members: 1,
                rows: depth,
                cols: n,
                transposed: false,
            },
        );
        let full = matmul(
            batch,
            Operand {
                data: &a,
                members: batch,
                rows: m,
                cols: depth,
                transposed: false,
            },
            Operand {
                data: &repeated,
                members: batch,
                rows: depth,
                cols: n,
                transposed: false,
            },
        );
        assert_eq!(shared, full);
    }

    /// `matmul_add` adds the product to what the output held, for every schedule.
    #[test]
    fn an_accumulated_product_is_the_old_value_plus_the_product() {
        for (batch, m, depth, n) in [(1, 7, 3, 5), (5, 100, 23, 512), (2, 300, 300, 300)] {
            let op = |data, rows, cols| Operand {
                data,
                members: batch,
                rows,
                cols,
                transposed: false,
            };
            let (a, b) = (data(batch * m * depth, 3), data(batch * depth * n, 4));
            let start = data(batch * m * n, 5);
            let product = matmul(batch, op(&a, m, depth), op(&b, depth, n));
            let mut out = start.clone();
            matmul_add(&mut out, batch, op(&a, m, depth), op(&b, depth, n));
            for ((got, s), p) in out.iter().zip(&start).zip(&product) {
                let expected = s + p;
                let tolerance = 1e-5 * (1.0 + s.abs() + p.abs()) * depth as f32;
                assert!(
                    (got - expected).abs() <= tolerance,
                    "{batch}x{m}x{depth}x{n}: {got} vs {expected}"
                );
            }
        }
    }
}

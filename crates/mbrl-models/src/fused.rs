//! Bias addition and activation fused into one candle custom op with a hand-written backward.
//!
//! candle's generic path for `act(x + b)` costs, per hidden layer of a training step, a
//! broadcast add, the activation, its backward (a comparison, a cast and a product for relu)
//! and, worst, the bias gradient: a sum over the batch dimension, which is not the last one
//! and runs ~30x slower than the equivalent matmul with a row of ones (PERFORMANCE_NOTES,
//! cause 3). Here the forward is one pass over the output, the backward one pass for the
//! activation's derivative plus that ones-row matmul for the bias.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::config::Activation;
use crate::Result;

/// `act(x + b)` for `x` `[K, B, O]` and `b` `[K, 1, O]`; `None` is the identity.
pub(crate) fn bias_activation(x: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    let (x, b) = (x.contiguous()?, b.contiguous()?);
    Ok(x.apply_op2(&b, BiasActivation(act))?)
}

struct BiasActivation(Option<Activation>);

/// The contiguous `f32` data of a tensor.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("bias-activation expects contiguous tensors");
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl CustomOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b) = (contiguous_f32(s1, l1)?, contiguous_f32(s2, l2)?);
        let &[k, rows, width] = l1.dims() else {
            candle_core::bail!(
                "bias-activation expects [K, B, O] inputs, got {:?}",
                l1.dims()
            );
        };
        if l2.dims() != [k, 1, width] {
            candle_core::bail!(
                "bias-activation: bias {:?} for inputs {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let mut out = Vec::with_capacity(x.len());
        for (member, block) in x.chunks_exact(rows * width.max(1)).enumerate() {
            let bias = &b[member * width..(member + 1) * width];
            for row in block.chunks_exact(width.max(1)) {
                out.extend(row.iter().zip(bias).map(|(&v, &c)| {
                    let z = v + c;
                    match self.0 {
                        None => z,
                        Some(Activation::Relu) => z.max(0.0),
                        Some(Activation::Tanh) => z.tanh(),
                        Some(Activation::Swish) => z * sigmoid(z),
                    }
                }));
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (k, rows, width) = res.dims3()?;
        let grad_res = grad_res.contiguous()?;
        let grad_pre = match self.0 {
            None => grad_res,
            Some(act) => {
                // For swish the derivative needs the pre-activation x + b.
                let source = match act {
                    Activation::Swish => x.broadcast_add(b)?,
                    _ => res.clone(),
                };
                let (g_store, g_layout) = grad_res.storage_and_layout();
                let (s_store, s_layout) = source.storage_and_layout();
                let (candle_core::Storage::Cpu(g_cpu), candle_core::Storage::Cpu(s_cpu)) =
                    (&*g_store, &*s_store)
                else {
                    candle_core::bail!("bias-activation runs on the CPU only");
                };
                let g = contiguous_f32(g_cpu, g_layout)?;
                let s = contiguous_f32(s_cpu, s_layout)?;
                let d: Vec<f32> = g
                    .iter()
                    .zip(s)
                    .map(|(&g, &s)| match act {
                        Activation::Relu => {
                            if s > 0.0 {
                                g
                            } else {
                                0.0
                            }
                        }
                        Activation::Tanh => g * (1.0 - s * s),
                        Activation::Swish => {
                            let sig = sigmoid(s);
                            g * sig * (1.0 + s * (1.0 - sig))
                        }
                    })
                    .collect();
                Tensor::from_vec(d, (k, rows, width), res.device())?
            }
        };
        let ones = Tensor::ones((k, 1, rows), res.dtype(), res.device())?;
        let grad_b = ones.matmul(&grad_pre)?;
        Ok((Some(grad_pre), Some(grad_b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op against candle's own ops: same values, same gradients.
    #[test]
    fn matches_the_unfused_ops_in_value_and_gradient() {
        let dev = Device::Cpu;
        for act in [
            None,
            Some(Activation::Relu),
            Some(Activation::Tanh),
            Some(Activation::Swish),
        ] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5, 3), &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 1, 3), &dev).unwrap()).unwrap();
            let w = Tensor::randn(0f32, 1.0, (2, 5, 3), &dev).unwrap();
            let fused = bias_activation(x.as_tensor(), b.as_tensor(), act).unwrap();
            let z = x.as_tensor().broadcast_add(b.as_tensor()).unwrap();
            let plain = match act {
                None => z,
                Some(Activation::Relu) => z.relu().unwrap(),
                Some(Activation::Tanh) => z.tanh().unwrap(),
                Some(Activation::Swish) => z.silu().unwrap(),
            };
            let g1 = (&fused * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (&plain * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let close = |a: &Tensor, b: &Tensor| {
                let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
                d.to_scalar::<f32>().unwrap() < 1e-5
            };
            assert!(close(&fused, &plain), "{act:?} value");
            for v in [&x, &b] {
                let (a, p) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert!(close(a, p), "{act:?} gradient");
            }
        }
    }
}

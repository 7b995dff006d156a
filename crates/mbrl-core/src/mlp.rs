//! A ReLU multilayer perceptron on the fused layer kernel, optionally `K` networks stacked as
//! one batched computation (MAAC's twin critic is a stack of two; GrBAL runs one adapted copy
//! per task as a stack).
//!
//! The weights are `Var`s; forward passes take the weight tensors explicitly, so the same
//! network runs with its trainable weights (the graph is recorded), with detached views of them
//! (no graph over the weights, still differentiable in the inputs: the critic inside the actor's
//! loss) or with a separate copy (the target critic).

use crate::kernels::{linear, packed_linear, Activation, PackedWeights};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngCore;
use rand_distr::{Distribution, Uniform};

/// Layer widths and stacking of an [`Mlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct MlpShape {
    /// `[inputs, hidden..., outputs]`.
    pub widths: Vec<usize>,
    /// `Some(K)`: `K` stacked networks (inputs `[K, B, in]` or `[B, in]` shared); `None`: one
    /// network on `[B, in]`.
    pub stacked: Option<usize>,
}

impl MlpShape {
    /// `inputs -> hidden... -> outputs`, optionally `stacked` networks.
    pub fn layers(inputs: usize, hidden: &[usize], outputs: usize, stacked: Option<usize>) -> Self {
        let mut widths = vec![inputs];
        widths.extend_from_slice(hidden);
        widths.push(outputs);
        Self { widths, stacked }
    }
}

/// The trainable parameters of a (stacked) MLP: `(weight, bias)` per layer, weights
/// `[in, out]` (or `[K, in, out]`), biases `[out]` (or `[K, 1, out]`).
#[derive(Debug)]
pub struct Mlp {
    shape: MlpShape,
    vars: Vec<Var>,
}

impl Mlp {
    /// PyTorch's default `nn.Linear` initialisation: weights and biases uniform in
    /// `+-1/sqrt(fan_in)`.
    pub fn new(shape: MlpShape, rng: &mut dyn RngCore) -> Result<Self> {
        if shape.widths.len() < 2 || shape.widths.contains(&0) || shape.stacked == Some(0) {
            return Err(Error::InvalidArgument(format!(
                "an MLP needs at least an input and an output width, all positive, and a \
                 positive stack size; got widths {:?}, stack {:?}",
                shape.widths, shape.stacked
            )));
        }
        let mut vars = Vec::new();
        for pair in shape.widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = 1.0 / (fan_in as f32).sqrt();
            let dist = Uniform::new_inclusive(-bound, bound)
                .map_err(|e| Error::InvalidArgument(format!("initialisation bound: {e}")))?;
            let (w_dims, b_dims) = match shape.stacked {
                None => (vec![fan_in, fan_out], vec![fan_out]),
                Some(k) => (vec![k, fan_in, fan_out], vec![k, 1, fan_out]),
            };
            for dims in [w_dims, b_dims] {
                let n: usize = dims.iter().product();
                let values: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
                vars.push(Var::from_tensor(&Tensor::from_vec(
                    values,
                    dims,
                    &Device::Cpu,
                )?)?);
            }
        }
        Ok(Self { shape, vars })
    }

    /// The trainable variables, `(weight, bias)` of each layer in order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The shape the network was built with.
    pub fn shape(&self) -> &MlpShape {
        &self.shape
    }

    /// The variables' own tensors: a forward pass with them records the graph for training.
    pub fn tracked(&self) -> Vec<Tensor> {
        self.vars.iter().map(|v| v.as_tensor().clone()).collect()
    }

    /// Views of the current values without autograd history (they follow later updates).
    pub fn detached(&self) -> Vec<Tensor> {
        self.vars.iter().map(|v| v.as_tensor().detach()).collect()
    }

    /// Deep copies of the current values.
    pub fn copies(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .vars
            .iter()
            .map(|v| v.as_tensor().copy().map(|t| t.detach()))
            .collect::<candle_core::Result<_>>()?)
    }

    /// An independent network with copies of the current values (later updates of either
    /// leave the other unchanged).
    pub fn snapshot(&self) -> Result<Self> {
        let vars = self
            .copies()?
            .iter()
            .map(Var::from_tensor)
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            shape: self.shape.clone(),
            vars,
        })
    }

    /// Overwrites every variable with `values` (same order and shapes).
    pub fn set(&self, values: &[Tensor]) -> Result<()> {
        if values.len() != self.vars.len() {
            return Err(Error::InvalidArgument(format!(
                "{} tensors for an MLP of {} parameters",
                values.len(),
                self.vars.len()
            )));
        }
        for (var, value) in self.vars.iter().zip(values) {
            if var.dims() != value.dims() {
                return Err(Error::shape(
                    "MLP parameter",
                    format!("{:?}", var.dims()),
                    format!("{:?}", value.dims()),
                ));
            }
            var.set(&value.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// The network's output with `weights` (in [`Mlp::vars`] order): ReLU between layers, none
    /// after the last. `x` is `[B, in]` (for a stack: broadcast to every member) or, for a
    /// stack, `[K, B, in]`.
    pub fn forward_with(&self, weights: &[Tensor], x: &Tensor) -> Result<Tensor> {
        self.forward_packed(weights, None, x)
    }

    /// `weights`' matrices laid out for [`Mlp::forward_packed`] (once for many forward passes
    /// with the same weights, e.g. a planner's horizon).
    pub fn pack(weights: &[Tensor]) -> Result<Vec<PackedWeights>> {
        weights
            .chunks_exact(2)
            .map(|pair| PackedWeights::new(&pair[0]))
            .collect()
    }

    /// [`Mlp::forward_with`], through `packed` (from [`Mlp::pack`] of the same `weights`) where
    /// no gradient is asked of `x` or the weights: the same values, without gemm repacking the
    /// weights at every call.
    pub fn forward_packed(
        &self,
        weights: &[Tensor],
        packed: Option<&[PackedWeights]>,
        x: &Tensor,
    ) -> Result<Tensor> {
        let mut h = match self.shape.stacked {
            Some(k) if x.rank() == 2 => x.unsqueeze(0)?.broadcast_as((k, x.dim(0)?, x.dim(1)?))?,
            _ => x.clone(),
        };
        let packed = packed.filter(|_| !x.track_op() && !weights.iter().any(Tensor::track_op));
        let layers = weights.len() / 2;
        for (l, pair) in weights.chunks_exact(2).enumerate() {
            let act = (l + 1 < layers).then_some(Activation::Relu);
            h = match packed {
                Some(packed) => packed_linear(&h, &packed[l], &pair[1], act)?,
                None => linear(&h, &pair[0], &pair[1], act)?,
            };
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stacked_members_are_independent_networks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let shape = MlpShape {
            widths: vec![3, 8, 1],
            stacked: Some(2),
        };
        let mlp = Mlp::new(shape, &mut rng).unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, 3), &Device::Cpu).unwrap();
        let out = mlp.forward_with(&mlp.tracked(), &x).unwrap();
        assert_eq!(out.dims(), &[2, 5, 1]);
        // Member 1 alone, by hand: relu(x W1 + b1) W2 + b2.
        let w = mlp.copies().unwrap();
        let member = |t: &Tensor| t.get(1).unwrap();
        let h = x
            .matmul(&member(&w[0]))
            .unwrap()
            .broadcast_add(&member(&w[1]))
            .unwrap()
            .relu()
            .unwrap();
        let y = h
            .matmul(&member(&w[2]))
            .unwrap()
            .broadcast_add(&member(&w[3]))
            .unwrap();
        let diff = (out.get(1).unwrap() - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    /// Packed weights give the bits of the plain pass, single and stacked; weights that need
    /// gradients take the differentiable path.
    #[test]
    fn packed_forward_gives_the_plain_bits_and_keeps_gradients() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for stacked in [None, Some(3)] {
            let shape = MlpShape {
                widths: vec![7, 96, 96, 5],
                stacked,
            };
            let mlp = Mlp::new(shape, &mut rng).unwrap();
            let x = Tensor::randn(0f32, 1.0, (130, 7), &Device::Cpu).unwrap();
            let copies = mlp.copies().unwrap();
            let packed = Mlp::pack(&copies).unwrap();
            let plain = mlp.forward_with(&copies, &x).unwrap();
            let fast = mlp.forward_packed(&copies, Some(&packed), &x).unwrap();
            let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values(&fast), values(&plain), "{stacked:?}");
            let tracked = mlp.tracked();
            let grads = mlp
                .forward_packed(&tracked, Some(&packed), &x)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert!(grads.get(&tracked[0]).is_some(), "{stacked:?}");
        }
    }

    #[test]
    fn rejects_empty_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for widths in [vec![3], vec![3, 0, 1]] {
            let shape = MlpShape {
                widths,
                stacked: None,
            };
            assert!(Mlp::new(shape, &mut rng).is_err());
        }
    }
}

//! Exact Fisher-vector products of a Gaussian MLP policy at fixed parameters and observations,
//! as TRPO's conjugate gradient asks for them: the network's forward pass once
//! ([`mbrl_core::kernels::mlp_forward_with_tape`]), then per product one forward-mode pass
//! (`J v`) and one backward pass (`J^T M J v`), both by hand, with no autograd graph.
//!
//! `F = E_s[J^T M J]`, `J` the Jacobian of the mean and log-std in the parameters and `M` the
//! Fisher matrix of a diagonal Gaussian in them: `diag(1 / sigma^2)` for the mean, `2` for each
//! log-std above its floor (the floor has zero derivative).

use candle_core::{DType, Tensor};
use mbrl_core::kernels::{mlp_forward_with_tape, Activation, MlpTape};
use mbrl_core::policy::{flatten, unflatten};
use mbrl_core::{Error, Result};

/// `v -> F v` at the parameters and observations it was built with.
#[derive(Debug)]
pub struct FisherOperator {
    tape: MlpTape,
    /// Each parameter tensor's shape, in the policy's order: `[W_1, b_1, ..., log_std]`.
    shapes: Vec<Vec<usize>>,
    /// `1 / (B sigma^2)` per action dimension, `[1, 1, A]`: the mean's weight, averaged over
    /// the batch.
    mean_weight: Tensor,
    /// `2` where the log-std is above its floor, `0` where it is clamped, `[A]`.
    log_std_weight: Tensor,
}

impl FisherOperator {
    /// The operator of the policy with layers `(W [in, out], b [out])`, `activation` between
    /// them, raw log standard deviation `log_std` (`[A]`, floored at `min_log_std`), over the
    /// observations `obs` (`[B, in]`). The parameters are copied: later updates of the policy
    /// leave the operator unchanged.
    pub fn new(
        obs: &Tensor,
        layers: &[(Tensor, Tensor)],
        activation: Activation,
        log_std: &Tensor,
        min_log_std: f32,
    ) -> Result<Self> {
        let rows = obs.dim(0)?;
        if rows == 0 {
            return Err(Error::InvalidArgument(
                "a Fisher-vector product needs at least one observation".into(),
            ));
        }
        let stacked = layers
            .iter()
            .map(|(w, b)| {
                let (w, b) = (w.copy()?.detach(), b.copy()?.detach());
                Ok((w.unsqueeze(0)?, b.reshape((1, 1, b.elem_count()))?))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let (_, tape) = mlp_forward_with_tape(&obs.unsqueeze(0)?, &stacked, activation)?;
        let mut shapes: Vec<Vec<usize>> = layers
            .iter()
            .flat_map(|(w, b)| [w.dims().to_vec(), b.dims().to_vec()])
            .collect();
        shapes.push(log_std.dims().to_vec());
        let floored = log_std.maximum(f64::from(min_log_std))?;
        let actions = log_std.elem_count();
        let mean_weight = ((floored * -2.0)?.exp()? / rows as f64)?.reshape((1, 1, actions))?;
        let log_std_weight = (log_std.ge(f64::from(min_log_std))?.to_dtype(DType::F32)? * 2.0)?;
        Ok(Self {
            tape,
            shapes,
            mean_weight,
            log_std_weight,
        })
    }

    /// The derivative of the mean actions (`[B, A]`) along the parameter direction `dir`
    /// (one tensor per parameter, the policy's shapes; the log-std's is not read).
    pub fn mean_jvp(&self, dir: &[Tensor]) -> Result<Tensor> {
        Ok(self.stacked_mean_jvp(dir)?.squeeze(0)?)
    }

    /// [`FisherOperator::mean_jvp`] as the tape computes it, one member: `[1, B, A]`.
    fn stacked_mean_jvp(&self, dir: &[Tensor]) -> Result<Tensor> {
        if dir.len() != self.shapes.len() {
            return Err(Error::InvalidArgument(format!(
                "the policy has {} parameter tensors, the direction {}",
                self.shapes.len(),
                dir.len()
            )));
        }
        let layers = dir[..dir.len() - 1]
            .chunks_exact(2)
            .map(|wb| {
                Ok((
                    wb[0].unsqueeze(0)?,
                    wb[1].reshape((1, 1, wb[1].elem_count()))?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.tape.jvp(&layers)
    }

    /// `F v` for a flat direction `v` (rank-1, one value per parameter, the policy's order).
    pub fn apply(&self, v: &Tensor) -> Result<Tensor> {
        let dir = unflatten(v, &self.shapes)?;
        let dmean = self.stacked_mean_jvp(&dir)?;
        let grad_mean = dmean.broadcast_mul(&self.mean_weight)?;
        let mut parts = Vec::with_capacity(dir.len());
        for layer in self.tape.backward(&grad_mean)? {
            parts.push(layer.weight.squeeze(0)?);
            parts.push(layer.bias.flatten_all()?);
        }
        let log_std_dir = dir.last().expect("the log-std is always a parameter");
        parts.push((log_std_dir * &self.log_std_weight)?);
        flatten(&parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use mbrl_core::policy::standard_normal;
    use mbrl_core::seeding::{stream_rng, Stream};

    fn random(dims: &[usize], seed: u64) -> Tensor {
        standard_normal(dims, &mut stream_rng(seed, Stream::Data), &Device::Cpu).unwrap()
    }

    fn layers() -> Vec<(Tensor, Tensor)> {
        vec![
            (random(&[3, 4], 1), random(&[4], 2)),
            (random(&[4, 2], 3), random(&[2], 4)),
        ]
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.to_vec1().unwrap()
    }

    /// Below its floor a log-std has no derivative, and the mean's weight uses the floored
    /// standard deviation: a log-std of -10 floored at -5 acts as -5 for the mean and gives
    /// zeros for itself.
    #[test]
    fn a_floored_log_std_has_no_fisher_block() {
        let obs = random(&[6, 3], 5);
        let v = random(&[4 * 3 + 4 + 2 * 4 + 2 + 2], 6);
        let at = |log_std: &[f32]| {
            let log_std = Tensor::from_slice(log_std, 2, &Device::Cpu).unwrap();
            FisherOperator::new(&obs, &layers(), Activation::Tanh, &log_std, -5.0)
                .unwrap()
                .apply(&v)
                .unwrap()
        };
        let floored = values(&at(&[-10.0, 0.3]));
        let at_floor = values(&at(&[-5.0, 0.3]));
        let n = floored.len();
        assert_eq!(floored[..n - 2], at_floor[..n - 2]);
        let v = values(&v);
        assert_eq!(floored[n - 2], 0.0);
        assert_eq!(floored[n - 1], 2.0 * v[n - 1]);
        assert_eq!(at_floor[n - 2], 2.0 * v[n - 2]);
    }

    /// The operator keeps the parameters it was built with.
    #[test]
    fn later_changes_of_the_parameters_do_not_reach_the_operator() {
        let obs = random(&[5, 3], 7);
        let layers = layers();
        let log_std = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        // The output layer's weights: the products of both passes read them.
        let var = candle_core::Var::from_tensor(&layers[1].0).unwrap();
        let mut live = layers.clone();
        live[1].0 = var.as_tensor().clone();
        let fisher = FisherOperator::new(&obs, &live, Activation::Tanh, &log_std, -5.0).unwrap();
        let v = random(&[4 * 3 + 4 + 2 * 4 + 2 + 2], 8);
        let before = values(&fisher.apply(&v).unwrap());
        var.set(&(layers[1].0.clone() * 3.0).unwrap()).unwrap();
        assert_eq!(values(&fisher.apply(&v).unwrap()), before);
        assert!(fisher.apply(&random(&[3], 9)).is_err());
        assert!(fisher.mean_jvp(&[]).is_err());
    }
}

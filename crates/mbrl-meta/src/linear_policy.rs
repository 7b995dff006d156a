//! A linear Gaussian policy with a fixed standard deviation: `a ~ N(W s + b, diag(sigma^2))`.
//!
//! With one observation and one action it has exactly two parameters, `theta_0 = W` (slope)
//! and `theta_1 = b` (offset): the policy of the thesis's formulation study on the 1D goal
//! task (Sec. 6.7.4, Fig. 17), whose meta-gradients can be drawn as arrows in the plane.

use candle_core::{DType, Device, Tensor, Var};
use mbrl_core::policy::{act_gaussian, DiagGaussian, GaussianPolicy, Policy};
use mbrl_core::{Error, Result};
use rand::RngCore;

/// `a ~ N(W s + b, diag(sigma^2))` with trainable `W` (`[act_dim, obs_dim]`) and `b`
/// (`[act_dim]`), in that parameter order, and a constant `sigma`.
pub struct LinearGaussianPolicy {
    params: Vec<Var>,
    log_std: Tensor,
    obs_dim: usize,
}

impl LinearGaussianPolicy {
    /// A policy with the given weights (`[act_dim, obs_dim]`, row-major), offsets
    /// (`[act_dim]`) and standard deviation (the same for every action dimension).
    pub fn new(weights: &[f32], offsets: &[f32], std: f64) -> Result<Self> {
        let act_dim = offsets.len();
        if act_dim == 0 || weights.is_empty() || !weights.len().is_multiple_of(act_dim) {
            return Err(Error::InvalidArgument(format!(
                "{} weights do not fill [{act_dim}, obs_dim]",
                weights.len()
            )));
        }
        if !(std.is_finite() && std > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "the policy's standard deviation must be positive, got {std}"
            )));
        }
        let obs_dim = weights.len() / act_dim;
        let dev = Device::Cpu;
        let w = Var::from_vec(weights.to_vec(), (act_dim, obs_dim), &dev)?;
        let b = Var::from_vec(offsets.to_vec(), act_dim, &dev)?;
        let log_std = Tensor::full(std.ln() as f32, act_dim, &dev)?;
        Ok(Self {
            params: vec![w, b],
            log_std,
            obs_dim,
        })
    }

    /// The current parameters, flattened: `W` row-major, then `b`.
    pub fn flat_values(&self) -> Result<Vec<f64>> {
        let flat = self.flat_params()?.to_dtype(DType::F64)?;
        Ok(flat.to_vec1::<f64>()?)
    }
}

impl Policy for LinearGaussianPolicy {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        act_gaussian(self, obs, deterministic, rng)
    }
}

impl GaussianPolicy for LinearGaussianPolicy {
    fn parameters(&self) -> &[Var] {
        &self.params
    }

    fn distribution_with(&self, params: &[Tensor], obs: &Tensor) -> Result<DiagGaussian> {
        let [w, b] = params else {
            return Err(Error::InvalidArgument(format!(
                "the linear policy has 2 parameter tensors, {} were given",
                params.len()
            )));
        };
        if obs.rank() != 2 || obs.dim(1)? != self.obs_dim {
            return Err(Error::shape(
                "policy observations",
                format!("[B, {}]", self.obs_dim),
                format!("{:?}", obs.dims()),
            ));
        }
        let mean = obs.matmul(&w.t()?)?.broadcast_add(b)?;
        DiagGaussian::new(mean, self.log_std.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_slope_times_state_plus_offset_and_log_prob_is_gaussian() {
        let policy = LinearGaussianPolicy::new(&[-0.5], &[0.25], 0.5).unwrap();
        let obs = Tensor::from_slice(&[2.0f32, -1.0], (2, 1), &Device::Cpu).unwrap();
        let dist = policy.distribution(&obs).unwrap();
        let mean = dist.mean.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(mean, vec![-0.75, 0.75]);
        let act = Tensor::from_slice(&[-0.25f32, 0.75], (2, 1), &Device::Cpu).unwrap();
        let lp = dist.log_prob(&act).unwrap().to_vec1::<f32>().unwrap();
        // N(-0.25; -0.75, 0.25) = -0.5 (1)^2 - ln 0.5 - 0.5 ln 2 pi.
        let expected = -0.5 - 0.5f64.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
        assert!((lp[0] as f64 - expected).abs() < 1e-5, "{lp:?}");
        assert!((lp[1] as f64 - (expected + 0.5)).abs() < 1e-5, "{lp:?}");
        assert_eq!(policy.num_params(), 2);
        assert_eq!(policy.flat_values().unwrap(), vec![-0.5, 0.25]);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(LinearGaussianPolicy::new(&[1.0, 2.0, 3.0], &[0.0, 0.0], 1.0).is_err());
        assert!(LinearGaussianPolicy::new(&[1.0], &[0.0], 0.0).is_err());
        let policy = LinearGaussianPolicy::new(&[1.0], &[0.0], 1.0).unwrap();
        let obs = Tensor::zeros((3, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(policy.distribution(&obs).is_err());
    }
}

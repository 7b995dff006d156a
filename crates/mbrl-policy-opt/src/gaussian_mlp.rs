//! The Gaussian MLP policy: `a ~ N(mu_theta(s), diag(exp(log_std))^2)` with a state-independent,
//! learned log standard deviation (thesis Appendix A.1: 32-32 tanh, initial std 1).
//!
//! Besides the `GaussianPolicy` interface it offers exact Fisher-vector products
//! ([`GaussianMlpPolicy::fisher_operator`]: Gauss-Newton form `J^T M J v`, with `M` the Fisher
//! matrix of a diagonal Gaussian in its mean and log-std), by hand-written forward-mode and
//! backward passes.

use candle_core::{DType, Device, Tensor, Var};
use mbrl_core::kernels::fused_mlp;
pub use mbrl_core::kernels::Activation;
use mbrl_core::policy::{act_gaussian, DiagGaussian, GaussianPolicy, Policy};
use mbrl_core::{Error, Result};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::fisher::FisherOperator;

/// The `[policy]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Hidden layer widths. Default `[32, 32]`.
    pub hidden_sizes: Vec<usize>,
    /// Hidden nonlinearity. Default `tanh`.
    pub activation: Activation,
    /// Initial log standard deviation. Default `0.0` (std 1).
    pub init_log_std: f32,
    /// Lower bound on the log standard deviation. Default `-5.0`.
    pub min_log_std: f32,
    /// Scale of the output layer's initial weights (small keeps initial means near 0).
    /// Default `0.1`.
    pub output_init_scale: f32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            hidden_sizes: vec![32, 32],
            activation: Activation::Tanh,
            init_log_std: 0.0,
            min_log_std: -5.0,
            output_init_scale: 0.1,
        }
    }
}

/// A Gaussian policy whose mean is an MLP of the observation.
pub struct GaussianMlpPolicy {
    /// `[W_1, b_1, ..., W_L, b_L, log_std]`.
    params: Vec<Var>,
    config: PolicyConfig,
    obs_dim: usize,
    act_dim: usize,
}

/// Xavier-uniform `[fan_in, fan_out]` weights from `rng`.
fn xavier(fan_in: usize, fan_out: usize, scale: f32, rng: &mut dyn RngCore) -> Result<Tensor> {
    let bound = (6.0 / (fan_in + fan_out) as f32).sqrt() * scale;
    let values: Vec<f32> = (0..fan_in * fan_out)
        .map(|_| rng.random_range(-bound..=bound))
        .collect();
    Ok(Tensor::from_vec(values, (fan_in, fan_out), &Device::Cpu)?)
}

impl GaussianMlpPolicy {
    /// A freshly initialised policy (weights from `rng`).
    pub fn new(
        obs_dim: usize,
        act_dim: usize,
        config: PolicyConfig,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        if obs_dim == 0 || act_dim == 0 || config.hidden_sizes.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "policy dimensions must be positive (obs {obs_dim}, act {act_dim}, hidden {:?})",
                config.hidden_sizes
            )));
        }
        let mut params = Vec::new();
        let mut fan_in = obs_dim;
        let widths: Vec<usize> = config
            .hidden_sizes
            .iter()
            .copied()
            .chain([act_dim])
            .collect();
        for (i, &fan_out) in widths.iter().enumerate() {
            let scale = if i + 1 == widths.len() {
                config.output_init_scale
            } else {
                1.0
            };
            params.push(Var::from_tensor(&xavier(fan_in, fan_out, scale, rng)?)?);
            params.push(Var::zeros(fan_out, DType::F32, &Device::Cpu)?);
            fan_in = fan_out;
        }
        params.push(Var::from_tensor(&Tensor::full(
            config.init_log_std,
            act_dim,
            &Device::Cpu,
        )?)?);
        Ok(Self {
            params,
            config,
            obs_dim,
            act_dim,
        })
    }

    /// An independent copy of the current parameters (later updates of either leave the
    /// other unchanged).
    pub fn snapshot(&self) -> Result<Self> {
        let params = self
            .params
            .iter()
            .map(|v| Var::from_tensor(&v.as_tensor().copy()?.detach()))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            params,
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
        })
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Resets the log standard deviation to `log_std` in every dimension (ME-TRPO resets it at
    /// the start of each policy phase).
    pub fn reset_log_std(&self, log_std: f32) -> Result<()> {
        let var = self
            .params
            .last()
            .expect("policy always has a log-std parameter");
        var.set(&Tensor::full(log_std, self.act_dim, &Device::Cpu)?)?;
        Ok(())
    }

    fn check(&self, params: &[Tensor]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(Error::InvalidArgument(format!(
                "the policy has {} parameter tensors, {} were given",
                self.params.len(),
                params.len()
            )));
        }
        Ok(())
    }

    /// Mean actions with the given parameters: the whole network is one op of
    /// `mbrl_core::kernels` ([`fused_mlp`], per-layer ops where second derivatives are needed).
    fn mean_with(&self, params: &[Tensor], obs: &Tensor) -> Result<Tensor> {
        fused_mlp(obs, &params[..params.len() - 1], self.config.activation)
    }

    fn log_std_with(&self, params: &[Tensor]) -> Result<Tensor> {
        let raw = params.last().expect("checked length");
        Ok(raw.maximum(self.config.min_log_std as f64)?)
    }

    /// The Fisher-vector product operator over `obs` at the current parameters (which it
    /// copies): one forward pass here, a forward-mode and a backward pass per product.
    pub fn fisher_operator(&self, obs: &Tensor) -> Result<FisherOperator> {
        let params: Vec<Tensor> = self.params.iter().map(|p| p.as_tensor().clone()).collect();
        let (log_std, weights) = params.split_last().expect("checked length");
        let layers: Vec<(Tensor, Tensor)> = weights
            .chunks_exact(2)
            .map(|wb| (wb[0].clone(), wb[1].clone()))
            .collect();
        FisherOperator::new(
            obs,
            &layers,
            self.config.activation,
            log_std,
            self.config.min_log_std,
        )
    }

    /// Exact Fisher-vector product `F v` of the mean KL over `obs` at the current parameters,
    /// for a flat direction `v` (rank-1, `num_params` long); see [`FisherOperator`], which
    /// TRPO builds once for all the products of a step.
    pub fn fisher_vector_product(&self, obs: &Tensor, v: &Tensor) -> Result<Tensor> {
        self.fisher_operator(obs)?.apply(v)
    }
}

impl Policy for GaussianMlpPolicy {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        act_gaussian(self, obs, deterministic, rng)
    }
}

impl GaussianPolicy for GaussianMlpPolicy {
    fn parameters(&self) -> &[Var] {
        &self.params
    }

    fn distribution_with(&self, params: &[Tensor], obs: &Tensor) -> Result<DiagGaussian> {
        self.check(params)?;
        if obs.rank() != 2 || obs.dim(1)? != self.obs_dim {
            return Err(Error::shape(
                "policy observations",
                format!("[B, {}]", self.obs_dim),
                format!("{:?}", obs.dims()),
            ));
        }
        let mean = self.mean_with(params, obs)?;
        DiagGaussian::new(mean, self.log_std_with(params)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::policy::unflatten;
    use mbrl_core::seeding::{stream_rng, Stream};

    fn policy(activation: Activation) -> GaussianMlpPolicy {
        let config = PolicyConfig {
            hidden_sizes: vec![4, 3],
            activation,
            init_log_std: -0.3,
            output_init_scale: 1.0,
            ..PolicyConfig::default()
        };
        GaussianMlpPolicy::new(3, 2, config, &mut stream_rng(0, Stream::Policy)).unwrap()
    }

    fn obs(n: usize) -> Tensor {
        let mut rng = stream_rng(1, Stream::Data);
        mbrl_core::policy::standard_normal(&[n, 3], &mut rng, &Device::Cpu).unwrap()
    }

    /// Central finite difference of the mean along `v`, in f64 parameter arithmetic.
    fn fd_mean(p: &GaussianMlpPolicy, o: &Tensor, v: &Tensor, eps: f64) -> Vec<f32> {
        let base = p.flat_params().unwrap();
        let eval = |sign: f64| {
            p.set_flat_params(&(&base + (v * (sign * eps)).unwrap()).unwrap())
                .unwrap();
            p.distribution(o)
                .unwrap()
                .mean
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (plus, minus) = (eval(1.0), eval(-1.0));
        p.set_flat_params(&base).unwrap();
        plus.iter()
            .zip(&minus)
            .map(|(a, b)| ((a - b) as f64 / (2.0 * eps)) as f32)
            .collect()
    }

    /// `hidden_sizes = []` is a linear Gaussian policy: mean `obs W + b`.
    #[test]
    fn no_hidden_layers_is_a_linear_policy() {
        let config = PolicyConfig {
            hidden_sizes: vec![],
            ..PolicyConfig::default()
        };
        let p = GaussianMlpPolicy::new(3, 2, config, &mut stream_rng(0, Stream::Policy)).unwrap();
        let shapes: Vec<Vec<usize>> = p.parameters().iter().map(|x| x.dims().to_vec()).collect();
        assert_eq!(shapes, vec![vec![3, 2], vec![2], vec![2]]);
        let o = obs(4);
        let (w, b) = (p.parameters()[0].as_tensor(), p.parameters()[1].as_tensor());
        let expected = o.matmul(w).unwrap().broadcast_add(b).unwrap();
        let mean = p.distribution(&o).unwrap().mean;
        let diff = mbrl_core::testing::max_abs_diff(&mean, &expected).unwrap();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn jvp_matches_finite_differences() {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Swish] {
            let p = policy(activation);
            let o = obs(5);
            let mut rng = stream_rng(2, Stream::Data);
            let v = mbrl_core::policy::standard_normal(&[p.num_params()], &mut rng, &Device::Cpu)
                .unwrap();
            let shapes: Vec<Vec<usize>> =
                p.parameters().iter().map(|x| x.dims().to_vec()).collect();
            let dir = unflatten(&v, &shapes).unwrap();
            let jvp = p.fisher_operator(&o).unwrap().mean_jvp(&dir).unwrap();
            let jvp = jvp.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let fd = fd_mean(&p, &o, &v, 1e-3);
            for (a, b) in jvp.iter().zip(&fd) {
                assert!(
                    (a - b).abs() < 2e-3 * (1.0 + b.abs()),
                    "{activation:?}: {a} vs {b}"
                );
            }
        }
    }

    /// Builds the Fisher matrix explicitly, column by column from Jacobians obtained by
    /// finite differences, and compares `F v` with the product.
    #[test]
    fn fisher_vector_product_equals_the_explicit_fisher_matrix() {
        let p = policy(Activation::Tanh);
        let o = obs(6);
        let n = p.num_params();
        let (b, a) = (6, 2);
        // Jacobian of the means, [B*A, n], by central differences along each basis vector.
        let mut jac = vec![vec![0.0f64; n]; b * a];
        for j in 0..n {
            let mut e = vec![0.0f32; n];
            e[j] = 1.0;
            let e = Tensor::from_vec(e, n, &Device::Cpu).unwrap();
            for (row, d) in fd_mean(&p, &o, &e, 1e-3).into_iter().enumerate() {
                jac[row][j] = d as f64;
            }
        }
        let sigma2 = (-0.6f64).exp();
        let log_std_start = n - a;
        let mut fisher = vec![vec![0.0f64; n]; n];
        for i in 0..n {
            for j in 0..n {
                let mean_part: f64 =
                    (0..b * a).map(|r| jac[r][i] * jac[r][j]).sum::<f64>() / (b as f64 * sigma2);
                let log_std_part = if i == j && i >= log_std_start {
                    2.0
                } else {
                    0.0
                };
                fisher[i][j] = mean_part + log_std_part;
            }
        }
        let mut rng = stream_rng(3, Stream::Data);
        let v = mbrl_core::policy::standard_normal(&[n], &mut rng, &Device::Cpu).unwrap();
        let fv = p
            .fisher_vector_product(&o, &v)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let vv = v.to_vec1::<f32>().unwrap();
        for i in 0..n {
            let expected: f64 = (0..n).map(|j| fisher[i][j] * vv[j] as f64).sum();
            assert!(
                (fv[i] as f64 - expected).abs() < 5e-3 * (1.0 + expected.abs()),
                "row {i}: {} vs {expected}",
                fv[i]
            );
        }
    }

    #[test]
    fn fisher_is_the_hessian_of_the_kl_at_the_old_parameters() {
        // Second central difference of KL(old || old + t v) along v equals v^T F v.
        let p = policy(Activation::Tanh);
        let o = obs(8);
        let mut rng = stream_rng(4, Stream::Data);
        let v =
            mbrl_core::policy::standard_normal(&[p.num_params()], &mut rng, &Device::Cpu).unwrap();
        let fv = p.fisher_vector_product(&o, &v).unwrap();
        let vfv = (&fv * &v)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let old = p.parameter_tensors();
        let shapes: Vec<Vec<usize>> = old.iter().map(|x| x.dims().to_vec()).collect();
        let t = 0.01;
        let moved: Vec<Tensor> = unflatten(
            &(p.flat_params().unwrap() + (&v * t).unwrap()).unwrap(),
            &shapes,
        )
        .unwrap();
        let kl = p.kl(&old, &moved, &o).unwrap().to_scalar::<f32>().unwrap() as f64;
        let quadratic = 0.5 * t * t * vfv;
        assert!(
            (kl - quadratic).abs() < 0.05 * quadratic,
            "KL {kl} vs 0.5 t^2 v'Fv {quadratic}"
        );
    }

    #[test]
    fn log_std_floor_and_reset() {
        let p = policy(Activation::Tanh);
        p.reset_log_std(-10.0).unwrap();
        let d = p.distribution(&obs(2)).unwrap();
        let ls = d.log_std.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(ls.iter().all(|&x| x == -5.0));
        p.reset_log_std(0.0).unwrap();
        let d = p.distribution(&obs(2)).unwrap();
        assert!(d
            .log_std
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|&x| x == 0.0));
    }

    #[test]
    fn same_seed_same_weights_and_bad_input_is_an_error() {
        let a = policy(Activation::Tanh)
            .flat_params()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = policy(Activation::Tanh)
            .flat_params()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a, b);
        let p = policy(Activation::Tanh);
        assert!(p
            .distribution(&Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap())
            .is_err());
        assert!(GaussianMlpPolicy::new(
            0,
            1,
            PolicyConfig::default(),
            &mut stream_rng(0, Stream::Policy)
        )
        .is_err());
    }
}

//! The stacked MLP: `K` networks as one batched computation with a leading ensemble dimension.
//!
//! [`Parameters`] hold the trainable `Var`s (`[K, in, out]` weights, `[K, 1, out]` biases,
//! weight-norm gains, log-variance bounds). [`Weights`] are the effective tensors a forward
//! pass uses; built from the `Var`s they carry the autograd graph (training), built from
//! detached or copied values they do not (rollouts, validation) but stay differentiable with
//! respect to the inputs.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::RngCore;
use rand_distr::{Distribution, Uniform};

use crate::config::{Activation, EnsembleConfig, Head};
use crate::{Error, Result};
use mbrl_core::kernels::{linear, mlp_forward_with_tape, packed_linear, PackedWeights};

/// Initial upper log-variance bound (PETS).
const INIT_MAX_LOGVAR: f32 = 0.5;
/// Initial lower log-variance bound (PETS).
const INIT_MIN_LOGVAR: f32 = -10.0;

/// Shape of the stacked network: layer widths, activation and head.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Architecture {
    /// Ensemble size.
    pub members: usize,
    /// `[in, hidden..., out]` where `out` is `obs_dim` or `2 * obs_dim` (probabilistic).
    pub widths: Vec<usize>,
    pub activation: Activation,
    pub head: Head,
    pub weight_norm: bool,
    /// Width of the predicted state change.
    pub obs_dim: usize,
}

impl Architecture {
    pub(crate) fn new(config: &EnsembleConfig, obs_dim: usize, act_dim: usize) -> Self {
        let out = match config.head {
            Head::Deterministic => obs_dim,
            Head::Probabilistic => 2 * obs_dim,
        };
        let mut widths = vec![obs_dim + act_dim];
        widths.extend(&config.hidden_sizes);
        widths.push(out);
        Self {
            members: config.members,
            widths,
            activation: config.activation,
            head: config.head,
            weight_norm: config.weight_norm,
            obs_dim,
        }
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// Parameter names and shapes, in the order of [`Parameters::vars`].
    pub(crate) fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let k = self.members;
        let mut shapes = Vec::new();
        for l in 0..self.layers() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            shapes.push((format!("layers.{l}.weight"), vec![k, i, o]));
            shapes.push((format!("layers.{l}.bias"), vec![k, 1, o]));
            if self.weight_norm {
                shapes.push((format!("layers.{l}.gain"), vec![k, 1, o]));
            }
        }
        if self.head == Head::Probabilistic {
            shapes.push(("max_logvar".into(), vec![k, 1, self.obs_dim]));
            shapes.push(("min_logvar".into(), vec![k, 1, self.obs_dim]));
        }
        shapes
    }
}

/// Fresh parameter values: Xavier-uniform weights, zero biases, gains equal to the initial
/// column norms (so the effective weights start Xavier too), PETS log-variance bounds.
pub(crate) fn initial_values(arch: &Architecture, rng: &mut dyn RngCore) -> Result<Vec<Tensor>> {
    let dev = Device::Cpu;
    let mut values = Vec::new();
    for (name, shape) in arch.parameter_shapes() {
        let n: usize = shape.iter().product();
        let t = if name.ends_with("weight") {
            let (i, o) = (shape[1], shape[2]);
            let limit = (6.0 / (i + o) as f32).sqrt();
            let dist = Uniform::new_inclusive(-limit, limit)
                .map_err(|e| Error::InvalidArgument(format!("Xavier bound {limit}: {e}")))?;
            let w: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
            Tensor::from_vec(w, shape, &dev)?
        } else if name.ends_with("bias") {
            Tensor::zeros(shape, DType::F32, &dev)?
        } else if name.ends_with("gain") {
            // The weight of this layer was pushed just before its bias.
            let weight = values
                .iter()
                .rev()
                .nth(1)
                .ok_or_else(|| Error::InvalidArgument("gain without a weight".into()))?;
            column_norms(weight)?
        } else if name == "max_logvar" {
            Tensor::full(INIT_MAX_LOGVAR, shape, &dev)?
        } else {
            Tensor::full(INIT_MIN_LOGVAR, shape, &dev)?
        };
        values.push(t);
    }
    Ok(values)
}

/// `||v[k, :, j]||` for each member and output unit, `[K, 1, out]`.
fn column_norms(v: &Tensor) -> Result<Tensor> {
    Ok(v.sqr()?.sum_keepdim(1)?.sqrt()?)
}

/// The trainable parameters of the stacked network.
#[derive(Debug)]
pub(crate) struct Parameters {
    pub arch: Architecture,
    pub names: Vec<String>,
    pub vars: Vec<Var>,
}

impl Parameters {
    pub(crate) fn new(arch: Architecture, rng: &mut dyn RngCore) -> Result<Self> {
        let names = arch
            .parameter_shapes()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let vars = initial_values(&arch, rng)?
            .iter()
            .map(Var::from_tensor)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { arch, names, vars })
    }

    /// Overwrites every parameter with `values` (same order and shapes).
    pub(crate) fn set(&self, values: &[Tensor]) -> Result<()> {
        if values.len() != self.vars.len() {
            return Err(Error::InvalidArgument(format!(
                "{} parameter tensors given for {} parameters",
                values.len(),
                self.vars.len()
            )));
        }
        for (var, value) in self.vars.iter().zip(values) {
            var.set(value)?;
        }
        Ok(())
    }

    /// The current values as tensors sharing the `Var`s' storage, without autograd history.
    /// They change when the parameters are updated.
    pub(crate) fn detached(&self) -> Vec<Tensor> {
        self.vars.iter().map(|v| v.as_tensor().detach()).collect()
    }

    /// Deep copies of the current values.
    pub(crate) fn copies(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<Vec<_>>>()?)
    }

    /// The `Var`s' own tensors: forward passes with them record the graph for training.
    pub(crate) fn tracked(&self) -> Vec<Tensor> {
        self.vars.iter().map(|v| v.as_tensor().clone()).collect()
    }
}

/// Effective tensors of one forward pass.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    /// `(weight [K, in, out], bias [K, 1, out])` per layer.
    layers: Vec<(Tensor, Tensor)>,
    /// `(max_logvar, min_logvar)`, `[K, 1, obs_dim]` each, for the probabilistic head.
    logvar_bounds: Option<(Tensor, Tensor)>,
    activation: Activation,
    obs_dim: usize,
}

/// Output of the stacked network, in normalised units.
pub(crate) struct NetOutput {
    /// `[K, B, obs_dim]` normalised state change.
    pub mean: Tensor,
    /// `[K, B, obs_dim]` bounded log-variance (probabilistic head).
    pub log_var: Option<Tensor>,
}

impl Weights {
    /// Builds the effective weights from parameter tensors in [`Parameters`] order.
    pub(crate) fn from_parameters(arch: &Architecture, params: &[Tensor]) -> Result<Self> {
        let shapes = arch.parameter_shapes();
        if params.len() != shapes.len() {
            return Err(Error::InvalidArgument(format!(
                "the ensemble has {} parameter tensors, {} were given",
                shapes.len(),
                params.len()
            )));
        }
        for ((name, shape), t) in shapes.iter().zip(params) {
            if t.dims() != shape.as_slice() {
                return Err(Error::InvalidArgument(format!(
                    "parameter {name} must be {shape:?}, got {:?}",
                    t.dims()
                )));
            }
        }
        let per_layer = if arch.weight_norm { 3 } else { 2 };
        let mut layers = Vec::with_capacity(arch.layers());
        for l in 0..arch.layers() {
            let p = &params[l * per_layer..(l + 1) * per_layer];
            let w = if arch.weight_norm {
                // w = g * v / ||v||, the norm over the inputs of each output unit.
                p[0].broadcast_mul(&p[2].broadcast_div(&column_norms(&p[0])?)?)?
            } else {
                p[0].clone()
            };
            layers.push((w, p[1].clone()));
        }
        let logvar_bounds = match arch.head {
            Head::Deterministic => None,
            Head::Probabilistic => {
                let n = params.len();
                Some((params[n - 2].clone(), params[n - 1].clone()))
            }
        };
        Ok(Self {
            layers,
            logvar_bounds,
            activation: arch.activation,
            obs_dim: arch.obs_dim,
        })
    }

    /// Deep copies (independent of later training).
    pub(crate) fn deep_copy(&self) -> Result<Self> {
        let copy = |t: &Tensor| t.detach().copy();
        Ok(Self {
            layers: self
                .layers
                .iter()
                .map(|(w, b)| Ok((copy(w)?, copy(b)?)))
                .collect::<candle_core::Result<Vec<_>>>()?,
            logvar_bounds: match &self.logvar_bounds {
                Some((hi, lo)) => Some((copy(hi)?, copy(lo)?)),
                None => None,
            },
            activation: self.activation,
            obs_dim: self.obs_dim,
        })
    }

    /// Ensemble size.
    pub(crate) fn members(&self) -> usize {
        self.layers.first().map(|(w, _)| w.dims()[0]).unwrap_or(0)
    }

    /// Forward pass of normalised inputs `[K, B, in]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<NetOutput> {
        self.forward_packed(x, None)
    }

    /// Each layer's weights laid out for [`Weights::forward_packed`].
    pub(crate) fn packed(&self) -> Result<Vec<PackedWeights>> {
        Ok(self
            .layers
            .iter()
            .map(|(w, _)| PackedWeights::new(w))
            .collect::<mbrl_core::Result<_>>()?)
    }

    /// [`Weights::forward`], through `packed` (from [`Weights::packed`]) where no gradient is
    /// asked of the inputs: same values, without gemm repacking the weights at every call.
    pub(crate) fn forward_packed(
        &self,
        x: &Tensor,
        packed: Option<&[PackedWeights]>,
    ) -> Result<NetOutput> {
        let packed = packed.filter(|_| !x.track_op());
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let activation = (l < last).then_some(self.activation);
            h = match packed {
                Some(packed) => packed_linear(&h, &packed[l], b, activation)?,
                None => linear(&h, w, b, activation)?,
            };
        }
        match &self.logvar_bounds {
            None => Ok(NetOutput {
                mean: h,
                log_var: None,
            }),
            Some((max, min)) => {
                let mean = h.narrow(D::Minus1, 0, self.obs_dim)?;
                let raw = h.narrow(D::Minus1, self.obs_dim, self.obs_dim)?;
                // Soft bounds (PETS): max - softplus(max - raw), then min + softplus(. - min).
                let upper = max.broadcast_sub(&softplus(&max.broadcast_sub(&raw)?)?)?;
                let log_var = softplus(&upper.broadcast_sub(min)?)?.broadcast_add(min)?;
                Ok(NetOutput {
                    mean,
                    log_var: Some(log_var),
                })
            }
        }
    }

    /// Per-member training loss on normalised `[K, B, in]` inputs and `[K, B, obs]` targets,
    /// `[K]`: mean squared error, or Gaussian negative log-likelihood (without the constant)
    /// plus `penalty * (sum max_logvar - sum min_logvar)`.
    pub(crate) fn loss(&self, x: &Tensor, y: &Tensor, penalty: f64) -> Result<Tensor> {
        let out = self.forward(x)?;
        let err = (out.mean - y)?.sqr()?;
        match (out.log_var, &self.logvar_bounds) {
            (Some(log_var), Some((max, min))) => {
                let nll = ((err * log_var.neg()?.exp()?)? + &log_var)?;
                let nll = nll.flatten_from(1)?.mean(1)?;
                let bounds = (max.flatten_from(1)?.sum(1)? - min.flatten_from(1)?.sum(1)?)?;
                Ok((nll + (bounds * penalty)?)?)
            }
            _ => Ok(err.flatten_from(1)?.mean(1)?),
        }
    }

    /// [`Weights::loss`] and its gradient with respect to every parameter of a network
    /// without weight norm, in [`Parameters`] order (layers' weights and biases, then the
    /// log-variance bounds), computed by hand: the layers by [`mlp_forward_with_tape`]'s
    /// backward, the head's loss by the closed forms below. Build `self` from detached
    /// parameters (no graph is needed). Same loss bits as [`Weights::loss`]; gradients equal
    /// autograd's up to rounding.
    ///
    /// With `e = (mean - y)^2` and `n = B * obs`: the squared error's gradient is
    /// `2 (mean - y) / n`. For the Gaussian head, `l = min + sp(u - min)` with
    /// `u = max - sp(max - raw)` (`sp` = softplus, `sp' = sigmoid`) and loss
    /// `mean(e exp(-l) + l)`: `dL/dmean = 2 (mean - y) exp(-l) / n`, `dL/dl = (1 - e exp(-l)) / n`,
    /// `dL/du = dL/dl s(u - min)`, `dL/draw = dL/du s(max - raw)`, and the bounds get
    /// `sum_B dL/du (1 - s(max - raw)) + penalty` and `sum_B dL/dl (1 - s(u - min)) - penalty`.
    pub(crate) fn loss_and_gradients(
        &self,
        x: &Tensor,
        y: &Tensor,
        penalty: f64,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (h, tape) = mlp_forward_with_tape(x, &self.layers, self.activation)?;
        let (rows, obs) = (y.dim(1)?, y.dim(2)?);
        let n = (rows * obs) as f64;
        let (losses, grad_h, bound_grads) = match &self.logvar_bounds {
            None => {
                let diff = (h - y)?;
                let losses = diff.sqr()?.flatten_from(1)?.mean(1)?;
                (losses, (diff * (2.0 / n))?, None)
            }
            Some((max, min)) => {
                let raw = h.narrow(D::Minus1, obs, obs)?;
                let max_minus_raw = max.broadcast_sub(&raw)?;
                let upper = max.broadcast_sub(&softplus(&max_minus_raw)?)?;
                let upper_minus_min = upper.broadcast_sub(min)?;
                let log_var = softplus(&upper_minus_min)?.broadcast_add(min)?;
                let diff = (h.narrow(D::Minus1, 0, obs)? - y)?;
                let inv_var = log_var.neg()?.exp()?;
                let weighted = (diff.sqr()? * &inv_var)?;
                let nll = (&weighted + &log_var)?.flatten_from(1)?.mean(1)?;
                let bounds = (max.flatten_from(1)?.sum(1)? - min.flatten_from(1)?.sum(1)?)?;
                let losses = (nll + (bounds * penalty)?)?;
                let grad_mean = ((diff * inv_var)? * (2.0 / n))?;
                let grad_log_var = ((1.0 - weighted)? / n)?;
                let (s_upper, s_raw) = (sigmoid(&upper_minus_min)?, sigmoid(&max_minus_raw)?);
                let grad_upper = (&grad_log_var * &s_upper)?;
                let grad_raw = (&grad_upper * &s_raw)?;
                let grad_max = ((grad_upper * (1.0 - s_raw)?)?.sum_keepdim(1)? + penalty)?;
                let grad_min = ((grad_log_var * (1.0 - s_upper)?)?.sum_keepdim(1)? - penalty)?;
                let grad_h = Tensor::cat(&[grad_mean, grad_raw], 2)?;
                (losses, grad_h, Some([grad_max, grad_min]))
            }
        };
        let mut grads = Vec::with_capacity(2 * self.layers.len() + 2);
        for layer in tape.backward(&grad_h)? {
            grads.push(layer.weight);
            grads.push(layer.bias);
        }
        grads.extend(bound_grads.into_iter().flatten());
        Ok((losses, grads))
    }

    /// Per-member mean squared error of the predicted mean, `[K]` (the validation metric for
    /// both heads).
    pub(crate) fn mse(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let out = self.forward(x)?;
        Ok((out.mean - y)?.sqr()?.flatten_from(1)?.mean(1)?)
    }
}

/// `1 / (1 + exp(-x))`, softplus's derivative.
fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok((x.neg()?.exp()? + 1.0)?.recip()?)
}

/// `log(1 + exp(x))`, computed as `relu(x) + log(1 + exp(-|x|))` to avoid overflow.
fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn arch(head: Head, weight_norm: bool) -> Architecture {
        let config = EnsembleConfig {
            members: 2,
            hidden_sizes: vec![4],
            activation: Activation::Tanh,
            head,
            weight_norm,
            ..Default::default()
        };
        Architecture::new(&config, 3, 1)
    }

    #[test]
    fn shapes_follow_the_architecture() {
        let a = arch(Head::Probabilistic, true);
        let names: Vec<String> = a.parameter_shapes().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "layers.0.weight",
                "layers.0.bias",
                "layers.0.gain",
                "layers.1.weight",
                "layers.1.bias",
                "layers.1.gain",
                "max_logvar",
                "min_logvar"
            ]
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let p = Parameters::new(a.clone(), &mut rng).unwrap();
        let w = Weights::from_parameters(&a, &p.detached()).unwrap();
        let x = Tensor::zeros((2, 5, 4), DType::F32, &Device::Cpu).unwrap();
        let out = w.forward(&x).unwrap();
        assert_eq!(out.mean.dims(), &[2, 5, 3]);
        assert_eq!(out.log_var.unwrap().dims(), &[2, 5, 3]);
        assert!(Weights::from_parameters(&a, &p.detached()[1..]).is_err());
    }

    #[test]
    fn weight_norm_starts_at_the_plain_weights() {
        let a = arch(Head::Deterministic, true);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let p = Parameters::new(a.clone(), &mut rng).unwrap();
        let w = Weights::from_parameters(&a, &p.detached()).unwrap();
        let diff = (&w.layers[0].0 - p.vars[0].as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }

    /// The hand-written gradients of the training loss equal autograd's (which
    /// tests/gradients.rs checks against finite differences), for both heads and every
    /// activation, with inputs of scale 1 and of scale 30 (the log-variance pushed against
    /// both bounds, `exp(-log_var)` up to ~2e4); the loss has the same bits. Each gradient
    /// agrees to 1e-5 of its largest entry; a log-variance bound's also to 1e-6 of
    /// `sum_B |dL/dlog_var|`, because autograd sums its two paths separately
    /// (`sum dL/du - sum dL/du s`) and so rounds relative to those sums, which cancel, while the
    /// closed form sums `dL/du (1 - s)`.
    #[test]
    fn hand_written_gradients_match_autograd() {
        for input_scale in [1.0, 30.0] {
            for (head, activation) in [Head::Deterministic, Head::Probabilistic]
                .into_iter()
                .flat_map(|h| {
                    [Activation::Relu, Activation::Tanh, Activation::Swish].map(|a| (h, a))
                })
            {
                let config = EnsembleConfig {
                    members: 3,
                    hidden_sizes: vec![16, 8],
                    activation,
                    head,
                    ..Default::default()
                };
                let a = Architecture::new(&config, 3, 2);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
                let p = Parameters::new(a.clone(), &mut rng).unwrap();
                let x = Tensor::randn(0f32, input_scale, (3, 40, 5), &Device::Cpu).unwrap();
                let y = Tensor::randn(0f32, 1.0, (3, 40, 3), &Device::Cpu).unwrap();
                let tracked = Weights::from_parameters(&a, &p.tracked()).unwrap();
                let expected_loss = tracked.loss(&x, &y, 0.01).unwrap();
                let autograd = expected_loss.sum_all().unwrap().backward().unwrap();
                let detached = Weights::from_parameters(&a, &p.detached()).unwrap();
                let (loss, grads) = detached.loss_and_gradients(&x, &y, 0.01).unwrap();
                let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(
                    values(&loss),
                    values(&expected_loss),
                    "{head:?} {activation:?}"
                );
                assert_eq!(grads.len(), p.vars.len());
                for ((var, name), got) in p.vars.iter().zip(&p.names).zip(&grads) {
                    let expected = values(autograd.get(var).unwrap());
                    let scale = expected.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                    let tolerance = match name.ends_with("logvar") {
                        true => 1e-5 * scale + 1e-6 * summed_log_var_grads(&detached, &x, &y),
                        false => 1e-5 * scale,
                    };
                    for (g, e) in values(got).iter().zip(&expected) {
                        assert!(
                            (g - e).abs() <= tolerance,
                            "x scale {input_scale}, {head:?} {activation:?} {name}: {g} vs \
                             autograd {e}"
                        );
                    }
                }
            }
        }
    }

    /// `max over members and outputs of sum_B |dL/dlog_var|` of the Gaussian head's loss.
    fn summed_log_var_grads(weights: &Weights, x: &Tensor, y: &Tensor) -> f32 {
        let out = weights.forward(x).unwrap();
        let log_var = out.log_var.unwrap();
        let n = y.elem_count() / y.dim(0).unwrap();
        let weighted =
            ((out.mean - y).unwrap().sqr().unwrap() * log_var.neg().unwrap().exp()).unwrap();
        ((1.0 - weighted).unwrap().abs().unwrap() / n as f64)
            .unwrap()
            .sum(1)
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn log_variance_stays_between_the_bounds() {
        let a = arch(Head::Probabilistic, false);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let p = Parameters::new(a.clone(), &mut rng).unwrap();
        let w = Weights::from_parameters(&a, &p.detached()).unwrap();
        let x = Tensor::randn(0f32, 100.0, (2, 50, 4), &Device::Cpu).unwrap();
        let lv: Vec<f32> = w
            .forward(&x)
            .unwrap()
            .log_var
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(lv
            .iter()
            .all(|v| (INIT_MIN_LOGVAR - 1e-4..=INIT_MAX_LOGVAR + 1e-4).contains(v)));
    }
}

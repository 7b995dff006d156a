//! Adam (Kingma & Ba 2015, no weight decay) whose state can be checkpointed.
//!
//! The update is candle-nn's `AdamW` with zero weight decay, operation for operation, so
//! switching to this type changes no result; unlike `AdamW` its moment estimates and step count
//! can be saved and restored, so a resumed run continues exactly like an uninterrupted one.
//! Each parameter is updated by one in-place pass (a candle `InplaceOp1`, vectorised and split
//! across rayon's threads) that computes `AdamW`'s tensor ops element by element in the same
//! `f32` order, instead of fifteen allocating tensor ops: small-batch actor-critic updates
//! (SAC, MAAC) are bound by such per-op costs (tested bit for bit against `AdamW` below).

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::kernels::widest;
use crate::{Error, Result};

/// Adam's default first-moment decay.
const BETA1: f64 = 0.9;
/// Adam's default second-moment decay.
const BETA2: f64 = 0.999;
/// Adam's default denominator offset.
const EPS: f64 = 1e-8;
/// Elements per task of the parallel update.
const CHUNK: usize = 1 << 15;

/// Adam over a fixed list of variables.
pub struct Adam {
    learning_rate: f64,
    vars: Vec<Var>,
    /// First and second moment estimates, one flat buffer per variable.
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    steps: u64,
}

/// The per-step constants of the update, as `f32` the way candle's affine ops cast them.
#[derive(Clone, Copy)]
struct Coefficients {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_m: f32,
    scale_v: f32,
    eps: f32,
    learning_rate: f32,
}

impl Coefficients {
    /// `AdamW::step`'s tensor ops for one element, in its order (each `x * c` of an affine op
    /// is `x * c + 0`).
    #[inline(always)]
    fn apply(&self, theta: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        let next_m = (*m * self.beta1 + 0.0) + (g * self.one_minus_beta1 + 0.0);
        let next_v = (*v * self.beta2 + 0.0) + ((g * g) * self.one_minus_beta2 + 0.0);
        let m_hat = next_m * self.scale_m + 0.0;
        let v_hat = next_v * self.scale_v + 0.0;
        let adjusted = m_hat / (v_hat.sqrt() * 1.0 + self.eps);
        *theta -= adjusted * self.learning_rate + 0.0;
        *m = next_m;
        *v = next_v;
    }
}

/// One variable's in-place update.
struct Update<'a> {
    grad: &'a [f32],
    moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
    coefficients: Coefficients,
}

impl InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("adam updates f32 parameters");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("adam updates contiguous parameters");
        };
        let theta = &mut data[start..end];
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if theta.len() != self.grad.len() || theta.len() != m.len() {
            candle_core::bail!("adam: parameter, gradient and moment sizes differ");
        }
        let c = self.coefficients;
        let pass = |theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            widest(|| {
                for i in 0..theta.len() {
                    c.apply(&mut theta[i], &mut m[i], &mut v[i], g[i]);
                }
            })
        };
        if theta.len() >= 2 * CHUNK {
            theta
                .par_chunks_mut(CHUNK)
                .zip(self.grad.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
                .for_each(|((t, g), (m, v))| pass(t, g, m, v));
        } else {
            pass(theta, self.grad, m, v);
        }
        Ok(())
    }
}

impl Adam {
    /// Adam with `learning_rate` over `vars`, moments at zero.
    pub fn new(vars: Vec<Var>, learning_rate: f64) -> Result<Self> {
        for v in &vars {
            if v.dtype() != DType::F32 {
                return Err(Error::InvalidArgument(format!(
                    "Adam updates f32 variables, got {:?}",
                    v.dtype()
                )));
            }
        }
        Ok(Self {
            moments: vars
                .iter()
                .map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()]))
                .collect(),
            vars,
            learning_rate,
            steps: 0,
        })
    }

    /// Updates done so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One descent step on `grads` (variables without a gradient keep their value and moments).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let coefficients = Coefficients {
            beta1: BETA1 as f32,
            one_minus_beta1: (1.0 - BETA1) as f32,
            beta2: BETA2 as f32,
            one_minus_beta2: (1.0 - BETA2) as f32,
            scale_m: (1.0 / (1.0 - BETA1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - BETA2.powi(t))) as f32,
            eps: EPS as f32,
            learning_rate: self.learning_rate as f32,
        };
        for (theta, (m, v)) in self.vars.iter().zip(&mut self.moments) {
            let Some(g) = grads.get(theta.as_tensor()) else {
                continue;
            };
            let g = g.to_dtype(DType::F32)?.contiguous()?;
            let (storage, layout) = g.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                return Err(Error::InvalidArgument("Adam runs on the CPU only".into()));
            };
            let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
                Error::InvalidArgument("gradient is not contiguous after contiguous()".into())
            })?;
            let update = Update {
                grad: &cpu.as_slice::<f32>()?[start..end],
                moments: RefCell::new((m.as_mut_slice(), v.as_mut_slice())),
                coefficients,
            };
            theta.as_tensor().inplace_op1(&update)?;
        }
        Ok(())
    }

    /// The state as named tensors `<prefix>.m.<i>`, `<prefix>.v.<i>` and `<prefix>.steps`.
    pub fn state_tensors(&self, prefix: &str) -> Result<HashMap<String, Tensor>> {
        let mut tensors = HashMap::new();
        for (i, ((m, v), var)) in self.moments.iter().zip(&self.vars).enumerate() {
            tensors.insert(
                format!("{prefix}.m.{i}"),
                Tensor::from_slice(m, var.shape(), var.device())?,
            );
            tensors.insert(
                format!("{prefix}.v.{i}"),
                Tensor::from_slice(v, var.shape(), var.device())?,
            );
        }
        let steps = Tensor::new(&[self.steps as i64], &candle_core::Device::Cpu)?;
        tensors.insert(format!("{prefix}.steps"), steps);
        Ok(tensors)
    }

    /// Restores what [`Adam::state_tensors`] saved under `prefix`; missing or mis-shaped
    /// tensors are errors.
    pub fn load_state_tensors(
        &mut self,
        prefix: &str,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let get = |name: String| {
            tensors
                .get(&name)
                .ok_or_else(|| Error::InvalidArgument(format!("checkpoint lacks tensor `{name}`")))
                .map(|t| (name, t))
        };
        // Read everything first: nothing changes when one tensor is missing or mis-shaped.
        let mut restored = Vec::with_capacity(self.moments.len());
        for (i, var) in self.vars.iter().enumerate() {
            let mut pair = Vec::with_capacity(2);
            for kind in ["m", "v"] {
                let (name, saved) = get(format!("{prefix}.{kind}.{i}"))?;
                if saved.dims() != var.dims() {
                    return Err(Error::shape(
                        format!("checkpoint tensor `{name}`"),
                        format!("{:?}", var.dims()),
                        format!("{:?}", saved.dims()),
                    ));
                }
                pair.push(
                    saved
                        .to_dtype(DType::F32)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                );
            }
            let v = pair.pop().unwrap_or_default();
            let m = pair.pop().unwrap_or_default();
            restored.push((m, v));
        }
        let (name, steps) = get(format!("{prefix}.steps"))?;
        let steps = steps
            .to_dtype(DType::I64)?
            .flatten_all()?
            .to_vec1::<i64>()?;
        self.steps = match steps.as_slice() {
            [s] if *s >= 0 => *s as u64,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "checkpoint tensor `{name}` must hold one non-negative step count"
                )))
            }
        };
        self.moments = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    fn quadratic_grads(x: &Var, target: &Tensor) -> GradStore {
        (x.as_tensor() - target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    fn start() -> (Var, Tensor) {
        let x = Var::from_slice(&[0.5f32, -1.0, 2.0, 0.0], (2, 2), &Device::Cpu).unwrap();
        let target = Tensor::from_slice(&[1.0f32, 1.0, -1.0, 3.0], (2, 2), &Device::Cpu).unwrap();
        (x, target)
    }

    #[test]
    fn steps_equal_candle_adamw_without_weight_decay_bit_for_bit() {
        let (ours, target) = start();
        let (theirs, _) = start();
        let mut adam = Adam::new(vec![ours.clone()], 0.05).unwrap();
        let params = ParamsAdamW {
            lr: 0.05,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        };
        let mut reference = AdamW::new(vec![theirs.clone()], params).unwrap();
        for _ in 0..20 {
            adam.step(&quadratic_grads(&ours, &target)).unwrap();
            reference.step(&quadratic_grads(&theirs, &target)).unwrap();
        }
        let ours = ours
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let theirs = theirs
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(adam.steps(), 20);
    }

    /// The same on a parameter large enough for the parallel pass, with varied gradients.
    #[test]
    fn the_parallel_pass_equals_candle_adamw_bit_for_bit() {
        let n = 3 * CHUNK + 17;
        let init: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let target: Vec<f32> = (0..n)
            .map(|i| ((i * 104729) % 997) as f32 / 300.0 - 1.5)
            .collect();
        let target = Tensor::from_vec(target, n, &Device::Cpu).unwrap();
        let ours = Var::from_slice(&init, n, &Device::Cpu).unwrap();
        let theirs = Var::from_slice(&init, n, &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![ours.clone()], 1e-2).unwrap();
        let params = ParamsAdamW {
            lr: 1e-2,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        };
        let mut reference = AdamW::new(vec![theirs.clone()], params).unwrap();
        for _ in 0..7 {
            adam.step(&quadratic_grads(&ours, &target)).unwrap();
            reference.step(&quadratic_grads(&theirs, &target)).unwrap();
        }
        let bits = |v: &Var| -> Vec<u32> {
            v.as_tensor()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(&ours), bits(&theirs));
    }

    #[test]
    fn a_restored_optimiser_continues_like_the_original() {
        let (x, target) = start();
        let mut original = Adam::new(vec![x.clone()], 0.05).unwrap();
        for _ in 0..5 {
            original.step(&quadratic_grads(&x, &target)).unwrap();
        }
        let saved = original.state_tensors("opt").unwrap();
        let copy = Var::from_tensor(&x.as_tensor().copy().unwrap()).unwrap();
        let mut restored = Adam::new(vec![copy.clone()], 0.05).unwrap();
        restored.load_state_tensors("opt", &saved).unwrap();
        assert_eq!(restored.steps(), 5);
        // A fresh optimiser from the same parameters forgets the moments and takes other steps.
        let fresh_copy = Var::from_tensor(&x.as_tensor().copy().unwrap()).unwrap();
        let mut fresh = Adam::new(vec![fresh_copy.clone()], 0.05).unwrap();
        for _ in 0..5 {
            original.step(&quadratic_grads(&x, &target)).unwrap();
            restored.step(&quadratic_grads(&copy, &target)).unwrap();
            fresh.step(&quadratic_grads(&fresh_copy, &target)).unwrap();
        }
        let values = |v: &Var| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(values(&x), values(&copy));
        assert_ne!(values(&x), values(&fresh_copy));
    }

    #[test]
    fn missing_or_mis_shaped_state_is_an_error() {
        let (x, _) = start();
        let mut adam = Adam::new(vec![x], 0.05).unwrap();
        let mut saved = adam.state_tensors("opt").unwrap();
        saved.remove("opt.v.0");
        let err = adam.load_state_tensors("opt", &saved).unwrap_err();
        assert!(err.to_string().contains("opt.v.0"), "{err}");
        let mut saved = adam.state_tensors("opt").unwrap();
        saved.insert(
            "opt.m.0".into(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        );
        let err = adam.load_state_tensors("opt", &saved).unwrap_err();
        assert!(err.to_string().contains("opt.m.0"), "{err}");
    }
}

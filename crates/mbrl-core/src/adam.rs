//! Adam (Kingma & Ba 2015, no weight decay) whose state can be checkpointed.
//!
//! The update is candle-nn's `AdamW` with zero weight decay, operation for operation, so
//! switching to this type changes no result; unlike `AdamW` its moment estimates and step count
//! can be saved and restored, so a resumed run continues exactly like an uninterrupted one.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::{Error, Result};

/// Adam's default first-moment decay.
const BETA1: f64 = 0.9;
/// Adam's default second-moment decay.
const BETA2: f64 = 0.999;
/// Adam's default denominator offset.
const EPS: f64 = 1e-8;

/// Adam over a fixed list of variables.
pub struct Adam {
    learning_rate: f64,
    vars: Vec<Var>,
    first_moments: Vec<Var>,
    second_moments: Vec<Var>,
    steps: u64,
}

impl Adam {
    /// Adam with `learning_rate` over `vars`, moments at zero.
    pub fn new(vars: Vec<Var>, learning_rate: f64) -> Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        Ok(Self {
            first_moments: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            second_moments: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
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
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for ((theta, m), v) in self
            .vars
            .iter()
            .zip(&self.first_moments)
            .zip(&self.second_moments)
        {
            let Some(g) = grads.get(theta.as_tensor()) else {
                continue;
            };
            let next_m = ((m.as_tensor() * BETA1)? + (g * (1.0 - BETA1))?)?;
            let next_v = ((v.as_tensor() * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let adjusted = (m_hat / (v_hat.sqrt()? + EPS)?)?;
            let next_theta = (theta.as_tensor() - (adjusted * self.learning_rate)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }

    /// The state as named tensors `<prefix>.m.<i>`, `<prefix>.v.<i>` and `<prefix>.steps`.
    pub fn state_tensors(&self, prefix: &str) -> Result<HashMap<String, Tensor>> {
        let mut tensors = HashMap::new();
        for (i, (m, v)) in self
            .first_moments
            .iter()
            .zip(&self.second_moments)
            .enumerate()
        {
            tensors.insert(format!("{prefix}.m.{i}"), m.as_tensor().clone());
            tensors.insert(format!("{prefix}.v.{i}"), v.as_tensor().clone());
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
        for (i, (m, v)) in self
            .first_moments
            .iter()
            .zip(&self.second_moments)
            .enumerate()
        {
            for (moment, kind) in [(m, "m"), (v, "v")] {
                let (name, saved) = get(format!("{prefix}.{kind}.{i}"))?;
                if saved.dims() != moment.dims() {
                    return Err(Error::shape(
                        format!("checkpoint tensor `{name}`"),
                        format!("{:?}", moment.dims()),
                        format!("{:?}", saved.dims()),
                    ));
                }
                // A copy: the saved tensor may share storage with the moment itself.
                moment.set(&saved.to_dtype(moment.dtype())?.copy()?)?;
            }
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

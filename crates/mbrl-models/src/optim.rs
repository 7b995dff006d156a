//! Adam for stacked ensemble parameters, updated in place, member by member.
//!
//! Every parameter has the ensemble dimension first (`[K, ...]`) and Adam is element-wise, so
//! one optimiser over the stacked tensors is exactly `K` independent optimisers. Two things
//! candle-nn's `AdamW` cannot do are needed here: members that stopped early (moving-average
//! rule) must not move, and each member keeps its own step count for the bias correction.
//! The update runs as one in-place pass per parameter (a candle `InplaceOp1`) instead of a
//! dozen allocating tensor ops (PERFORMANCE_NOTES, cause 4), vectorised and split across
//! rayon's threads.

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp1, Layout, Tensor, Var};
use mbrl_core::kernels::widest;
use rayon::prelude::*;

use crate::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;
/// Elements per task of the parallel update.
const CHUNK: usize = 1 << 15;

/// Adam (Kingma & Ba 2015, no weight decay) with per-member step counts and freezing.
#[derive(Debug, Clone)]
pub(crate) struct EnsembleAdam {
    learning_rate: f64,
    members: usize,
    /// First and second moments, one flat buffer per parameter.
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    /// Updates applied to each member since the last reset.
    steps: Vec<u64>,
}

impl EnsembleAdam {
    /// Zero moments for `vars`, each `[members, ...]`.
    pub(crate) fn new(vars: &[Var], members: usize, learning_rate: f64) -> Self {
        let moments = vars
            .iter()
            .map(|v| (vec![0.0; v.elem_count()], vec![0.0; v.elem_count()]))
            .collect();
        Self {
            learning_rate,
            members,
            moments,
            steps: vec![0; members],
        }
    }

    /// Forgets the moments and step counts.
    pub(crate) fn reset(&mut self) {
        for (m, v) in &mut self.moments {
            m.fill(0.0);
            v.fill(0.0);
        }
        self.steps.fill(0);
    }

    /// One update of the members with `active[k]`; the others keep parameters and moments.
    /// `grads[i]` is the gradient of `vars[i]` (`None`: the loss does not depend on it).
    pub(crate) fn step(
        &mut self,
        vars: &[Var],
        grads: &[Option<Tensor>],
        active: &[bool],
    ) -> Result<()> {
        if vars.len() != self.moments.len()
            || grads.len() != vars.len()
            || active.len() != self.members
        {
            return Err(Error::InvalidArgument(format!(
                "optimiser built for {} parameters and {} members, stepped with {} parameters, \
                 {} gradients and {} members",
                self.moments.len(),
                self.members,
                vars.len(),
                grads.len(),
                active.len()
            )));
        }
        for (k, &on) in active.iter().enumerate() {
            if on {
                self.steps[k] += 1;
            }
        }
        let corrections: Vec<(f32, f32)> = self
            .steps
            .iter()
            .map(|&t| {
                let t = t.max(1) as i32;
                let step = self.learning_rate / (1.0 - BETA1.powi(t));
                (step as f32, (1.0 - BETA2.powi(t)).sqrt() as f32)
            })
            .collect();
        for ((var, grad), (m, v)) in vars.iter().zip(grads).zip(&mut self.moments) {
            let Some(grad) = grad else {
                continue;
            };
            if grad.dims() != var.dims() {
                return Err(Error::InvalidArgument(format!(
                    "gradient {:?} for a parameter {:?}",
                    grad.dims(),
                    var.dims()
                )));
            }
            let grad = grad.contiguous()?;
            let (storage, layout) = grad.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                return Err(Error::InvalidArgument(
                    "ensemble training runs on the CPU only".into(),
                ));
            };
            let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
                Error::InvalidArgument("gradient is not contiguous after contiguous()".into())
            })?;
            let op = AdamUpdate {
                grad: &cpu.as_slice::<f32>()?[start..end],
                moments: RefCell::new((m.as_mut_slice(), v.as_mut_slice())),
                active,
                corrections: &corrections,
            };
            var.as_tensor().inplace_op1(&op)?;
        }
        Ok(())
    }
}

/// The in-place update of one stacked parameter.
struct AdamUpdate<'a> {
    grad: &'a [f32],
    moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
    active: &'a [bool],
    /// Per member: (learning rate / (1 - beta1^t), sqrt(1 - beta2^t)).
    corrections: &'a [(f32, f32)],
}

impl InplaceOp1 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "ensemble-adam"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("ensemble-adam expects f32 parameters");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("ensemble-adam expects contiguous parameters");
        };
        let params = &mut data[start..end];
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if params.len() != self.grad.len() || params.len() != m.len() {
            candle_core::bail!("ensemble-adam: parameter, gradient and moment sizes differ");
        }
        let per_member = params.len() / self.active.len();
        let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, EPSILON as f32);
        for (k, (&on, &(step, c2))) in self.active.iter().zip(self.corrections).enumerate() {
            if !on {
                continue;
            }
            let range = k * per_member..(k + 1) * per_member;
            let p = &mut params[range.clone()];
            let g = &self.grad[range.clone()];
            let (m, v) = (&mut m[range.clone()], &mut v[range]);
            let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
                widest(|| {
                    for i in 0..p.len() {
                        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        p[i] -= step * m[i] / (v[i].sqrt() / c2 + eps);
                    }
                })
            };
            // Element-wise, so splitting the pass across threads changes no bits.
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
                .for_each(|((p, g), (m, v))| update(p, g, m, v));
        }
        Ok(())
    }
}

/// Adam's first step moves every parameter with a non-zero gradient by `lr` against the sign of
/// its gradient (m/sqrt(v) = g/|g| after bias correction); frozen members do not move.
#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn first_step_is_sign_descent_and_frozen_members_stay() {
        let x =
            Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0], [3.0, 4.0]], &Device::Cpu).unwrap())
                .unwrap();
        let target = Tensor::new(&[[0.0f32, 0.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        let loss = (x.as_tensor() - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = [loss.backward().unwrap().get(&x).cloned()];
        let mut adam = EnsembleAdam::new(std::slice::from_ref(&x), 2, 0.1);
        adam.step(std::slice::from_ref(&x), &grads, &[true, false])
            .unwrap();
        let got = x.as_tensor().to_vec2::<f32>().unwrap();
        assert!(
            (got[0][0] - 0.9).abs() < 1e-6 && (got[0][1] + 1.9).abs() < 1e-6,
            "{got:?}"
        );
        assert_eq!(got[1], vec![3.0, 4.0]);
        assert!(adam
            .step(std::slice::from_ref(&x), &grads, &[true])
            .is_err());
        adam.reset();
        assert_eq!(adam.steps, vec![0, 0]);
    }
}

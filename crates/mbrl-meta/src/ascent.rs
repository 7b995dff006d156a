//! Adam ascent on a meta-objective: the first-order outer optimiser shared by ProMP and
//! MAML-VPG. Gradients are detached before they reach Adam, so its moment estimates never hold
//! on to the (second-order) graph of an iteration.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use mbrl_core::adam::Adam;
use mbrl_core::Result;

/// Adam (no weight decay) over the policy's parameters and, if learnable, the inner step sizes.
pub struct Ascent {
    optimizer: Adam,
    vars: Vec<Var>,
}

impl Ascent {
    /// Adam with `learning_rate` over `vars`.
    pub fn new(vars: Vec<Var>, learning_rate: f64) -> Result<Self> {
        Ok(Self {
            optimizer: Adam::new(vars.clone(), learning_rate)?,
            vars,
        })
    }

    /// The Adam optimiser, whose state goes into checkpoints.
    pub fn adam(&self) -> &Adam {
        &self.optimizer
    }

    /// The Adam optimiser, to restore its state.
    pub fn adam_mut(&mut self) -> &mut Adam {
        &mut self.optimizer
    }

    /// One Adam step that increases `objective`; returns the gradient's global norm.
    pub fn step(&mut self, objective: &Tensor) -> Result<f64> {
        let grads = objective.backward()?;
        let mut ascent = GradStore::default();
        let mut norm_sq = 0.0;
        for var in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let g = g.detach();
                norm_sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                ascent.insert(var.as_tensor(), g.neg()?);
            }
        }
        self.optimizer.step(&ascent)?;
        Ok(norm_sq.sqrt())
    }
}

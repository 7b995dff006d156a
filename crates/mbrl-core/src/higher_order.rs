//! Higher-order gradients in candle: where meta-gradients are computed.
//!
//! candle detaches every gradient it produces unless `CANDLE_GRAD_DO_NOT_DETACH=1` was set
//! when the thread ran its first backward pass (the flag is read once per thread,
//! PERFORMANCE_NOTES item 7). Without it, a gradient of a gradient silently loses every
//! second-order term. [`run`] therefore sets the variable and runs the meta computation on a
//! fresh scoped thread, after a probe that fails loudly if second derivatives are unavailable.
//!
//! Gradients with respect to arbitrary tensors (adapted parameters are not variables) come
//! from [`gradient_at`]: the objective is evaluated at `params + z` with fresh zero variables
//! `z`, whose gradients candle keeps. On a [`run`] thread those gradients stay differentiable,
//! so an outer objective can be differentiated through an inner gradient step (MAML, GrBAL).

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};

/// The environment variable candle reads to keep gradients differentiable.
pub const DO_NOT_DETACH: &str = "CANDLE_GRAD_DO_NOT_DETACH";

/// Sets `CANDLE_GRAD_DO_NOT_DETACH=1` for threads that have not run a backward pass yet.
pub fn enable() {
    if std::env::var(DO_NOT_DETACH)
        .map(|v| v != "1")
        .unwrap_or(true)
    {
        std::env::set_var(DO_NOT_DETACH, "1");
    }
}

/// Checks, on the calling thread, that a second derivative comes back: `d^2/dx^2 x^3 = 6x`.
/// An error means the thread ran a backward pass before [`enable`]; use [`run`].
pub fn check() -> Result<()> {
    let x = Var::from_slice(&[2.0f32], 1, &Device::Cpu)?;
    let y = x.as_tensor().powf(3.0)?.sum_all()?;
    let dy = y.backward()?;
    let g = dy
        .get(x.as_tensor())
        .ok_or_else(|| Error::InvalidArgument("first derivative missing".into()))?;
    let second = g.sum_all()?.backward()?;
    match second.get(x.as_tensor()) {
        Some(h) if (h.to_dtype(DType::F32)?.to_vec1::<f32>()?[0] - 12.0).abs() < 1e-3 => Ok(()),
        _ => Err(Error::InvalidArgument(format!(
            "second-order gradients are unavailable on this thread: {DO_NOT_DETACH}=1 must be \
             set before its first backward pass (run meta-gradients through \
             mbrl_core::higher_order::run)"
        ))),
    }
}

/// Runs `f` on a fresh thread with higher-order gradients enabled and checked.
pub fn run<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    enable();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                check()?;
                f()
            })
            .join()
            .map_err(|_| Error::InvalidArgument("the meta-gradient thread panicked".into()))?
    })
}

/// `objective(params)` and its gradient with respect to `params`, which may be any tensors
/// (variables, adapted parameters, perturbed copies). The gradient keeps its graph when the
/// thread runs with higher-order gradients ([`run`]).
pub fn gradient_at(
    params: &[Tensor],
    objective: impl FnOnce(&[Tensor]) -> Result<Tensor>,
) -> Result<(Tensor, Vec<Tensor>)> {
    // A parameter with a graph behind it is evaluated as `p + z` with a fresh zero variable
    // `z` (d/dz = d/dp, and p's graph stays for a meta-gradient); a constant one becomes a
    // variable itself (one copy instead of a zero fill and an add).
    let (inputs, wrt): (Vec<Tensor>, Vec<Var>) = params
        .iter()
        .map(|p| {
            if p.track_op() {
                let z = Var::zeros(p.dims(), p.dtype(), p.device())?;
                Ok(((p + z.as_tensor())?, z))
            } else {
                let v = Var::from_tensor(p)?;
                Ok((v.as_tensor().clone(), v))
            }
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let value = objective(&inputs)?;
    let grads = value.backward()?;
    let gradient = wrt
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((value, gradient))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_gives_second_derivatives() {
        run(check).unwrap();
    }
}

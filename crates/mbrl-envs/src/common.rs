//! Small helpers shared by the environments: spaces, action reading, tensor columns and
//! task-family activation.

use candle_core::Tensor;
use mbrl_core::env::read_action;
use mbrl_core::space::{BoxSpace, Space};

use crate::registry::{check_task_family, EnvEntry};

/// A one-dimensional box with per-element bounds.
pub(crate) fn box_space(low: Vec<f32>, high: Vec<f32>) -> mbrl_core::Result<Space> {
    Ok(Space::Box(BoxSpace::from_bounds(low, high)?))
}

/// `R^dim`.
pub(crate) fn unbounded(dim: usize) -> mbrl_core::Result<Space> {
    Ok(Space::Box(BoxSpace::uniform(
        f32::NEG_INFINITY,
        f32::INFINITY,
        dim,
    )?))
}

/// Reads a rank-1 action of `dim` elements and rejects NaN or infinite entries.
pub(crate) fn finite_action(action: &Tensor, dim: usize, env: &str) -> mbrl_core::Result<Vec<f32>> {
    let values = read_action(action, dim)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(mbrl_core::Error::InvalidArgument(format!(
            "{env}: action {values:?} has a NaN or infinite element; actions must be finite"
        )));
    }
    Ok(values)
}

/// Column `i` of a `[B, dim]` tensor, as a `[B]` tensor.
pub(crate) fn column(t: &Tensor, i: usize) -> candle_core::Result<Tensor> {
    t.narrow(1, i, 1)?.squeeze(1)
}

/// Whether `family` (one of `entry`'s task families, or none) activates a task family; unknown
/// families are errors listing the valid ones.
pub(crate) fn family_active(entry: &EnvEntry, family: Option<&str>) -> crate::Result<bool> {
    check_task_family(entry, family)?;
    Ok(family.is_some())
}

//! The property every algorithm's checkpoint must have: a run restored from it continues bit
//! for bit like the run that wrote it. Algorithm crates call [`check_resume`] in their tests.

use std::collections::BTreeMap;

use crate::algorithm::Algorithm;
use crate::{Error, Result};

/// The metrics of an iteration without its wall-clock timings (keys ending in `_time_s`), as
/// bits, so equal runs compare equal and NaNs compare too.
pub fn deterministic_metrics(metrics: &BTreeMap<String, f64>) -> Vec<(String, u64)> {
    metrics
        .iter()
        .filter(|(k, _)| !k.ends_with("_time_s"))
        .map(|(k, v)| (k.clone(), v.to_bits()))
        .collect()
}

/// Trains `build(seed)` for `iterations`, checkpoints it, restores the checkpoint into
/// `build(other_seed)` and runs one more iteration on both. An error names the first metric
/// (or the step count) where the restored run departs from the original.
pub fn check_resume(
    build: &dyn Fn(u64) -> Result<Box<dyn Algorithm>>,
    seed: u64,
    other_seed: u64,
    iterations: u64,
) -> Result<()> {
    let mut original = build(seed)?;
    for i in 1..=iterations {
        original.train_iteration(i)?;
    }
    let (tensors, state) = original.save_state()?;
    let mut restored = build(other_seed)?;
    restored.load_state(tensors, state)?;
    let next = iterations + 1;
    let a = original.train_iteration(next)?;
    let b = restored.train_iteration(next)?;
    if a.env_steps != b.env_steps {
        return Err(Error::InvalidArgument(format!(
            "{}: env_steps {} after resuming, {} without",
            original.name(),
            b.env_steps,
            a.env_steps
        )));
    }
    let (a, b) = (
        deterministic_metrics(&a.metrics),
        deterministic_metrics(&b.metrics),
    );
    for ((key, x), (other_key, y)) in a.iter().zip(&b) {
        if key != other_key {
            return Err(Error::InvalidArgument(format!(
                "{}: metric `{other_key}` after resuming where `{key}` was without",
                original.name()
            )));
        }
        if x != y {
            return Err(Error::InvalidArgument(format!(
                "{}: metric `{key}` is {} after resuming, {} without",
                original.name(),
                f64::from_bits(*y),
                f64::from_bits(*x)
            )));
        }
    }
    if a.len() != b.len() {
        return Err(Error::InvalidArgument(format!(
            "{}: {} metrics after resuming, {} without",
            original.name(),
            b.len(),
            a.len()
        )));
    }
    Ok(())
}

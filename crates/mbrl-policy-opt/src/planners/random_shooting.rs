//! Random shooting: `N` action sequences drawn uniformly in the action box, scored in one
//! batched rollout, the best one kept (the MPC of GrBAL/ReBAL, Nagabandi et al. 2019; thesis
//! Ch. 9 uses 500 candidates of horizon 10). A proposal sequence, when given, replaces the
//! first candidate, so random shooting never does worse than the proposal under the model.

use mbrl_core::Result;
use rand::RngCore;

use super::config::PlannerConfig;
use super::scoring::Scorer;
use super::{all_non_finite, candidate, Bounds, Search};

/// The best of `config.candidates` uniform sequences (ties: the lowest index).
pub(super) fn search(
    scorer: &mut Scorer<'_>,
    bounds: &Bounds,
    config: &PlannerConfig,
    proposal: Option<&[f32]>,
    rng: &mut dyn RngCore,
) -> Result<Search> {
    let (h, n, a) = (config.horizon, config.candidates, bounds.dim());
    let mut samples = bounds.uniform(h, n, rng);
    if let Some(proposal) = proposal {
        for t in 0..h {
            samples[t * n * a..t * n * a + a].copy_from_slice(&proposal[t * a..(t + 1) * a]);
        }
    }
    let scores = scorer.score(&samples, n, rng)?;
    let best = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_finite())
        .fold(None::<(usize, f64)>, |best, (i, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
        .ok_or_else(|| all_non_finite(0))?;
    Ok(Search {
        sequence: candidate(&samples, n, a, best.0),
        predicted_return: Some(best.1),
    })
}

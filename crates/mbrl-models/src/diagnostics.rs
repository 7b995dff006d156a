//! Diagnostics of a fitted model: k-step open-loop prediction error on held-out trajectories.

use candle_core::{Device, Tensor};
use mbrl_core::data::Trajectory;
use mbrl_core::model::DynamicsModel;

use crate::{Error, Result};

/// Mean squared error of open-loop predictions `1..=horizon` steps ahead.
///
/// Every window of `horizon` transitions of every trajectory starts from its true first
/// observation and is rolled out with the recorded actions, each step predicted by the mean
/// over members of their mean predictions. Entry `j` is the squared error of the
/// `(j + 1)`-step prediction, averaged over windows and observation dimensions (original,
/// un-normalised units). All windows are evaluated as one batch.
pub fn open_loop_error(
    model: &dyn DynamicsModel,
    trajectories: &[Trajectory],
    horizon: usize,
) -> Result<Vec<f64>> {
    let usable: Vec<&Trajectory> = trajectories
        .iter()
        .filter(|t| horizon > 0 && t.len() >= horizon)
        .collect();
    let Some(first) = usable.first() else {
        return Err(Error::InvalidArgument(format!(
            "open-loop error over {horizon} steps needs a trajectory with at least {horizon} \
             transitions (and horizon > 0)"
        )));
    };
    let (obs_dim, act_dim) = (first.obs_dim, first.act_dim);
    if usable
        .iter()
        .any(|t| t.obs_dim != obs_dim || t.act_dim != act_dim)
    {
        return Err(Error::InvalidArgument(
            "trajectories of one open-loop evaluation must share observation and action widths"
                .into(),
        ));
    }
    // Windows (trajectory, start).
    let windows: Vec<(&Trajectory, usize)> = usable
        .iter()
        .flat_map(|t| (0..=t.len() - horizon).map(move |s| (*t, s)))
        .collect();
    let w = windows.len();
    let dev = Device::Cpu;
    let start: Vec<f32> = windows
        .iter()
        .flat_map(|(t, s)| t.obs(*s).to_vec())
        .collect();
    let mut obs = Tensor::from_vec(start, (w, obs_dim), &dev)?;
    let mut errors = Vec::with_capacity(horizon);
    for j in 0..horizon {
        let act: Vec<f32> = windows
            .iter()
            .flat_map(|(t, s)| t.actions[(s + j) * act_dim..(s + j + 1) * act_dim].to_vec())
            .collect();
        let truth: Vec<f32> = windows
            .iter()
            .flat_map(|(t, s)| t.obs(s + j + 1).to_vec())
            .collect();
        let act = Tensor::from_vec(act, (w, act_dim), &dev)?;
        let truth = Tensor::from_vec(truth, (w, obs_dim), &dev)?;
        obs = model.predict_members(&obs, &act)?.mean.mean(0)?;
        let mse = (&obs - truth)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
        errors.push(mse as f64);
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::testing::ScaledDriftEnsemble;

    /// A drift trajectory `s' = s + a` with `a = 1`: member `k` predicts `s + (1 + 0.1 k)`,
    /// so the 2-member mean is off by 0.05 per step and by `0.05 j` after `j` steps.
    #[test]
    fn error_grows_with_the_horizon_as_computed_by_hand() {
        let mut t = Trajectory::new(vec![0.0], 1);
        for i in 0..4 {
            t.push(&[1.0], 0.0, vec![i as f32 + 1.0]).unwrap();
        }
        let model = ScaledDriftEnsemble::new(2, None);
        let e = open_loop_error(&model, &[t.clone()], 3).unwrap();
        for (j, err) in e.iter().enumerate() {
            let expected = (0.05 * (j + 1) as f64).powi(2);
            assert!((err - expected).abs() < 1e-6, "{j}: {err} vs {expected}");
        }
        assert!(open_loop_error(&model, &[t], 5).is_err());
    }
}

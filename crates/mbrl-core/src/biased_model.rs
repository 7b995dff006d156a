//! Deliberately wrong models for the robustness study of MB-MPO and ME-TRPO (thesis Sec. 5.5.3,
//! Fig. 10): every predicted next state gets biased Gaussian noise `N(b_k, sigma^2)` with one
//! bias `b_k ~ U(0, b_max)` per ensemble member, added to every coordinate. The trainers
//! redraw the biases every iteration ([`maybe_biased`]) from their `model_bias_max` and
//! `model_noise_std` settings ([`check_bias_settings`]).
//!
//! The wrapper shifts each member's mean by `b_k` and adds `sigma^2` to its predictive
//! variance, so the noise is drawn where `ModelEnv` draws probabilistic members' noise: it
//! needs `model_env.sample_noise = true` (the default).

use std::sync::Arc;

use candle_core::Tensor;
use rand::{Rng, RngCore};

use crate::model::{DynamicsModel, MemberPredictions};
use crate::{Error, Result};

/// A shared, thread-safe dynamics model, as the trainers' imagined environments hold them.
pub type SharedModel = Arc<dyn DynamicsModel + Sync>;

/// `model` with freshly drawn biases (from `rng`) and noise when `bias_max` is set; `model`
/// itself, drawing nothing, when it is `None`.
pub fn maybe_biased(
    model: SharedModel,
    bias_max: Option<f64>,
    noise_std: f64,
    rng: &mut dyn RngCore,
) -> Result<SharedModel> {
    Ok(match bias_max {
        Some(b_max) => Arc::new(BiasedNoisyModel::draw(model, b_max, noise_std, rng)?),
        None => model,
    })
}

/// Checks the `<table>.model_bias_max` and `<table>.model_noise_std` settings; the noise is
/// drawn by the imagined environment, so it needs `<table>.model_env.sample_noise`.
pub fn check_bias_settings(
    table: &str,
    bias_max: Option<f64>,
    noise_std: f64,
    sample_noise: bool,
) -> Result<()> {
    if !(noise_std.is_finite() && noise_std >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "{table}.model_noise_std must be a non-negative number, got {noise_std}"
        )));
    }
    if let Some(b) = bias_max {
        if !(b.is_finite() && b >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "{table}.model_bias_max must be a non-negative number, got {b}"
            )));
        }
        if noise_std > 0.0 && !sample_noise {
            return Err(Error::InvalidArgument(format!(
                "{table}.model_noise_std needs {table}.model_env.sample_noise = true"
            )));
        }
    }
    Ok(())
}

/// A model whose member `k` predicts `s' + b_k + N(0, sigma^2)`.
pub struct BiasedNoisyModel<M> {
    inner: M,
    biases: Vec<f32>,
    noise_std: f32,
}

impl<M: DynamicsModel> BiasedNoisyModel<M> {
    /// Wraps `inner` with one bias per member drawn from `U(0, bias_max)` and noise std
    /// `noise_std` (thesis: 0.1).
    pub fn draw(inner: M, bias_max: f64, noise_std: f64, rng: &mut dyn RngCore) -> Result<Self> {
        if !(bias_max.is_finite() && bias_max >= 0.0 && noise_std.is_finite() && noise_std >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "model bias needs b_max >= 0 and noise std >= 0, got {bias_max} and {noise_std}"
            )));
        }
        let biases = (0..inner.ensemble_size())
            .map(|_| (rng.random::<f64>() * bias_max) as f32)
            .collect();
        Ok(Self {
            inner,
            biases,
            noise_std: noise_std as f32,
        })
    }

    /// The bias of each member.
    pub fn biases(&self) -> &[f32] {
        &self.biases
    }
}

impl<M: DynamicsModel> DynamicsModel for BiasedNoisyModel<M> {
    fn ensemble_size(&self) -> usize {
        self.inner.ensemble_size()
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        let clean = self.inner.predict_members(obs, act)?;
        let k = self.biases.len();
        let bias = Tensor::from_vec(self.biases.clone(), (k, 1, 1), clean.mean.device())?;
        let mean = clean.mean.broadcast_add(&bias)?;
        let noise_var = self.noise_std * self.noise_std;
        let log_var = match clean.log_var {
            Some(lv) => Some((lv.exp()? + noise_var as f64)?.log()?),
            None if noise_var > 0.0 => {
                Some(Tensor::full(noise_var.ln(), mean.dims(), mean.device())?)
            }
            None => None,
        };
        Ok(MemberPredictions { mean, log_var })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScaledDriftEnsemble;
    use candle_core::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn adds_one_bias_per_member_and_gaussian_noise_of_the_given_std() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let model =
            BiasedNoisyModel::draw(ScaledDriftEnsemble::new(3, None), 0.5, 0.1, &mut rng).unwrap();
        let biases = model.biases().to_vec();
        assert!(biases.iter().all(|b| (0.0..=0.5).contains(b)));
        assert!(biases.windows(2).any(|w| w[0] != w[1]), "{biases:?}");
        let n = 4000;
        let obs = Tensor::zeros((n, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let act = obs.clone();
        // Zero state and action: the clean prediction is 0, so samples are b_k + noise.
        let samples = model
            .predict_members(&obs, &act)
            .unwrap()
            .sample(&mut rng)
            .unwrap()
            .squeeze(2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (row, bias) in samples.iter().zip(&biases) {
            let mean = row.iter().sum::<f32>() / n as f32;
            let std = (row.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32).sqrt();
            // Standard error of the mean: 0.1 / sqrt(4000) = 1.6e-3; of the std: 1.1e-3.
            assert!((mean - bias).abs() < 8e-3, "mean {mean} vs bias {bias}");
            assert!((std - 0.1).abs() < 6e-3, "std {std}");
        }
        // Probabilistic members keep their own variance on top of the added noise.
        let model =
            BiasedNoisyModel::draw(ScaledDriftEnsemble::new(2, Some(0.0)), 0.0, 0.1, &mut rng)
                .unwrap();
        let log_var = model.predict_members(&obs, &act).unwrap().log_var.unwrap();
        let v = log_var.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((v - 1.01f32.ln()).abs() < 1e-6, "{v}");
        assert!(
            BiasedNoisyModel::draw(ScaledDriftEnsemble::new(2, None), -1.0, 0.1, &mut rng).is_err()
        );
    }

    #[test]
    fn settings_are_checked_and_unset_bias_draws_nothing() {
        assert!(check_bias_settings("me_trpo", Some(0.5), 0.1, true).is_ok());
        assert!(check_bias_settings("me_trpo", None, 0.1, false).is_ok());
        let err = check_bias_settings("me_trpo", Some(0.5), 0.1, false).unwrap_err();
        assert!(
            err.to_string().contains("me_trpo.model_env.sample_noise"),
            "{err}"
        );
        let err = check_bias_settings("mb_mpo", Some(f64::NAN), 0.1, true).unwrap_err();
        assert!(err.to_string().contains("mb_mpo.model_bias_max"), "{err}");
        assert!(check_bias_settings("mb_mpo", None, -1.0, true).is_err());

        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let untouched = rng.clone();
        let model: SharedModel = Arc::new(ScaledDriftEnsemble::new(2, None));
        maybe_biased(model.clone(), None, 0.1, &mut rng).unwrap();
        assert_eq!(rng, untouched);
        maybe_biased(model, Some(0.5), 0.1, &mut rng).unwrap();
        assert_ne!(rng, untouched);
    }
}

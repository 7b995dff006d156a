//! [`EnsembleConfig`]: the plain-data description of an MLP ensemble and how it is trained.
//!
//! Defaults follow ME-TRPO (thesis Appendix A.1.2 and the authors' code) with the 512-512
//! hidden sizes used for the smaller environments; MB-MPO (Appendix B.3) and MAAC differ in the
//! keys noted on each field.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use mbrl_core::kernels::Activation;

/// What the output layer predicts and which loss trains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// The normalised state change; mean squared error (ME-TRPO, MB-MPO).
    #[default]
    Deterministic,
    /// A Gaussian: mean and log-variance of the normalised state change, the log-variance
    /// kept between learned bounds by softplus; Gaussian negative log-likelihood plus
    /// `logvar_bound_penalty * (sum max_logvar - sum min_logvar)` (PETS, MAAC).
    Probabilistic,
}

/// When a fit stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EarlyStoppingRule {
    /// Appendix A.1.2: validate every `validate_every` passes, keep each member's best
    /// weights, stop when no member improved for `patience` passes (or after `max_epochs`),
    /// then restore every member's best weights.
    #[default]
    Patience,
    /// Appendix B.3: after every pass update each member's moving average of the validation
    /// loss with `moving_average_persistence`; a member stops as soon as its average rises.
    /// The fit ends when all members stopped (or after `max_epochs`).
    MovingAverage,
    /// Train exactly `max_epochs` passes.
    Never,
}

/// An ensemble of MLP dynamics models and its training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Number of members `K`. Default `5`.
    pub members: usize,
    /// Hidden layer widths. Default `[512, 512]` (ME-TRPO used 1024-1024 on large envs).
    pub hidden_sizes: Vec<usize>,
    /// Hidden non-linearity. Default `relu`.
    pub activation: Activation,
    /// Output head. Default `deterministic`.
    pub head: Head,
    /// Weight normalisation (Salimans & Kingma 2016) of every layer, as in MB-MPO.
    /// Default `false`.
    pub weight_norm: bool,
    /// Lower bound on the standard deviations used to normalise observations, actions and
    /// state changes. Default `0.01`: every dimension that really varies is scaled to unit
    /// variance, while a dimension that is (nearly) constant in the data cannot amplify a
    /// rollout's deviations by more than 100x. ME-TRPO used `0.1`.
    pub std_floor: f32,
    /// Adam learning rate. Default `1e-3`.
    pub learning_rate: f64,
    /// Minibatch size per member. Default `1000` (ME-TRPO; MB-MPO used 500, MAAC 256).
    pub batch_size: usize,
    /// Draw minibatches with replacement (ME-TRPO) instead of shuffled passes (MB-MPO).
    /// Either way each member draws its own. Default `true`.
    pub sample_with_replacement: bool,
    /// Train each member on its own bootstrap resample of the training data. Default `false`
    /// (ME-TRPO: members differ only by initialisation and minibatch order).
    pub bootstrap: bool,
    /// When `fit` gets no validation buffer, the fraction of the data each member holds out
    /// at random for validation, drawn anew at each fit (MB-MPO: `0.2`). With `0` and no
    /// buffer there is no validation and training runs `max_epochs`. Default `0.2`.
    pub validation_fraction: f64,
    /// The early-stopping rule. Default `patience`.
    pub early_stopping: EarlyStoppingRule,
    /// Passes over the training data between validations (`patience` rule). Default `5`.
    pub validate_every: usize,
    /// Passes without improvement of any member before stopping (`patience` rule).
    /// Default `25`.
    pub patience: usize,
    /// Upper bound on passes over the training data per fit. Default `2000`
    /// (MB-MPO used about 500).
    pub max_epochs: usize,
    /// Persistence of the moving average of the validation loss (`moving_average` rule).
    /// Default `0.95`.
    pub moving_average_persistence: f64,
    /// Reset the Adam moments at the start of every fit (ME-TRPO). Default `true`.
    pub reset_optimizer_each_fit: bool,
    /// Re-initialise the weights before every n-th fit (the 5th, 10th, ...); `0` means always
    /// warm-start. Default `5` (ME-TRPO).
    pub reinit_every: usize,
    /// Weight of the log-variance bound penalty of the probabilistic head. Default `0.01`.
    pub logvar_bound_penalty: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            members: 5,
            hidden_sizes: vec![512, 512],
            activation: Activation::Relu,
            head: Head::Deterministic,
            weight_norm: false,
            std_floor: 0.01,
            learning_rate: 1e-3,
            batch_size: 1000,
            sample_with_replacement: true,
            bootstrap: false,
            validation_fraction: 0.2,
            early_stopping: EarlyStoppingRule::Patience,
            validate_every: 5,
            patience: 25,
            max_epochs: 2000,
            moving_average_persistence: 0.95,
            reset_optimizer_each_fit: true,
            reinit_every: 5,
            logvar_bound_penalty: 0.01,
        }
    }
}

impl EnsembleConfig {
    /// Checks every key and says which one is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(Error::Config(format!(
                "`{key}` must be {expected}, got {got}"
            )))
        };
        if self.members == 0 {
            return bad("members", "at least 1", self.members.to_string());
        }
        if self.hidden_sizes.contains(&0) {
            return bad(
                "hidden_sizes",
                "positive widths",
                format!("{:?}", self.hidden_sizes),
            );
        }
        if !(self.std_floor.is_finite() && self.std_floor > 0.0) {
            return bad("std_floor", "a positive number", self.std_floor.to_string());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                "a positive number",
                self.learning_rate.to_string(),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", self.batch_size.to_string());
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return bad(
                "validation_fraction",
                "in [0, 1)",
                self.validation_fraction.to_string(),
            );
        }
        if self.validate_every == 0 {
            return bad("validate_every", "at least 1", "0".into());
        }
        if self.max_epochs == 0 {
            return bad("max_epochs", "at least 1", "0".into());
        }
        if !(0.0..1.0).contains(&self.moving_average_persistence) {
            return bad(
                "moving_average_persistence",
                "in [0, 1)",
                self.moving_average_persistence.to_string(),
            );
        }
        if !(self.logvar_bound_penalty.is_finite() && self.logvar_bound_penalty >= 0.0) {
            return bad(
                "logvar_bound_penalty",
                "a non-negative number",
                self.logvar_bound_penalty.to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let config = EnsembleConfig::default();
        config.validate().unwrap();
        let json = serde_json::to_string(&config).unwrap();
        let back: EnsembleConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn partial_configs_fill_defaults_and_unknown_keys_are_rejected() {
        let c: EnsembleConfig =
            serde_json::from_str(r#"{"members": 3, "head": "probabilistic"}"#).unwrap();
        assert_eq!(c.members, 3);
        assert_eq!(c.head, Head::Probabilistic);
        assert_eq!(c.hidden_sizes, vec![512, 512]);
        assert!(serde_json::from_str::<EnsembleConfig>(r#"{"member": 3}"#).is_err());
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let c = EnsembleConfig {
            std_floor: 0.0,
            ..Default::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("std_floor"), "{msg}");
        let c = EnsembleConfig {
            validation_fraction: 1.0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("validation_fraction"));
    }
}

//! The `[adapt]` table: the settings of `grbal`, `rebal`, `mb-mpc` and `mb-de` (thesis Ch. 9,
//! defaults from the authors' code, ALGORITHM_NOTES), and their validation.

use mbrl_core::{Error, Result};
use mbrl_policy_opt::planners::{PlannerConfig, PlannerKind};
use serde::{Deserialize, Serialize};

/// GrBAL's inner update `phi' = phi - psi * grad L_M(phi)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrbalConfig {
    /// The inner SGD step size `psi` (one per weight tensor). Default 0.001 (the reference).
    pub inner_learning_rate: f64,
    /// Meta-learn `psi` with the weights (Algorithm 9, line 14) instead of keeping it fixed
    /// (the reference). Default false.
    pub learn_inner_learning_rate: bool,
    /// Drop the second-order terms of the meta-gradient (first-order MAML). Default false.
    pub first_order: bool,
}

impl Default for GrbalConfig {
    fn default() -> Self {
        Self {
            inner_learning_rate: 0.001,
            learn_inner_learning_rate: false,
            first_order: false,
        }
    }
}

/// ReBAL's recurrent update rule: a GRU whose hidden state, read from the last `past_steps`
/// transitions, is the context the state-change MLP (`hidden_sizes`) is conditioned on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebalConfig {
    /// GRU units. Default 256 (the reference's LSTM width).
    pub hidden_size: usize,
    /// Adam step size of its training (replaces `adapt.learning_rate` for ReBAL). Default
    /// 1e-2 (the reference).
    pub learning_rate: f64,
}

impl Default for RebalConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            learning_rate: 1e-2,
        }
    }
}

/// MB+DE's dynamic evaluation: online SGD on the last `past_steps` transitions at every
/// control step, carried through the episode (Krause et al. 2017), from weights trained
/// without meta-learning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicEvaluationConfig {
    /// SGD step size of each online step. Default 0.001 (GrBAL's inner step size).
    pub learning_rate: f64,
    /// Online steps per control step. Default 1.
    pub steps: usize,
}

impl Default for DynamicEvaluationConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.001,
            steps: 1,
        }
    }
}

/// The `[adapt]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptConfig {
    /// `M` (the thesis's `T_1`): past transitions the model adapts on. Default 16.
    pub past_steps: usize,
    /// `K` (`T_2`): following transitions the adapted model is scored on in meta-training.
    /// Default 16.
    pub future_steps: usize,
    /// Hidden widths of the state-change MLP (ReLU). Default `[512, 512, 512]`.
    pub hidden_sizes: Vec<usize>,
    /// Adam step size of the (meta-)training. Default 1e-3.
    pub learning_rate: f64,
    /// Windows of `M + K` transitions per (meta-)gradient step (the meta-batch). Default 10.
    pub meta_batch_size: usize,
    /// Most passes over the training data per iteration; one pass is
    /// `transitions / (meta_batch_size * (M + K))` steps. Default 100.
    pub max_epochs: usize,
    /// Share of every trajectory's last steps kept for validation (when that tail holds at
    /// least one window). Default 0.1.
    pub validation_share: f64,
    /// Training stops when the moving average of the validation loss, with this persistence,
    /// rises (the reference's rule). Default 0.99.
    pub moving_average_persistence: f64,
    /// Real episodes per iteration, each in a task drawn from the family. Default 5.
    pub rollouts_per_iteration: usize,
    /// Act uniformly at random in the first iteration (the reference). Default true.
    pub random_first_iteration: bool,
    /// Floor of the normalisation standard deviations. Default 1e-6.
    pub std_floor: f32,
    /// The MPC planner. Default MPPI (the thesis): 500 candidates, horizon 10, one iteration
    /// per control step with the warm start.
    pub planner: PlannerConfig,
    /// GrBAL's inner update.
    pub grbal: GrbalConfig,
    /// ReBAL's recurrent model.
    pub rebal: RebalConfig,
    /// MB+DE's online steps.
    pub dynamic_evaluation: DynamicEvaluationConfig,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            past_steps: 16,
            future_steps: 16,
            hidden_sizes: vec![512, 512, 512],
            learning_rate: 1e-3,
            meta_batch_size: 10,
            max_epochs: 100,
            validation_share: 0.1,
            moving_average_persistence: 0.99,
            rollouts_per_iteration: 5,
            random_first_iteration: true,
            std_floor: 1e-6,
            planner: PlannerConfig {
                kind: PlannerKind::Mppi,
                candidates: 500,
                horizon: 10,
                iterations: 1,
                ..PlannerConfig::default()
            },
            grbal: GrbalConfig::default(),
            rebal: RebalConfig::default(),
            dynamic_evaluation: DynamicEvaluationConfig::default(),
        }
    }
}

impl AdaptConfig {
    /// `M + K`, the length of a training window.
    pub fn window(&self) -> usize {
        self.past_steps + self.future_steps
    }

    /// Checks every setting; errors name the key (`adapt.<key>`).
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::InvalidArgument(message));
        for (key, value) in [
            ("past_steps", self.past_steps),
            ("future_steps", self.future_steps),
            ("meta_batch_size", self.meta_batch_size),
            ("max_epochs", self.max_epochs),
            ("rollouts_per_iteration", self.rollouts_per_iteration),
            ("dynamic_evaluation.steps", self.dynamic_evaluation.steps),
            ("rebal.hidden_size", self.rebal.hidden_size),
        ] {
            if value == 0 {
                return invalid(format!("adapt.{key} must be at least 1, got 0"));
            }
        }
        if self.hidden_sizes.is_empty() || self.hidden_sizes.contains(&0) {
            return invalid(format!(
                "adapt.hidden_sizes needs at least one hidden layer, every width at least 1; \
                 got {:?}",
                self.hidden_sizes
            ));
        }
        for (key, value) in [
            ("learning_rate", self.learning_rate),
            ("grbal.inner_learning_rate", self.grbal.inner_learning_rate),
            ("rebal.learning_rate", self.rebal.learning_rate),
            (
                "dynamic_evaluation.learning_rate",
                self.dynamic_evaluation.learning_rate,
            ),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return invalid(format!(
                    "adapt.{key} must be positive and finite, got {value}"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.validation_share) {
            return invalid(format!(
                "adapt.validation_share must be in [0, 1), got {}",
                self.validation_share
            ));
        }
        if !(0.0..1.0).contains(&self.moving_average_persistence) {
            return invalid(format!(
                "adapt.moving_average_persistence must be in [0, 1), got {}",
                self.moving_average_persistence
            ));
        }
        if !(self.std_floor > 0.0 && self.std_floor.is_finite()) {
            return invalid(format!(
                "adapt.std_floor must be positive and finite, got {}",
                self.std_floor
            ));
        }
        self.planner.validate().map_err(|e| {
            Error::InvalidArgument(e.to_string().replace("planner.", "adapt.planner."))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: AdaptConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_follow_the_reference() {
        let c = AdaptConfig::default();
        c.validate().unwrap();
        assert_eq!((c.past_steps, c.future_steps, c.window()), (16, 16, 32));
        assert_eq!(c.planner.kind, PlannerKind::Mppi);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let d = AdaptConfig::default;
        let mut planner = d().planner;
        planner.candidates = 0;
        let cases = [
            (
                AdaptConfig {
                    past_steps: 0,
                    ..d()
                },
                "adapt.past_steps must be at least 1",
            ),
            (
                AdaptConfig {
                    future_steps: 0,
                    ..d()
                },
                "adapt.future_steps must be at least 1",
            ),
            (
                AdaptConfig {
                    hidden_sizes: vec![],
                    ..d()
                },
                "adapt.hidden_sizes needs at least one hidden layer",
            ),
            (
                AdaptConfig {
                    validation_share: 1.0,
                    ..d()
                },
                "adapt.validation_share must be in [0, 1)",
            ),
            (
                AdaptConfig { planner, ..d() },
                "adapt.planner.candidates must be positive",
            ),
        ];
        for (config, expected) in cases {
            let got = message(config);
            assert!(got.contains(expected), "{got}");
        }
    }
}

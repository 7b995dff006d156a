//! [`PlannerConfig`]: the plain-data settings of every planner (one struct for the three
//! kinds, so a `[planner]`-style table can switch between them with one key), and their
//! validation.

use mbrl_core::{BoxSpace, Error, Result};
use serde::{Deserialize, Serialize};

use super::Planner;

/// Which planner optimises the action sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlannerKind {
    /// `random_shooting`: `candidates` sequences drawn uniformly in the action box, the best
    /// one by predicted return (GrBAL/ReBAL's MPC, thesis Ch. 9).
    RandomShooting,
    /// `cem`: the cross-entropy method (PETS; MAAC's test-time planner, thesis Table 1).
    #[default]
    Cem,
    /// `mppi`: model predictive path integral control (Williams et al., 2017).
    Mppi,
}

/// How the returns a candidate gets in the ensemble members become its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleReduction {
    /// `mean`: the average over members of each member's return.
    #[default]
    Mean,
    /// `min`: the worst member's return (pessimistic planning).
    Min,
}

/// What fills the last step of the mean sequence after the warm-start shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShiftFill {
    /// `last`: the last planned step, repeated.
    #[default]
    Last,
    /// `centre`: the centre of the action box (zero for a symmetric box).
    Centre,
}

/// Settings of a model-predictive planner.
///
/// The defaults are MAAC's test-time CEM (thesis Table 1: 256 candidates, horizon 5,
/// 5 iterations, 10% elites, smoothing 0.1). GrBAL's random shooting is `kind =
/// "random_shooting"`, `candidates = 500`, `horizon = 10`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// The planner. Default `cem`.
    pub kind: PlannerKind,
    /// Steps of each planned action sequence, `H`. Default 5.
    pub horizon: usize,
    /// Candidate sequences evaluated per iteration, `N`. Default 256.
    pub candidates: usize,
    /// Sampling-and-update rounds of CEM and MPPI, `I` (random shooting samples once and
    /// ignores it). Default 5.
    pub iterations: usize,
    /// CEM: share of each iteration's candidates kept as elites, `ceil(elite_fraction * N)`
    /// of them (at least 1). Default 0.1.
    pub elite_fraction: f64,
    /// CEM: weight `alpha` of the old distribution in each update, `new = alpha * old +
    /// (1 - alpha) * elite statistic`, for the mean and the standard deviation. Default 0.1.
    pub smoothing: f64,
    /// MPPI: the temperature `lambda` of the weights `softmax(return / lambda)`, in units of
    /// the return. Default 1.0.
    pub temperature: f64,
    /// Standard deviation of the sampling Gaussian as a fraction of each action dimension's
    /// half-width `(high - low) / 2`: CEM's initial std, MPPI's fixed noise std `sigma`.
    /// Default 0.5 (PETS's initial variance `(high - low)^2 / 16`).
    pub noise_std: f64,
    /// Discount of the predicted return, `sum_t gamma^t r_t (+ gamma^H V(s_H))`. Default 1.0.
    pub gamma: f64,
    /// How the members' returns of a candidate are combined. Default `mean`.
    pub ensemble: EnsembleReduction,
    /// Step each member with a draw from its predictive distribution instead of its mean
    /// (no effect on deterministic members). Default false.
    pub sample_model_noise: bool,
    /// CEM and MPPI: start each plan from the previous plan shifted by one step (kept until
    /// [`Planner::reset`]) instead of the centre of the action box. A proposal policy, when
    /// given, takes precedence. Default true.
    pub warm_start: bool,
    /// What fills the last step after the warm-start shift. Default `last`.
    pub shift_fill: ShiftFill,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            kind: PlannerKind::Cem,
            horizon: 5,
            candidates: 256,
            iterations: 5,
            elite_fraction: 0.1,
            smoothing: 0.1,
            temperature: 1.0,
            noise_std: 0.5,
            gamma: 1.0,
            ensemble: EnsembleReduction::Mean,
            sample_model_noise: false,
            warm_start: true,
            shift_fill: ShiftFill::Last,
        }
    }
}

impl PlannerConfig {
    /// Checks every setting; errors name the offending key (`planner.<key>`).
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::InvalidArgument(message));
        for (key, value) in [
            ("horizon", self.horizon),
            ("candidates", self.candidates),
            ("iterations", self.iterations),
        ] {
            if value == 0 {
                return invalid(format!("planner.{key} must be positive, got 0"));
            }
        }
        let f = self.elite_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return invalid(format!("planner.elite_fraction must be in (0, 1], got {f}"));
        }
        let s = self.smoothing;
        if !(0.0..1.0).contains(&s) {
            return invalid(format!("planner.smoothing must be in [0, 1), got {s}"));
        }
        let t = self.temperature;
        if !(t > 0.0 && t.is_finite()) {
            return invalid(format!(
                "planner.temperature must be positive and finite, got {t}"
            ));
        }
        let std = self.noise_std;
        if !(std >= 0.0 && std.is_finite()) {
            return invalid(format!(
                "planner.noise_std must be non-negative and finite, got {std}"
            ));
        }
        let g = self.gamma;
        if !(0.0..=1.0).contains(&g) {
            return invalid(format!("planner.gamma must be in [0, 1], got {g}"));
        }
        Ok(())
    }

    /// Number of CEM elites, `ceil(elite_fraction * candidates)`, at least 1.
    pub fn elites(&self) -> usize {
        // The tolerance keeps e.g. 0.1 * 30 = 3.0000000000000004 at 3 elites.
        let exact = self.elite_fraction * self.candidates as f64;
        ((exact - 1e-9).ceil() as usize).clamp(1, self.candidates.max(1))
    }

    /// The runtime planner for actions in `action_space` (validates first).
    pub fn build(&self, action_space: &BoxSpace) -> Result<Planner> {
        Planner::new(self.clone(), action_space)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: PlannerConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn every_invalid_setting_is_rejected_naming_its_key() {
        let d = PlannerConfig::default;
        let cases = [
            (
                PlannerConfig { horizon: 0, ..d() },
                "planner.horizon must be positive, got 0",
            ),
            (
                PlannerConfig {
                    candidates: 0,
                    ..d()
                },
                "planner.candidates must be positive",
            ),
            (
                PlannerConfig {
                    iterations: 0,
                    ..d()
                },
                "planner.iterations must be positive",
            ),
            (
                PlannerConfig {
                    elite_fraction: 0.0,
                    ..d()
                },
                "planner.elite_fraction must be in (0, 1], got 0",
            ),
            (
                PlannerConfig {
                    elite_fraction: 1.5,
                    ..d()
                },
                "planner.elite_fraction",
            ),
            (
                PlannerConfig {
                    elite_fraction: f64::NAN,
                    ..d()
                },
                "planner.elite_fraction",
            ),
            (
                PlannerConfig {
                    smoothing: 1.0,
                    ..d()
                },
                "planner.smoothing",
            ),
            (
                PlannerConfig {
                    temperature: -1.0,
                    ..d()
                },
                "planner.temperature must be positive and finite, got -1",
            ),
            (
                PlannerConfig {
                    temperature: 0.0,
                    ..d()
                },
                "planner.temperature",
            ),
            (
                PlannerConfig {
                    noise_std: -0.1,
                    ..d()
                },
                "planner.noise_std must be non-negative and finite, got -0.1",
            ),
            (PlannerConfig { gamma: 1.1, ..d() }, "planner.gamma"),
        ];
        for (config, expected) in cases {
            let got = message(config);
            assert!(
                got.contains(expected),
                "{got:?} should contain {expected:?}"
            );
        }
        assert!(d().validate().is_ok());
        let zero_noise = PlannerConfig {
            noise_std: 0.0,
            ..d()
        };
        assert!(zero_noise.validate().is_ok());
    }

    #[test]
    fn the_table_is_strict_and_kinds_are_snake_case() {
        let rs: PlannerConfig = serde_json::from_value(serde_json::json!({
            "kind": "random_shooting", "candidates": 500, "horizon": 10
        }))
        .unwrap();
        assert_eq!(rs.kind, PlannerKind::RandomShooting);
        assert_eq!((rs.candidates, rs.horizon, rs.iterations), (500, 10, 5));
        let unknown = serde_json::from_value::<PlannerConfig>(serde_json::json!({"horizn": 3}));
        assert!(unknown.unwrap_err().to_string().contains("horizn"));
        let kind = serde_json::from_value::<PlannerConfig>(serde_json::json!({"kind": "Cem"}));
        assert!(kind.is_err());
        let round_trip: PlannerConfig =
            serde_json::from_value(serde_json::to_value(PlannerConfig::default()).unwrap())
                .unwrap();
        assert_eq!(round_trip, PlannerConfig::default());
    }

    #[test]
    fn elite_count_is_the_ceiling_of_the_fraction() {
        let with = |candidates, elite_fraction| {
            PlannerConfig {
                candidates,
                elite_fraction,
                ..PlannerConfig::default()
            }
            .elites()
        };
        // Thesis Table 1: 10% of 256 candidates -> 26 elites (MBRL-Lib's ceil).
        assert_eq!(with(256, 0.1), 26);
        assert_eq!(with(30, 0.1), 3);
        assert_eq!(with(5, 0.01), 1);
        assert_eq!(with(8, 1.0), 8);
    }
}

//! Proximal Meta-Policy Search, thesis Algorithm 4 (Sec. 6.5): several Adam steps per batch of
//! tasks on
//! `J^ProMP(theta) = 1/K sum_k J^CLIP(theta'_k) - eta KL(pi_theta_o || pi_theta)` (Eq. 21)
//! with `theta'_k = theta + alpha grad J^LR(theta)` (the LVC inner step, Eq. 17 / 20). The
//! samples are drawn once per batch (Algorithm 4, lines 5-12, done by the trainer); this
//! module is line 13 repeated `steps` times. With a KL target the coefficient `eta` adapts after
//! each batch as in the reference implementation: halved when the KL came out below
//! `target / 1.5`, doubled above `1.5 target`.

use candle_core::Var;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::Result;

use crate::adaptation::InnerStepSize;
use crate::ascent::Ascent;
use crate::estimators::Estimator;
use crate::meta_objective::{meta_objective, pre_update_kl, MetaTaskSamples, OuterObjective};
use crate::samples::snapshot;

/// ProMP's outer-loop settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProMpSettings {
    /// Outer learning rate `beta` (Adam).
    pub learning_rate: f64,
    /// Gradient steps per batch `N`.
    pub steps: usize,
    /// Clip range `epsilon` of `J^CLIP`.
    pub clip: f64,
    /// KL-penalty coefficient `eta` (the initial one when it adapts).
    pub kl_penalty: f64,
    /// Target KL for the adaptive coefficient; `None` keeps `eta` fixed.
    pub kl_target: Option<f64>,
}

/// Ratio around the target inside which the adaptive coefficient stays unchanged.
const KL_BAND: f64 = 1.5;

/// The next coefficient after a batch whose update ended at `kl`: halved below
/// `target / 1.5`, doubled above `1.5 target`, unchanged in between.
pub fn adapted_kl_penalty(eta: f64, kl: f64, target: f64) -> f64 {
    if kl < target / KL_BAND {
        eta / 2.0
    } else if kl > target * KL_BAND {
        eta * 2.0
    } else {
        eta
    }
}

/// What one ProMP update did.
#[derive(Debug, Clone, PartialEq)]
pub struct ProMpStats {
    /// `J^ProMP` at the first step (before any update).
    pub objective_before: f64,
    /// `J^ProMP` at the last step.
    pub objective_last: f64,
    /// `KL(pi_theta_o || pi_theta)` on the pre-update samples after the update.
    pub pre_update_kl: f64,
    /// The KL coefficient `eta` this update used.
    pub kl_penalty: f64,
}

/// The ProMP outer optimiser (holds Adam's state across iterations).
pub struct ProMp {
    settings: ProMpSettings,
    ascent: Ascent,
    /// The current `eta`.
    kl_penalty: f64,
}

impl ProMp {
    /// Adam over `policy`'s parameters and the learnable step sizes, if any.
    pub fn new(
        policy: &dyn GaussianPolicy,
        alpha: &InnerStepSize,
        settings: ProMpSettings,
    ) -> Result<Self> {
        let mut vars: Vec<Var> = policy.parameters().to_vec();
        if alpha.is_learnable() {
            vars.extend(alpha.vars().iter().cloned());
        }
        Ok(Self {
            ascent: Ascent::new(vars, settings.learning_rate)?,
            kl_penalty: settings.kl_penalty,
            settings,
        })
    }

    /// The Adam state (saved in checkpoints).
    pub fn ascent(&self) -> &Ascent {
        &self.ascent
    }

    /// The Adam state, to restore it.
    pub fn ascent_mut(&mut self) -> &mut Ascent {
        &mut self.ascent
    }

    /// The KL coefficient the next update will use.
    pub fn kl_penalty(&self) -> f64 {
        self.kl_penalty
    }

    /// Restores the KL coefficient (from a checkpoint).
    pub fn set_kl_penalty(&mut self, eta: f64) {
        self.kl_penalty = eta;
    }

    /// Algorithm 4, line 13, `steps` times. Must run on a higher-order thread
    /// ([`mbrl_core::higher_order::run`]).
    pub fn update(
        &mut self,
        policy: &dyn GaussianPolicy,
        alpha: &InnerStepSize,
        tasks: &[MetaTaskSamples],
        estimator: Estimator,
    ) -> Result<ProMpStats> {
        let theta_o = snapshot(&policy.parameter_tensors())?;
        let (mut before, mut last) = (f64::NAN, f64::NAN);
        for n in 0..self.settings.steps {
            let theta = policy.parameter_tensors();
            let value = meta_objective(
                policy,
                &theta,
                &alpha.tensors(),
                tasks,
                estimator,
                OuterObjective::Clipped(self.settings.clip),
            )?;
            let kl = pre_update_kl(policy, tasks, &theta_o, &theta)?;
            let objective = (value.objective - kl.affine(self.kl_penalty, 0.0)?)?;
            last = objective.to_scalar::<f32>()? as f64;
            if n == 0 {
                before = last;
            }
            self.ascent.step(&objective)?;
        }
        let kl = pre_update_kl(policy, tasks, &theta_o, &policy.parameter_tensors())?
            .to_scalar::<f32>()? as f64;
        let used = self.kl_penalty;
        if let Some(target) = self.settings.kl_target {
            self.kl_penalty = adapted_kl_penalty(used, kl, target);
        }
        Ok(ProMpStats {
            objective_before: before,
            objective_last: last,
            pre_update_kl: kl,
            kl_penalty: used,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kl_coefficient_halves_below_the_band_doubles_above_and_stays_inside() {
        let target = 0.01;
        assert_eq!(adapted_kl_penalty(1e-3, 0.006, target), 5e-4);
        assert_eq!(adapted_kl_penalty(1e-3, 0.016, target), 2e-3);
        for kl in [0.0067, 0.01, 0.0149] {
            assert_eq!(adapted_kl_penalty(1e-3, kl, target), 1e-3, "{kl}");
        }
    }
}

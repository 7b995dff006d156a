//! Proximal Meta-Policy Search, thesis Algorithm 4 (Sec. 6.5): several Adam steps per batch of
//! tasks on
//! `J^ProMP(theta) = 1/K sum_k J^CLIP(theta'_k) - eta KL(pi_theta_o || pi_theta)` (Eq. 21)
//! with `theta'_k = theta + alpha grad J^LR(theta)` (the LVC inner step, Eq. 17 / 20). The
//! samples are drawn once per batch (Algorithm 4, lines 5-12, done by the trainer); this
//! module is line 13 repeated `steps` times.

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
    /// KL-penalty coefficient `eta`.
    pub kl_penalty: f64,
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
}

/// The ProMP outer optimiser (holds Adam's state across iterations).
pub struct ProMp {
    settings: ProMpSettings,
    ascent: Ascent,
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
            settings,
        })
    }

    /// Algorithm 4, line 13, `steps` times. Must run on a higher-order thread
    /// ([`crate::higher_order::run`]).
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
            let objective = (value.objective - kl.affine(self.settings.kl_penalty, 0.0)?)?;
            last = objective.to_scalar::<f32>()? as f64;
            if n == 0 {
                before = last;
            }
            self.ascent.step(&objective)?;
        }
        let kl = pre_update_kl(policy, tasks, &theta_o, &policy.parameter_tensors())?;
        Ok(ProMpStats {
            objective_before: before,
            objective_last: last,
            pre_update_kl: kl.to_scalar::<f32>()? as f64,
        })
    }
}

//! MAML-VPG: one Adam step per batch of tasks on the likelihood-ratio meta-objective
//! `1/K sum_k J^LR(theta'_k(theta))` (Eq. 4), with the inner step differentiated by the chosen
//! estimator. The ablation of Sec. 6.7.2 (Fig. 14) that compares LVC, DiCE, MAML and E-MAML
//! without the influence of the outer optimiser.

use candle_core::Var;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::Result;

use crate::adaptation::InnerStepSize;
use crate::ascent::Ascent;
use crate::estimators::Estimator;
use crate::meta_objective::{meta_objective, MetaTaskSamples, OuterObjective};

/// What one MAML-VPG step did.
#[derive(Debug, Clone, PartialEq)]
pub struct VpgStats {
    /// The meta-objective before the step.
    pub objective: f64,
    /// Global norm of the meta-gradient.
    pub gradient_norm: f64,
}

/// The MAML-VPG outer optimiser.
pub struct MamlVpg {
    ascent: Ascent,
}

impl MamlVpg {
    /// Adam with `learning_rate` over `policy`'s parameters and the learnable step sizes.
    pub fn new(
        policy: &dyn GaussianPolicy,
        alpha: &InnerStepSize,
        learning_rate: f64,
    ) -> Result<Self> {
        let mut vars: Vec<Var> = policy.parameters().to_vec();
        if alpha.is_learnable() {
            vars.extend(alpha.vars().iter().cloned());
        }
        Ok(Self {
            ascent: Ascent::new(vars, learning_rate)?,
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

    /// One meta-gradient step. Must run on a higher-order thread.
    pub fn update(
        &mut self,
        policy: &dyn GaussianPolicy,
        alpha: &InnerStepSize,
        tasks: &[MetaTaskSamples],
        estimator: Estimator,
    ) -> Result<VpgStats> {
        let value = meta_objective(
            policy,
            &policy.parameter_tensors(),
            &alpha.tensors(),
            tasks,
            estimator,
            OuterObjective::LikelihoodRatio,
        )?;
        let objective = value.objective.to_scalar::<f32>()? as f64;
        let gradient_norm = self.ascent.step(&value.objective)?;
        Ok(VpgStats {
            objective,
            gradient_norm,
        })
    }
}

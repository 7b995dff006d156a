//! [`MlpEnsemble`] as `mbrl_core::model::TrainableModel`, so algorithm crates can train it
//! through the shared trait layer without depending on this crate.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::data::ReplayBuffer;
use mbrl_core::model::{DynamicsModel, EpochLosses, FitSummary, ModelFactory, TrainableModel};
use rand::RngCore;

use crate::{EnsembleConfig, MlpEnsemble};

impl TrainableModel for MlpEnsemble {
    fn fit(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        rng: &mut dyn RngCore,
    ) -> mbrl_core::Result<FitSummary> {
        let report =
            MlpEnsemble::fit(self, train, validation, rng).map_err(mbrl_core::Error::from)?;
        Ok(FitSummary {
            train_loss: report.train_loss,
            validation_loss: report.validation_loss,
            epochs: report.epochs,
        })
    }

    fn train_epoch(
        &mut self,
        train: &ReplayBuffer,
        validation: Option<&ReplayBuffer>,
        renormalize: bool,
        active: &[bool],
        rng: &mut dyn RngCore,
    ) -> mbrl_core::Result<EpochLosses> {
        MlpEnsemble::train_epoch(self, train, validation, renormalize, active, rng)
            .map_err(mbrl_core::Error::from)
    }

    fn frozen(&self) -> mbrl_core::Result<Arc<dyn DynamicsModel + Sync>> {
        Ok(Arc::new(self.freeze().map_err(mbrl_core::Error::from)?))
    }

    fn named_tensors(&self) -> mbrl_core::Result<HashMap<String, Tensor>> {
        MlpEnsemble::named_tensors(self).map_err(mbrl_core::Error::from)
    }

    fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> mbrl_core::Result<()> {
        MlpEnsemble::load_named_tensors(self, tensors).map_err(mbrl_core::Error::from)
    }
}

/// A [`ModelFactory`] building ensembles of `config` (checked once here).
pub fn ensemble_factory(config: EnsembleConfig) -> crate::Result<ModelFactory> {
    config.validate()?;
    Ok(Arc::new(move |obs_dim, act_dim, rng| {
        let model =
            MlpEnsemble::new(&config, obs_dim, act_dim, rng).map_err(mbrl_core::Error::from)?;
        Ok(Box::new(model) as Box<dyn TrainableModel>)
    }))
}

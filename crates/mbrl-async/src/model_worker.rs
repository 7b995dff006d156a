//! The model-learning worker (thesis Algorithm 7): move every new rollout into local FIFO
//! buffers, train the ensemble for one epoch, push its parameters. Each member stops when the
//! moving average of its validation loss rises; new data resets the averages and restarts
//! every member; with every member stopped the worker idles until data arrives.

use std::sync::Arc;

use mbrl_core::model::{MovingAverageStop, TrainableModel};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::model_data::ModelData;
use rand_chacha::ChaCha8Rng;

use crate::codec::{encode_tensors, StreamEntry};
use crate::servers::Servers;
use crate::worker::{Outcome, Worker, IDLE_WAIT, MODEL_READER};

/// The model worker.
pub struct ModelWorker {
    model: Box<dyn TrainableModel>,
    data: ModelData,
    early_stop: MovingAverageStop,
    active: Vec<bool>,
    renormalize: bool,
    rng: ChaCha8Rng,
    servers: Servers,
    epochs: u64,
}

impl ModelWorker {
    /// Trains `model` on `data` (empty, or restored from a checkpoint) plus every rollout the
    /// stream delivers; `moving_average_weight` is the early stop's persistence.
    pub fn new(
        model: Box<dyn TrainableModel>,
        data: ModelData,
        moving_average_weight: f64,
        rng: ChaCha8Rng,
        servers: Servers,
    ) -> Result<Self> {
        let members = model.ensemble_size();
        Ok(Self {
            model,
            renormalize: !data.train.is_empty(),
            data,
            early_stop: MovingAverageStop::new(members, moving_average_weight)?,
            active: vec![true; members],
            rng,
            servers,
            epochs: 0,
        })
    }

    /// Members still training (not early-stopped since the last new data).
    pub fn active_members(&self) -> usize {
        self.active.iter().filter(|&&a| a).count()
    }

    /// Takes new rollouts, waiting briefly when there is nothing to train; returns how many.
    fn ingest(&mut self) -> Result<usize> {
        let busy = !self.data.train.is_empty() && self.active_members() > 0;
        let wait = if busy { Default::default() } else { IDLE_WAIT };
        let new = self.servers.rollouts.take_new(MODEL_READER, wait)?;
        if new.is_empty() {
            return Ok(0);
        }
        apply_entries(&mut self.data, &new)?;
        self.early_stop.reset();
        self.active.iter_mut().for_each(|a| *a = true);
        self.renormalize = true;
        let held = self.data.train.len() + self.data.validation.len();
        self.servers
            .control
            .report("model_transitions", held as f64)?;
        Ok(new.len())
    }
}

/// Applies stream entries to `data` in order: each rollout is added (whole, to validation
/// while that holds less than its share), a snapshot replaces both buffers.
pub fn apply_entries(data: &mut ModelData, entries: &[Arc<Vec<u8>>]) -> Result<()> {
    for bytes in entries {
        match StreamEntry::decode(bytes)? {
            StreamEntry::Rollout(record) => {
                data.add_one_by_one(std::slice::from_ref(&record.trajectory))?
            }
            StreamEntry::Snapshot(buffers) => data.load_named_tensors(&buffers)?,
        }
    }
    Ok(())
}

impl Worker for ModelWorker {
    fn role(&self) -> String {
        "model".into()
    }

    fn step(&mut self) -> Result<Outcome> {
        self.ingest()?;
        if self.data.train.is_empty() || self.active_members() == 0 {
            return Ok(Outcome::Idle);
        }
        let losses = self.model.train_epoch(
            &self.data.train,
            Some(&self.data.validation),
            self.renormalize,
            &self.active,
            &mut self.rng,
        )?;
        self.renormalize = false;
        self.epochs += 1;
        let trained: Vec<usize> = (0..self.active.len()).filter(|&m| self.active[m]).collect();
        let mean_over =
            |values: &[f64]| trained.iter().map(|&m| values[m]).sum::<f64>() / trained.len() as f64;
        let control = &self.servers.control;
        control.report("model_train_loss", mean_over(&losses.train_loss))?;
        if let Some(validation) = &losses.validation_loss {
            for &m in &trained {
                if !validation[m].is_finite() {
                    return Err(Error::NonFinite {
                        what: format!("validation loss of ensemble member {m}"),
                        iteration: self.epochs,
                    });
                }
                self.active[m] = self.early_stop.observe(m, validation[m]);
            }
            control.report("model_validation_loss", mean_over(validation))?;
        }
        self.servers
            .model
            .push(encode_tensors(&self.model.named_tensors()?)?)?;
        control.report("model_epochs", self.epochs as f64)?;
        control.report("model_active_members", self.active_members() as f64)?;
        Ok(Outcome::Worked)
    }
}

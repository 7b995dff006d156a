//! Dynamics models for **mbrl**: ensembles of MLPs that predict the state change, evaluated for
//! all members as one batched computation, trained with the early-stopping rules of the thesis,
//! and wrapped as a batched environment.
//!
//! - [`EnsembleConfig`] describes an ensemble and its training (plain data, serde);
//! - [`MlpEnsemble`] holds the `K` stacked networks, their normalisation and optimiser, fits
//!   them to a [`ReplayBuffer`](mbrl_core::data::ReplayBuffer) ([`MlpEnsemble::fit`] returns a
//!   [`FitReport`]) and implements [`DynamicsModel`](mbrl_core::model::DynamicsModel);
//! - [`FrozenEnsemble`] is a detached copy for rollouts ([`MlpEnsemble::freeze`]);
//! - [`ModelEnv`] (defined in `mbrl-core`, re-exported here) steps a batch of imagined states with any `DynamicsModel` and the task's
//!   [`TaskFunctions`](mbrl_core::task::TaskFunctions), in one of the ensemble sampling modes of
//!   thesis Appendix A.4.1 ([`SamplingMode`]);
//! - [`open_loop_error`] measures k-step prediction error on held-out trajectories.
//!
//! Algorithm crates (`mbrl-policy-opt`, `mbrl-meta`, `mbrl-maac`, `mbrl-adapt`) use these; the
//! traits live in `mbrl-core`.
//!
//! ```
//! use mbrl_core::data::ReplayBuffer;
//! use mbrl_core::model::DynamicsModel;
//! use mbrl_models::{EnsembleConfig, MlpEnsemble};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let config = EnsembleConfig { members: 2, hidden_sizes: vec![16], max_epochs: 5, batch_size: 32, ..Default::default() };
//! let mut model = MlpEnsemble::new(&config, 1, 1, &mut rng)?;
//! let mut buffer = ReplayBuffer::new(100, 1, 1)?;
//! for i in 0..100 {
//!     let (s, a) = (i as f32 / 50.0 - 1.0, 0.5);
//!     buffer.push(&[s], &[a], &[s + a], 0.0, false)?;
//! }
//! let report = model.fit(&buffer, None, &mut rng)?;
//! assert_eq!(report.train_loss.len(), 2);
//! let obs = candle_core::Tensor::new(&[[0.0f32]], &candle_core::Device::Cpu)?;
//! let next = model.predict_members(&obs, &obs)?.mean;
//! assert_eq!(next.dims(), &[2, 1, 1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod diagnostics;
mod ensemble;
mod error;
mod network;
mod normalize;
mod optim;
mod train;
mod trainable;

pub use config::{Activation, EarlyStoppingRule, EnsembleConfig, Head};
pub use diagnostics::open_loop_error;
pub use ensemble::{FrozenEnsemble, MlpEnsemble, NormStats};
pub use error::{Error, Result};
pub use mbrl_core::model_env::{ModelEnv, ModelEnvConfig, ModelStep, SamplingMode};
pub use normalize::Normalizer;
pub use train::FitReport;
pub use trainable::ensemble_factory;

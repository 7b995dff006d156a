//! Online model adaptation (thesis Ch. 9): dynamics models that adapt to the task at hand
//! from the last few real transitions, with model-predictive control.
//!
//! - [`model`]: the normalised state-change MLP and its one-member `DynamicsModel` view;
//! - [`segments`]: real trajectories kept in order, windows of `M + K` consecutive
//!   transitions;
//! - [`adaptation`]: GrBAL's inner step, batched over windows, differentiable for the
//!   meta-gradient;
//! - [`training`]: the meta-learned (GrBAL) and supervised (MB) fits with the reference's
//!   early stop;
//! - [`controller`]: Algorithm 10, adaptation before every action then MPC (the planners of
//!   `mbrl-policy-opt`);
//! - [`recurrent`]: ReBAL's model (a GRU reading the past into a context, the MLP conditioned
//!   on it), its planning view and its training; [`recurrent_controller`]: the context read
//!   before every action, then MPC;
//! - [`trainer`]: the `grbal`, `rebal`, `mb-mpc` and `mb-de` algorithms; [`config`]: their
//!   `[adapt]` table.
//!
//! ```
//! use mbrl_adapt::config::AdaptConfig;
//! let config = AdaptConfig::default();
//! assert_eq!((config.past_steps, config.future_steps), (16, 16));
//! config.validate()?;
//! # Ok::<(), mbrl_core::Error>(())
//! ```

pub mod adaptation;
pub mod config;
pub mod controller;
pub mod model;
pub mod recurrent;
pub mod recurrent_controller;
pub mod segments;
pub mod trainer;
pub mod training;

//! The shared trait layer of **mbrl**, a library for model-based reinforcement learning.
//!
//! Every other mbrl crate builds on the types here:
//! - [`space`]: observation and action spaces; [`env`](mod@env): the Gymnasium-style [`Env`]
//!   trait and the [`TimeLimit`] wrapper; [`vec_env`]: N copies stepped as a batch;
//! - [`task`]: batched, differentiable reward and termination functions and task families;
//! - [`policy`]: acting, Gaussian distributions and flat parameters; [`model`]: dynamics
//!   ensembles and trainable models; [`model_env`]: a model as a batched environment;
//!   [`biased_model`]: deliberately biased, noisy models for robustness studies;
//! - [`data`]: trajectories, tensor batches, the replay buffer; [`seeding`]: one run seed, many
//!   independent streams;
//! - [`adam`]: Adam with a checkpointable state;
//! - [`metrics`], [`checkpoint`], [`rollout`] (evaluation), [`runner`] (the training loop) and
//!   [`algorithm`] (what an algorithm implements to be run and registered);
//! - [`check_env`]: the properties every environment must pass; [`resume_check`]: the property
//!   every algorithm's checkpoint must have; [`kernels`]: fused CPU kernels
//!   (fast `tanh`, bias + activation) for the training hot paths; `plot` (feature `plot`):
//!   the embedded font of the workspace's figures.
//!
//! `mbrl-envs` implements environments; `mbrl-models` implements dynamics models;
//! `mbrl-policy-opt`, `mbrl-meta`, `mbrl-maac` and `mbrl-adapt` implement algorithms;
//! `mbrl-cli` wires them together.
//!
//! ```
//! use mbrl_core::{check_env::{check_env, factory, CheckEnvOptions}, env::TimeLimit, testing::Drift};
//! let report = check_env(&factory(|| TimeLimit::new(Drift::new(), 10)), &CheckEnvOptions::default())?;
//! assert_eq!(report.steps, 500);
//! # Ok::<(), mbrl_core::Error>(())
//! ```

pub mod adam;
pub mod algorithm;
pub mod biased_model;
pub mod check_env;
pub mod checkpoint;
pub mod data;
pub mod env;
mod error;
pub mod higher_order;
pub mod kernels;
pub mod metrics;
pub mod mlp;
pub mod model;
pub mod model_env;
#[cfg(feature = "plot")]
pub mod plot;
pub mod policy;
pub mod resume_check;
pub mod rollout;
pub mod runner;
pub mod seeding;
pub mod space;
pub mod task;
pub mod testing;
pub mod timing;
pub mod vec_env;

pub use env::{Env, Step, TimeLimit};
pub use error::{Error, Result};
pub use policy::{GaussianPolicy, Policy};
pub use space::{BoxSpace, Space};

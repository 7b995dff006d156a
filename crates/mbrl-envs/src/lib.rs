//! Environments for mbrl, each implementing `mbrl_core::Env` with batched, differentiable task
//! functions and, where the thesis uses one, a task family.
//!
//! The [`registry`] lists every environment by name with its dimensions, horizon and task
//! families; [`make_factory`] builds one from an [`EnvConfig`] (the `[env]` table of a run
//! config). Algorithm crates never depend on this crate except in tests: the command line
//! plugs environments in through `mbrl_core::env::EnvFactory`.
//!
//! ```
//! use mbrl_envs::{make_factory, EnvConfig};
//! let factory = make_factory(&EnvConfig { name: "point2d".into(), ..EnvConfig::default() })?;
//! let mut env = factory()?;
//! let (obs, _) = env.reset(Some(0))?;
//! assert_eq!(obs.dims(), &[2]);
//! # Ok::<(), mbrl_envs::Error>(())
//! ```

mod error;
pub mod point2d;
pub mod registry;

pub use error::{Error, Result};
pub use registry::{make_factory, registry, EnvConfig, EnvEntry, EnvInfo};

//! Environments for mbrl, each implementing `mbrl_core::Env` with batched, differentiable task
//! functions and, where the thesis uses one, a task family.
//!
//! - analytic tasks of the thesis: [`point2d`], [`point_corners`], [`point1d_goal`],
//!   [`double_integrator`] (with the exact gradient of a linear policy's expected return);
//! - classic control: [`pendulum`] and [`mountain_car_continuous`], identical to Gymnasium's
//!   `Pendulum-v1` and `MountainCarContinuous-v0`, and [`cartpole_swingup`];
//! - [`ops`]: differentiable tensor operations the task functions need (`atan2`).
//!
//! The [`registry()`] lists every environment by name with its dimensions, horizon and task
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

pub mod backend;
pub mod cartpole_swingup;
mod common;
pub mod double_integrator;
mod error;
pub mod mountain_car_continuous;
pub mod ops;
pub mod pendulum;
pub mod point1d_goal;
pub mod point2d;
pub mod point_corners;
pub mod registry;
pub mod render;
pub mod robots;

pub use backend::PhysicsBackend;
pub use error::{Error, Result};
pub use registry::{make_factory, registry, EnvConfig, EnvEntry, EnvInfo};

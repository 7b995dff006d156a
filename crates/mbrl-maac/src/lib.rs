//! Model-Augmented Actor-Critic (thesis Ch. 7) and its baselines SAC and MBPO.
//!
//! MAAC learns a policy by the pathwise derivative of an `H`-step return through a learned
//! probabilistic ensemble, bootstrapped by a terminal twin Q-function, with an entropy bonus;
//! its critics regress to STEVE-style model-expanded targets. The pieces:
//! - [`actor`]: the tanh-squashed Gaussian policy; [`critic`]: twin Q-functions with Polyak
//!   targets; [`agent`]: the soft actor-critic learner (optimisers, learned temperature);
//! - [`objective`]: SAC's and MAAC's actor losses; [`targets`]: one-step and STEVE targets;
//! - [`imagined`]: MBPO-style imagined data (short rollouts from real states, the length
//!   schedule, elites);
//! - [`trainer`]: the off-policy loop running `sac`, `mbpo` and `maac` ([`trainer::SAC_ENTRY`],
//!   [`trainer::MBPO_ENTRY`], [`trainer::MAAC_ENTRY`]).
//!
//! The dynamics model comes through `mbrl-core`'s `TrainableModel` (the CLI builds
//! `mbrl-models`' ensemble with a probabilistic head); the test-time planners live in
//! `mbrl-policy-opt`.
//!
//! ```
//! use mbrl_maac::actor::{ActorConfig, SquashedGaussianActor};
//! use mbrl_core::{policy::Policy, space::BoxSpace};
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let space = BoxSpace::uniform(-2.0, 2.0, 1)?;
//! let actor = SquashedGaussianActor::new(3, &space, ActorConfig::default(), &mut rng)?;
//! let obs = candle_core::Tensor::zeros((4, 3), candle_core::DType::F32, &candle_core::Device::Cpu)?;
//! let actions = actor.act(&obs, false, &mut rng)?;
//! assert_eq!(actions.dims(), &[4, 1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod actor;
pub mod agent;
pub mod config;
pub mod critic;
pub mod imagined;
pub mod objective;
pub mod targets;
pub mod trainer;

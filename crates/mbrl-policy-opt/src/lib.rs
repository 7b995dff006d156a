//! Policy optimisation for mbrl: samplers that collect experience from a real `VecEnv`, and
//! the algorithms built on them.
//!
//! So far: [`sampler::EpisodeSampler`] (fresh, seeded episodes each iteration, a fixed step
//! budget) and the [`random_baseline`], the uniform random policy that every learning-curve
//! plot of the thesis shows as its reference line. Algorithms register through
//! `mbrl_core::algorithm::AlgorithmEntry`. The [`planners`] (random shooting, CEM, MPPI) plan
//! action sequences in a learned model for model-predictive control, and
//! [`planners::MpcPolicy`] runs them as a policy (MAAC's test-time CEM, GrBAL/ReBAL's MPC).
//!
//! ```
//! use mbrl_core::{check_env::factory, env::TimeLimit, policy::RandomPolicy, testing::Drift};
//! use mbrl_policy_opt::sampler::EpisodeSampler;
//! let mut sampler = EpisodeSampler::new(&factory(|| TimeLimit::new(Drift::new(), 10)), 2, 7)?;
//! let policy = RandomPolicy::new(mbrl_core::BoxSpace::uniform(-1.0, 1.0, 1)?)?;
//! let mut rng = mbrl_core::seeding::stream_rng(7, mbrl_core::seeding::Stream::Policy);
//! let batch = sampler.collect(&policy, 50, &mut rng)?;
//! assert!(batch.env_steps >= 50);
//! # Ok::<(), mbrl_core::Error>(())
//! ```

pub mod advantages;
pub mod baseline;
pub mod fisher;
pub mod gaussian_mlp;
pub mod imagination;
pub mod imagined_update;
pub mod learner_rngs;
pub mod me_trpo;
pub mod model_data;
pub mod model_free;
pub mod planners;
pub mod ppo;
pub mod random_baseline;
pub mod sampler;
pub mod trpo;
pub mod vanilla;

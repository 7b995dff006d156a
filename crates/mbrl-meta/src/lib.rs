//! Gradient-based meta-reinforcement learning (thesis Ch. 2.3, 5, 6): inner adaptation steps as
//! differentiable functions of the pre-update parameters, the meta-gradient estimators the
//! thesis compares (LVC, DiCE, MAML, E-MAML), and the outer optimisers ProMP, MAML-TRPO and
//! MAML-VPG, built on `mbrl-core`'s `GaussianPolicy` (whose `distribution_with` takes adapted
//! parameters) and `mbrl-policy-opt`'s baseline, GAE and conjugate gradient.
//!
//! The pieces, bottom up:
//! - [`higher_order`]: runs meta-gradient code where candle keeps second derivatives;
//! - [`samples`]: one task's trajectories as padded `[n, T]` tensors ([`samples::TaskSamples`]),
//!   from real rollouts ([`task_sampler`]) or imagined ones in a learned model (MB-MPO: one task
//!   per ensemble member, via `mbrl_policy_opt::imagination` and [`samples::ParamsPolicy`]);
//! - [`estimators`]: the inner surrogates (Eq. 15, 17) and the outer objectives;
//! - [`adaptation`]: the inner VPG step(s) and the step sizes;
//! - [`meta_objective`]: the meta-objective over a batch of tasks;
//! - outer optimisers: [`promp`] (Algorithm 4), [`maml_trpo`], [`maml_vpg`];
//! - [`trainer`]: the model-free meta-RL trainer and its registry entries;
//! - [`gradient_variance`]: meta-gradient spread over independent meta-batches (Fig. 15, 17),
//!   with the two-parameter policy of [`linear_policy`];
//! - [`mb_mpo`]: MB-MPO (Algorithm 3), meta-learning over a learned ensemble's members (the
//!   biased, noisy models of its robustness study are `mbrl_core::biased_model`), with the
//!   uncertainty and plasticity maps of its analysis (Fig. 11) in [`plasticity`].
//!
//! ```
//! use mbrl_meta::higher_order;
//! // Meta-gradients need second derivatives: run them on a higher-order thread.
//! higher_order::run(higher_order::check)?;
//! # Ok::<(), mbrl_core::Error>(())
//! ```

pub mod adaptation;
pub mod ascent;
pub mod estimators;
pub mod gradient_variance;
pub use mbrl_core::higher_order;
pub mod linear_policy;
pub mod maml_trpo;
pub mod maml_vpg;
pub mod mb_mpo;
pub mod meta_objective;
pub mod meta_step;
pub mod plasticity;
pub mod promp;
pub mod samples;
pub mod task_sampler;
pub mod trainer;

//! Gradient-based meta-reinforcement learning: inner adaptation steps as differentiable
//! functions of the pre-update parameters, the meta-gradient estimators the thesis compares
//! (LVC, DiCE, MAML, E-MAML), ProMP (Ch. 6) and MB-MPO (Ch. 5), built on `mbrl-core`'s
//! `GaussianPolicy` and `DynamicsModel` and on `mbrl-policy-opt`'s samplers and TRPO.
//!
//! Filled by the ProMP / MB-MPO issue.

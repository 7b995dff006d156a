//! Dynamics models: MLP ensembles that predict state changes, evaluated for all members as one
//! batched computation, trained with the early-stopping rules of the thesis, and wrapped as a
//! batched environment (`ModelEnv`) with the task's reward and termination functions.
//!
//! Implements `mbrl_core::model::DynamicsModel`. Filled by the ME-TRPO issue (thesis Ch. 2, 4).

//! Fast online adaptation of learned dynamics models (thesis Ch. 9): GrBAL (gradient-based) and
//! ReBAL (recurrent) meta-learned models, re-adapted before every action and used by model
//! predictive control (random shooting, CEM, MPPI).
//!
//! Filled by the GrBAL / ReBAL issue.

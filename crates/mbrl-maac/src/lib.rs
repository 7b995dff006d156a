//! Model-Augmented Actor-Critic (thesis Ch. 7): pathwise derivatives of the return through a
//! learned probabilistic ensemble, bootstrapped with a terminal twin Q-function.
//!
//! Filled by the MAAC issue.

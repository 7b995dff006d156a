//! The algorithm registry: every algorithm crate's entry, by name.

use mbrl_core::algorithm::AlgorithmEntry;

/// Every registered algorithm.
pub fn registry() -> Vec<&'static AlgorithmEntry> {
    vec![&mbrl_policy_opt::random_baseline::ENTRY]
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static AlgorithmEntry> {
    registry().into_iter().find(|a| a.name == name)
}

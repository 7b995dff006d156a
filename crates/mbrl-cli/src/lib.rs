//! The `mbrl-cli` command line: configuration files, the algorithm registry, run directories,
//! progress reporting and the subcommands. `main.rs` only parses arguments and maps errors to
//! exit codes (2 for usage and config errors, 1 for failures during a run).

pub mod algorithms;
pub mod allocator;
pub mod commands;
pub mod config;
pub mod planning;
pub mod plot;
pub mod progress;
pub mod render;
pub mod run_dir;
pub mod threads;

/// A mistake in how the command was called (exit code 2).
#[derive(Debug, Clone)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether an error is the caller's to fix (bad config or arguments): exit code 2.
pub fn is_usage_error(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.is::<UsageError>() || e.is::<config::ConfigError>())
}

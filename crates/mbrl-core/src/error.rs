//! The error type shared by every mbrl crate's core operations.

use std::path::PathBuf;

/// Errors raised by the shared trait layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, dtype, device).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A value had the wrong shape or length.
    #[error("shape mismatch in {context}: expected {expected}, got {actual}")]
    Shape {
        /// Where the mismatch was found.
        context: String,
        /// What was expected.
        expected: String,
        /// What was given.
        actual: String,
    },
    /// An argument was outside its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A checkpoint does not belong to this configuration.
    #[error("checkpoint {path} does not match this run: {reason}")]
    CheckpointMismatch {
        /// The checkpoint's metadata file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A file exists but its content is not what it should be.
    #[error("{path}: malformed content: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Training produced a non-finite value.
    #[error("non-finite value in {what} at iteration {iteration}")]
    NonFinite {
        /// The metric or tensor that became NaN or infinite.
        what: String,
        /// The iteration where it happened.
        iteration: u64,
    },
    /// An environment failed a `check_env` property.
    #[error("check_env failed for {env}: {reason}")]
    EnvCheck {
        /// The environment's name.
        env: String,
        /// The property that does not hold.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A shape error with a context string.
    pub fn shape(
        context: impl Into<String>,
        expected: impl std::fmt::Display,
        actual: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

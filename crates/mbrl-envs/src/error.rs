//! Errors of the environment crate.

/// Errors raised when building environments.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No environment has this name.
    #[error("unknown env `{name}`; valid envs: {}", valid.join(", "))]
    UnknownEnv {
        /// The requested name.
        name: String,
        /// Every registered name.
        valid: Vec<String>,
    },
    /// The environment has no task family of this name.
    #[error("env `{env}` has no task family `{family}`; valid families: {}", if valid.is_empty() { "none".to_string() } else { valid.join(", ") })]
    UnknownTaskFamily {
        /// The environment.
        env: String,
        /// The requested family.
        family: String,
        /// The environment's families.
        valid: Vec<String>,
    },
    /// The physics backend cannot build this environment (not compiled in, or no model).
    #[error("physics backend `{backend}`: {message}")]
    Backend {
        /// The requested backend.
        backend: String,
        /// What is missing and what to do.
        message: String,
    },
    /// An error from the core layer.
    #[error(transparent)]
    Core(#[from] mbrl_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Core(e.into())
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

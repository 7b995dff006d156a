//! The crate's error type.

/// Errors raised while building, training or running dynamics models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the shared trait layer (shapes, files, buffers).
    #[error(transparent)]
    Core(#[from] mbrl_core::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A configuration value is out of range; the message names the key and what is allowed.
    #[error("invalid model config: {0}")]
    Config(String),
    /// An argument is out of range or the wrong shape.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Saved tensors do not fit this model.
    #[error("cannot load model tensors: {0}")]
    Load(String),
    /// Training produced a NaN or infinite loss.
    #[error("non-finite {what} of ensemble member {member} at epoch {epoch}")]
    NonFinite {
        /// Which loss became non-finite.
        what: &'static str,
        /// The ensemble member.
        member: usize,
        /// The epoch (pass over the training data) where it happened.
        epoch: usize,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for mbrl_core::Error {
    /// Lets models of this crate implement the `mbrl_core` traits, whose methods return
    /// `mbrl_core::Result`.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Candle(e) => mbrl_core::Error::Candle(e),
            other => mbrl_core::Error::InvalidArgument(other.to_string()),
        }
    }
}

//! The error returned when a [`RedactorBuilder`](super::RedactorBuilder) rule is invalid.

/// A rule given to [`RedactorBuilder`](super::RedactorBuilder) could not be compiled.
///
/// Only configuration fails: redacting never does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SanitizeError {
    /// A key regex passed to [`RedactorBuilder::add_key_regex`](super::RedactorBuilder::add_key_regex) is invalid.
    #[error("invalid key pattern `{pattern}`")]
    InvalidKeyPattern {
        /// The pattern as given.
        pattern: String,
        /// Why `regex` rejected it.
        #[source]
        source: regex::Error,
    },
    /// A value regex passed to
    /// [`RedactorBuilder::add_value_pattern`](super::RedactorBuilder::add_value_pattern) is invalid.
    #[error("invalid value pattern `{pattern}`")]
    InvalidValuePattern {
        /// The pattern as given.
        pattern: String,
        /// Why `regex` rejected it.
        #[source]
        source: regex::Error,
    },
}

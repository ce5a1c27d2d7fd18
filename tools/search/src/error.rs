//! The one error type of the crate.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading tables, searching or writing outputs.
///
/// Messages name the offending field or input so a CLI can print them as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON document could not be parsed into the expected structure.
    #[error("{what}: invalid JSON: {source}")]
    Json {
        /// Which document (a path or a description).
        what: String,
        /// The underlying parser error (it carries line and column).
        source: serde_json::Error,
    },
    /// A table or bundle parsed but breaks a rule of its format.
    #[error("{field}: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `segments[1].latency_us[2]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two documents that must describe the same model do not.
    #[error("model hash mismatch: expected {expected:?}, found {found:?}")]
    HashMismatch {
        /// The hash the caller expected.
        expected: String,
        /// The hash in the document.
        found: String,
    },
    /// A task name that the metric table does not know.
    #[error("unknown task {name:?} (known tasks: {known})")]
    UnknownTask {
        /// The name given.
        name: String,
        /// Comma-separated known task names.
        known: String,
    },
    /// A malformed preference string such as `digit=3,bold=1`.
    #[error("bad preference string {input:?}: {reason}")]
    BadPreference {
        /// The whole string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A malformed budget such as `2 furlongs`.
    #[error("bad budget {input:?}: {reason}")]
    BadBudget {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The search problem itself is ill-formed (no task runs, all weights zero, ...).
    #[error("invalid search problem: {0}")]
    Problem(String),
    /// No configuration of the model meets the latency budget.
    #[error(
        "no width configuration meets the budget of {budget_us} us: the fastest configuration \
         {fastest_widths:?} takes {fastest_us:.3} us"
    )]
    BudgetInfeasible {
        /// The budget asked for.
        budget_us: f64,
        /// Predicted latency of the fastest configuration for the task set.
        fastest_us: f64,
        /// Width indices of that configuration.
        fastest_widths: Vec<u8>,
    },
    /// Paper mode found no configuration that keeps decoder widths monotone in preference and
    /// meets the budget (exact mode may still find one).
    #[error("paper mode: {0}")]
    PaperInfeasible(String),
    /// Rendering a plot failed.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Read a whole UTF-8 file, mapping errors to [`Error::Io`].
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Write a whole file, mapping errors to [`Error::Io`].
pub(crate) fn write_text(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Parse JSON into `T`, mapping errors to [`Error::Json`].
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })
}

/// Serialize to pretty JSON (never fails for the crate's own plain data types).
pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|source| Error::Json {
            what: what.to_string(),
            source,
        })
}

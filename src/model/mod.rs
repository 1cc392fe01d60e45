//! Typed v1 files: runconfig, hdconfig, compute specs. Parsing reports
//! file:line:col and what was expected; unknown keys become warnings.

pub mod compute;
pub mod conda;
pub mod hdconfig;
pub mod runconfig;
pub mod write;
pub mod yaml;

use std::path::PathBuf;

/// Where in a file something is (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A non-fatal finding (unknown key, value capped, …) the printer shows as `warning: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Option<Location>,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a v1 file could not be used. Always names the file; position when known.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{location}: {message}")]
    At {
        location: Location,
        message: String,
        hint: Option<String>,
    },
    #[error("{file}: {message}")]
    InFile {
        file: PathBuf,
        message: String,
        hint: Option<String>,
    },
    #[error("{message}")]
    NotFound {
        message: String,
        hint: Option<String>,
    },
}

impl crate::error::ExitCoded for ModelError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::ERROR
    }
    fn hint(&self) -> Option<String> {
        match self {
            ModelError::At { hint, .. }
            | ModelError::InFile { hint, .. }
            | ModelError::NotFound { hint, .. } => hint.clone(),
        }
    }
}

//! Everything the user sees goes through here. Results go to stdout in the
//! chosen `-o` format after `--query` (JMESPath); messages go to stderr in one
//! style: `error: …`, `warning: …`, `hint: …`, plain info lines.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

/// `-o/--output`, the formats az offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Json,
    Jsonc,
    Yaml,
    Yamlc,
    Table,
    Tsv,
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid --query expression: {0}")]
    Query(String),
    #[error("output metadata file {0} already exists")]
    MetadataFileExists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How chatty stderr may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// `--only-show-errors`: warnings and info suppressed.
    ErrorsOnly,
    #[default]
    Normal,
    Verbose,
    Debug,
}

/// Owns all user-facing output of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Printer {
    pub format: Format,
    pub query: Option<String>,
    pub verbosity: Verbosity,
    /// `-t/--output-metadata-file`: also write the result JSON there.
    pub metadata_file: Option<PathBuf>,
}

impl Printer {
    /// Print a command's result on stdout (and to the metadata file, if asked).
    pub fn result(&self, value: &Value) -> Result<(), OutputError> {
        if let Some(path) = &self.metadata_file {
            write_metadata_file(path, value)?;
        }
        let rendered = render(value, self.format, self.query.as_deref())?;
        let mut out = std::io::stdout().lock();
        out.write_all(rendered.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.verbosity > Verbosity::ErrorsOnly {
            eprintln!("warning: {message}");
        }
    }

    pub fn info(&self, message: impl std::fmt::Display) {
        if self.verbosity > Verbosity::ErrorsOnly {
            eprintln!("{message}");
        }
    }

    pub fn error(&self, message: impl std::fmt::Display, hint: Option<&str>) {
        eprintln!("error: {message}");
        if let Some(hint) = hint {
            eprintln!("hint: {hint}");
        }
    }
}

/// v1 refused to overwrite an existing metadata file; so do we.
fn write_metadata_file(path: &PathBuf, value: &Value) -> Result<(), OutputError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => OutputError::MetadataFileExists(path.clone()),
            _ => OutputError::Write {
                path: path.clone(),
                source: e,
            },
        })?;
    let text = serde_json::to_string_pretty(value).expect("a Value always serializes");
    file.write_all(text.as_bytes())
        .map_err(|e| OutputError::Write {
            path: path.clone(),
            source: e,
        })
}

/// Render `value` in `format` after applying `query`. The returned text ends with a newline
/// (or is empty for `none`).
pub fn render(value: &Value, format: Format, query: Option<&str>) -> Result<String, OutputError> {
    let _ = query; // JMESPath lands with the output work; json only for now.
    match format {
        Format::None => Ok(String::new()),
        _ => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(value).expect("Value serializes")
        )),
    }
}

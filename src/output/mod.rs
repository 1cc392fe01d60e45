//! Everything the user sees goes through here. Results go to stdout in the
//! chosen `-o` format after `--query` (JMESPath); messages go to stderr in one
//! style: `error: …`, `warning: …`, `hint: …`, plain info lines.
//!
//! Formatting reproduces az's (knack's) byte for byte; see the submodules.
//! `tests/output.rs` compares every format with knack itself.

mod color;
pub mod json;
pub mod query;
mod table;
mod tsv;
pub mod value;
pub mod yaml;

use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use value::Doc;

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
    /// The expression does not parse: a usage error, found before the command runs.
    #[error("invalid --query expression: {0}")]
    QuerySyntax(String),
    /// It parses but fails on this result (unknown function, wrong type…):
    /// exit 1, as az's `InvalidArgumentValueError`.
    #[error("--query failed: {0}")]
    QueryEval(String),
    #[error(
        "Table output unavailable. Use the --query option to specify an appropriate query. Use --debug for more info."
    )]
    TableUnavailable,
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
        self.result_with_table(value, None)
    }

    /// [`Printer::result`] with az's table transformer: `-o table` without
    /// `--query` shows `rows(value)` in the order its keys are written; a
    /// query, and every other format, sees the value itself.
    pub fn result_with_table(
        &self,
        value: &Value,
        rows: Option<&dyn Fn(&Value) -> Value>,
    ) -> Result<(), OutputError> {
        if let Some(path) = &self.metadata_file {
            write_metadata_file(path, value)?;
        }
        let format = self.effective_format();
        let transformed;
        let (shown, sort_keys) = match rows {
            Some(rows) if format == Format::Table && self.query.is_none() => {
                transformed = rows(value);
                (&transformed, false)
            }
            _ => (value, self.query.is_none()),
        };
        let rendered = render_sorted(shown, format, self.query.as_deref(), sort_keys)?;
        let mut out = std::io::stdout().lock();
        out.write_all(rendered.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// `jsonc`/`yamlc` colour only when both stdout and stderr are terminals and
    /// `NO_COLOR` is unset (knack's rule); otherwise they are `json`/`yaml`.
    pub fn effective_format(&self) -> Format {
        let color = std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none();
        match self.format {
            Format::Jsonc if !color => Format::Json,
            Format::Yamlc if !color => Format::Yaml,
            other => other,
        }
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
    let text = json::render(&Doc::from(value));
    file.write_all(text.as_bytes())
        .map_err(|e| OutputError::Write {
            path: path.clone(),
            source: e,
        })
}

/// Render `value` in `format` after applying `query`, exactly as az would.
/// The text ends with a newline; it is empty for `none` and when the result
/// (after the query) is null, because az prints nothing for a null result.
/// `jsonc`/`yamlc` are coloured here; `Printer` downgrades them off a terminal.
pub fn render(value: &Value, format: Format, query: Option<&str>) -> Result<String, OutputError> {
    render_sorted(value, format, query, query.is_none())
}

/// [`render`], saying whether a table sorts each row's keys (knack sorts
/// them unless a query or a table transformer chose the columns).
fn render_sorted(
    value: &Value,
    format: Format,
    query: Option<&str>,
    sort_table_keys: bool,
) -> Result<String, OutputError> {
    let mut doc = Doc::from(value);
    if let Some(expression) = query {
        let ast = query::compile(expression).map_err(|e| OutputError::QuerySyntax(e.0))?;
        doc = query::search(&ast, &doc).map_err(|e| OutputError::QueryEval(e.0))?;
    }
    if matches!(doc, Doc::Null) {
        return Ok(String::new());
    }
    Ok(match format {
        Format::Json => json::render(&doc),
        Format::Jsonc => color::json(&json::render(&doc)),
        Format::Yaml => yaml::render(&doc),
        Format::Yamlc => color::yaml(&yaml::render(&doc)),
        Format::Table => {
            table::render(&doc, sort_table_keys).ok_or(OutputError::TableUnavailable)?
        }
        Format::Tsv => tsv::render(&doc),
        Format::None => String::new(),
    })
}

/// A `--query` that does not parse is a usage error (exit 2), like any bad
/// argument; one that fails on the result exits 1, as in az.
impl crate::error::ExitCoded for OutputError {
    fn exit_code(&self) -> i32 {
        match self {
            OutputError::QuerySyntax(_) => crate::error::exit::USAGE,
            _ => crate::error::exit::ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            OutputError::QuerySyntax(_) | OutputError::QueryEval(_) => {
                Some("see https://jmespath.org for the query syntax".into())
            }
            OutputError::TableUnavailable => {
                Some("try --query to pick scalar fields, e.g. --query \"[].{Name:name}\"".into())
            }
            OutputError::MetadataFileExists(_) => {
                Some("remove the file or choose another -t path".into())
            }
            _ => None,
        }
    }
}

//! Exit codes and the one error type commands raise for the user.
//!
//! Library modules return their own `thiserror` enums; `commands` wraps them in
//! `anyhow`. `exit_code_of` walks the chain so a typed error deep inside still
//! decides the exit code (az's: 0 ok, 1 error, 2 usage, 3 not found).

use std::fmt;

/// Process exit codes, as az uses them (plus 130 for Ctrl-C, as shells do).
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// An error meant for the user: a message, an exit code, and an optional hint
/// saying what to do about it (printed as `hint: …`).
#[derive(Debug)]
pub struct UserError {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }
    /// A general failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::ERROR, message)
    }
    /// Bad input from the command line (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }
    /// A named resource does not exist (exit 3).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(exit::NOT_FOUND, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Something that knows which az exit code it maps to. Implemented by module
/// errors (e.g. an ARM 404 → 3) so `exit_code_of` can find it in a chain.
pub trait ExitCoded {
    fn exit_code(&self) -> i32;
    fn hint(&self) -> Option<String> {
        None
    }
}

impl ExitCoded for UserError {
    fn exit_code(&self) -> i32 {
        self.code
    }
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// The error and its causes joined by ": ", as `{:#}` does, except a cause
/// the message already spells out: many errors put their source in their
/// text (`cannot write F: <io error>`), which `{:#}` would print twice.
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The exit code and hint of the first error in the chain that carries one.
pub fn exit_code_of(err: &anyhow::Error) -> (i32, Option<String>) {
    for cause in err.chain() {
        if let Some(coded) = as_exit_coded(cause) {
            return (coded.exit_code(), coded.hint());
        }
    }
    (exit::ERROR, None)
}

/// Module errors register here so the chain walk can see them.
fn as_exit_coded<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn ExitCoded> {
    if let Some(e) = cause.downcast_ref::<UserError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::workspace::WorkspaceError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::model::ModelError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::config::ConfigError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::arm::jobs::JobSpecError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::output::OutputError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::local::ssh::SshError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::sweep::SweepError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::arm::ArmError>() {
        return Some(e);
    }
    if let Some(e) = cause.downcast_ref::<crate::model::compute::SpecError>() {
        return Some(e);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write f.json: {source}")]
    struct Spelt {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_names_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Spelt { source: io }).context("saving the result");
        assert_eq!(
            describe(&err),
            "saving the result: cannot write f.json: no such file"
        );
    }
}

//! azml — the retired Azure ML `az ml` v1 CLI, alive.
//!
//! Data flows top to bottom through these modules:
//! `cli` (clap types) → `commands` (resolve settings, call a backend) →
//! `config` (which workspace) → `workspace` (the backend-agnostic trait) →
//! `local` (this machine / SSH hosts) or `arm` (Azure Resource Manager) →
//! `output` (az-style rendering of the serde value a command returns).
//! `model` parses the v1 files, `sweep` is the pure hyperparameter engine,
//! `snapshot` walks and stores source folders.

pub mod arm;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod local;
pub mod model;
pub mod output;
pub mod shell;
pub mod snapshot;
pub mod sweep;
pub mod workspace;

/// Entry point used by `main`: parses argv, runs the command, returns the process exit code.
pub fn run() -> i32 {
    // A detached run supervisor (`run submit-script --async`) is azml re-executed
    // with a hidden argv; it never goes through the user-facing CLI.
    if let Some(code) = local::submit::supervise_from_argv() {
        return code;
    }
    commands::main()
}

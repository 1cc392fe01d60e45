//! Typed v1 files: runconfig, hdconfig, compute specs. Parsing reports
//! file:line:col and what was expected; unknown keys become warnings.

pub mod compute;
pub mod hdconfig;
pub mod runconfig;

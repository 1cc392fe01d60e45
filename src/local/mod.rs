//! The embedded local workspace: SQLite store, process runner, SSH runner,
//! MLflow-compatible tracking server, sweep driver.

//! Source snapshots: walk a folder with v1's ignore rules (`.amlignore`, else
//! `.gitignore`), hash files with blake3, and store/materialize them.
//!
//! Typical use (what `run submit-script` does):
//! ```no_run
//! # use azml::snapshot::{Store, Materialize};
//! # fn demo() -> Result<(), azml::snapshot::SnapshotError> {
//! let store = Store::open("/home/me/.azml/snapshots")?;
//! let snap = store.snapshot("./project".as_ref(), &["./project/.azml".into()])?;
//! // print snap.summary and snap.warnings through the Printer, keep snap.manifest with the run
//! store.materialize(&snap.manifest, "/runs/run1/snapshot".as_ref(), Materialize::Link)?;
//! # Ok(()) }
//! ```
//!
//! Symlinks: a link to a file is snapshotted as the file it points to (the run
//! sees the content); links to directories and dangling links are skipped and
//! reported in [`Snapshot::skipped`], so a link cannot pull a whole tree (or a
//! loop) into every run.

mod rules;
mod store;
mod walk;

pub use rules::{AMLIGNORE, GITIGNORE, IgnoreRules};
pub use store::{Materialize, PRIVATE_COPY_LIMIT, Store};
pub use walk::{SourceFile, SourceTree, walk};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// v1's snapshot limits: past them v1 refused; azml warns.
pub const V1_MAX_BYTES: u64 = 300 * 1024 * 1024;
pub const V1_MAX_FILES: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("source directory {0} does not exist or is not a directory")]
    NoSource(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot store is missing object {hash} for {path}")]
    MissingObject { hash: String, path: String },
    #[error("unsafe path {0:?} in snapshot manifest")]
    UnsafePath(String),
}

impl crate::error::ExitCoded for SnapshotError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::ERROR
    }
    fn hint(&self) -> Option<String> {
        match self {
            SnapshotError::NoSource(_) => Some("check --source-directory / --path".into()),
            SnapshotError::MissingObject { .. } => {
                Some("the snapshot store was modified; submit again to re-snapshot".into())
            }
            _ => None,
        }
    }
}

/// One file of a snapshot. `path` is relative, with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    /// blake3 of the content, lowercase hex.
    pub hash: String,
    pub size: u64,
    pub executable: bool,
}

/// What a snapshot contains, sorted by path: the thing a run keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// A content id for the whole snapshot: equal manifests, equal ids.
    pub fn id(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for e in &self.entries {
            hasher.update(e.path.as_bytes());
            hasher.update(&[0]);
            hasher.update(e.hash.as_bytes());
            hasher.update(if e.executable { b"x\n" } else { b"-\n" });
        }
        hasher.finalize().to_hex().to_string()
    }

    pub fn summary(&self) -> Summary {
        Summary {
            files: self.entries.len(),
            bytes: self.entries.iter().map(|e| e.size).sum(),
        }
    }
}

/// Files and bytes in a snapshot (the summary line users see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "snapshot: {} files, {}",
            self.files,
            human_bytes(self.bytes)
        )
    }
}

/// `12.3 MB`-style sizes for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A snapshot past one of v1's limits. The caller prints it as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitWarning {
    TooManyFiles { files: usize },
    TooLarge { bytes: u64 },
}

impl std::fmt::Display for LimitWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitWarning::TooManyFiles { files } => write!(
                f,
                "the snapshot has {files} files, more than v1's limit of {V1_MAX_FILES}; \
                 list what the run does not need in .amlignore"
            ),
            LimitWarning::TooLarge { bytes } => write!(
                f,
                "the snapshot is {}, more than v1's limit of 300 MB; \
                 list data and outputs in .amlignore",
                human_bytes(*bytes)
            ),
        }
    }
}

/// The warnings v1's limits call for.
pub fn limit_warnings(summary: &Summary) -> Vec<LimitWarning> {
    let mut warnings = Vec::new();
    if summary.files > V1_MAX_FILES {
        warnings.push(LimitWarning::TooManyFiles {
            files: summary.files,
        });
    }
    if summary.bytes > V1_MAX_BYTES {
        warnings.push(LimitWarning::TooLarge {
            bytes: summary.bytes,
        });
    }
    warnings
}

/// Something in the source tree that is deliberately not in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    DirectorySymlink,
    DanglingSymlink,
    /// Sockets, FIFOs, devices: not content.
    NotAFile,
}

/// The result of [`Store::snapshot`]: stored content plus what to tell the user.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub summary: Summary,
    pub warnings: Vec<LimitWarning>,
    /// `.amlignore` or `.gitignore` when one applied.
    pub ignore_file: Option<PathBuf>,
    pub skipped: Vec<Skipped>,
    /// Files whose content had to be read (not answered by the hash cache).
    pub hashed_files: usize,
}

//! The walk: every file of the source folder that v1 would have snapshotted,
//! in a deterministic (byte-wise path) order, with the metadata the hash cache
//! keys on.

use super::rules::IgnoreRules;
use super::{SkipReason, Skipped, SnapshotError};
use std::fs::{DirEntry, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file to snapshot.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the source root, `/`-separated.
    pub relative: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub executable: bool,
}

impl SourceFile {
    fn new(relative: String, path: PathBuf, meta: &Metadata) -> Self {
        Self {
            relative,
            path,
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            inode: meta.ino(),
            executable: meta.permissions().mode() & 0o111 != 0,
        }
    }
}

pub(crate) fn mtime_ns(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The files of a source folder after v1's ignore rules.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    pub ignore_file: Option<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// Walk `source` with its `.amlignore`/`.gitignore`, leaving out `exclude`
/// (paths the caller always keeps out, e.g. the local workspace folder).
pub fn walk(source: &Path, exclude: &[PathBuf]) -> Result<SourceTree, SnapshotError> {
    let root = source
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| SnapshotError::NoSource(source.to_path_buf()))?;
    let rules = IgnoreRules::for_source(&root).map_err(|e| SnapshotError::Read {
        path: root.join(super::AMLIGNORE),
        source: e,
    })?;
    let mut walker = Walker {
        excluded: exclude
            .iter()
            .filter_map(|p| relative_to(&root, p))
            .collect(),
        rules,
        candidates: Vec::new(),
        skipped: Vec::new(),
    };
    walker.dir(&root, "")?;
    let mut skipped = walker.skipped;
    let mut files = Vec::with_capacity(walker.candidates.len());
    for (candidate, meta) in walker.candidates.iter().zip(stat_all(&walker.candidates)) {
        let path = candidate.entry.path();
        match meta {
            Ok(m) if m.is_file() => {
                files.push(SourceFile::new(candidate.relative.clone(), path, &m))
            }
            Ok(m) if m.is_dir() => skipped.push(skip(candidate, SkipReason::DirectorySymlink)),
            Ok(_) => skipped.push(skip(candidate, SkipReason::NotAFile)),
            Err(_) if candidate.symlink => {
                skipped.push(skip(candidate, SkipReason::DanglingSymlink))
            }
            Err(e) => return Err(SnapshotError::Read { path, source: e }),
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SourceTree {
        root,
        files,
        ignore_file: walker.rules.file,
        skipped,
    })
}

/// A file the walk kept; its metadata is read afterwards, in parallel.
struct Candidate {
    relative: String,
    entry: DirEntry,
    /// Follow the link: the snapshot holds what it points to.
    symlink: bool,
}

fn skip(candidate: &Candidate, reason: SkipReason) -> Skipped {
    Skipped {
        path: candidate.relative.clone(),
        reason,
    }
}

/// `stat` every candidate on a few threads: with a warm cache the walk is
/// dominated by these calls, and an unchanged resubmit is mostly the walk.
fn stat_all(candidates: &[Candidate]) -> Vec<std::io::Result<Metadata>> {
    const THREADS: usize = 4;
    let chunk = candidates.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| {
                let handle = scope.spawn(move || {
                    part.iter()
                        .map(|c| {
                            if c.symlink {
                                c.entry.path().metadata()
                            } else {
                                c.entry.metadata()
                            }
                        })
                        .collect::<Vec<_>>()
                });
                (part.len(), handle)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| {
                h.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| Err(std::io::Error::other("stat thread panicked")))
                        .collect()
                })
            })
            .collect()
    })
}

/// `path` relative to `root` (both resolved), if it lies inside it.
fn relative_to(root: &Path, path: &Path) -> Option<String> {
    let absolute = path
        .canonicalize()
        .or_else(|_| std::path::absolute(path))
        .ok()?;
    let rel = absolute.strip_prefix(root).ok()?;
    let text = rel.to_str()?.to_string();
    (!text.is_empty()).then_some(text)
}

struct Walker {
    excluded: Vec<String>,
    rules: IgnoreRules,
    candidates: Vec<Candidate>,
    skipped: Vec<Skipped>,
}

impl Walker {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<(), SnapshotError> {
        let read_error = |e| SnapshotError::Read {
            path: dir.to_path_buf(),
            source: e,
        };
        let mut entries: Vec<DirEntry> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        entries.sort_by_key(DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            let relative = match name.to_str() {
                Some(n) if prefix.is_empty() => n.to_string(),
                Some(n) => format!("{prefix}/{n}"),
                None => {
                    self.skip(
                        format!("{prefix}/{}", name.to_string_lossy()),
                        SkipReason::NotAFile,
                    );
                    continue;
                }
            };
            if self.is_caller_excluded(&relative) {
                continue;
            }
            self.entry(entry, relative)?;
        }
        Ok(())
    }

    fn entry(&mut self, entry: DirEntry, relative: String) -> Result<(), SnapshotError> {
        let file_type = entry.file_type().map_err(|e| SnapshotError::Read {
            path: entry.path(),
            source: e,
        })?;
        if file_type.is_dir() {
            // Without negations nothing below an excluded directory can come back.
            if !self.rules.is_excluded(&relative) || self.rules.has_negations() {
                self.dir(&entry.path(), &relative)?;
            }
            return Ok(());
        }
        if self.rules.is_excluded(&relative) {
            return Ok(());
        }
        if file_type.is_file() || file_type.is_symlink() {
            self.candidates.push(Candidate {
                relative,
                entry,
                symlink: file_type.is_symlink(),
            });
        } else {
            self.skip(relative, SkipReason::NotAFile);
        }
        Ok(())
    }

    fn is_caller_excluded(&self, relative: &str) -> bool {
        self.excluded.iter().any(|x| {
            relative == x
                || (relative.starts_with(x.as_str())
                    && relative.as_bytes().get(x.len()) == Some(&b'/'))
        })
    }

    fn skip(&mut self, path: String, reason: SkipReason) {
        self.skipped.push(Skipped { path, reason });
    }
}

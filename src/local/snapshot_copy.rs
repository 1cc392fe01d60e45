//! Temporary: copies the source tree into the run folder until the
//! `snapshot` module's walker/object store is on main, then this goes away.

use std::path::{Path, PathBuf};

/// Files and bytes a snapshot holds (for the summary line and v1's size warning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub files: u64,
    pub bytes: u64,
}

/// Plain recursive copy of `src` into `dst`, skipping `excluded` folders (the
/// local workspace itself). No ignore rules: placeholder only.
pub fn copy_source_tree_placeholder(
    src: &Path,
    dst: &Path,
    excluded: &[PathBuf],
) -> std::io::Result<SnapshotSummary> {
    let mut summary = SnapshotSummary::default();
    copy_dir(src, dst, excluded, &mut summary)?;
    Ok(summary)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    excluded: &[PathBuf],
    summary: &mut SnapshotSummary,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let path = entry.path();
        if excluded.iter().any(|e| same_path(e, &path)) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = dst.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&path, &target, excluded, summary)?;
        } else if kind.is_file() {
            summary.bytes += std::fs::copy(&path, &target)?;
            summary.files += 1;
        }
    }
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

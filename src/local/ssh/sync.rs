//! Sync a snapshot to an SSH host, sending only the file contents the host
//! has never seen.
//!
//! The host keeps a content-addressed cache, `~/.azml/objects/<blake3>`, shared
//! by all runs, and one pristine tree per snapshot, `~/.azml/trees/<id>/`
//! (hard links into the cache, named by the local `ContentSnapshotId`). Two
//! round trips when the host lacks the tree:
//! 1. `plan`: send the manifest (hash, mode, size, path per file); the host
//!    stores it and answers which hashes it lacks (when none, it builds the
//!    tree at once: one round trip);
//! 2. `put`: send a tar stream of just those objects; the host adds them to
//!    the cache (atomically, so parallel sweep children can share it) and
//!    builds the tree.
//!
//! A run folder is then a copy of its tree (`cp -R`, done by the run's own
//! launch, see `launcher`), so a resubmit of an unchanged snapshot costs no
//! round trip here at all. Copies, not hard links, so a script that edits its
//! own files can never corrupt the cache used by later runs.
//!
//! The host side is a short Python program (the host needs Python anyway):
//! it handles any file name byte-exactly, which line-based shell cannot. It
//! imports only `os` and `sys` on the common path (`tarfile` only when
//! objects arrive).

use super::SshError;
use super::command::Ssh;
use crate::shell::{quote, quote_all};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// One file of a snapshot, as the sync needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEntry {
    /// Relative path inside the snapshot (no `..`, not absolute).
    pub path: PathBuf,
    /// blake3 of the content, lowercase hex (64 chars).
    pub hash: String,
    pub size: u64,
    pub executable: bool,
    /// Where to read the content locally (ideally an immutable store object).
    pub source: PathBuf,
}

/// What a sync did; `bytes_sent` is the size of the object stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub files: usize,
    pub objects_sent: usize,
    pub bytes_sent: u64,
}

impl SyncEntry {
    /// Every regular file under `root`, hashed. No ignore rules: callers with a
    /// snapshot manifest build entries from it instead.
    pub fn from_dir(root: &Path) -> std::io::Result<Vec<SyncEntry>> {
        let mut entries = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for item in std::fs::read_dir(&dir)? {
                let item = item?;
                let kind = item.file_type()?;
                if kind.is_dir() {
                    stack.push(item.path());
                } else if kind.is_file() {
                    entries.push(Self::from_file(root, &item.path())?);
                }
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// The files of a local snapshot manifest, read from the snapshot
    /// store's immutable objects: nothing is hashed again.
    pub fn from_manifest(
        store: &crate::snapshot::Store,
        manifest: &crate::snapshot::Manifest,
    ) -> Vec<SyncEntry> {
        manifest
            .entries
            .iter()
            .map(|e| SyncEntry {
                path: PathBuf::from(&e.path),
                hash: e.hash.clone(),
                size: e.size,
                executable: e.executable,
                source: store.object_path(e),
            })
            .collect()
    }

    fn from_file(root: &Path, file: &Path) -> std::io::Result<SyncEntry> {
        let meta = std::fs::metadata(file)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(file)?)?;
        Ok(SyncEntry {
            path: file.strip_prefix(root).unwrap_or(file).to_path_buf(),
            hash: hasher.finalize().to_hex().to_string(),
            size: meta.len(),
            executable: meta.permissions().mode() & 0o111 != 0,
            source: file.to_path_buf(),
        })
    }
}

/// The host program behind `plan` and `put` (Python 3.4+).
const HOST_PROGRAM: &str = r#"
import os, sys
op, tree, run = sys.argv[1], sys.argv[2], sys.argv[3]
base = os.path.join(os.path.expanduser('~'), '.azml')
objs = os.path.join(base, 'objects')
trees = os.path.join(base, 'trees')
top = os.path.join(trees, tree)
mf = os.path.join(trees, '.%s.manifest' % tree)
def entries(data):
    f = data.split(b'\0')
    for i in range(0, len(f) - 3, 4):
        yield f[i].decode(), f[i + 1] == b'x', int(f[i + 2]), f[i + 3]
def have(h, size):
    try:
        return os.path.getsize(os.path.join(objs, h)) == size
    except OSError:
        return False
def copy(src, dest):
    with open(src, 'rb') as i, open(dest, 'wb') as o:
        while True:
            b = i.read(1 << 20)
            if not b:
                break
            o.write(b)
def receive():
    import tarfile
    tf = tarfile.open(fileobj=sys.stdin.buffer, mode='r|')
    for m in tf:
        h = m.name
        if not m.isfile() or len(h) != 64 or any(c not in '0123456789abcdef' for c in h):
            sys.exit('azml: unexpected object %r' % h)
        tmp = os.path.join(objs, '.tmp.%s.%d' % (h, os.getpid()))
        src = tf.extractfile(m)
        with open(tmp, 'wb') as out:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                out.write(b)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(objs, h))
def obj(h, x):
    src = os.path.join(objs, h)
    if not x:
        return src
    ex = src + '.x'
    if not os.path.exists(ex):
        tmp = '%s.tmp.%d' % (ex, os.getpid())
        copy(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, ex)
    return ex
def build():
    if os.path.isdir(top):
        return
    with open(mf, 'rb') as f:
        data = f.read()
    tmp = os.path.join(trees, '.tmp.%s.%d' % (tree, os.getpid()))
    root = os.fsencode(tmp)
    for d in (b'outputs', b'logs'):
        os.makedirs(os.path.join(root, d))
    for h, x, size, p in entries(data):
        parts = p.split(b'/')
        if p.startswith(b'/') or b'..' in parts or b'' in parts:
            sys.exit('azml: unsafe path %r' % p)
        dest = os.path.join(root, p)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        src = obj(h, x)
        try:
            os.link(src, dest)
        except OSError:
            copy(src, dest)
            os.chmod(dest, 0o755 if x else 0o644)
    try:
        os.rename(tmp, top)
    except OSError:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(top):
            raise
def fill():
    if run == '-':
        return
    src_root = os.fsencode(top)
    dest_root = os.fsencode(os.path.join(base, 'runs', run))
    for d, dirs, files in os.walk(src_root):
        out = os.path.normpath(os.path.join(dest_root, os.path.relpath(d, src_root)))
        os.makedirs(out, exist_ok=True)
        for name in files:
            src, dest = os.path.join(d, name), os.path.join(out, name)
            copy(src, dest)
            os.chmod(dest, os.stat(src).st_mode & 0o777)
if op == 'plan':
    for d in (objs, trees, os.path.join(base, 'runs'), os.path.join(base, 'state')):
        os.makedirs(d, exist_ok=True)
    data = sys.stdin.buffer.read()
    tmp = '%s.tmp.%d' % (mf, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, mf)
    seen = set()
    missing = []
    for h, x, size, p in entries(data):
        if h not in seen:
            seen.add(h)
            if not have(h, size):
                missing.append(h)
    if missing:
        sys.stdout.write('\n'.join(missing) + '\n')
    else:
        build()
        fill()
else:
    if op == 'put':
        receive()
    build()
    fill()
"#;

/// Sync `entries` into `~/.azml/runs/<run_id>/` on the host, using `python`
/// there for the host side.
pub fn sync(
    ssh: &Ssh,
    run_id: &str,
    python: &str,
    entries: &[SyncEntry],
) -> Result<SyncReport, SshError> {
    check_run_id(run_id)?;
    upload(ssh, &tree_id(entries), run_id, python, entries)
}

/// Make sure the host has the pristine tree `tree` (`~/.azml/trees/<tree>/`)
/// of `entries`, sending only the objects it lacks. A run folder is then one
/// `cp -R` away, which the run's own launch does without starting Python.
pub fn ensure_tree(
    ssh: &Ssh,
    tree: &str,
    python: &str,
    entries: &[SyncEntry],
) -> Result<SyncReport, SshError> {
    check_tree_id(tree)?;
    upload(ssh, tree, "-", python, entries)
}

/// The tree id of `entries`: the same as the local snapshot's id
/// (`ContentSnapshotId`), so a run can name its tree without the manifest.
pub fn tree_id(entries: &[SyncEntry]) -> String {
    let mut hasher = blake3::Hasher::new();
    for e in entries {
        hasher.update(e.path.as_os_str().as_bytes());
        hasher.update(&[0]);
        hasher.update(e.hash.as_bytes());
        hasher.update(if e.executable { b"x\n" } else { b"-\n" });
    }
    hasher.finalize().to_hex().to_string()
}

/// Tree ids become folder names on the host: lowercase hex only.
pub fn check_tree_id(tree: &str) -> Result<(), SshError> {
    let ok = (16..=64).contains(&tree.len())
        && tree
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        return Ok(());
    }
    Err(SshError::Invalid {
        what: "snapshot id".into(),
        detail: format!("'{tree}' is not a content id"),
    })
}

/// `plan` (one round trip), then `put` with the missing objects if any.
/// `run` is a run folder to fill from the tree, or `-` for none.
fn upload(
    ssh: &Ssh,
    tree: &str,
    run: &str,
    python: &str,
    entries: &[SyncEntry],
) -> Result<SyncReport, SshError> {
    let manifest = encode_manifest(entries)?;
    let plan = ssh.run(
        "syncing the snapshot",
        &host_command(python, "plan", tree, run),
        &manifest,
    )?;
    let missing: Vec<String> = String::from_utf8_lossy(&plan.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if missing.is_empty() {
        // The host had everything and already built the tree.
        return Ok(SyncReport {
            files: entries.len(),
            ..SyncReport::default()
        });
    }
    let sources = sources_of(entries, &missing)?;
    let mut bytes_sent = 0u64;
    ssh.run_streaming_stdin(
        "sending the snapshot",
        &host_command(python, "put", tree, run),
        |w| {
            bytes_sent = write_objects(w, &sources)?;
            Ok(())
        },
    )?;
    Ok(SyncReport {
        files: entries.len(),
        objects_sent: sources.len(),
        bytes_sent,
    })
}

/// `-I -S`: no site-packages or PYTHON* variables; starts fastest, needs only the stdlib.
fn host_command(python: &str, op: &str, tree: &str, run: &str) -> String {
    format!(
        "exec {} -I -S -c {} {}",
        quote(python),
        quote(HOST_PROGRAM),
        quote_all(&[op, tree, run])
    )
}

/// Run ids become folder names on the host: keep them to one plain component.
pub fn check_run_id(run_id: &str) -> Result<(), SshError> {
    let ok = !run_id.is_empty()
        && run_id != "."
        && run_id != ".."
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SshError::Invalid {
            what: "run id".into(),
            detail: format!("'{run_id}' cannot name a folder on the host"),
        })
    }
}

/// `hash\0x|-\0size\0path\0` per file: NUL-separated so any file name survives.
fn encode_manifest(entries: &[SyncEntry]) -> Result<Vec<u8>, SshError> {
    let mut out = Vec::new();
    for e in entries {
        check_entry(e)?;
        out.extend_from_slice(e.hash.as_bytes());
        out.push(0);
        out.push(if e.executable { b'x' } else { b'-' });
        out.push(0);
        out.extend_from_slice(e.size.to_string().as_bytes());
        out.push(0);
        out.extend_from_slice(e.path.as_os_str().as_bytes());
        out.push(0);
    }
    Ok(out)
}

fn check_entry(e: &SyncEntry) -> Result<(), SshError> {
    let hash_ok = e.hash.len() == 64
        && e.hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let path_ok = e.path.components().count() > 0
        && e.path
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !e.path.as_os_str().as_bytes().contains(&0);
    if hash_ok && path_ok {
        return Ok(());
    }
    Err(SshError::Invalid {
        what: "snapshot entry".into(),
        detail: format!("{} (hash {:?})", e.path.display(), e.hash),
    })
}

/// One local source per missing hash.
fn sources_of<'a>(
    entries: &'a [SyncEntry],
    missing: &[String],
) -> Result<Vec<&'a SyncEntry>, SshError> {
    let by_hash: BTreeMap<&str, &SyncEntry> =
        entries.iter().map(|e| (e.hash.as_str(), e)).collect();
    missing
        .iter()
        .map(|h| {
            by_hash
                .get(h.as_str())
                .copied()
                .ok_or_else(|| SshError::Invalid {
                    what: "host answer".into(),
                    detail: format!("asked for unknown object {h:?}"),
                })
        })
        .collect()
}

/// Write a tar of the objects (named by hash) and return its size in bytes.
fn write_objects(w: &mut dyn Write, objects: &[&SyncEntry]) -> std::io::Result<u64> {
    let mut counter = CountingWriter { inner: w, count: 0 };
    {
        let mut tar = tar::Builder::new(&mut counter);
        for e in objects {
            let file = std::fs::File::open(&e.source)?;
            let mut header = tar::Header::new_ustar();
            header.set_size(file.metadata()?.len());
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, &e.hash, file)?;
        }
        tar.finish()?;
    }
    Ok(counter.count)
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, hash: &str) -> SyncEntry {
        SyncEntry {
            path: path.into(),
            hash: hash.into(),
            size: 1,
            executable: false,
            source: "/dev/null".into(),
        }
    }

    #[test]
    fn run_ids_that_escape_the_runs_folder_are_refused() {
        for bad in ["", "..", "a/b", "a b", "x;rm -rf ~", "."] {
            assert!(check_run_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_run_id("exp_1700000000_1a2b3c4d").is_ok());
    }

    #[test]
    fn manifest_refuses_paths_outside_the_snapshot() {
        let h = "a".repeat(64);
        assert!(encode_manifest(&[entry("../x", &h)]).is_err());
        assert!(encode_manifest(&[entry("/etc/passwd", &h)]).is_err());
        assert!(encode_manifest(&[entry("ok.txt", "zz")]).is_err());
        let m = encode_manifest(&[entry("dir/a b.txt", &h)]).expect("valid");
        assert_eq!(m, format!("{h}\0-\01\0dir/a b.txt\0").into_bytes());
    }
}

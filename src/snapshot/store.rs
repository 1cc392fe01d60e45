//! The content-addressed object store shared by all runs.
//!
//! Layout under the store root:
//! - `objects/ab/cdef…` — one read-only file per distinct content (blake3 hex;
//!   an `.x` suffix marks the executable variant, so a hard link carries the
//!   right mode);
//! - `cache/<source id>` — per source folder, path → (size, mtime, inode,
//!   hash): an unchanged resubmit re-hashes nothing;
//! - `tmp/` — objects being written; they appear in `objects/` only by rename,
//!   so a crash never leaves a half-written object behind.
//!
//! Runs get their files by hard link ([`Materialize::Link`], the default). The
//! objects are read-only, so a script that opens a source file for writing
//! fails instead of corrupting the store; one that replaces a file (write a
//! new one, rename it over) is fine. For scripts that really edit their own
//! source files in place, use [`Materialize::Copy`].

use super::walk::{SourceFile, SourceTree, mtime_ns, walk};
use super::{Manifest, ManifestEntry, Snapshot, SnapshotError, limit_warnings};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How [`Store::materialize`] puts files into a run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Materialize {
    /// Hard links to the read-only objects (falls back to copying across
    /// file systems). Fast; the run cannot modify its source files in place.
    #[default]
    Link,
    /// Private writable copies.
    Copy,
    /// Private writable copies of files under [`PRIVATE_COPY_LIMIT`] (the
    /// sources and configs a v1 script may rewrite in place, as v1 allowed),
    /// read-only hard links for the larger ones (data, checkpoints), so a big
    /// tree still costs no copying.
    CopySmall,
}

/// Files below this size are copied by [`Materialize::CopySmall`].
pub const PRIVATE_COPY_LIMIT: u64 = 1 << 20;

/// Entries modified this close to the snapshot are not cached: a write in the
/// same timestamp tick as our read would otherwise go unnoticed.
const RACY_WINDOW_NS: i128 = 50_000_000;

/// Files are hashed and copied by this many threads.
const WORKERS: usize = 4;

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    hash: String,
}

#[derive(Debug, Default)]
struct HashCache {
    entries: HashMap<String, CacheEntry>,
}

impl Store {
    /// Open (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SnapshotError> {
        let root = root.into();
        for dir in ["objects", "cache", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| SnapshotError::Write { path, source: e })?;
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walk `source` (v1 rules, minus `exclude` and the store itself), put new
    /// content into the store and return the manifest with what to report.
    pub fn snapshot(&self, source: &Path, exclude: &[PathBuf]) -> Result<Snapshot, SnapshotError> {
        let mut exclude = exclude.to_vec();
        exclude.push(self.root.clone());
        let tree = walk(source, &exclude)?;
        let (manifest, hashed_files) = self.store_tree(&tree)?;
        let summary = manifest.summary();
        Ok(Snapshot {
            warnings: limit_warnings(&summary),
            summary,
            manifest,
            ignore_file: tree.ignore_file,
            skipped: tree.skipped,
            hashed_files,
        })
    }

    /// Store every file of `tree` that the store does not have yet. Returns
    /// the manifest and how many files had to be read.
    pub fn store_tree(&self, tree: &SourceTree) -> Result<(Manifest, usize), SnapshotError> {
        let started = now_ns();
        let cache_path = self.cache_path(&tree.root);
        let cache = load_cache(&cache_path);
        let mut present = ObjectIndex::default();
        let mut hashes: Vec<Option<(String, u64)>> = tree
            .files
            .iter()
            .map(|f| {
                self.cached_hash(&cache, &mut present, f)
                    .map(|h| (h, f.size))
            })
            .collect();
        let todo: Vec<usize> = (0..hashes.len()).filter(|i| hashes[*i].is_none()).collect();
        let fresh = self.store_files(&tree.files, &todo)?;
        let mut new_cache = HashCache::default();
        for (i, entry) in fresh {
            hashes[i] = Some((entry.hash.clone(), entry.size));
            if started - entry.mtime_ns > RACY_WINDOW_NS {
                new_cache
                    .entries
                    .insert(tree.files[i].relative.clone(), entry);
            }
        }
        let mut entries = Vec::with_capacity(tree.files.len());
        for (file, hash) in tree.files.iter().zip(hashes) {
            let (hash, size) = hash.unwrap_or_default();
            if let Some(old) = cache.entries.get(&file.relative).filter(|c| c.hash == hash) {
                new_cache
                    .entries
                    .entry(file.relative.clone())
                    .or_insert_with(|| old.clone());
            }
            entries.push(ManifestEntry {
                path: file.relative.clone(),
                hash,
                size,
                executable: file.executable,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        if !todo.is_empty() || new_cache.entries.len() != cache.entries.len() {
            save_cache(&cache_path, &new_cache, &self.root)?;
        }
        Ok((Manifest { entries }, todo.len()))
    }

    /// Keep `manifest` under its id, for a later step that needs the file
    /// list without walking and hashing again (the SSH sync, perhaps in a
    /// detached supervisor). Written once per id, atomically.
    pub fn save_manifest(&self, manifest: &Manifest) -> Result<(), SnapshotError> {
        let path = self.manifest_path(&manifest.id());
        if path.exists() {
            return Ok(());
        }
        let write_err = |e| SnapshotError::Write {
            path: path.clone(),
            source: e,
        };
        let dir = self.root.join("manifests");
        std::fs::create_dir_all(&dir).map_err(write_err)?;
        let tmp = self.root.join("tmp").join(format!(
            "manifest.{}.{}",
            std::process::id(),
            manifest.id()
        ));
        let json = serde_json::to_vec(manifest).map_err(|e| write_err(e.into()))?;
        std::fs::write(&tmp, json).map_err(write_err)?;
        std::fs::rename(&tmp, &path).map_err(write_err)
    }

    /// The manifest saved under `id`, if there is one (and it reads back).
    pub fn load_manifest(&self, id: &str) -> Option<Manifest> {
        let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return None;
        }
        let data = std::fs::read(self.manifest_path(id)).ok()?;
        serde_json::from_slice::<Manifest>(&data)
            .ok()
            .filter(|m| m.id() == id)
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join("manifests").join(format!("{id}.json"))
    }

    /// The object holding `entry`'s content.
    pub fn object_path(&self, entry: &ManifestEntry) -> PathBuf {
        self.object_for(&entry.hash, entry.executable)
    }

    /// Recreate the files of `manifest` under `dest` (which may exist but
    /// must not already contain them).
    pub fn materialize(
        &self,
        manifest: &Manifest,
        dest: &Path,
        how: Materialize,
    ) -> Result<(), SnapshotError> {
        let write_err = |path: &Path, e| SnapshotError::Write {
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(dest).map_err(|e| write_err(dest, e))?;
        let mut made: HashSet<PathBuf> = HashSet::new();
        for entry in &manifest.entries {
            let relative = safe_relative(&entry.path)?;
            let target = dest.join(relative);
            if let Some(parent) = target.parent()
                && made.insert(parent.to_path_buf())
            {
                std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
            }
            let object = self.object_path(entry);
            if !object.exists() {
                return Err(SnapshotError::MissingObject {
                    hash: entry.hash.clone(),
                    path: entry.path.clone(),
                });
            }
            let link = match how {
                Materialize::Link => true,
                Materialize::Copy => false,
                Materialize::CopySmall => entry.size >= PRIVATE_COPY_LIMIT,
            };
            let linked = link && std::fs::hard_link(&object, &target).is_ok();
            if !linked {
                std::fs::copy(&object, &target).map_err(|e| write_err(&target, e))?;
                let mode = if entry.executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| write_err(&target, e))?;
            }
        }
        Ok(())
    }

    fn object_for(&self, hash: &str, executable: bool) -> PathBuf {
        let (fan, rest) = hash.split_at(2.min(hash.len()));
        let name = if executable {
            format!("{rest}.x")
        } else {
            rest.to_string()
        };
        self.root.join("objects").join(fan).join(name)
    }

    fn cache_path(&self, source_root: &Path) -> PathBuf {
        let id = blake3::hash(source_root.as_os_str().as_encoded_bytes()).to_hex();
        self.root.join("cache").join(&id[..16])
    }

    /// The cached hash, if the file looks untouched and its object is present.
    fn cached_hash(
        &self,
        cache: &HashCache,
        present: &mut ObjectIndex,
        file: &SourceFile,
    ) -> Option<String> {
        let hit = cache.entries.get(&file.relative)?;
        let unchanged =
            hit.size == file.size && hit.mtime_ns == file.mtime_ns && hit.inode == file.inode;
        (unchanged && present.contains(&self.root, &hit.hash, file.executable))
            .then(|| hit.hash.clone())
    }

    /// Hash and store `files[i]` for every `i` in `todo`, in parallel.
    fn store_files(
        &self,
        files: &[SourceFile],
        todo: &[usize],
    ) -> Result<Vec<(usize, CacheEntry)>, SnapshotError> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(todo.len()));
        let failure: Mutex<Option<SnapshotError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..WORKERS.min(todo.len()) {
                scope.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { break };
                        match self.store_file(&files[i]) {
                            Ok(entry) => lock(&results).push((i, entry)),
                            Err(e) => {
                                lock(&failure).get_or_insert(e);
                                next.store(todo.len(), Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = lock(&failure).take() {
            return Err(e);
        }
        Ok(std::mem::take(&mut *lock(&results)))
    }

    /// Copy one file into the store while hashing it; the object appears by rename.
    fn store_file(&self, file: &SourceFile) -> Result<CacheEntry, SnapshotError> {
        let read_err = |e| SnapshotError::Read {
            path: file.path.clone(),
            source: e,
        };
        let mut source = File::open(&file.path).map_err(read_err)?;
        let (temp_path, mut temp) = self.temp_file()?;
        let write_err = |e| SnapshotError::Write {
            path: temp_path.clone(),
            source: e,
        };
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = source.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n]).map_err(write_err)?;
        }
        // Key the cache on what was read, not on what the walk saw earlier.
        let meta = source.metadata().map_err(read_err)?;
        let hash = hasher.finalize().to_hex().to_string();
        let mode = if file.executable { 0o555 } else { 0o444 };
        temp.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(write_err)?;
        drop(temp);
        let object = self.object_for(&hash, file.executable);
        if object.exists() {
            let _ = std::fs::remove_file(&temp_path);
        } else {
            publish(&temp_path, &object)?;
        }
        Ok(CacheEntry {
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            inode: meta.ino(),
            hash,
        })
    }

    fn temp_file(&self) -> Result<(PathBuf, File), SnapshotError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join("tmp").join(format!(
            "{}-{n}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let file = File::create(&path).map_err(|e| SnapshotError::Write {
            path: path.clone(),
            source: e,
        })?;
        Ok((path, file))
    }
}

/// Move a finished temp file to its object path (creating the fan-out dir).
fn publish(temp: &Path, object: &Path) -> Result<(), SnapshotError> {
    let write_err = |e| SnapshotError::Write {
        path: object.to_path_buf(),
        source: e,
    };
    if let Some(parent) = object.parent() {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    std::fs::rename(temp, object).map_err(write_err)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

const CACHE_HEADER: &str = "azml-hash-cache 1";

/// A missing or unreadable cache only costs re-hashing. The format is one
/// line per file (`hash size mtime inode path`, tab-separated, the path
/// escaped): an order of magnitude faster to read than JSON.
fn load_cache(path: &Path) -> HashCache {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashCache::default();
    };
    let mut lines = text.lines();
    if lines.next() != Some(CACHE_HEADER) {
        return HashCache::default();
    }
    let mut entries = HashMap::new();
    for line in lines {
        let mut fields = line.splitn(5, '\t');
        let parsed = (|| {
            let hash = fields.next()?.to_string();
            let size = fields.next()?.parse().ok()?;
            let mtime_ns = fields.next()?.parse().ok()?;
            let inode = fields.next()?.parse().ok()?;
            let relative = unescape(fields.next()?)?;
            Some((
                relative,
                CacheEntry {
                    size,
                    mtime_ns,
                    inode,
                    hash,
                },
            ))
        })();
        match parsed {
            Some((relative, entry)) => {
                entries.insert(relative, entry);
            }
            None => return HashCache::default(),
        }
    }
    HashCache { entries }
}

fn save_cache(path: &Path, cache: &HashCache, root: &Path) -> Result<(), SnapshotError> {
    let temp = root
        .join("tmp")
        .join(format!("cache-{}", uuid::Uuid::new_v4().simple()));
    let write_err = |e| SnapshotError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut text = String::with_capacity(cache.entries.len() * 120);
    text.push_str(CACHE_HEADER);
    text.push('\n');
    for (relative, e) in &cache.entries {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            e.hash,
            e.size,
            e.mtime_ns,
            e.inode,
            escape(relative)
        ));
    }
    std::fs::write(&temp, text).map_err(write_err)?;
    std::fs::rename(&temp, path).map_err(write_err)
}

fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// Which objects exist, read one fan-out directory at a time (a few hundred
/// `readdir`s instead of one `stat` per file).
#[derive(Default)]
struct ObjectIndex {
    listed: HashMap<String, HashSet<String>>,
}

impl ObjectIndex {
    fn contains(&mut self, root: &Path, hash: &str, executable: bool) -> bool {
        if hash.len() < 3 {
            return false;
        }
        let (fan, rest) = hash.split_at(2);
        let names = self.listed.entry(fan.to_string()).or_insert_with(|| {
            std::fs::read_dir(root.join("objects").join(fan))
                .map(|dir| {
                    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default()
        });
        if executable {
            names.contains(&format!("{rest}.x"))
        } else {
            names.contains(rest)
        }
    }
}

/// A manifest path must stay inside the run folder.
fn safe_relative(path: &str) -> Result<&Path, SnapshotError> {
    let p = Path::new(path);
    let safe = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if safe {
        Ok(p)
    } else {
        Err(SnapshotError::UnsafePath(path.to_string()))
    }
}

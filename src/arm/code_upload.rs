//! Code snapshots for Azure jobs: list the source folder with v1's ignore
//! rules, compute the Python SDK's content hash (so a folder uploaded by
//! either tool is found by the other), and upload it to the pending-upload
//! blob folder — incrementally, in parallel, with retries.
//!
//! The SDK hash (azure-ai-ml 1.35.2, `_get_file_list_content_hash`, hash
//! version 202208) is one sha256 over: the file count; `#<rel>#<size>` per
//! file sorted by lower-cased relative path; then every file's bytes in that
//! order. A local cache keyed by (path, size, mtime, inode) skips re-reading an
//! unchanged folder, and remembers per-file digests of the last upload so only
//! changed files are sent again (unchanged ones are copied server-side).

use super::blob::{BlobError, BlobFolder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// `hash_version` the SDK writes next to `hash_sha256` on code versions.
pub const HASH_VERSION: &str = "202208";

/// Files up to this size go in one Put Blob; larger ones in blocks.
pub const SINGLE_PUT_LIMIT: u64 = 16 * 1024 * 1024;
/// Block size for Put Block.
pub const BLOCK_SIZE: u64 = 8 * 1024 * 1024;
/// Requests in flight at once (files and blocks together). Against Azurite
/// (one Node process) 4 to 64 cost the server the same CPU in
/// `benches/code_upload`; 8 keeps the pipe full without holding many file
/// bodies in memory.
pub const PARALLEL_REQUESTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("source directory {0} has no files to upload")]
    Empty(PathBuf),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl crate::error::ExitCoded for UploadError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::ERROR
    }
    fn hint(&self) -> Option<String> {
        match self {
            UploadError::Empty(_) => Some("pass --source-directory with your training code".into()),
            UploadError::Blob(_) => Some(
                "retry; if it persists check the workspace storage account's network rules".into(),
            ),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
    move |source| UploadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of the snapshot, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path to read (symlinks resolved, like the SDK).
    pub path: PathBuf,
    /// `/`-separated path relative to the source root: the blob name suffix.
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

/// Every file under `root` that v1 and the SDK upload: the same walk local
/// runs snapshot (`.amlignore`, else `.gitignore`, at the root, with
/// pathspec's rules), minus `exclude` (e.g. the local workspace folder),
/// sorted as the SDK hashes them. Symlinked files count with their target's
/// content, as in the SDK.
pub fn list_source_files(root: &Path, exclude: &[PathBuf]) -> Result<Vec<SourceFile>, UploadError> {
    let exclude: Vec<PathBuf> = exclude
        .iter()
        .map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                root.join(p)
            }
        })
        .collect();
    let tree = crate::snapshot::walk(root, &exclude).map_err(|e| UploadError::Io {
        path: root.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut files: Vec<SourceFile> = tree
        .files
        .into_iter()
        .map(|f| SourceFile {
            path: f.path,
            rel: f.relative,
            size: f.size,
            mtime_ns: f.mtime_ns,
            inode: f.inode,
        })
        .collect();
    sort_like_the_sdk(&mut files);
    Ok(files)
}

/// The SDK sorts by `str(rel).lower()`; ties keep a deterministic order here.
fn sort_like_the_sdk(files: &mut [SourceFile]) {
    files.sort_by(|a, b| {
        a.rel
            .to_lowercase()
            .cmp(&b.rel.to_lowercase())
            .then_with(|| a.rel.cmp(&b.rel))
    });
}

/// A hashed snapshot: the SDK content hash and a per-file digest (blake3)
/// that tells a later upload which files changed.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    pub content_hash: String,
    pub digests: BTreeMap<String, String>,
    /// Stat-only identity of the folder (path, size, mtime, inode of every file).
    pub fingerprint: String,
    /// True when the hash came from the cache without reading any file.
    pub from_cache: bool,
}

impl Snapshot {
    /// The files alone, to upload while the hash is still being computed.
    /// Without digests it cannot be compared with an earlier upload, so it
    /// is only for a first upload (no server-side copies).
    pub fn unhashed(root: &Path, files: Vec<SourceFile>) -> Snapshot {
        Snapshot {
            root: root.to_path_buf(),
            files,
            content_hash: String::new(),
            digests: BTreeMap::new(),
            fingerprint: String::new(),
            from_cache: false,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Hash `files` (from [`list_source_files`]), reusing `cache` when nothing changed on disk.
pub fn hash_snapshot(
    root: &Path,
    files: Vec<SourceFile>,
    cache: Option<&UploadCache>,
) -> Result<Snapshot, UploadError> {
    if files.is_empty() {
        return Err(UploadError::Empty(root.to_path_buf()));
    }
    let fingerprint = fingerprint(&files);
    if let Some(cache) =
        cache.filter(|c| c.fingerprint == fingerprint && !c.content_hash.is_empty())
    {
        let digests = cache
            .files
            .iter()
            .map(|(k, v)| (k.clone(), v.digest.clone()))
            .collect();
        return Ok(Snapshot {
            root: root.to_path_buf(),
            files,
            content_hash: cache.content_hash.clone(),
            digests,
            fingerprint,
            from_cache: true,
        });
    }
    let (content_hash, digests) = content_hash(&files)?;
    Ok(Snapshot {
        root: root.to_path_buf(),
        files,
        content_hash,
        digests,
        fingerprint,
        from_cache: false,
    })
}

/// The SDK's `_get_file_list_content_hash`, plus per-file blake3 digests
/// computed in the same single read of each file.
pub fn content_hash(
    files: &[SourceFile],
) -> Result<(String, BTreeMap<String, String>), UploadError> {
    let mut sha = Sha256::new();
    sha.update(files.len().to_string().as_bytes());
    for file in files {
        sha.update(format!("#{}#", file.rel).as_bytes());
        sha.update(file.size.to_string().as_bytes());
    }
    let mut digests = BTreeMap::new();
    let mut buffer = vec![0u8; 1 << 20];
    for file in files {
        let mut handle = std::fs::File::open(&file.path).map_err(io_err(&file.path))?;
        let mut per_file = blake3::Hasher::new();
        loop {
            let n = handle.read(&mut buffer).map_err(io_err(&file.path))?;
            if n == 0 {
                break;
            }
            sha.update(&buffer[..n]);
            per_file.update(&buffer[..n]);
        }
        digests.insert(file.rel.clone(), per_file.finalize().to_hex().to_string());
    }
    Ok((super::environment::hex(&sha.finalize()), digests))
}

fn fingerprint(files: &[SourceFile]) -> String {
    let mut hasher = blake3::Hasher::new();
    for f in files {
        hasher.update(f.rel.as_bytes());
        hasher.update(&[0]);
        hasher.update(&f.size.to_le_bytes());
        hasher.update(&f.mtime_ns.to_le_bytes());
        hasher.update(&f.inode.to_le_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// What azml remembers about the last upload of one source folder to one workspace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UploadCache {
    pub fingerprint: String,
    pub content_hash: String,
    pub files: BTreeMap<String, CachedFile>,
    /// The blob folder (no SAS) the files were last uploaded to, if any.
    pub uploaded_to: Option<String>,
    /// ARM id of the code version that holds them.
    pub code_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CachedFile {
    pub size: u64,
    pub digest: String,
}

impl UploadCache {
    /// Cache file for (workspace, source folder) under `cache_root`.
    pub fn path_for(cache_root: &Path, workspace_id: &str, source_root: &Path) -> PathBuf {
        let canonical =
            std::fs::canonicalize(source_root).unwrap_or_else(|_| source_root.to_path_buf());
        let key = blake3::hash(format!("{workspace_id}\n{}", canonical.display()).as_bytes());
        cache_root
            .join("code-uploads")
            .join(format!("{}.json", key.to_hex()))
    }

    /// The user's cache folder: `AZML_CACHE_DIR`, else the platform cache dir + `azml`.
    pub fn default_root() -> Option<PathBuf> {
        std::env::var_os("AZML_CACHE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("azml")))
    }

    /// A missing or unreadable cache is an empty one (it only saves work).
    pub fn load(path: &Path) -> UploadCache {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Write atomically so a crash never leaves a half-written cache.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }

    /// The cache after `snapshot` was uploaded to `folder_url` as `code_id`.
    pub fn after_upload(
        snapshot: &Snapshot,
        folder_url: Option<String>,
        code_id: Option<String>,
    ) -> Self {
        let files = snapshot
            .files
            .iter()
            .filter_map(|f| {
                let digest = snapshot.digests.get(&f.rel)?.clone();
                Some((
                    f.rel.clone(),
                    CachedFile {
                        size: f.size,
                        digest,
                    },
                ))
            })
            .collect();
        UploadCache {
            fingerprint: snapshot.fingerprint.clone(),
            content_hash: snapshot.content_hash.clone(),
            files,
            uploaded_to: folder_url,
            code_id,
        }
    }
}

/// What an upload did, for the user and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    pub files_uploaded: u64,
    pub files_copied: u64,
    pub bytes_sent: u64,
}

/// A previous upload whose unchanged files can be copied server-side.
#[derive(Debug, Clone)]
pub struct PreviousUpload {
    /// The earlier blob folder, readable with the new SAS (same container).
    pub folder: BlobFolder,
    pub files: BTreeMap<String, CachedFile>,
}

/// The SDK's confirmation metadata, set on the first file ("indicator file").
pub fn confirmation_metadata<'a>(name: &'a str, version: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("upload_status", "completed"),
        ("name", name),
        ("version", version),
    ]
}

/// Upload every file of `snapshot` into `folder`: unchanged files (same digest
/// as in `previous`) by server-side copy, the rest as bytes; then mark the
/// upload complete with the SDK's metadata. `progress` counts bytes.
pub async fn upload_snapshot(
    snapshot: &Snapshot,
    folder: &BlobFolder,
    previous: Option<&PreviousUpload>,
    asset: (&str, &str),
    progress: &indicatif::ProgressBar,
) -> Result<UploadReport, UploadError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_REQUESTS));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut copied = 0;
    for file in &snapshot.files {
        let copy_source = previous.and_then(|prev| unchanged_source(prev, snapshot, file));
        if copy_source.is_some() {
            copied += 1;
        }
        let job = FileJob {
            file: file.clone(),
            folder: folder.clone(),
            copy_source,
            permits: permits.clone(),
            sent: sent.clone(),
            progress: progress.clone(),
        };
        tasks.spawn(job.run());
    }
    let mut fell_back = 0;
    while let Some(joined) = tasks.join_next().await {
        let used_copy = joined.map_err(|e| UploadError::Io {
            path: snapshot.root.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
        if used_copy == CopyOutcome::FellBack {
            fell_back += 1;
        }
    }
    if let Some(first) = snapshot.files.first() {
        folder
            .set_metadata(&first.rel, &confirmation_metadata(asset.0, asset.1))
            .await?;
    }
    let files_copied = copied - fell_back;
    Ok(UploadReport {
        files_uploaded: snapshot.files.len() as u64 - files_copied,
        files_copied,
        bytes_sent: sent.load(Ordering::Relaxed),
    })
}

/// The earlier blob holding exactly this file's bytes, if there is one.
fn unchanged_source(
    prev: &PreviousUpload,
    snapshot: &Snapshot,
    file: &SourceFile,
) -> Option<String> {
    let cached = prev.files.get(&file.rel)?;
    let digest = snapshot.digests.get(&file.rel)?;
    (cached.size == file.size && &cached.digest == digest)
        .then(|| prev.folder.source_url(&file.rel))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyOutcome {
    Uploaded,
    Copied,
    FellBack,
}

/// Upload (or copy) one file.
struct FileJob {
    file: SourceFile,
    folder: BlobFolder,
    copy_source: Option<String>,
    permits: Arc<tokio::sync::Semaphore>,
    sent: Arc<AtomicU64>,
    progress: indicatif::ProgressBar,
}

impl FileJob {
    async fn run(self) -> Result<CopyOutcome, UploadError> {
        if let Some(source) = &self.copy_source {
            let result = {
                let _permit = self.permits.acquire().await.ok();
                self.folder.copy_from(&self.file.rel, source).await
            };
            match result {
                Ok(()) => {
                    self.progress.inc(self.file.size);
                    return Ok(CopyOutcome::Copied);
                }
                Err(err) if err.is_copy_refused() => {
                    tracing::debug!(
                        "server-side copy refused for {}: {err}; uploading",
                        self.file.rel
                    );
                    self.upload().await?;
                    return Ok(CopyOutcome::FellBack);
                }
                Err(err) => return Err(err.into()),
            }
        }
        self.upload().await?;
        Ok(CopyOutcome::Uploaded)
    }

    async fn upload(&self) -> Result<(), UploadError> {
        if self.file.size <= SINGLE_PUT_LIMIT {
            // Read only once a request slot is free: reading every file up
            // front would hold the whole tree in memory and start a blocking
            // thread per file.
            let _permit = self.permits.acquire().await.ok();
            let bytes = tokio::fs::read(&self.file.path)
                .await
                .map_err(io_err(&self.file.path))?;
            let len = bytes.len() as u64;
            self.folder.put_blob(&self.file.rel, bytes).await?;
            self.account(len);
            return Ok(());
        }
        self.upload_blocks().await
    }

    /// Stage blocks in parallel, then commit them in order.
    async fn upload_blocks(&self) -> Result<(), UploadError> {
        let count = self.file.size.div_ceil(BLOCK_SIZE);
        let ids: Vec<String> = (0..count).map(block_id).collect();
        let mut blocks = tokio::task::JoinSet::new();
        for (index, id) in ids.iter().enumerate() {
            let offset = index as u64 * BLOCK_SIZE;
            let len = BLOCK_SIZE.min(self.file.size - offset);
            let (path, rel, id) = (self.file.path.clone(), self.file.rel.clone(), id.clone());
            let (folder, permits) = (self.folder.clone(), self.permits.clone());
            let (sent, progress) = (self.sent.clone(), self.progress.clone());
            blocks.spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                let bytes = read_range(&path, offset, len).await?;
                folder.put_block(&rel, &id, bytes).await?;
                sent.fetch_add(len, Ordering::Relaxed);
                progress.inc(len);
                Ok::<(), UploadError>(())
            });
        }
        while let Some(joined) = blocks.join_next().await {
            joined.map_err(|e| UploadError::Io {
                path: self.file.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        }
        let _permit = self.permits.acquire().await.ok();
        self.folder.put_block_list(&self.file.rel, &ids).await?;
        Ok(())
    }

    fn account(&self, len: u64) {
        self.sent.fetch_add(len, Ordering::Relaxed);
        self.progress.inc(len);
    }
}

/// Block ids must all have the same length before base64.
fn block_id(index: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("azml-block-{index:08}"))
}

async fn read_range(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, UploadError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(io_err(path))?;
    let mut buffer = vec![0u8; len as usize];
    file.read_exact(&mut buffer).await.map_err(io_err(path))?;
    Ok(buffer)
}

/// A byte-counting progress bar on stderr; indicatif hides it when stderr is not a terminal.
pub fn progress_bar(total_bytes: u64, hidden: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if hidden || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total_bytes),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "Uploading code {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn amlignore_wins_over_gitignore_and_matches_files_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".amlignore", "*.log\nlogs/\n");
        write(dir.path(), ".gitignore", "*.py\n");
        write(dir.path(), "train.py", "x");
        write(dir.path(), "a.log", "x");
        write(dir.path(), "sub/b.log", "x");
        write(dir.path(), "logs/c.txt", "x");
        let files = list_source_files(dir.path(), &[]).unwrap();
        let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, [".amlignore", ".gitignore", "train.py"]);
    }

    #[test]
    fn files_sort_by_lower_cased_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["b.txt", "A.txt", "Folder2/file1.txt", "folder1/file1.txt"] {
            write(dir.path(), rel, "x");
        }
        let files = list_source_files(dir.path(), &[]).unwrap();
        let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            ["A.txt", "b.txt", "folder1/file1.txt", "Folder2/file1.txt"]
        );
    }

    #[test]
    fn excluded_folders_are_not_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.py", "x");
        write(dir.path(), ".azureml/localws/runs.sqlite", "x");
        let files = list_source_files(dir.path(), &[PathBuf::from(".azureml/localws")]).unwrap();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn unchanged_folder_hash_comes_from_the_cache_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.py", "print(1)");
        let files = list_source_files(dir.path(), &[]).unwrap();
        let first = hash_snapshot(dir.path(), files.clone(), None).unwrap();
        assert!(!first.from_cache);
        let cache = UploadCache::after_upload(&first, None, None);
        let again = hash_snapshot(dir.path(), files, Some(&cache)).unwrap();
        assert!(again.from_cache);
        assert_eq!(again.content_hash, first.content_hash);
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = hash_snapshot(dir.path(), Vec::new(), None).unwrap_err();
        assert!(matches!(err, UploadError::Empty(_)));
    }

    #[test]
    fn block_ids_have_equal_length() {
        assert_eq!(block_id(0).len(), block_id(99_999_999).len());
    }
}

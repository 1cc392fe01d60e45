//! Source snapshots: v1's ignore rules on real folders, the object store,
//! the hash cache and materialized run folders.

use azml::snapshot::{
    LimitWarning, Manifest, ManifestEntry, Materialize, SkipReason, Store, Summary, limit_warnings,
};
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Create `files` (relative paths; content = the path) under a fresh dir.
fn tree(files: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in files {
        write(dir.path(), f, f);
    }
    dir
}

fn write(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

fn snapshot_paths(source: &Path, exclude: &[PathBuf]) -> BTreeSet<String> {
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(source, exclude).expect("snapshot");
    snap.manifest.entries.into_iter().map(|e| e.path).collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|s| s.to_string()).collect()
}

const FILES: &[&str] = &[
    "train.py",
    "data/big.csv",
    "data/keep.csv",
    "logs/run.log",
    "src/model.py",
    "src/cache.pyc",
    "src/logs/inner.log",
    "outputs/model.pkl",
    "docs/readme.md",
    "notes.txt",
];

/// (.amlignore, .gitignore, nested src/.gitignore, files expected in the snapshot)
/// (name, .amlignore, .gitignore, files expected in the snapshot)
type IgnoreCase = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Vec<&'static str>,
);

#[test]
fn ignore_rules_follow_v1_exactly() {
    let all: Vec<&str> = FILES.to_vec();
    let cases: Vec<IgnoreCase> = vec![
        // No ignore file: everything.
        ("no ignore file", None, None, all.clone()),
        // .gitignore applies when there is no .amlignore.
        (
            "gitignore only",
            None,
            Some("*.pyc\nlogs/\n"),
            vec![
                "train.py",
                "data/big.csv",
                "data/keep.csv",
                "src/model.py",
                "outputs/model.pkl",
                "docs/readme.md",
                "notes.txt",
            ],
        ),
        // .amlignore beats .gitignore (which is then not read at all).
        (
            "amlignore beats gitignore",
            Some("data/\n"),
            Some("*.py\n"),
            vec![
                "train.py",
                "logs/run.log",
                "src/model.py",
                "src/cache.pyc",
                "src/logs/inner.log",
                "outputs/model.pkl",
                "docs/readme.md",
                "notes.txt",
            ],
        ),
        // Negation re-includes a file below an excluded directory (pathspec, last match wins).
        (
            "negation",
            Some("data/\n!data/keep.csv\n"),
            None,
            vec![
                "train.py",
                "data/keep.csv",
                "logs/run.log",
                "src/model.py",
                "src/cache.pyc",
                "src/logs/inner.log",
                "outputs/model.pkl",
                "docs/readme.md",
                "notes.txt",
            ],
        ),
        // A pattern without a slash matches at any depth; anchored ones only at the root.
        (
            "anchored vs floating",
            Some("/logs\n*.pyc\n"),
            None,
            vec![
                "train.py",
                "data/big.csv",
                "data/keep.csv",
                "src/model.py",
                "src/logs/inner.log",
                "outputs/model.pkl",
                "docs/readme.md",
                "notes.txt",
            ],
        ),
        (
            "floating directory pattern",
            Some("logs/\n"),
            None,
            vec![
                "train.py",
                "data/big.csv",
                "data/keep.csv",
                "src/model.py",
                "src/cache.pyc",
                "outputs/model.pkl",
                "docs/readme.md",
                "notes.txt",
            ],
        ),
        // The seven patterns `folder attach` writes.
        (
            "v1 default amlignore",
            Some(
                ".ipynb_checkpoints\nazureml-logs\n.azureml\n.git\noutputs\nazureml-setup\ndocs\n",
            ),
            None,
            vec![
                "train.py",
                "data/big.csv",
                "data/keep.csv",
                "logs/run.log",
                "src/model.py",
                "src/cache.pyc",
                "src/logs/inner.log",
                "notes.txt",
            ],
        ),
        // A nested .gitignore is not read (root file only).
        ("nested gitignore ignored", None, None, all.clone()),
        // Comments, blank lines and a lone slash change nothing.
        ("comments", Some("# data/\n\n/\n"), None, all.clone()),
        // Everything but one file.
        (
            "star with negation",
            Some("*\n!train.py\n"),
            None,
            vec!["train.py"],
        ),
    ];
    for (name, amlignore, gitignore, expected) in cases {
        let dir = tree(FILES);
        let mut expected: BTreeSet<String> = set(&expected);
        if let Some(text) = amlignore {
            write(dir.path(), ".amlignore", text);
            if !text.lines().any(|l| l == "*") {
                expected.insert(".amlignore".into());
            }
        }
        if let Some(text) = gitignore {
            write(dir.path(), ".gitignore", text);
            let gitignore_excluded = amlignore.is_some_and(|a| a.contains('*'));
            if !gitignore_excluded {
                expected.insert(".gitignore".into());
            }
        }
        if name == "nested gitignore ignored" {
            write(dir.path(), "src/.gitignore", "*\n");
            expected.insert("src/.gitignore".into());
        }
        assert_eq!(snapshot_paths(dir.path(), &[]), expected, "case {name:?}");
    }
}

#[test]
fn local_workspace_folder_is_always_excluded() {
    let dir = tree(&["train.py", ".azml/runs/r1/log.txt", ".azml-not/x.txt"]);
    let excluded = [dir.path().join(".azml")];
    assert_eq!(
        snapshot_paths(dir.path(), &excluded),
        set(&[".azml-not/x.txt", "train.py"])
    );
}

#[test]
fn store_inside_the_source_is_not_snapshotted() {
    let dir = tree(&["train.py"]);
    let store = Store::open(dir.path().join(".store")).expect("store");
    let first = store.snapshot(dir.path(), &[]).expect("snapshot");
    let again = store.snapshot(dir.path(), &[]).expect("snapshot");
    assert_eq!(first.manifest, again.manifest);
    assert_eq!(again.summary.files, 1);
}

#[test]
fn materialized_tree_equals_source_minus_ignored_files() {
    let dir = tree(FILES);
    write(dir.path(), ".amlignore", "logs/\n*.pyc\n");
    std::fs::set_permissions(
        dir.path().join("train.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    let run = tempfile::tempdir().expect("tempdir");
    store
        .materialize(&snap.manifest, run.path(), Materialize::Link)
        .expect("materialize");
    let mut seen = BTreeSet::new();
    for entry in walk_files(run.path()) {
        let relative = entry
            .strip_prefix(run.path())
            .expect("inside")
            .to_str()
            .expect("utf8")
            .to_string();
        let want = std::fs::read(dir.path().join(&relative)).expect("source file");
        assert_eq!(std::fs::read(&entry).expect("run file"), want, "{relative}");
        seen.insert(relative);
    }
    let expected: BTreeSet<String> = FILES
        .iter()
        .filter(|f| !f.contains("logs/") && !f.ends_with(".pyc"))
        .map(|f| f.to_string())
        .chain([".amlignore".to_string()])
        .collect();
    assert_eq!(seen, expected);
    let mode = std::fs::metadata(run.path().join("train.py"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit survives");
    let mode = std::fs::metadata(run.path().join("notes.txt"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o333,
        0,
        "linked files are read-only so the store cannot be corrupted"
    );
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_script_cannot_write_through_a_hard_link_into_the_store() {
    let dir = tree(&["train.py"]);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    let run = tempfile::tempdir().expect("tempdir");
    store
        .materialize(&snap.manifest, run.path(), Materialize::Link)
        .expect("materialize");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .open(run.path().join("train.py"));
    // Root ignores permission bits; elsewhere the write must be refused.
    if !is_root() {
        assert!(opened.is_err(), "read-only object must refuse writes");
    }
    let object = store.object_path(&snap.manifest.entries[0]);
    assert_eq!(std::fs::read_to_string(object).expect("object"), "train.py");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn copy_mode_gives_writable_private_files() {
    let dir = tree(&["train.py"]);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    let run = tempfile::tempdir().expect("tempdir");
    store
        .materialize(&snap.manifest, run.path(), Materialize::Copy)
        .expect("materialize");
    std::fs::write(run.path().join("train.py"), "changed").expect("writable copy");
    let object = store.object_path(&snap.manifest.entries[0]);
    assert_eq!(std::fs::read_to_string(object).expect("object"), "train.py");
}

#[test]
fn copy_small_mode_lets_a_script_rewrite_its_sources_but_links_big_files() {
    let dir = tree(&["train.py"]);
    let big = "x".repeat(azml::snapshot::PRIVATE_COPY_LIMIT as usize);
    write(dir.path(), "data/big.bin", &big);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    let run = tempfile::tempdir().expect("tempdir");
    store
        .materialize(&snap.manifest, run.path(), Materialize::CopySmall)
        .expect("materialize");
    std::fs::write(run.path().join("train.py"), "changed").expect("small files are private copies");
    let entry = |path: &str| {
        snap.manifest
            .entries
            .iter()
            .find(|e| e.path == path)
            .expect("entry")
            .clone()
    };
    let source_object = store.object_path(&entry("train.py"));
    assert_eq!(
        std::fs::read_to_string(source_object).expect("object"),
        "train.py"
    );
    let big_object = std::fs::metadata(store.object_path(&entry("data/big.bin"))).expect("object");
    let big_in_run = std::fs::metadata(run.path().join("data/big.bin")).expect("run file");
    assert_eq!(
        big_in_run.ino(),
        big_object.ino(),
        "big files are hard links, not copies"
    );
}

#[test]
fn unchanged_resubmit_rehashes_nothing_and_one_change_rehashes_one_file() {
    let dir = tree(&["a.py", "b.py", "c/d.py"]);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    // Files written within the racy window are never cached; let them age.
    std::thread::sleep(std::time::Duration::from_millis(120));
    let first = store.snapshot(dir.path(), &[]).expect("first");
    assert_eq!(first.hashed_files, 3);
    let second = store.snapshot(dir.path(), &[]).expect("second");
    assert_eq!(
        second.hashed_files, 0,
        "unchanged resubmit must not read any file"
    );
    assert_eq!(first.manifest.id(), second.manifest.id());
    write(dir.path(), "b.py", "new content of b");
    let third = store.snapshot(dir.path(), &[]).expect("third");
    assert_eq!(third.hashed_files, 1);
    assert_ne!(third.manifest.id(), first.manifest.id());
    let b = third
        .manifest
        .entries
        .iter()
        .find(|e| e.path == "b.py")
        .expect("b.py");
    assert_eq!(
        b.hash,
        blake3::hash(b"new content of b").to_hex().to_string()
    );
    assert_eq!(b.size, 16);
}

#[test]
fn a_corrupt_hash_cache_only_costs_rehashing() {
    let dir = tree(&["a.py"]);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    std::thread::sleep(std::time::Duration::from_millis(120));
    store.snapshot(dir.path(), &[]).expect("first");
    for entry in std::fs::read_dir(store_dir.path().join("cache")).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), "{not json").expect("corrupt");
    }
    let again = store.snapshot(dir.path(), &[]).expect("again");
    assert_eq!(again.hashed_files, 1);
}

#[test]
fn symlinks_to_files_are_followed_and_to_directories_skipped() {
    let dir = tree(&["real.txt", "sub/inner.txt"]);
    std::os::unix::fs::symlink("real.txt", dir.path().join("link.txt")).expect("symlink");
    std::os::unix::fs::symlink("sub", dir.path().join("sublink")).expect("symlink");
    std::os::unix::fs::symlink("missing", dir.path().join("dangling")).expect("symlink");
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    let paths: Vec<&str> = snap
        .manifest
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["link.txt", "real.txt", "sub/inner.txt"]);
    let skipped: Vec<(&str, SkipReason)> = snap
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("dangling", SkipReason::DanglingSymlink),
            ("sublink", SkipReason::DirectorySymlink)
        ]
    );
}

#[test]
fn summary_and_v1_limit_warnings() {
    let dir = tree(&["a.txt", "b.txt"]);
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let snap = store.snapshot(dir.path(), &[]).expect("snapshot");
    assert_eq!(
        snap.summary,
        Summary {
            files: 2,
            bytes: 10
        }
    );
    assert!(snap.warnings.is_empty());
    assert_eq!(snap.summary.to_string(), "snapshot: 2 files, 10 bytes");
    let over = limit_warnings(&Summary {
        files: 2001,
        bytes: 300 * 1024 * 1024 + 1,
    });
    assert_eq!(
        over,
        [
            LimitWarning::TooManyFiles { files: 2001 },
            LimitWarning::TooLarge {
                bytes: 300 * 1024 * 1024 + 1
            }
        ]
    );
    assert!(over[0].to_string().contains(".amlignore"));
    assert!(
        limit_warnings(&Summary {
            files: 2000,
            bytes: 300 * 1024 * 1024
        })
        .is_empty()
    );
}

#[test]
fn materialize_refuses_paths_that_escape_the_run_folder() {
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let run = tempfile::tempdir().expect("tempdir");
    for bad in ["../evil.py", "/etc/passwd", "a/../../b", ""] {
        let manifest = Manifest {
            entries: vec![ManifestEntry {
                path: bad.into(),
                hash: "00".repeat(32),
                size: 0,
                executable: false,
            }],
        };
        let err = store
            .materialize(&manifest, run.path(), Materialize::Link)
            .unwrap_err();
        assert!(err.to_string().contains("unsafe path"), "{bad}: {err}");
    }
}

#[test]
fn missing_source_directory_is_a_clear_error() {
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path()).expect("store");
    let err = store.snapshot(Path::new("/no/such/dir"), &[]).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"));
}

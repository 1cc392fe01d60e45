//! Snapshot benchmark (issue 3): a 10,000-file / 200 MB source tree.
//! `cargo bench --bench snapshot` prints the timings recorded in docs/perf.md:
//! first snapshot, unchanged resubmit (goal ≤ 150 ms), one-file-changed
//! resubmit, and materializing a run folder by hard links.

use azml::snapshot::{Materialize, Store};
use std::path::Path;
use std::time::{Duration, Instant};

const FILES: usize = 10_000;
const TOTAL_BYTES: usize = 200 * 1024 * 1024;

fn main() {
    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("project");
    let started = Instant::now();
    make_tree(&source);
    eprintln!(
        "tree: {FILES} files, {} MB, written in {:?}",
        TOTAL_BYTES >> 20,
        started.elapsed()
    );
    // Let mtimes age past the store's racy-entry window, as real sources are.
    std::thread::sleep(Duration::from_millis(200));
    let store = Store::open(work.path().join("store")).expect("store");

    // The floor under the same load: list every directory and lstat every file.
    let mut floor = Vec::new();
    for _ in 0..5 {
        floor.push(timed(|| bare_walk(&source)).1);
    }
    floor.sort();
    report("baseline: readdir + lstat, no hashing", floor[2], 0);

    let (first, t_first) = timed(|| store.snapshot(&source, &[]).expect("first"));
    report("first snapshot", t_first, first.hashed_files);

    let mut unchanged = Vec::new();
    for _ in 0..5 {
        let (snap, t) = timed(|| store.snapshot(&source, &[]).expect("resubmit"));
        assert_eq!(snap.hashed_files, 0);
        unchanged.push(t);
    }
    unchanged.sort();
    report("unchanged resubmit (median of 5)", unchanged[2], 0);

    std::fs::write(source.join("dir007/file00070.bin"), b"changed").expect("change one file");
    let (changed, t_changed) = timed(|| store.snapshot(&source, &[]).expect("changed"));
    report("one-file-changed resubmit", t_changed, changed.hashed_files);

    let run = work.path().join("run");
    let (_, t_link) = timed(|| {
        store
            .materialize(&changed.manifest, &run, Materialize::Link)
            .expect("materialize")
    });
    report("materialize (hard links)", t_link, 0);
}

/// What any snapshot must at least do: read every directory, stat every file.
fn bare_walk(dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let meta = entry.metadata().expect("stat");
        if meta.is_dir() {
            files += bare_walk(&entry.path());
        } else {
            files += 1;
        }
    }
    files
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn report(what: &str, took: Duration, hashed: usize) {
    println!(
        "{what:<36} {:>9.1} ms   files read: {hashed}",
        took.as_secs_f64() * 1000.0
    );
}

/// 100 directories × 100 files, deterministic pseudo-random content, sizes
/// spread around the mean so the total is 200 MB.
fn make_tree(root: &Path) {
    let mean = TOTAL_BYTES / FILES;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut written = 0;
    for i in 0..FILES {
        let dir = root.join(format!("dir{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        let size = if i + 1 == FILES {
            TOTAL_BYTES.saturating_sub(written)
        } else {
            mean / 2 + (next() as usize % mean)
        };
        let mut content = vec![0u8; size];
        for chunk in content.chunks_mut(8) {
            let word = next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        std::fs::write(dir.join(format!("file{i:05}.bin")), &content).expect("write");
        written += size;
    }
}

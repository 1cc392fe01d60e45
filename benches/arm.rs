//! `computetarget show` and `create amlcompute` against the loopback fake ARM:
//! whole-process wall time and peak RSS of the real binary (each run is a fresh
//! process, as a CI script would call it). `cargo bench --bench arm`; to time
//! another build of azml, `AZML_BENCH_BIN=path/to/azml cargo test --bench arm`.

#[path = "../tests/support/fake_arm.rs"]
mod fake_arm;

use fake_arm::{FakeArm, Options};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

/// One process: wall time and its own peak RSS (from wait4, so children do not mix).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also yields its rusage
fn measure(fake: &FakeArm, home: &std::path::Path, args: &[&str]) -> (Duration, i64) {
    let started = Instant::now();
    let bin = std::env::var("AZML_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_azml").into());
    let child = std::process::Command::new(bin)
        .args(args)
        .args([
            "-w",
            fake_arm::WS,
            "-g",
            fake_arm::RG,
            "--subscription-id",
            fake_arm::SUB,
        ])
        .current_dir(home)
        .env("HOME", home)
        .env("AZML_ARM_ENDPOINT", &fake.base)
        .env("AZML_ACCESS_TOKEN", fake_arm::TOKEN)
        .env("AZML_LRO_POLL_MS", "1")
        .env_remove("AZML_AUTH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn azml");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; rusage is a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert!(
        rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "azml {args:?} failed"
    );
    (elapsed, usage.ru_maxrss)
}

fn report(label: &str, mut samples: Vec<(Duration, i64)>) {
    samples.sort_by_key(|s| s.0);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2].0;
    let p90 = samples[samples.len() * 9 / 10].0;
    let peak_kb = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "| {label} | {RUNS} | {:.1} | {:.1} | {:.1} |",
        ms(median),
        ms(p90),
        peak_kb as f64 / 1024.0
    );
}

fn main() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", serde_json::json!({}));
    let home = tempfile::tempdir().expect("tempdir");
    println!("| command | runs | median ms | p90 ms | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|");
    let show: Vec<_> = (0..RUNS)
        .map(|_| measure(&fake, home.path(), &["computetarget", "show", "-n", "cpu"]))
        .collect();
    report("computetarget show", show);
    let create: Vec<_> = (0..RUNS)
        .map(|i| {
            let name = format!("c{i}");
            measure(
                &fake,
                home.path(),
                &[
                    "computetarget",
                    "create",
                    "amlcompute",
                    "-n",
                    &name,
                    "-s",
                    "STANDARD_D2_V2",
                    "--max-nodes",
                    "4",
                ],
            )
        })
        .collect();
    report(
        "computetarget create amlcompute (GET, GET workspace, PUT, 3 polls, final GET)",
        create,
    );
}

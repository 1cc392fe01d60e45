//! `computetarget show` and `create amlcompute` against the loopback fake ARM:
//! whole-process wall time, CPU time and peak RSS of the real binary (each run
//! is a fresh process, as a CI script would call it). `cargo bench --bench arm`;
//! to time another build of azml, `AZML_BENCH_BIN=/abs/path/to/azml cargo test --bench arm`.
//!
//! The fake ARM runs in a separate process (this bench re-executed with
//! `AZML_BENCH_SERVE_FAKE_ARM=1`). It must: a child's `ru_maxrss` starts at the
//! high-water RSS of the process that spawned it (Linux records the old address
//! space's peak at `exec`, and posix_spawn's child shares the parent's), so
//! spawning azml from a process holding the fake and its compiled JSON schemas
//! (~29 MB) reported 29 MB for azml itself.

#[path = "../tests/support/fake_arm.rs"]
mod fake_arm;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

const RUNS: usize = 30;
const SERVE_ENV: &str = "AZML_BENCH_SERVE_FAKE_ARM";

/// One process: wall time, CPU time (user+sys) and its own peak RSS in KiB (from wait4).
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
}

#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also yields its rusage
fn measure(base: &str, home: &std::path::Path, args: &[&str]) -> Sample {
    let bin = std::env::var("AZML_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_azml").into());
    let started = Instant::now();
    let child = std::process::Command::new(&bin)
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
        .env("AZML_ARM_ENDPOINT", base)
        .env("AZML_ACCESS_TOKEN", fake_arm::TOKEN)
        .env("AZML_LRO_POLL_MS", "1")
        .env_remove("AZML_AUTH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin} (AZML_BENCH_BIN must be absolute): {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; rusage is a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert!(
        rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "azml {args:?} failed"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn report(label: &str, samples: Vec<Sample>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let p90 = walls[walls.len() * 9 / 10];
    let cpu = median(samples.iter().map(|s| s.cpu).collect());
    let mut rss: Vec<i64> = samples.iter().map(|s| s.max_rss_kb).collect();
    rss.sort();
    println!(
        "| {label} | {RUNS} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms(median(walls)),
        ms(p90),
        ms(cpu),
        rss[rss.len() / 2] as f64 / 1024.0,
        rss[rss.len() - 1] as f64 / 1024.0,
    );
}

/// The fake ARM's process: serve until stdin closes.
fn serve_fake() {
    let fake = fake_arm::FakeArm::start(fake_arm::Options::default());
    fake.seed_compute("cpu", "AmlCompute", serde_json::json!({}));
    println!("{}", fake.base);
    let _ = std::io::stdout().flush();
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
}

/// This process's own peak RSS: the floor every child's ru_maxrss starts from.
fn own_peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    if std::env::var_os(SERVE_ENV).is_some() {
        return serve_fake();
    }
    let mut server = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(SERVE_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the fake ARM process");
    let mut base = String::new();
    std::io::BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut base)
        .expect("fake ARM address");
    let base = base.trim().to_string();
    let home = tempfile::tempdir().expect("tempdir");
    println!(
        "| command | runs | median wall ms | p90 wall ms | median CPU ms (user+sys) | median peak RSS MB | max peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let show: Vec<_> = (0..RUNS)
        .map(|_| measure(&base, home.path(), &["computetarget", "show", "-n", "cpu"]))
        .collect();
    report("computetarget show (1 GET)", show);
    let create: Vec<_> = (0..RUNS)
        .map(|i| {
            let name = format!("c{i}");
            measure(
                &base,
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
        "computetarget create amlcompute (GET ∥ GET workspace, PUT, 3 polls, final GET)",
        create,
    );
    drop(server.stdin.take());
    let _ = server.wait();
    if let Some(kb) = own_peak_rss_kb() {
        println!(
            "\nspawning process's own peak RSS (a floor under every child's ru_maxrss): {:.1} MB",
            kb as f64 / 1024.0
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = load.split_whitespace().next().unwrap_or("?");
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("load average (1 min) at the end: {one_minute} on {cores} cores");
    }
}

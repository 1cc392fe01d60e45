//! Process facts and signals the store and runner need: is a recorded pid
//! still the same process (pids are reused), and kill a whole process group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The kernel's start time of `pid` in clock ticks since boot (Linux
/// `/proc/<pid>/stat` field 22). Together with the pid it identifies a process
/// even after the pid has been reused. `None` where /proc is unavailable.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let state = after_name.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// [`start_ticks`] of a supervisor: this process's own start never changes,
/// so it is read once (a sweep records it for every child).
pub fn supervisor_start_ticks(pid: u32) -> Option<u64> {
    static OWN: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    if pid == std::process::id() {
        *OWN.get_or_init(|| start_ticks(pid))
    } else {
        start_ticks(pid)
    }
}

/// Whether `pid` runs and, when `start` is known, is the process that had that start time.
pub fn is_same_process_alive(pid: u32, start: Option<u64>) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    let exists = match nix::sys::signal::kill(Pid::from_raw(pid as i32), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    };
    if !exists {
        return false;
    }
    let have_proc = std::path::Path::new("/proc/self/stat").exists();
    match (start, start_ticks(pid)) {
        (Some(recorded), Some(now)) => recorded == now,
        // Unreadable with /proc present means a zombie: it has exited.
        (_, None) => !have_proc,
        (None, Some(_)) => true,
    }
}

/// Send `signal` to every process in group `pgid`. Errors (group already gone) are ignored.
pub fn signal_group(pgid: u32, signal: Signal) {
    if pgid > 1 && pgid <= i32::MAX as u32 {
        let _ = killpg(Pid::from_raw(pgid as i32), signal);
    }
}

/// SIGKILL the whole group at once (used when no graceful stop is possible).
pub fn kill_group_now(pgid: u32) {
    signal_group(pgid, Signal::SIGKILL);
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: u32) -> bool {
    if pgid <= 1 || pgid > i32::MAX as u32 {
        return false;
    }
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// Start `cmd` in a new session (`setsid`): no controlling terminal, so the
/// shell's Ctrl-C or hang-up never reaches a detached supervisor.
pub fn spawn_in_new_session(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_with_its_start_time() {
        let me = std::process::id();
        assert!(is_same_process_alive(me, start_ticks(me)));
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_not_the_same_process() {
        let me = std::process::id();
        if let Some(start) = start_ticks(me) {
            assert!(!is_same_process_alive(me, Some(start + 1)));
        }
    }
}

//! A private `sshd` on 127.0.0.1 for tests: free port, generated host key,
//! an authorized test key, its own config, no system service. It runs as the
//! current user (root too: `PermitRootLogin yes`) and gives the remote side
//! its own `$HOME`, so `~/.azml` on the "host" is a temp folder.
//! Killed, with everything it started, on drop.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    /// Keys, config and log of this server.
    pub dir: tempfile::TempDir,
    /// `$HOME` of sessions on this "host".
    pub remote_home: PathBuf,
    /// Private key the server accepts.
    pub client_key: PathBuf,
    /// The server's public host key line (`ssh-ed25519 AAAA…`).
    pub host_key_pub: String,
    child: Option<Child>,
    /// Non-sshd processes left behind by `kill_server`, killed on drop.
    orphans: Vec<i32>,
}

/// Whether CI demands every optional component (then a skip is a failure).
pub fn require_all() -> bool {
    std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Skip (print why and return None) or, under `AZML_TEST_REQUIRE_ALL=1`, fail.
pub fn skip_or_fail<T>(reason: &str) -> Option<T> {
    if require_all() {
        panic!("required test component missing: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    None
}

fn find_sshd() -> Option<PathBuf> {
    let candidates = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"];
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(found);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v sshd"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "azml-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Sshd {
    /// Start a server, or skip/fail when sshd or ssh is not installed.
    pub fn start() -> Option<Sshd> {
        let Some(sshd) = find_sshd() else {
            return skip_or_fail("sshd is not installed (apt-get install openssh-server)");
        };
        if Command::new("ssh")
            .arg("-V")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return skip_or_fail(
                "the ssh client is not installed (apt-get install openssh-client)",
            );
        }
        if nix_is_root() {
            // sshd refuses to start as root without its privilege separation folder.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::Builder::new()
            .prefix("azml-sshd")
            .tempdir()
            .expect("tempdir");
        let remote_home = dir.path().join("home");
        std::fs::create_dir_all(&remote_home).expect("remote home");
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        let client_pub = std::fs::read_to_string(dir.path().join("client_key.pub")).expect("pub");
        std::fs::write(dir.path().join("authorized_keys"), client_pub).expect("authorized_keys");
        let host_key_pub =
            std::fs::read_to_string(dir.path().join("host_key.pub")).expect("host pub");
        let mut server = Sshd {
            port: 0,
            client_key: dir.path().join("client_key"),
            remote_home,
            host_key_pub: host_key_pub.trim().to_string(),
            dir,
            child: None,
            orphans: Vec::new(),
        };
        for _ in 0..5 {
            if server.spawn(&sshd, free_port()) {
                return Some(server);
            }
        }
        panic!("sshd did not start; log:\n{}", server.log());
    }

    fn spawn(&mut self, sshd: &Path, port: u16) -> bool {
        let d = self.dir.path();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
             StrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nMaxSessions 30\n\
             MaxStartups 50\nSetEnv HOME={home}\nLogLevel ERROR\nAcceptEnv LANG LC_*\n",
            d = d.display(),
            home = self.remote_home.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("log");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        self.port = port;
        if self.wait_ready() {
            return true;
        }
        self.kill_all();
        false
    }

    /// Ready when the port answers with an SSH banner.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The listener pid.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Every process started under the listener (connections, sessions, scripts).
    pub fn descendants(&self) -> Vec<i32> {
        let Some(root) = self.pid() else {
            return Vec::new();
        };
        descendants_of(root)
    }

    /// Kill the server and its connection processes (sshd only) as a crash or
    /// a network cut would: the user's processes on the "host" keep running
    /// (they are cleaned up on drop).
    pub fn kill_server(&mut self) {
        for pid in self.descendants() {
            if comm_of(pid).as_deref() == Some("sshd") {
                kill(pid);
            } else {
                self.orphans.push(pid);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_all(&mut self) {
        for pid in self.descendants().into_iter().chain(self.orphans.drain(..)) {
            kill(pid);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn nix_is_root() -> bool {
    // SAFETY-free: read our effective uid from /proc to avoid a libc dependency here.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn kill(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The `comm` (process name) of `pid`.
pub fn comm_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The NUL-separated command line of `pid`, as one string with spaces.
pub fn cmdline_of(pid: i32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// All live pids on this machine.
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may itself contain spaces or parens.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Transitive children of `root`, found through /proc.
pub fn descendants_of(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| parent_of(p).map(|pp| (p, pp)))
        .collect();
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for (p, pp) in &parents {
            if found.contains(pp) {
                found.insert(*p);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.remove(&root);
    found.into_iter().collect()
}

/// Pids whose command line contains `marker` (processes "on the host").
pub fn pids_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me && cmdline_of(p).is_some_and(|c| c.contains(marker)))
        .collect()
}

//! Reverse forwards through ssh's shared connection without starting an
//! `ssh -O` process: azml speaks OpenSSH's multiplexing protocol (PROTOCOL.mux,
//! version 4) on the ControlMaster socket itself. A run's forward then costs
//! one round trip on a Unix socket (≈ 0.1 ms) instead of an ssh client start
//! (≈ 4 ms of CPU, on the critical path of every remote run).
//!
//! The launch session goes the same way ([`open_session`]): the master gets
//! the session's stdin/stdout/stderr as file descriptors over the socket and
//! relays them itself, so a run starts no local `ssh` client at all (its
//! start is ≈ 3 ms on the critical path and ≈ 4 ms of CPU, the same as a
//! bare `ssh host cmd` pays).
//!
//! Forwards to the same local port (a sweep's children share one tracking
//! endpoint) are shared and counted: the master keeps a `-R 0:…` forward under
//! its *requested* spec (listen port 0), so closing one closes whichever of
//! several identical specs it finds first — possibly a running child's.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const MUX_MSG_HELLO: u32 = 0x0000_0001;
const MUX_C_NEW_SESSION: u32 = 0x1000_0002;
const MUX_C_OPEN_FWD: u32 = 0x1000_0006;
const MUX_C_CLOSE_FWD: u32 = 0x1000_0007;
const MUX_S_OK: u32 = 0x8000_0001;
const MUX_S_EXIT_MESSAGE: u32 = 0x8000_0004;
const MUX_S_SESSION_OPENED: u32 = 0x8000_0006;
const MUX_S_REMOTE_PORT: u32 = 0x8000_0007;
/// No escape character (`-e none`): the session's stdin is data only.
const NO_ESCAPE_CHAR: u32 = 0xffff_ffff;
/// What ssh exits with when the connection failed; a session whose master
/// went away without an exit status ends with it too.
pub const NO_EXIT_STATUS: i32 = 255;
const MUX_FWD_REMOTE: u32 = 2;
const SSHMUX_VER: u32 = 4;
const LOOPBACK: &str = "127.0.0.1";
/// A master that does not answer within this is treated as gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the master did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("talking to the shared connection {socket}: {source}")]
    Io {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("the shared connection refused: {0}")]
    Refused(String),
    #[error("unexpected answer from the shared connection (message 0x{0:08x})")]
    Protocol(u32),
}

/// Ask the master at `socket` for a reverse forward from a free loopback port
/// on the host to `127.0.0.1:local_port` here; returns the host's port.
pub fn open_remote_forward(socket: &Path, local_port: u16) -> Result<u16, MuxError> {
    let reply = request(socket, MUX_C_OPEN_FWD, local_port)?;
    match reply.kind {
        MUX_S_REMOTE_PORT => reply
            .body
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .and_then(|port| u16::try_from(port).ok())
            .ok_or(MuxError::Protocol(reply.kind)),
        kind => Err(reply.refusal().unwrap_or(MuxError::Protocol(kind))),
    }
}

/// Close the forward [`open_remote_forward`] opened for `local_port`.
pub fn close_remote_forward(socket: &Path, local_port: u16) -> Result<(), MuxError> {
    let reply = request(socket, MUX_C_CLOSE_FWD, local_port)?;
    match reply.kind {
        MUX_S_OK => Ok(()),
        kind => Err(reply.refusal().unwrap_or(MuxError::Protocol(kind))),
    }
}

struct Reply {
    kind: u32,
    /// After the type and the request id.
    body: Vec<u8>,
}

impl Reply {
    /// The message of a failure / permission-denied reply.
    fn refusal(&self) -> Option<MuxError> {
        let len = u32::from_be_bytes(self.body.get(..4)?.try_into().ok()?) as usize;
        let text = self.body.get(4..4 + len)?;
        Some(MuxError::Refused(
            String::from_utf8_lossy(text).into_owned(),
        ))
    }
}

const REQUEST_ID: u32 = 1;

/// A fresh control connection, past the hello exchange.
fn connect(socket: &Path) -> Result<UnixStream, MuxError> {
    let io = |source| MuxError::Io {
        socket: socket.into(),
        source,
    };
    let mut conn = UnixStream::connect(socket).map_err(io)?;
    conn.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    conn.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    let mut hello = Vec::new();
    put_u32(&mut hello, MUX_MSG_HELLO);
    put_u32(&mut hello, SSHMUX_VER);
    write_packet(&mut conn, &hello).map_err(io)?;
    let theirs = read_packet(&mut conn).map_err(io)?;
    if theirs.get(..8) != Some(&[0, 0, 0, 1, 0, 0, 0, SSHMUX_VER as u8][..]) {
        return Err(MuxError::Protocol(first_u32(&theirs)));
    }
    Ok(conn)
}

/// A session the master runs for us: `command` on the host, its stdin read
/// from `stdin`, its output written to `stdout` and `stderr` (the master
/// keeps the descriptors; these copies are closed here). `env` (`NAME=value`)
/// is offered to the host as an ssh client's `SendEnv` would (sshd's
/// `AcceptEnv` decides).
pub fn open_session(
    socket: &Path,
    command: &str,
    env: &[String],
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<MuxSession, MuxError> {
    let io = |source| MuxError::Io {
        socket: socket.into(),
        source,
    };
    let mut conn = connect(socket)?;
    let mut msg = Vec::new();
    put_u32(&mut msg, MUX_C_NEW_SESSION);
    put_u32(&mut msg, REQUEST_ID);
    put_str(&mut msg, ""); // reserved
    for flag in [0; 4] {
        put_u32(&mut msg, flag); // no tty, no X11, no agent, not a subsystem
    }
    put_u32(&mut msg, NO_ESCAPE_CHAR);
    put_str(&mut msg, ""); // terminal type
    put_str(&mut msg, command);
    for var in env {
        put_str(&mut msg, var);
    }
    write_packet(&mut conn, &msg).map_err(io)?;
    for fd in [&stdin, &stdout, &stderr] {
        send_fd(&conn, fd).map_err(io)?;
    }
    drop((stdin, stdout, stderr));
    let reply = read_reply(&mut conn).map_err(io)??;
    if reply.kind != MUX_S_SESSION_OPENED {
        return Err(reply.refusal().unwrap_or(MuxError::Protocol(reply.kind)));
    }
    Ok(MuxSession { control: conn })
}

/// One descriptor as OpenSSH's `mm_send_fd` sends it: a one-byte message
/// carrying it as SCM_RIGHTS.
fn send_fd(conn: &UnixStream, fd: &OwnedFd) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_raw_fd()];
    let data = [0u8];
    let iov = [std::io::IoSlice::new(&data)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// A session opened by [`open_session`]; its control connection stays open
/// while it runs, and closing it ends the session (as killing an `ssh`
/// client would).
pub struct MuxSession {
    control: UnixStream,
}

impl MuxSession {
    /// A handle that ends the session when [`SessionCloser::close`]d.
    pub fn closer(&self) -> std::io::Result<SessionCloser> {
        self.control.try_clone().map(SessionCloser)
    }

    /// Block until the master closes the session: its exit status, or
    /// [`NO_EXIT_STATUS`] when none came (the master or the connection died).
    /// Like ssh's own client it reads on until the master hangs up, so all
    /// output has reached the descriptors by then.
    pub fn wait(mut self) -> i32 {
        let _ = self.control.set_read_timeout(None);
        let mut exit = None;
        while let Ok(packet) = read_packet(&mut self.control) {
            if first_u32(&packet) == MUX_S_EXIT_MESSAGE
                && let Some(code) = packet.get(8..12)
            {
                exit = Some(i32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
        }
        exit.unwrap_or(NO_EXIT_STATUS)
    }
}

/// Ends a [`MuxSession`] from another thread.
pub struct SessionCloser(UnixStream);

impl SessionCloser {
    pub fn close(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// One hello exchange and one forward request on a fresh control connection.
fn request(socket: &Path, kind: u32, local_port: u16) -> Result<Reply, MuxError> {
    let io = |source| MuxError::Io {
        socket: socket.into(),
        source,
    };
    let mut conn = connect(socket)?;
    let mut msg = Vec::new();
    put_u32(&mut msg, kind);
    put_u32(&mut msg, REQUEST_ID);
    put_u32(&mut msg, MUX_FWD_REMOTE);
    put_str(&mut msg, LOOPBACK);
    put_u32(&mut msg, 0); // listen port: "any", as the forward was asked for
    put_str(&mut msg, LOOPBACK);
    put_u32(&mut msg, u32::from(local_port));
    write_packet(&mut conn, &msg).map_err(io)?;
    read_reply(&mut conn).map_err(io)?
}

/// The master's answer to our request (type, our request id, body).
fn read_reply(conn: &mut UnixStream) -> std::io::Result<Result<Reply, MuxError>> {
    let reply = read_packet(conn)?;
    if reply.len() < 8 || reply[4..8] != REQUEST_ID.to_be_bytes() {
        return Ok(Err(MuxError::Protocol(first_u32(&reply))));
    }
    Ok(Ok(Reply {
        kind: first_u32(&reply),
        body: reply[8..].to_vec(),
    }))
}

fn first_u32(b: &[u8]) -> u32 {
    b.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

fn write_packet(conn: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut packet = Vec::with_capacity(4 + body.len());
    put_u32(&mut packet, body.len() as u32);
    packet.extend_from_slice(body);
    conn.write_all(&packet)
}

/// Replies are tiny; anything claiming more than this is not the mux protocol.
const MAX_PACKET: usize = 64 * 1024;

fn read_packet(conn: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PACKET {
        return Err(std::io::Error::other("oversized mux packet"));
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(body)
}

/// (master socket, local port) → (host port, users) of the forwards this process holds open.
type Forwards = HashMap<(PathBuf, u16), (u16, usize)>;
static SHARED: Mutex<Option<Forwards>> = Mutex::new(None);

/// The host port of the forward to `local_port` through `socket`, opening it
/// with `open` unless this process already holds one. Pair with [`release`].
pub fn acquire<E>(
    socket: &Path,
    local_port: u16,
    open: impl FnOnce() -> Result<u16, E>,
) -> Result<u16, E> {
    let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let key = (socket.to_path_buf(), local_port);
    if let Some((remote, users)) = map.get_mut(&key) {
        *users += 1;
        return Ok(*remote);
    }
    // Opening under the lock: a second child of a sweep waits for the first's
    // forward rather than opening an identical one.
    let remote = open()?;
    map.insert(key, (remote, 1));
    Ok(remote)
}

/// One user of the forward is done; `close` runs when it was the last.
pub fn release(socket: &Path, local_port: u16, close: impl FnOnce()) {
    let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let key = (socket.to_path_buf(), local_port);
    let last = match map.get_mut(&key) {
        Some((_, users)) if *users > 1 => {
            *users -= 1;
            false
        }
        Some(_) => {
            map.remove(&key);
            true
        }
        None => false,
    };
    drop(guard);
    if last {
        close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_sharing_a_local_port_share_one_forward_closed_by_the_last() {
        let socket = Path::new("/nonexistent/azml-mux-test");
        let mut opened = 0;
        let first = acquire(socket, 5000, || {
            opened += 1;
            Ok::<_, ()>(41000)
        });
        let second = acquire(socket, 5000, || {
            opened += 1;
            Ok::<_, ()>(42000)
        });
        assert_eq!((first, second, opened), (Ok(41000), Ok(41000), 1));
        let mut closed = 0;
        release(socket, 5000, || closed += 1);
        assert_eq!(closed, 0, "a child is still using it");
        release(socket, 5000, || closed += 1);
        assert_eq!(closed, 1);
        let third = acquire(socket, 5000, || Ok::<_, ()>(43000));
        assert_eq!(third, Ok(43000), "opened again after the last release");
        release(socket, 5000, || {});
    }

    #[test]
    fn a_failed_open_is_not_remembered() {
        let socket = Path::new("/nonexistent/azml-mux-test-2");
        assert_eq!(acquire(socket, 1, || Err::<u16, _>("down")), Err("down"));
        assert_eq!(acquire(socket, 1, || Ok::<_, &str>(7)), Ok(7));
        release(socket, 1, || {});
    }

    #[test]
    fn a_missing_socket_is_an_io_error_not_a_panic() {
        let err = open_remote_forward(Path::new("/nonexistent/azml-mux"), 5000).unwrap_err();
        assert!(matches!(err, MuxError::Io { .. }), "{err}");
    }
}

//! Terminals for containers (`process.terminal: true`, `docker run -t`).
//!
//! The pseudo-terminal is made *inside* the container, from the container's own `/dev/ptmx`
//! (its devpts instance), so `tty` there names `/dev/pts/0` of the container and not a host
//! pty. The container process then sends the master end to the runtime over a unix socket
//! (SCM_RIGHTS, unix(7)), exactly as runc's `--console-socket` does, and the runtime copies
//! bytes between the user's terminal and the master.

use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::termios;
use nix::unistd::Pid;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A connected pair of unix sockets: the runtime keeps `parent`, the container gets `child`.
pub struct ConsoleSocket {
    pub parent: OwnedFd,
    pub child: OwnedFd,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket> {
        let (parent, child) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for the console")?;
        Ok(ConsoleSocket { parent, child })
    }
}

// ANCHOR: console_in_child
/// In the container process, after pivot_root: open a new pty from the container's
/// `/dev/ptmx`, make its slave our controlling terminal and our stdin/stdout/stderr, and send
/// the master to the runtime through `socket`.
pub fn setup_console_in_child(socket: RawFd) -> Result<()> {
    use nix::fcntl::OFlag;
    explain::step(
        "open a terminal in the container",
        || "open(\"/dev/ptmx\"); ioctl(TIOCSCTTY); dup2(slave, 0..2)".into(),
        Chapter::RuntimeSpec,
    );
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx in the container")?;
    nix::pty::grantpt(&master).context("grantpt")?;
    nix::pty::unlockpt(&master).context("unlockpt")?;
    // SAFETY: ptsname is not thread-safe; the container process is single-threaded.
    let slave_name = unsafe { nix::pty::ptsname(&master) }.context("ptsname")?;
    let slave = nix::fcntl::open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {slave_name}"))?;
    // A new session has no controlling terminal; TIOCSCTTY makes the slave ours, so the
    // shell gets job control and ^C reaches it as SIGINT (credentials(7), tty_ioctl(4)).
    nix::unistd::setsid().context("setsid")?;
    // SAFETY: TIOCSCTTY takes an int argument; 0 means do not steal another session's tty.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("ioctl(TIOCSCTTY)");
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which we mean to replace.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error()).context("dup2 the pty slave");
        }
    }
    let fds = [master.as_raw_fd()];
    let message = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket,
        &[IoSlice::new(b"pty")],
        &message,
        MsgFlags::empty(),
        None,
    )
    .context("sending the pty master to the runtime")?;
    Ok(())
}
// ANCHOR_END: console_in_child

/// In the runtime: receive the master end the container sent.
pub fn receive_master(socket: BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the pty master")?;
    for cmsg in msg.cmsgs().context("reading the control message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    bail!("the container sent no terminal")
}

/// Sends the pty `master` to the unix socket at `path`, as runc does for its
/// `--console-socket` (one SCM_RIGHTS message, unix(7)): containerd's shim listens there.
pub fn send_master(path: &std::path::Path, master: BorrowedFd) -> Result<()> {
    let stream = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connecting to the console socket {}", path.display()))?;
    send_master_on(stream.as_fd(), master)
}

/// Sends the pty `master` on the connected unix socket `socket` (one SCM_RIGHTS message).
pub fn send_master_on(socket: BorrowedFd, master: BorrowedFd) -> Result<()> {
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"pty")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the pty master to the console socket")?;
    Ok(())
}

/// Puts the user's terminal in raw mode (every key goes to the container as typed, ^C
/// included) and restores it when dropped, even on an error.
pub struct RawMode {
    fd: RawFd,
    saved: termios::Termios,
}

impl RawMode {
    /// None when `fd` is not a terminal (input from a pipe needs no raw mode).
    pub fn enter(fd: BorrowedFd) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the fd is the caller's stdin, open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd, termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of `from` (the user's terminal) to the pty `to`.
pub fn copy_window_size(from: BorrowedFd, to: BorrowedFd) {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize struct.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

// ANCHOR: proxy
/// Copies the user's stdin to the pty master and the master to stdout until the container's
/// side closes, follows window resizes (SIGWINCH), then waits for `child` and returns its
/// exit status.
pub fn proxy(master: OwnedFd, child: Pid) -> Result<u8> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = RawMode::enter(stdin.as_fd());
    copy_window_size(stdin.as_fd(), master.as_fd());
    // SIGWINCH arrives as a readable fd instead of an asynchronous handler.
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    winch.thread_block().context("blocking SIGWINCH")?;
    let signals = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("poll")?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (master_ready, signal_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if signal_ready {
            let _ = signals.read_signal();
            copy_window_size(stdin.as_fd(), master.as_fd());
        }
        if master_ready {
            match nix::unistd::read(&master, &mut buf) {
                // EIO: every slave descriptor is closed, the container's program is gone.
                Ok(0) | Err(nix::errno::Errno::EIO) => break,
                Ok(n) => {
                    use std::io::Write;
                    let mut out = stdout.lock();
                    out.write_all(&buf[..n]).context("writing to stdout")?;
                    out.flush().ok();
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(errno) => return Err(errno).context("reading the pty"),
            }
        }
        if stdin_ready {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => {
                    // End of input: send the terminal's EOF character, as typing ^D would.
                    let _ = nix::unistd::write(&master, &[4]);
                    stdin_open = false;
                }
                Ok(n) => {
                    nix::unistd::write(&master, &buf[..n]).context("writing to the pty")?;
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
    let status = crate::ns::wait_for(child);
    let _ = winch.thread_unblock();
    status
}
// ANCHOR_END: proxy

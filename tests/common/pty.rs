//! A pseudo-terminal for tests that need a terminal on the client's side (`attach` to a
//! container with `-t`, window sizes): the test holds the master, the command gets the slave
//! as its stdin, stdout and stderr.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    master: OwnedFd,
    slave: Option<OwnedFd>,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    /// A new pty of `rows` x `cols`; what the command writes is collected by a thread.
    pub fn new(rows: u16, cols: u16) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let output = Arc::new(Mutex::new(Vec::new()));
        let reader = pty.master.try_clone().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(reader);
            let mut buf = [0u8; 4096];
            // EIO once every slave descriptor is closed.
            while let Ok(n) = file.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master: pty.master,
            slave: Some(pty.slave),
            output,
        }
    }

    /// The slave, for a command's stdin, stdout or stderr.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(
            self.slave
                .as_ref()
                .expect("slave closed")
                .try_clone()
                .unwrap(),
        )
    }

    /// Closes the test's own copy of the slave, once the command has it.
    pub fn close_slave(&mut self) {
        self.slave = None;
    }

    /// Starts `cmd` in a new session with the slave as its stdin, stdout, stderr and
    /// controlling terminal (setsid(2), `TIOCSCTTY`), as a login shell has it; then closes the
    /// test's own copy of the slave.
    pub fn spawn_controlling(&mut self, cmd: &mut Command) -> Child {
        cmd.stdin(self.stdio())
            .stdout(self.stdio())
            .stderr(self.stdio());
        // SAFETY: setsid(2) and ioctl(2) are async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        self.close_slave();
        child
    }

    /// Waits (at most 30 s) for `child` to exit; panics with the terminal's output, naming
    /// `what`, if it does not.
    pub fn wait_exit(&self, child: &mut Child, what: &str) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} never exited: {}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `bytes`, as a user at the terminal would.
    pub fn write(&self, bytes: &[u8]) {
        let file = std::fs::File::from(self.master.try_clone().unwrap());
        std::io::Write::write_all(&mut &file, bytes).unwrap();
    }

    /// Everything the command wrote so far, lossily decoded.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits (at most 30 s) until the output contains `needle`; panics with the output if
    /// it never does.
    pub fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never came; the terminal shows {:?}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets the terminal's window size (TIOCSWINSZ on the master), as a terminal emulator
    /// does when its window is resized; the caller sends SIGWINCH.
    pub fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    }
}

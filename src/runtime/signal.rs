//! Signals as `kill`, `stop`, `STOPSIGNAL` and `runtime kill` take them: every name and number
//! Docker's `signal.ParseSignal` (moby/sys/signal) accepts on Linux, the real-time signals
//! included (`SIGRTMIN+3`, `RTMAX-1`, `37`), which `nix::sys::signal::Signal` cannot hold.

use anyhow::{Result, bail};
use std::fmt;

/// The first real-time signal as Docker and glibc number it (the kernel's 32 and 33 are
/// reserved by the C library).
pub const SIGRTMIN: i32 = 34;
/// The last signal number on Linux.
pub const SIGRTMAX: i32 = 64;

/// The standard signals by Docker's names (without `SIG`), aliases included.
const NAMES: [(&str, i32); 34] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
    // Aliases: the number's name above is the one shown.
    ("IOT", libc::SIGIOT),
    ("CLD", libc::SIGCHLD),
    ("POLL", libc::SIGPOLL),
];

/// A signal number as kill(2) takes it, 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// Signal 0: kill(2) only checks that the process exists (runc's `kill ID 0`).
    pub const EXISTS: Signal = Signal(0);

    /// The signal numbered `number`; errors unless it is 1 to 64.
    pub fn from_number(number: i32) -> Result<Signal> {
        if !(1..=SIGRTMAX).contains(&number) {
            bail!("invalid signal: {number}");
        }
        Ok(Signal(number))
    }

    /// Parses a signal as Docker does: a number from 1 to 64, or a name with or without `SIG`
    /// in any case (`KILL`, `sigterm`, `SIGRTMIN+3`, `rtmax-2`). Real-time names are
    /// `RTMIN`, `RTMIN+1` to `RTMIN+15`, `RTMAX-14` to `RTMAX-1` and `RTMAX`. Errors with
    /// `invalid signal: "TEXT"`.
    pub fn parse(text: &str) -> Result<Signal> {
        let invalid = || anyhow::anyhow!("invalid signal: {}", crate::cli::quote(text));
        if let Ok(number) = text.parse::<i32>() {
            return Signal::from_number(number).map_err(|_| invalid());
        }
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(&(_, number)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Ok(Signal(number));
        }
        let offset = |rest: &str| rest.parse::<u8>().ok().filter(|n| rest == n.to_string());
        let number = match name {
            "RTMIN" => Some(SIGRTMIN),
            "RTMAX" => Some(SIGRTMAX),
            _ => match (name.strip_prefix("RTMIN+"), name.strip_prefix("RTMAX-")) {
                (Some(n), _) => offset(n)
                    .filter(|n| *n <= 15)
                    .map(|n| SIGRTMIN + i32::from(n)),
                (_, Some(n)) => offset(n)
                    .filter(|n| *n <= 14)
                    .map(|n| SIGRTMAX - i32::from(n)),
                _ => None,
            },
        };
        number.map(Signal).ok_or_else(invalid)
    }

    /// The number, as kill(2) takes it.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Sends this signal to `pid` with kill(2).
    pub fn send(self, pid: i32) -> nix::Result<()> {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        nix::errno::Errno::result(unsafe { libc::kill(pid, self.0) }).map(drop)
    }
}

impl From<nix::sys::signal::Signal> for Signal {
    fn from(signal: nix::sys::signal::Signal) -> Signal {
        Signal(signal as i32)
    }
}

impl std::str::FromStr for Signal {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<Signal> {
        Signal::parse(text)
    }
}

/// The name as `kill -l` prints it: `SIGKILL`, `SIGRTMIN+3`, `SIGRTMAX-1`; the two numbers
/// without a name (32 and 33) print as `SIG32`.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|(_, number)| *number == n) {
            return write!(f, "SIG{name}");
        }
        match n {
            SIGRTMIN => f.write_str("SIGRTMIN"),
            SIGRTMAX => f.write_str("SIGRTMAX"),
            _ if (SIGRTMIN..SIGRTMIN + 16).contains(&n) => write!(f, "SIGRTMIN+{}", n - SIGRTMIN),
            _ if (SIGRTMIN + 16..SIGRTMAX).contains(&n) => write!(f, "SIGRTMAX-{}", SIGRTMAX - n),
            _ => write!(f, "SIG{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse_as_docker_parses_them() {
        for (text, number) in [
            ("KILL", 9),
            ("sigterm", 15),
            ("SIGkill", 9),
            ("9", 9),
            ("37", 37),
            ("64", 64),
            ("1", 1),
            ("RTMIN+3", 37),
            ("SIGRTMIN+3", 37),
            ("sigrtmin+3", 37),
            ("RTMIN", 34),
            ("RTMIN+15", 49),
            ("RTMAX-14", 50),
            ("rtmax-1", 63),
            ("SIGRTMAX", 64),
            ("IOT", 6),
            ("CLD", 17),
            ("POLL", 29),
            ("STKFLT", 16),
            ("PWR", 30),
        ] {
            assert_eq!(Signal::parse(text).unwrap().number(), number, "{text}");
        }
    }

    #[test]
    fn what_docker_refuses_is_refused() {
        for text in [
            "",
            "0",
            "65",
            "-1",
            "NOPE",
            "RTMIN+16",
            "RTMAX-15",
            "RTMIN+",
            "RTMIN+03",
            "SIG",
            "RTMIN-1",
            " 9",
            "SIGSIGKILL",
        ] {
            let err = Signal::parse(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid signal: \""), "{text}: {err}");
        }
    }

    #[test]
    fn every_number_has_a_name_that_parses_back() {
        for number in 1..=64 {
            let signal = Signal::from_number(number).unwrap();
            let name = signal.to_string();
            if number == 32 || number == 33 {
                assert_eq!(name, format!("SIG{number}"));
                continue;
            }
            assert_eq!(Signal::parse(&name).unwrap(), signal, "{name}");
        }
        assert_eq!(Signal::parse("37").unwrap().to_string(), "SIGRTMIN+3");
        assert_eq!(Signal::parse("6").unwrap().to_string(), "SIGABRT");
    }
}

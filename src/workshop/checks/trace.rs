//! Which program made each system call: the checker runs a learner's program under strace(1)
//! and counts a lesson's system calls only when the process that made them was running the
//! learner's own binary.
//!
//! A command such as `busybox unshare` (or a copy of busybox under any name) makes the same
//! calls with the same flags, and the kernel's results are the same: only who made them
//! differs. strace follows every process (`-f`) and records each `execve`, each fork and the
//! lesson's calls. A process runs what its last successful execve(2) loaded, or, before any,
//! what its parent ran when it forked it; a call made after the process exec'd another program
//! is that program's, not the learner's.

use crate::workshop::Observation;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The calls strace records (strace(1) `-e trace=`): the ones that change which program a
/// process runs or make a new process, and the ones lessons are about. `?` skips a call this
/// architecture does not have.
const TRACED: &str = "trace=execve,execveat,?fork,?vfork,clone,clone3,unshare,setns,\
                      sethostname,mount,pivot_root,?open,openat,prctl,capset,seccomp,connect";

/// The misunderstanding behind a lesson's system call made by another program.
pub(crate) const COMMAND_DID_IT: &str = "a command did the work for your program: the lesson is the system calls themselves, made by your own process (as the traced process shows), not a tool such as unshare(1), nsenter(1), mount(8), setpriv(1) or busybox that your program runs to make them";

/// A system call a lesson is about, as the learner's program must make it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need<'a> {
    /// unshare(2), clone(2) or clone3(2) with this `CLONE_NEW*` flag.
    Namespace(&'a str),
    /// setns(2) with this `CLONE_NEW*` flag (or 0, any kind).
    Join(&'a str),
    /// A call of this name, whatever its arguments.
    Call(&'a str),
    /// mount(2) of a filesystem of this type.
    MountType(&'a str),
    /// A call of this name (the first) with this word (a flag, a constant) in its arguments.
    CallWith(&'a str, &'a str),
    /// A bind mount(2) (MS_BIND) of this source path.
    BindFrom(&'a str),
    /// A file of this name (under any directory) opened for writing (open(2), openat(2)).
    Write(&'a str),
    /// connect(2) to the unix socket at this path.
    Connect(&'a str),
    /// Any one of these: two interfaces to the same kernel state (sethostname(2), or a write
    /// to /proc/sys/kernel/hostname).
    AnyOf(&'a [Need<'a>]),
}

/// Setting the UTS namespace's hostname: sethostname(2), or the same through
/// /proc/sys/kernel/hostname (proc(5)).
pub(crate) const SET_HOSTNAME: Need<'static> =
    Need::AnyOf(&[Need::Call("sethostname"), Need::Write("hostname")]);

impl Need<'_> {
    fn describe(&self) -> String {
        match self {
            Need::Namespace(flag) => format!("unshare({flag})"),
            Need::Join(flag) => format!("setns({flag})"),
            Need::Call(name) => format!("{name}(2)"),
            Need::MountType(kind) => format!("mount(2) of {kind}"),
            Need::CallWith(name, word) => format!("{name}(2) with {word}"),
            Need::BindFrom(source) => format!("the bind mount(2) of {source}"),
            Need::Write(file) => format!("a write to {file}"),
            Need::Connect(path) => format!("connect(2) to {path}"),
            Need::AnyOf(needs) => {
                let each: Vec<String> = needs.iter().map(Need::describe).collect();
                each.join(" or ")
            }
        }
    }

    fn made_by(&self, call: &Call) -> bool {
        let words = || {
            call.args
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        };
        let arg = |n: usize| call.args.split(", ").nth(n).unwrap_or("").trim_matches('"');
        call.ok
            && match *self {
                Need::Namespace(flag) => {
                    ["unshare", "clone", "clone3"].contains(&call.name.as_str())
                        && words().any(|w| w == flag)
                }
                Need::Join(flag) => {
                    call.name == "setns" && (words().any(|w| w == flag) || arg(1) == "0")
                }
                Need::Call(name) => call.name == name,
                Need::MountType(kind) => call.name == "mount" && arg(2) == kind,
                Need::CallWith(name, word) => call.name == name && words().any(|w| w == word),
                Need::BindFrom(source) => {
                    call.name == "mount" && arg(0) == source && words().any(|w| w == "MS_BIND")
                }
                Need::Write(file) => {
                    let path = if call.name == "openat" {
                        arg(1)
                    } else {
                        arg(0)
                    };
                    ["open", "openat"].contains(&call.name.as_str())
                        && path.rsplit('/').next() == Some(file)
                        && words().any(|w| w == "O_WRONLY" || w == "O_RDWR")
                }
                Need::Connect(path) => {
                    call.name == "connect"
                        && words().any(|w| w == "AF_UNIX")
                        && call.args.contains(&format!("sun_path=\"{path}\""))
                }
                Need::AnyOf(needs) => needs.iter().any(|need| need.made_by(call)),
            }
    }
}

/// One finished system call from strace's log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    /// The process (thread) that made it, as the checker's PID namespace numbers it.
    pid: u32,
    name: String,
    /// The arguments as strace prints them, without the parentheses.
    args: String,
    /// It returned no error.
    ok: bool,
    /// For a fork: the new process, in the checker's PID namespace.
    child: Option<u32>,
}

/// A learner's program run under strace, and the log it writes.
pub(crate) struct Trace {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Trace {
    /// Prepares to trace `bin`; `owner` is the (uid, gid) the program runs as when the checker
    /// is root and runs it as an ordinary user (the log's directory is theirs then).
    ///
    /// Errors: strace is not installed (said in one line), or the temp dir cannot be made.
    pub(crate) fn new(bin: &Path, owner: Option<(u32, u32)>) -> Result<Trace> {
        let found = Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!(
                "strace is not installed: the workshop's checker needs it to see which program makes each system call (apt-get install strace)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("minidock-workshop-trace")
            .tempdir()
            .context("creating the trace's temp dir")?;
        if let Some((uid, gid)) = owner.filter(|_| nix::unistd::geteuid().is_root()) {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("giving the trace's temp dir to the ordinary user")?;
        }
        let bin = std::fs::canonicalize(bin)
            .with_context(|| format!("locating the lesson program {}", bin.display()))?;
        Ok(Trace { dir, bin })
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("strace.log")
    }

    /// `strace -f ... -- BIN`, to which the caller adds the program's arguments. strace passes
    /// the program's stdin, stdout, stderr and exit status through (a signal that kills the
    /// program kills strace the same way).
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "--pidns-translation", "-e", TRACED, "-o"])
            .arg(self.log())
            .arg("--")
            .arg(&self.bin);
        cmd
    }

    /// Whether each of `needs` was made by a process running the learner's program itself.
    pub(crate) fn observe(&self, needs: &[Need<'_>]) -> Observation {
        let what = "who made the lesson's system calls (strace -f: each process's program, from its execve)";
        let name = self.bin.file_name().unwrap_or_default().to_string_lossy();
        let wanted: Vec<String> = needs.iter().map(Need::describe).collect();
        let expected = format!(
            "{}, made by your program ({name}) itself",
            wanted.join(", ")
        );
        let text = match std::fs::read_to_string(self.log()) {
            Ok(text) => text,
            Err(err) => {
                let actual = format!("no trace to read ({err})");
                return Observation::judged(what, expected, actual, false);
            }
        };
        let calls = attribute(&parse(&text));
        let learner = |exe: &str| self.is_learner(exe);
        let mut wrong = Vec::new();
        let mut missing = Vec::new();
        for need in needs {
            let matching: Vec<&(Call, String)> =
                calls.iter().filter(|(c, _)| need.made_by(c)).collect();
            if matching.iter().any(|(_, exe)| learner(exe)) {
                continue;
            }
            match matching.first() {
                Some((call, exe)) => wrong.push(format!(
                    "{} made by {exe} (pid {}), not by your program",
                    need.describe(),
                    call.pid
                )),
                None => missing.push(need.describe()),
            }
        }
        let ok = wrong.is_empty() && missing.is_empty();
        let likely = if wrong.is_empty() {
            format!(
                "your program never made {} (successfully): the lesson is these system calls",
                missing.join(", ")
            )
        } else {
            COMMAND_DID_IT.to_owned()
        };
        wrong.extend(missing.iter().map(|m| format!("{m} never made")));
        let actual = if ok {
            expected.clone()
        } else {
            wrong.join("; ")
        };
        Observation::judged(what, expected, actual, ok).likely(likely)
    }

    /// An execve path that loads the learner's binary: the same path, or the same file.
    fn is_learner(&self, exe: &str) -> bool {
        Path::new(exe) == self.bin || std::fs::canonicalize(exe).is_ok_and(|p| p == self.bin)
    }
}

/// The finished calls in strace's log, in order. A call another process's line interrupted is
/// printed in two parts (`<unfinished ...>`, then `<... NAME resumed>`), joined here at its end.
fn parse(log: &str) -> Vec<Call> {
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        let text = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, head.trim_end().to_owned());
            continue;
        } else if rest.starts_with("<... ") {
            match (pending.remove(&pid), rest.split_once("resumed>")) {
                (Some(head), Some((_, tail))) => format!("{head}{tail}"),
                _ => continue,
            }
        } else {
            rest.to_owned()
        };
        calls.extend(call(pid, &text));
    }
    calls
}

/// One line `NAME(ARGS) = RESULT` of strace's log, or None for a signal or an unfinished line.
fn call(pid: u32, text: &str) -> Option<Call> {
    let (head, result) = text.rsplit_once(" = ")?;
    let (name, args) = head.trim_end().strip_suffix(')')?.split_once('(')?;
    let value = result.split_whitespace().next()?.parse::<i64>().ok();
    // A fork in another PID namespace returns the pid there; strace adds the checker's own.
    let translated = result
        .split_once("/* ")
        .and_then(|(_, c)| c.split_whitespace().next()?.parse::<u32>().ok());
    let forks = ["fork", "vfork", "clone", "clone3"].contains(&name);
    Some(Call {
        pid,
        name: name.to_owned(),
        args: args.to_owned(),
        ok: value.is_some_and(|v| v >= 0),
        child: forks
            .then(|| translated.or(value.and_then(|v| u32::try_from(v).ok())))
            .flatten()
            .filter(|c| *c > 0),
    })
}

/// Each call with the program its process was running when it made it: what the process's
/// last successful execve loaded, else what its parent ran when it forked it.
fn attribute(calls: &[Call]) -> Vec<(Call, String)> {
    let parents: HashMap<u32, u32> = calls
        .iter()
        .filter_map(|c| c.child.map(|child| (child, c.pid)))
        .collect();
    let mut programs: HashMap<u32, String> = HashMap::new();
    let mut out = Vec::new();
    for call in calls {
        let program = program_of(call.pid, &parents, &mut programs);
        if let Some(child) = call.child {
            programs.entry(child).or_insert_with(|| program.clone());
        }
        if call.ok && call.name.starts_with("execve") {
            let path = call.args.split(", ").next().unwrap_or("").trim_matches('"');
            if call.name == "execveat" {
                programs.insert(call.pid, "(a program given by descriptor)".to_owned());
            } else if path != "/proc/self/exe" {
                programs.insert(call.pid, path.to_owned());
            }
        }
        out.push((call.clone(), program));
    }
    out
}

/// The program process `pid` runs now: its own record, else its parent's (looked up the same
/// way, and remembered), else unknown.
fn program_of(
    pid: u32,
    parents: &HashMap<u32, u32>,
    programs: &mut HashMap<u32, String>,
) -> String {
    let mut chain = vec![pid];
    let found = loop {
        let last = chain[chain.len() - 1];
        if let Some(program) = programs.get(&last) {
            break program.clone();
        }
        match parents.get(&last) {
            Some(parent) if !chain.contains(parent) => chain.push(*parent),
            _ => break "(an unknown program)".to_owned(),
        }
    };
    for p in chain {
        programs.entry(p).or_insert_with(|| found.clone());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// strace 6.1's own lines for `unshare -p -f --mount-proc sh -c 'hostname'`, cut.
    const LOG: &str = r#"8680  execve("/usr/bin/unshare", ["unshare", "-p"], 0x7ffc /* 35 vars */) = 0
8680  unshare(CLONE_NEWNS|CLONE_NEWPID) = 0
8680  clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7ff7) = 8681
8681  mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) = 0
8681  execve("/usr/bin/sh", ["sh", "-c", "x = 1"], 0x7ffc /* 35 vars */) = -1 ENOENT (No such file or directory)
8681  execve("/usr/bin/sh", ["sh", "-c", "x = 1"], 0x7ffc /* 35 vars */) = 0
8681  vfork( <unfinished ...>
8682  execve("/usr/bin/hostname", ["hostname"], 0x5632 /* 35 vars */ <unfinished ...>
8681  <... vfork resumed>)              = 2 /* 8682 in strace's PID NS */
8682  <... execve resumed>)             = 0
8682  sethostname("box", 3) = 0
8681  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2} ---
"#;

    #[test]
    fn each_call_is_the_program_its_process_last_executed() {
        let calls = attribute(&parse(LOG));
        let by = |name: &str| -> Vec<(bool, String)> {
            calls
                .iter()
                .filter(|(c, _)| c.name == name)
                .map(|(c, p)| (c.ok, p.clone()))
                .collect()
        };
        assert_eq!(by("unshare"), [(true, "/usr/bin/unshare".to_owned())]);
        // The forked child runs its parent's program until its own execve succeeds.
        assert_eq!(by("mount"), [(true, "/usr/bin/unshare".to_owned())]);
        // Joined from two lines, with the pid in the checker's namespace.
        let vfork = calls.iter().find(|(c, _)| c.name == "vfork").unwrap();
        assert_eq!(vfork.0.child, Some(8682));
        assert_eq!(by("sethostname"), [(true, "/usr/bin/hostname".to_owned())]);
        assert_eq!(calls.len(), 9, "{calls:#?}");
    }

    #[test]
    fn needs_match_flags_types_and_files_not_substrings() {
        let calls = parse(LOG);
        let made = |need: Need| calls.iter().any(|c| need.made_by(c));
        assert!(made(Need::Namespace("CLONE_NEWPID")));
        assert!(made(Need::Namespace("CLONE_NEWNS")));
        assert!(!made(Need::Namespace("CLONE_NEWNET")));
        assert!(made(Need::MountType("proc")));
        assert!(!made(Need::CallWith("mount", "MS_BIND")));
        assert!(made(Need::CallWith("mount", "MS_NOEXEC")));
        let bind = call(
            7,
            r#"mount("/tmp/vol", "/tmp/root/data", NULL, MS_BIND|MS_REC, NULL) = 0"#,
        );
        assert!(Need::BindFrom("/tmp/vol").made_by(&bind.unwrap()));
        assert!(!made(Need::BindFrom("proc")));
        assert!(!made(Need::Call("pivot_root")));
        let open = call(
            7,
            r#"openat(AT_FDCWD, "/proc/self/uid_map", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3"#,
        )
        .unwrap();
        assert!(Need::Write("uid_map").made_by(&open));
        assert!(!Need::Write("gid_map").made_by(&open));
        let read = call(7, r#"openat(AT_FDCWD, "/proc/self/uid_map", O_RDONLY) = 3"#).unwrap();
        assert!(!Need::Write("uid_map").made_by(&read));
    }

    #[test]
    fn the_hostname_may_be_set_by_the_call_or_through_proc() {
        let set = call(7, r#"sethostname("box", 3) = 0"#).unwrap();
        let proc = call(
            7,
            r#"openat(AT_FDCWD, "/proc/sys/kernel/hostname", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3"#,
        )
        .unwrap();
        let refused = call(
            7,
            r#"sethostname("box", 3) = -1 EPERM (Operation not permitted)"#,
        );
        assert!(SET_HOSTNAME.made_by(&set));
        assert!(SET_HOSTNAME.made_by(&proc));
        assert!(!SET_HOSTNAME.made_by(&refused.unwrap()));
        assert_eq!(
            SET_HOSTNAME.describe(),
            "sethostname(2) or a write to hostname"
        );
    }
}

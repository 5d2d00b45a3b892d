//! Every ```console block of the book runs, as written, and shows what the book says it shows.
//!
//! A block is a reader's session at a root prompt: lines starting with `# ` (or `$ `) are
//! commands, a line ending in `\` continues on the next, and every other line is output. The
//! test runs each block as one bash script (`set -e -o pipefail`: every command must succeed)
//! in a directory laid out as the top of a clone (`scripts/`, `lessons/`, and the binaries as
//! `target/release/`), after the `export PATH=...` line the Introduction tells the reader to
//! run. A chapter's blocks run in order, as a reader runs them, and share a state root
//! (`MINIDOCK_ROOT`, with the busybox image imported, as `scripts/quickstart` leaves it),
//! `MINIDOCK_BRIDGE=none`, and a private network and mount namespace with fresh tmpfs on
//! `/tmp` and `/run`, so the book's fixed paths (`/tmp/rootfs`, `/run/minidock.sock`) and its
//! networks touch nothing of the host's. What a chapter leaves running is killed after it.
//!
//! Output lines are checked, whitespace collapsed, against the lines the block printed; a line
//! with `...` or `…` in it stands for output that changes from run to run and is not checked.
//!
//! A block that cannot run here is marked by the line right above it:
//! `<!-- console: not run: REASON -->`, with the reason. There are few, and this test counts
//! them.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line of the Introduction that puts the binaries on PATH.
const EXPORT_PATH: &str = "export PATH=\"$PWD/target/release:$PATH\"";
const NOT_RUN: &str = "<!-- console: not run: ";
/// The most blocks that may be marked as not run.
const MAX_NOT_RUN: usize = 5;

struct Block {
    chapter: String,
    line: usize,
    commands: Vec<String>,
    output: Vec<String>,
}

/// The console blocks of `text`, and the ones marked as not run (with their reasons).
fn blocks(chapter: &str, text: &str) -> (Vec<Block>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```console" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let marker = if i > 0 { lines[i - 1].trim() } else { "" };
        let mut block = Block {
            chapter: chapter.to_owned(),
            line: start,
            commands: Vec::new(),
            output: Vec::new(),
        };
        i += 1;
        while i < lines.len() && !lines[i].starts_with("```") {
            let line = lines[i];
            if let Some(cmd) = line.strip_prefix("# ").or_else(|| line.strip_prefix("$ ")) {
                let mut cmd = cmd.to_owned();
                while cmd.ends_with('\\') && i + 1 < lines.len() {
                    i += 1;
                    cmd.push('\n');
                    cmd.push_str(lines[i]);
                }
                block.commands.push(cmd);
            } else {
                block.output.push(line.to_owned());
            }
            i += 1;
        }
        if let Some(reason) = marker.strip_prefix(NOT_RUN) {
            let reason = reason.trim_end_matches("-->").trim();
            assert!(
                !reason.is_empty(),
                "{chapter}:{start}: not run, without a reason"
            );
            skipped.push(format!("{chapter}:{start}: {reason}"));
        } else {
            run.push(block);
        }
    }
    (run, skipped)
}

fn all_blocks() -> (Vec<Block>, Vec<String>) {
    let dir = common::repo().join("book/src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (r, s) = blocks(&name, &std::fs::read_to_string(&file).unwrap());
        run.extend(r);
        skipped.extend(s);
    }
    (run, skipped)
}

fn collapse(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A directory laid out as the top of a clone, with the binaries this test was built with as
/// `target/release`.
fn clone_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("minidock-book-console")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let repo = common::repo();
    for name in ["scripts", "lessons", "book"] {
        std::os::unix::fs::symlink(repo.join(name), dir.path().join(name)).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("minidock");
    std::fs::create_dir(dir.path().join("target")).unwrap();
    std::os::unix::fs::symlink(bin.parent().unwrap(), dir.path().join("target/release")).unwrap();
    dir
}

/// Runs a chapter's blocks in order, as a reader does, in one clone, one state root and one
/// private network and mount namespace; returns what went wrong.
fn run_chapter(blocks: &[&Block]) -> Vec<String> {
    let dir = clone_dir();
    let root = common::minidock_root::Root::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), &[]);
    common::net::private_netns(|| {
        let mut sessions = Vec::new();
        let setup = "mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /run";
        let mounted = shell(&dir, &root, setup, &mut sessions);
        assert!(mounted.0, "mounting tmpfs on /tmp and /run: {}", mounted.1);
        let problems = blocks
            .iter()
            .filter_map(|block| {
                let script = block.commands.join("\n");
                check(block, shell(&dir, &root, &script, &mut sessions))
            })
            .collect();
        let cleanup = "minidock rm -f $(minidock ps -aq) >/dev/null 2>&1 || true\n\
                       for c in $(minidock runtime list -q); do \
                       minidock runtime delete --force $c || true; done";
        shell(&dir, &root, cleanup, &mut sessions);
        kill_leftovers(&sessions);
        problems
    })
}

/// Runs `script` with bash in the clone, after the Introduction's `export PATH=...`: whether
/// it succeeded, and what it printed. The output goes through a file, so a process the script
/// leaves in the background (`minidock daemon ... &`) does not hold a pipe open.
fn shell(
    dir: &tempfile::TempDir,
    root: &common::minidock_root::Root,
    script: &str,
    sessions: &mut Vec<i32>,
) -> (bool, String) {
    let log = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // One open file description for both, so stdout and stderr interleave as on a terminal.
    let out = log.reopen().unwrap();
    let mut cmd = Command::new("bash");
    // A session of its own: what the block leaves running is found by its session id.
    // SAFETY: setsid is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .arg("-c")
        .arg(format!("set -e -o pipefail\n{EXPORT_PATH}\n{script}\n"))
        .current_dir(dir.path())
        .env("MINIDOCK_ROOT", root.path())
        .env("MINIDOCK_BRIDGE", "none")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("running bash");
    sessions.push(child.id() as i32);
    let status = child.wait().expect("waiting for bash");
    let printed = std::fs::read_to_string(log.path()).unwrap_or_default();
    (status.success(), printed)
}

/// Kills what the blocks left running: every process in this network namespace (a daemon
/// started with `&`, a container's shim) or in a block's session (a server started in a
/// namespace the block made).
fn kill_leftovers(sessions: &[i32]) {
    let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let me = std::process::id() as i32;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 6 is the session id, counted after the command name in parentheses.
        let sid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(3));
        let in_session = sid
            .and_then(|s| s.parse().ok())
            .is_some_and(|s: i32| sessions.contains(&s));
        if pid != me && (in_session || ns.is_ok_and(|ns| ns == ours)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// What is wrong with `block`'s run, if anything.
fn check(block: &Block, (ok, printed): (bool, String)) -> Option<String> {
    let where_ = format!("{}:{}", block.chapter, block.line);
    if !ok {
        return Some(format!("{where_}: the block failed:\n{printed}"));
    }
    let actual: Vec<String> = printed.lines().map(collapse).collect();
    let missing: Vec<&String> = block
        .output
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.contains("...") && !l.contains('…'))
        .filter(|l| !actual.contains(&collapse(l)))
        .collect();
    (!missing.is_empty())
        .then(|| format!("{where_}: the book shows {missing:?}, the commands printed:\n{printed}"))
}

#[test]
fn the_introduction_puts_the_binaries_on_path() {
    let intro = std::fs::read_to_string(common::repo().join("book/src/introduction.md")).unwrap();
    assert!(
        intro.contains(&format!("# {EXPORT_PATH}")),
        "introduction.md must show `{EXPORT_PATH}` in a console block"
    );
}

#[test]
fn few_blocks_are_not_run_and_each_says_why() {
    let (run, skipped) = all_blocks();
    assert!(run.len() > 10, "only {} console blocks found", run.len());
    assert!(
        skipped.len() <= MAX_NOT_RUN,
        "{} blocks are not run (at most {MAX_NOT_RUN}):\n{}",
        skipped.len(),
        skipped.join("\n")
    );
}

#[test]
fn every_console_block_runs_as_written() {
    if !common::require_busybox_overlay() {
        return;
    }
    // BOOK_CONSOLE_ONLY=namespaces.md runs one chapter.
    let only = std::env::var("BOOK_CONSOLE_ONLY").unwrap_or_default();
    let (run, _) = all_blocks();
    let mut chapters: Vec<&str> = run.iter().map(|b| b.chapter.as_str()).collect();
    chapters.dedup();
    let mut problems = Vec::new();
    for chapter in chapters.into_iter().filter(|c| c.starts_with(&only)) {
        let blocks: Vec<&Block> = run.iter().filter(|b| b.chapter == chapter).collect();
        problems.extend(run_chapter(&blocks));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn parsing_a_block() {
    let text = "x\n<!-- console: not run: needs a terminal -->\n```console\n# a\nout\n```\n\
                ```console\n# b \\\n  c\n$ d\nsome ... output\n```\n";
    let (run, skipped) = blocks("t.md", text);
    assert_eq!(skipped, ["t.md:3: needs a terminal"]);
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].commands, ["b \\\n  c", "d"]);
    assert_eq!(run[0].output, ["some ... output"]);
}

/// The trace the Namespaces chapter shows is this snapshot (the chapter includes the file):
/// `ns-demo run` with every namespace, a hostname and a busybox root, its steps on stderr.
#[test]
fn the_namespaces_trace_is_a_snapshot() {
    if !common::require_busybox_overlay() {
        return;
    }
    let rootfs = common::busybox_rootfs();
    let out = common::net::private_netns(|| {
        Command::new(assert_cmd::cargo::cargo_bin("ns-demo"))
            .args(["run", "--all", "--hostname", "c1", "--rootfs"])
            .arg(rootfs.path())
            .args(["--", "true"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    let trace: String = common::text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(trace.contains("pivot_root(\".\", \".\")"), "{trace}");
    let mut settings = insta::Settings::clone_current();
    // The pid's digits, and the padding that keeps the column aligned, vary from run to run.
    settings.add_filter(
        r#"(write\("/proc/)\d+(/[ug]id_map", "0 0 1"\)) +book:"#,
        "${1}[PID]${2}                book:",
    );
    settings.add_filter(&regex_escape(&rootfs.path().to_string_lossy()), "[ROOTFS]");
    settings.bind(|| insta::assert_snapshot!("namespaces_trace", trace));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Runs `cmd` with stdout and stderr on one open file description, so the two interleave as
/// on a terminal; its exit status and what it printed.
fn interleaved(mut cmd: Command) -> (std::process::ExitStatus, String) {
    // $TMPDIR, not CARGO_TARGET_TMPDIR: the VM lane's guest has no target directory.
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = log.reopen().unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    (status, std::fs::read_to_string(log.path()).unwrap())
}

/// The trace the cgroups chapter shows is this snapshot, one per cgroup layout (the chapter
/// includes the v1-hybrid one, the CI host's): `cgroup-demo run --memory 32M` around a memory
/// hog, its steps and the hog's output interleaved, then the report read from the kernel.
#[test]
fn the_cgroups_trace_is_a_snapshot() {
    if !common::require_root() {
        return;
    }
    let name = format!("booktrace-{:06}", std::process::id() % 1_000_000);
    let demo = assert_cmd::cargo::cargo_bin("cgroup-demo");
    let mut cmd = Command::new(&demo);
    cmd.args(["run", "--memory", "32M", "--name", &name, "--"])
        .arg(&demo)
        .args(["hog", "--mib", "256"]);
    let (status, printed) = interleaved(cmd);
    let left = cgroup_dirs_named(&name);
    for dir in &left {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(left.is_empty(), "cgroups left over: {left:?}");
    assert_eq!(status.code(), Some(137), "{printed}");
    assert!(printed.contains("1 OOM kill(s)"), "{printed}");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_suffix(common::cgroup_layout_name());
    settings.add_filter(&name, "[NAME]");
    // The pid moved into the cgroup, the machine's CPUs and the measured times vary.
    settings.add_filter(r#"(cgroup\.procs, )"\d+"\) +book:"#, "${1}\"[PID]\") book:");
    settings.add_filter(
        r#"(cpuset\.cpus, )"[0-9,-]+"\) +book:"#,
        "${1}\"[CPUS]\") book:",
    );
    settings.add_filter(
        r"\d+\.\d+ s used in \d+\.\d+ s wall = \d+\.\d+ CPU",
        "[T] s used in [T] s wall = [N] CPU",
    );
    settings.bind(|| insta::assert_snapshot!("cgroups_trace", printed));
}

/// Every directory named `name` under a `minidock` cgroup of any hierarchy.
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        dirs.push(Path::new(base).join("minidock").join(name));
    }
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        dirs.push(entry.path().join("minidock").join(name));
    }
    dirs.sort();
    dirs.dedup();
    dirs.retain(|d| d.exists());
    dirs
}

/// The trace the Networking chapter shows is this snapshot (the chapter includes the file):
/// `net-demo tour` with the iptables-nft backend, in a private network namespace, its steps
/// on stderr.
#[test]
fn the_networking_trace_is_a_snapshot() {
    let backend = minidock::net::Backend::IptablesNft;
    if !common::require_root()
        || !common::prerequisite(backend.is_available(), "iptables-nft in PATH")
    {
        return;
    }
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = common::net::private_netns(|| {
        Command::new(assert_cmd::cargo::cargo_bin("net-demo"))
            .arg("--root")
            .arg(root.path())
            .args(["--nat-backend", backend.name(), "tour"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    let trace: String = common::text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(trace.contains("unshare(CLONE_NEWNET)"), "{trace}");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&root.path().to_string_lossy()), "[ROOT]");
    settings.bind(|| insta::assert_snapshot!("networking_trace", trace));
}

//! `--explain` against the kernel: `minidock --explain run` under `strace -f`, the two held
//! side by side. Every namespace, mount, identity, capability, seccomp, exec and cgroup call
//! strace sees must have its trace line, with the same arguments, in the same order within
//! each process; and every trace line's `book: N Title` must be a chapter of
//! `book/src/SUMMARY.md` that names the system call the line shows.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const SYSCALLS: &str = "mount,umount2,pivot_root,unshare,setns,clone,clone3,sethostname,prctl,\
                        seccomp,capset,setresuid,setresgid,setgroups,execve,write";

/// One system call strace saw: its name and its arguments (the text between the parentheses).
#[derive(Debug)]
struct Call {
    name: String,
    args: String,
}

/// Splits an argument list at its top-level commas (not inside quotes, [], {} or ()).
fn split_args(args: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted, mut escaped) =
        (Vec::new(), String::new(), 0i32, false, false);
    for c in args.chars() {
        if quoted {
            cur.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The text from `open` (just after a `(`) to its matching `)`.
fn balanced(text: &str) -> Option<&str> {
    let (mut depth, mut quoted, mut escaped) = (1, false, false);
    for (i, c) in text.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `A|B|C` as a sorted set, so that the order of flag names never matters.
fn flag_set(flags: &str) -> String {
    let mut names: Vec<&str> = flags.split('|').map(str::trim).collect();
    names.sort_unstable();
    names.join("|")
}

/// The part of a call that the trace must show, per system call; None for calls that are
/// not container steps (threads, reads, writes other than cgroup files).
fn key(name: &str, args: &str, from_strace: bool) -> Option<String> {
    let a = split_args(args);
    let arg = |i: usize| a.get(i).cloned().unwrap_or_default();
    let k = match name {
        "mount" => {
            let mut a = a.clone();
            if a.len() != 5 {
                return Some(format!("mount with {} arguments: {args}", a.len()));
            }
            a[3] = flag_set(&a[3]);
            a.join(", ")
        }
        "umount2" | "pivot_root" | "setgroups" | "setresuid" | "setresgid" | "capset" => {
            a.join(", ")
        }
        "sethostname" => arg(0),
        "unshare" => {
            if !args.contains("CLONE_NEW") {
                return None;
            }
            flag_set(args)
        }
        "setns" => arg(1),
        "clone" | "clone3" => {
            let flags = args.split("flags=").nth(1)?;
            let flags = flags.split([',', '}', ')']).next()?;
            let mut new: Vec<&str> = flags
                .split('|')
                .filter(|f| f.starts_with("CLONE_NEW"))
                .collect();
            if new.is_empty() {
                return None;
            }
            new.sort_unstable();
            new.join("|")
        }
        "prctl" => {
            let wanted = [
                "PR_SET_DUMPABLE",
                "PR_CAPBSET_DROP",
                "PR_CAP_AMBIENT",
                "PR_SET_NO_NEW_PRIVS",
                "PR_SET_KEEPCAPS",
            ];
            if !wanted.contains(&arg(0).as_str()) || arg(1) == "PR_CAP_AMBIENT_IS_SET" {
                return None;
            }
            a.join(", ")
        }
        "seccomp" => {
            let len = args
                .split("len=")
                .nth(1)?
                .split([',', '}'])
                .next()?
                .to_owned();
            format!("{}, len={len}", arg(0))
        }
        "execve" => format!("{}, {}", arg(0), arg(1)),
        "write" => {
            // strace -y: `13</sys/fs/cgroup/...>`; the trace: the path itself.
            let file = arg(0);
            let path = if from_strace {
                file.split_once('<')?.1.trim_end_matches('>').to_owned()
            } else {
                file.trim_matches('"').to_owned()
            };
            if !path.starts_with("/sys/fs/cgroup/") {
                return None;
            }
            format!("{path}, {}", arg(1))
        }
        _ => return None,
    };
    Some(format!("{name}({k})"))
}

/// The calls of one strace output file (`strace -ff` writes one per process, so a call is
/// never split into unfinished and resumed halves).
fn calls_of(file: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once('(')?;
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let args = balanced(rest)?;
            Some(Call {
                name: name.to_owned(),
                args: args.to_owned(),
            })
        })
        .collect()
}

/// Every system call written in a trace line's call column, with its key.
fn trace_keys(line: &str) -> Vec<String> {
    let names = SYSCALLS.split(',').map(str::trim);
    let mut keys = Vec::new();
    for name in names {
        let pattern = format!("{name}(");
        let mut from = 0;
        while let Some(at) = line[from..].find(&pattern) {
            let start = from + at;
            from = start + pattern.len();
            let boundary = line[..start]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
            if !boundary {
                continue;
            }
            if let Some(args) = balanced(&line[from..])
                && let Some(k) = key(name, args, false)
            {
                keys.push(k);
            }
        }
    }
    keys
}

#[test]
fn every_call_strace_sees_has_its_trace_line_in_order() {
    if !common::require_root()
        || !common::prerequisite(
            common::have("strace", "-V"),
            "strace is not installed (apt-get install strace)",
        )
    {
        return;
    }
    let root = common::minidock_root::Root::new(&[]);
    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("strace");
    cmd.args(["-ff", "-y", "-s", "65535", "-e"])
        .arg(format!("trace={SYSCALLS}"))
        .arg("-o")
        .arg(out_dir.path().join("call"));
    let minidock = root.cmd();
    cmd.arg(minidock.get_program()).args(minidock.get_args());
    for (k, v) in minidock.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .args([
            "--explain",
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    let trace = common::text(&out.stderr);
    assert!(out.status.success(), "{out:?}\n{trace}");
    let lines: Vec<&str> = trace.lines().filter(|l| l.starts_with('[')).collect();
    let keyed: Vec<Vec<String>> = lines.iter().map(|l| trace_keys(l)).collect();
    let mut used: Vec<Vec<bool>> = keyed.iter().map(|k| vec![false; k.len()]).collect();

    let minidock_bin = assert_cmd::cargo::cargo_bin("minidock");
    let mut files: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut missing = Vec::new();
    let mut checked: HashMap<String, usize> = HashMap::new();
    for file in &files {
        // Within one process, the trace lines come in the order of its calls.
        let mut after = 0;
        for call in calls_of(file) {
            if call.name == "execve" && call.args.starts_with(&format!("{:?}", minidock_bin)) {
                continue;
            }
            let Some(want) = key(&call.name, &call.args, true) else {
                continue;
            };
            *checked.entry(call.name.clone()).or_default() += 1;
            let found = (after..keyed.len()).find_map(|i| {
                let j = (0..keyed[i].len()).find(|&j| !used[i][j] && keyed[i][j] == want)?;
                Some((i, j))
            });
            match found {
                Some((i, j)) => {
                    used[i][j] = true;
                    after = i;
                }
                None => missing.push(format!(
                    "{}: {}({}) -> {want}",
                    file.file_name().unwrap().to_string_lossy(),
                    call.name,
                    call.args
                )),
            }
        }
    }
    assert!(
        checked.get("mount").is_some_and(|n| *n >= 20),
        "{checked:?}"
    );
    // Each trace line is one write(2) with its newline: stderr is unbuffered, and a line
    // written in pieces interleaves with the lines of the process's parent or child.
    let line_writes: Vec<Call> = files
        .iter()
        .flat_map(|f| calls_of(f))
        .filter(|c| c.name == "write" && c.args.starts_with("2<") && c.args.contains(", \"["))
        .collect();
    assert!(line_writes.len() >= 20, "{line_writes:?}");
    let split: Vec<&Call> = line_writes
        .iter()
        .filter(|c| !c.args.contains("\\n\", "))
        .collect();
    assert!(split.is_empty(), "trace lines written in pieces: {split:?}");
    // The container process is born in its cgroup2 directory (clone3), and writes itself
    // into each v1 hierarchy's `tasks`: on pure v2 no cgroup file is written for it.
    let (clone, write) = match common::cgroup_layout_name() {
        "v1" => ("clone", "write"),
        "v1-hybrid" => ("clone3", "write"),
        _ => ("clone3", "clone3"),
    };
    for needed in [
        "mount",
        "pivot_root",
        "umount2",
        "sethostname",
        "seccomp",
        "capset",
        "execve",
        write,
        clone,
        "prctl",
        "setresuid",
    ] {
        assert!(
            checked.contains_key(needed),
            "strace saw no {needed} call: {checked:?}"
        );
    }
    assert!(
        missing.is_empty(),
        "calls without their trace line (or out of order):\n{}\n\ntrace:\n{trace}",
        missing.join("\n")
    );
}

/// The book's chapters by number, as `book/src/SUMMARY.md` lists them (Introduction is 1).
fn chapters() -> Vec<(String, String)> {
    let summary = std::fs::read_to_string(common::repo().join("book/src/SUMMARY.md")).unwrap();
    summary
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("- [")?;
            let (title, rest) = rest.split_once("](")?;
            let file = rest.split_once(')')?.0;
            Some((title.to_owned(), file.to_owned()))
        })
        .collect()
}

#[test]
fn every_trace_line_names_a_chapter_that_explains_its_call() {
    if !common::require_root() {
        return;
    }
    let root = common::minidock_root::Root::new(&[]);
    let out = root.output(&[
        "--explain",
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let trace = common::text(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    let chapters = chapters();
    let mut wrong = Vec::new();
    for line in trace.lines().filter(|l| l.starts_with('[')) {
        assert!(
            !line.contains("Flags(") && !line.contains("Some(") && !line.contains("None"),
            "Rust debug output in a trace line: {line}"
        );
        let (step, book) = line.rsplit_once(" book: ").expect("a book reference");
        let (number, title) = book.split_once(' ').unwrap();
        let n: usize = number.parse().unwrap();
        let (summary_title, file) = &chapters[n - 1];
        // "Putting it together: minidock run" is chapter 6 "Putting it together".
        let short = summary_title.split(':').next().unwrap();
        if title != summary_title && title != short {
            wrong.push(format!("{line}\n    SUMMARY.md has {n} {summary_title:?}"));
            continue;
        }
        let text = chapter_text(file);
        // The first call the line shows: the identifier right before the first "(" that
        // follows one without a space.
        let Some(call) = first_call(step) else {
            continue;
        };
        if !text.contains(call) {
            wrong.push(format!("{line}\n    {file} never names {call}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The first `name(` in a trace line's text, e.g. `mount` in `... mount("proc", ...)`.
fn first_call(step: &str) -> Option<&str> {
    let step = step.split_once("] ").map_or(step, |(_, rest)| rest);
    step.char_indices()
        .filter(|(_, c)| *c == '(')
        .find_map(|(i, _)| {
            let before = &step[..i];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            let name = &before[start..];
            (name.len() > 1 && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .then_some(name)
        })
}

/// A chapter as mdBook renders it: the markdown with every `{{#include PATH:ANCHOR}}` replaced
/// by the lines between `ANCHOR: NAME` and `ANCHOR_END: NAME` of that file (or all of it).
fn chapter_text(file: &str) -> String {
    let dir = common::repo().join("book/src");
    let markdown = std::fs::read_to_string(dir.join(file)).unwrap();
    let mut out = String::new();
    for line in markdown.lines() {
        let Some(include) = line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|l| l.strip_suffix("}}"))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (path, anchor) = include.split_once(':').unwrap_or((include, ""));
        let source = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
        let start = format!("ANCHOR: {anchor}");
        let end = format!("ANCHOR_END: {anchor}");
        let mut inside = anchor.is_empty();
        for l in source.lines() {
            if !anchor.is_empty() && l.contains(&start) {
                inside = true;
            } else if !anchor.is_empty() && l.contains(&end) {
                inside = false;
            } else if inside {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

//! The spec's hooks (config.md, "POSIX-platform Hooks"; runtime.md, "Lifecycle"): programs
//! the runtime runs at fixed points of a container's life, each given the container's state
//! as JSON on its stdin.
//!
//! | hook              | when                                              | where it runs                |
//! |-------------------|---------------------------------------------------|------------------------------|
//! | `prestart`        | after the namespaces and mounts exist, before pivot_root (deprecated) | the runtime's namespaces |
//! | `createRuntime`   | same moment, after `prestart`                     | the runtime's namespaces     |
//! | `createContainer` | same moment, after `createRuntime`                | the container's namespaces, host paths |
//! | `startContainer`  | on `start`, right before the program's execve     | the container, its paths     |
//! | `poststart`       | after the program started                         | the runtime's namespaces     |
//! | `poststop`        | after `delete` removed the container              | the runtime's namespaces     |
//!
//! A failing hook fails the operation, except `poststart` and `poststop`, whose failure is a
//! warning (runtime.md, "Lifecycle", steps 10 and 13).

use crate::explain::{self, Chapter};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Hook, Spec};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The hook points, by their config.json names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    /// The key under `hooks` in config.json.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

/// The hooks of one kind in `spec` (none when `hooks` or that list is absent).
pub fn of(spec: &Spec, kind: Kind) -> Vec<Hook> {
    let Some(hooks) = spec.hooks().as_ref() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match kind {
        Kind::Prestart => hooks.prestart(),
        Kind::CreateRuntime => hooks.create_runtime(),
        Kind::CreateContainer => hooks.create_container(),
        Kind::StartContainer => hooks.start_container(),
        Kind::Poststart => hooks.poststart(),
        Kind::Poststop => hooks.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// The state a hook reads on its stdin (runtime.md, "State").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState {
    pub oci_version: String,
    pub id: String,
    /// `creating`, `created`, `running` or `stopped`.
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub annotations: HashMap<String, String>,
}

/// Runs every hook of `kind` in order and stops at the first failure, whose error names the
/// hook and carries what it printed.
pub fn run_all(spec: &Spec, kind: Kind, state: &HookState) -> Result<()> {
    let input = serde_json::to_vec(state)?;
    for hook in of(spec, kind) {
        run_one(&hook, kind, &input)
            .with_context(|| format!("{} hook {:?}", kind.name(), hook.path().display()))?;
    }
    Ok(())
}

/// [`run_all`] for `poststart` and `poststop`: a failure is printed as a warning on stderr
/// and the remaining hooks still run.
pub fn run_all_warning(spec: &Spec, kind: Kind, state: &HookState) {
    let Ok(input) = serde_json::to_vec(state) else {
        return;
    };
    for hook in of(spec, kind) {
        if let Err(err) = run_one(&hook, kind, &input) {
            eprintln!(
                "minidock: warning: {} hook {:?}: {err:#}",
                kind.name(),
                hook.path().display()
            );
        }
    }
}

// ANCHOR: run_hook
/// Runs one hook: `path` with `args` (argv[0] included) and exactly `env`, the state on its
/// stdin, its output collected for the error message. With `timeout` (seconds), a hook still
/// running then is killed and counts as failed.
fn run_one(hook: &Hook, kind: Kind, input: &[u8]) -> Result<()> {
    let path = hook.path();
    if let Some(timeout) = hook.timeout()
        && timeout <= 0
    {
        bail!("timeout must be greater than zero, not {timeout}");
    }
    let args = hook
        .args()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| vec![path.to_string_lossy().into_owned()]);
    explain::step(
        &format!("run a {} hook", kind.name()),
        || format!("execve({path:?}, {args:?})"),
        Chapter::RuntimeSpec,
    );
    let mut cmd = std::process::Command::new(path);
    std::os::unix::process::CommandExt::arg0(&mut cmd, &args[0]);
    cmd.args(&args[1..])
        .env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("cannot execute it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: EPIPE is not its failure.
        let _ = std::io::Write::write_all(&mut stdin, input);
    }
    let mut output = Output::new(&mut child)?;
    let deadline = hook
        .timeout()
        .map(|s| Instant::now() + Duration::from_secs(s as u64));
    let status = loop {
        output.drain();
        if let Some(status) = child.try_wait().context("waiting for it")? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "ran past its timeout of {}s",
                hook.timeout().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    output.drain();
    if !status.success() {
        bail!(
            "{status}, stdout: {:?}, stderr: {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
// ANCHOR_END: run_hook

/// A hook's stdout and stderr, read without blocking while it runs (a full pipe would stop
/// it).
struct Output {
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    fn new(child: &mut std::process::Child) -> Result<Output> {
        let out = child.stdout.take().context("no stdout pipe")?;
        let err = child.stderr.take().context("no stderr pipe")?;
        for fd in [out.as_fd(), err.as_fd()] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .context("fcntl(O_NONBLOCK)")?;
        }
        Ok(Output {
            out: Some(out),
            err: Some(err),
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    }

    /// Reads what is available now; a pipe at end-of-file is dropped.
    fn drain(&mut self) {
        if read_available(self.out.as_mut(), &mut self.stdout) {
            self.out = None;
        }
        if read_available(self.err.as_mut(), &mut self.stderr) {
            self.err = None;
        }
    }
}

/// Appends what `pipe` holds to `into`; true at end-of-file.
fn read_available(pipe: Option<&mut impl Read>, into: &mut Vec<u8>) -> bool {
    let Some(pipe) = pipe else {
        return false;
    };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    fn state() -> Vec<u8> {
        serde_json::to_vec(&HookState {
            oci_version: "1.0.2".into(),
            id: "x".into(),
            status: "creating".into(),
            pid: 1,
            bundle: "/b".into(),
            annotations: HashMap::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_hook_gets_the_state_and_only_its_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$A:$HOME\" >> {0}"],"env":["A=1"]}}"#,
            out.display()
        ));
        run_one(&h, Kind::Prestart, &state()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("{\"ociVersion\":\"1.0.2\""), "{text}");
        assert!(text.ends_with("1:\n"), "{text}");
    }

    #[test]
    fn a_failing_hook_reports_its_output() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo oops >&2; exit 3"]}"#);
        let err = run_one(&h, Kind::Prestart, &state()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("exit status: 3") && text.contains("oops"),
            "{text}"
        );
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 30"],"timeout":1}"#);
        let err = run_one(&h, Kind::Prestart, &state()).unwrap_err();
        assert!(format!("{err:#}").contains("timeout of 1s"), "{err:#}");
        let zero = hook(r#"{"path":"/bin/true","timeout":0}"#);
        assert!(run_one(&zero, Kind::Prestart, &state()).is_err());
    }
}

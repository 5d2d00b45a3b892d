// Given code for lesson 18, shared by the starter, the solution and the wrong answers: the
// parts of config.json every `docker run` has, whatever its options.
#![allow(dead_code)]

use serde_json::{Value, json};

/// The command the checker's `docker run` runs: it prints the hostname, tries to write to
/// `/`, and waits on its stdin while the checker looks at it from the host.
pub fn process() -> Value {
    json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "hostname; touch /written 2>&1 && echo wrote /written; echo WORKSHOP_READY; read x || true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": "/",
        "noNewPrivileges": true
    })
}

/// The filesystems every container gets (runtime-spec config-linux.md, "Default
/// Filesystems"), as `runc spec` writes them.
pub fn mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]}
    ])
}

/// Writes `config` as BUNDLE/config.json, whole or not at all (a temp file, then rename).
pub fn write_config(bundle: &std::path::Path, config: &Value) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = bundle.join(".config.json.tmp");
    let text = serde_json::to_string_pretty(config).context("serialising config.json")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, bundle.join("config.json")).context("renaming config.json")
}

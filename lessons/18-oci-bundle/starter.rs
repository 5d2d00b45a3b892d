//! Lesson 18: the OCI bundle that `docker run` would make.
//!
//! Usage: lesson18 BUNDLE
//!
//! BUNDLE holds a busybox root filesystem in BUNDLE/rootfs. Write BUNDLE/config.json so that
//! `minidock runtime run --bundle BUNDLE ID` (or `runc run`) does what this does:
//!
//!     docker run -i --hostname bundle-box --read-only -m 32m busybox \
//!         sh -c 'hostname; touch /written 2>&1 && echo wrote /written; echo WORKSHOP_READY; read x || true'
//!
//! Read: book chapter "The OCI runtime spec", the runtime-spec's config.md and
//! config-linux.md (https://github.com/opencontainers/runtime-spec).
//!
//! Check your work: `workshop check 18` (as root).

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;

fn main() -> Result<()> {
    let bundle = std::env::args().nth(1).context("usage: lesson18 BUNDLE")?;
    write_config(Path::new(&bundle), &config())
}

/// The config.json of the `docker run` above.
fn config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": process(),
        // TODO 1: --read-only: the container cannot write to its root filesystem.
        "root": {"path": "rootfs", "readonly": false},
        // TODO 2: --hostname bundle-box: the container's hostname, and the host keeps its own.
        "mounts": mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "mount"},
                {"type": "network"}
            ],
            // TODO 3: -m 32m: a memory limit of 32 MiB (Docker also sets memory+swap to twice
            //         the limit when only -m is given).
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): the
// process, the default mounts, and writing config.json whole.
#[path = "given.rs"]
mod given;
use given::*;

//! Lesson 18, a known-wrong answer: root.readonly left false.
//!
//! `readonlyPaths` makes a few paths of /proc read-only, not the root: the container can still
//! write to its root filesystem, which `--read-only` forbids. `workshop verify` proves the check
//! fails it.

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
        // --read-only taken to be the masked and read-only paths below: root stays writable.
        "root": {"path": "rootfs", "readonly": false},
        // --hostname: set in the container's own UTS namespace, listed below.
        "hostname": "bundle-box",
        "mounts": mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "mount"},
                {"type": "network"},
                {"type": "uts"}
            ],
            // -m 32m: the limit in bytes; with -m alone Docker sets memory+swap to twice it.
            "resources": {"memory": {"limit": 33554432, "swap": 67108864}},
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

#[path = "../given.rs"]
mod given;
use given::*;

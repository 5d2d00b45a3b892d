//! Lesson 18, a known-wrong answer: the hostname set, no UTS namespace listed.
//!
//! Set in the namespace the container shares with the host, the hostname would rename the
//! host: runc refuses such a config ("unable to set hostname without a private UTS
//! namespace"), and so does `minidock runtime`. `workshop verify` proves the check fails it.

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
        // --read-only: the root is mounted read-only (MS_RDONLY on its bind mount).
        "root": {"path": "rootfs", "readonly": true},
        // --hostname: the name alone, or so it seems.
        "hostname": "bundle-box",
        "mounts": mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "mount"},
                {"type": "network"}
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

//! Lesson 02, a known-wrong answer: a copy of busybox under a temp name, run as unshare, does
//! the work: no command named unshare on any path.
//!
//! The checker does not look at names: it traces which program makes each system call
//! (strace -f) and counts only those your program makes itself. `workshop verify` proves
//! the check fails it.

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let copy = std::env::temp_dir().join(format!("lesson02-tool-{}", std::process::id()));
    std::fs::copy("/bin/busybox", &copy).context("copying /bin/busybox")?;
    let status = Command::new(&copy)
        .arg0("unshare")
        .args(["-p", "-f", "-m", "--mount-proc"])
        .args(&args)
        .status()
        .context("running the copy of busybox");
    let _ = std::fs::remove_file(&copy);
    std::process::exit(status?.code().unwrap_or(1));
}

//! Lesson 06, a known-wrong answer: the overlay is mounted, but the new text is written into
//! UPPER directly, not through MERGED.
//!
//! UPPER/hello.txt holds the right text, but the kernel never copied anything up: the file
//! is a new one, with root's owner and the default mode, not the image's file carried up with
//! its owner and mode. `workshop verify` proves the check fails it.
//!
//! Usage: lesson06 LOWER UPPER WORK MERGED

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use std::path::PathBuf;

const NEW_TEXT: &str = "edited in the container\n";

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [lower, upper, work, merged] = args.as_slice() else {
        anyhow::bail!("usage: lesson06 LOWER UPPER WORK MERGED");
    };

    // One lower layer here; with several, lowerdir=TOP:...:BOTTOM (leftmost on top).
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .with_context(|| format!("mount overlay on {} ({data})", merged.display()))?;

    // The shortcut: the file the checker reads, written where it reads it.
    std::fs::write(upper.join("hello.txt"), NEW_TEXT)
        .with_context(|| format!("writing {}", upper.join("hello.txt").display()))?;

    // The write went to the merged view; the kernel copied the file up into UPPER first.
    for layer in [upper, lower] {
        let path = layer.join("hello.txt");
        let content = std::fs::read_to_string(&path).unwrap_or_else(|_| "(absent)".into());
        println!("{}: {content:?}", path.display());
    }
    Ok(())
}

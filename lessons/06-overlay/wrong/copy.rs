//! Lesson 06, a known-wrong answer: copying files instead of mounting an overlay.
//!
//! The files end up where the lesson wants them, but MERGED is a plain directory: nothing joins
//! the layers, and UPPER holds a copy the program made, not the kernel's copy-up.
//! `workshop verify` proves the check fails it.

use anyhow::{Context, Result};
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
    // The shortcut: copy LOWER into MERGED by hand, and copy the edit into UPPER after it.
    let _ = data;
    for entry in std::fs::read_dir(lower)? {
        let entry = entry?;
        std::fs::copy(entry.path(), merged.join(entry.file_name()))?;
    }

    std::fs::write(merged.join("hello.txt"), NEW_TEXT)
        .with_context(|| format!("writing {}", merged.join("hello.txt").display()))?;

    std::fs::copy(merged.join("hello.txt"), upper.join("hello.txt"))?;
    for layer in [upper, lower] {
        let path = layer.join("hello.txt");
        let content = std::fs::read_to_string(&path).unwrap_or_else(|_| "(absent)".into());
        println!("{}: {content:?}", path.display());
    }
    Ok(())
}

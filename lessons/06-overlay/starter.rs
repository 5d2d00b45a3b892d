//! Lesson 06: mount an overlay and prove copy-up.
//!
//! Usage: lesson06 LOWER UPPER WORK MERGED
//!
//! Mount an overlay on MERGED: LOWER is the read-only image layer, UPPER the container's
//! writable layer, WORK overlayfs's scratch dir (it must be on UPPER's filesystem). Then edit
//! hello.txt through MERGED, as a program in the container would, and show where the new
//! content went.
//!
//! Leave the overlay mounted: the checker reads the mount table and the directories, then
//! unmounts it.
//!
//! Read: book chapter "Union filesystems and layers"; Documentation/filesystems/overlayfs.rst.
//! Check your work: `workshop check 6` (as root).

use anyhow::{Context, Result};
use std::path::PathBuf;

const NEW_TEXT: &str = "edited in the container\n";

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [lower, upper, work, merged] = args.as_slice() else {
        anyhow::bail!("usage: lesson06 LOWER UPPER WORK MERGED");
    };

    // TODO 1: make MERGED show LOWER and UPPER as one filesystem: LOWER read-only, every
    //         change landing in UPPER, WORK the kernel's scratch space. Nothing may be copied
    //         by this program. (README.md; stuck: `workshop hint 6`.)
    let _ = (lower, upper, work);

    // Given: the container edits a file of the image.
    std::fs::write(merged.join("hello.txt"), NEW_TEXT)
        .with_context(|| format!("writing {}", merged.join("hello.txt").display()))?;

    // TODO 2: show where the new text went: print what UPPER/hello.txt and LOWER/hello.txt
    //         hold. (Before TODO 1 is done, MERGED is a plain directory and UPPER stays empty.)
    println!("wrote {}", merged.join("hello.txt").display());
    Ok(())
}

//! The book includes code a screenful at a time: every region a chapter includes by anchor
//! (`{{#include PATH:ANCHOR}}`, the lines between `ANCHOR: name` and `ANCHOR_END: name`) is
//! at most 50 lines. A longer function is split into named steps, each with its own anchor.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The most lines an included region may have.
const SCREEN: usize = 50;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chapters, `book/src/**/*.md`.
fn chapters(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(chapters(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The `(PATH, ANCHOR)` of each `{{#include PATH:ANCHOR}}` or `{{#rustdoc_include ...}}` in a
/// chapter; includes of a whole file or a line range name no anchor and are left out.
fn anchored_includes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for directive in ["{{#include ", "{{#rustdoc_include "] {
        for (start, _) in text.match_indices(directive) {
            let rest = &text[start + directive.len()..];
            let Some(end) = rest.find("}}") else {
                continue;
            };
            if let Some((path, anchor)) = rest[..end].trim().split_once(':')
                && !anchor.is_empty()
                && anchor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !anchor.chars().all(|c| c.is_ascii_digit())
            {
                out.push((path.to_owned(), anchor.to_owned()));
            }
        }
    }
    out
}

/// Whether `line` has `marker` followed by `anchor` as a whole word.
fn names_anchor(line: &str, marker: &str, anchor: &str) -> bool {
    line.match_indices(marker).any(|(at, _)| {
        let rest = line[at + marker.len()..].trim_start();
        rest.strip_prefix(anchor).is_some_and(|after| {
            !after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// The number of lines between `ANCHOR: anchor` and `ANCHOR_END: anchor` in `source`, or
/// None when either marker is missing.
fn region_lines(source: &str, anchor: &str) -> Option<usize> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines
        .iter()
        .position(|l| names_anchor(l, "ANCHOR:", anchor))?;
    let end = lines
        .iter()
        .position(|l| names_anchor(l, "ANCHOR_END:", anchor))?;
    Some(end.saturating_sub(start + 1))
}

/// Every region the book includes, once: (source file relative to the crate, anchor, lines).
fn included_regions() -> Vec<(String, String, usize)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for chapter in chapters(&crate_dir().join("book/src")) {
        let text = std::fs::read_to_string(&chapter).unwrap();
        for (path, anchor) in anchored_includes(&text) {
            let file = chapter.parent().unwrap().join(&path);
            let Ok(file) = file.canonicalize() else {
                panic!("{}: missing file {path}", chapter.display());
            };
            let relative = file
                .strip_prefix(crate_dir().canonicalize().unwrap())
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            if !seen.insert((relative.clone(), anchor.clone())) {
                continue;
            }
            let source = std::fs::read_to_string(&file).unwrap();
            let Some(lines) = region_lines(&source, &anchor) else {
                panic!("{}: {path} has no anchor {anchor}", chapter.display());
            };
            out.push((relative, anchor, lines));
        }
    }
    out
}

#[test]
fn every_included_region_fits_a_screen() {
    let regions = included_regions();
    assert!(!regions.is_empty(), "the book includes no code by anchor");
    let long: Vec<String> = regions
        .iter()
        .filter(|(_, _, lines)| *lines > SCREEN)
        .map(|(file, anchor, lines)| format!("{file}:{anchor} is {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "included regions longer than {SCREEN} lines (split each into named steps with \
         their own anchors):\n{}",
        long.join("\n")
    );
}

#[test]
fn regions_are_counted_between_their_markers() {
    let source = "a\n// ANCHOR: one\nx\ny\n// ANCHOR: one_more\nz\n// ANCHOR_END: one_more\n\
                  // ANCHOR_END: one\n";
    assert_eq!(region_lines(source, "one"), Some(5));
    assert_eq!(region_lines(source, "one_more"), Some(1));
    assert_eq!(region_lines(source, "two"), None);
    let text = "{{#include ../../src/a.rs:step}} {{#include ../x.rs}} {{#include ../y.rs:3:9}}";
    assert_eq!(
        anchored_includes(text),
        vec![("../../src/a.rs".to_owned(), "step".to_owned())]
    );
}

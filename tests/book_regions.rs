//! The book includes code a screenful at a time: every region a chapter includes by anchor
//! (`{{#include PATH:ANCHOR}}`, the lines between `ANCHOR: name` and `ANCHOR_END: name`) is
//! at most 50 lines. A longer function is split into named steps, each with its own anchor.
//!
//! The regions in `LONG` are longer than a screen and shown folded; the list may only shrink:
//! a listed region that is no longer long (or no longer included) fails the test too, so it
//! is taken off the list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The most lines an included region may have.
const SCREEN: usize = 50;

/// Why the regions of `LONG` are allowed.
const LONG_REASON: &str = "longer than a screen: shown folded";

/// Included regions longer than a screen: (source file from the top of the crate, anchor).
const LONG: &[(&str, &str)] = &[
    ("src/build/builder.rs", "build"),
    ("src/build/builder.rs", "run_step"),
    ("src/build/copy.rs", "dockerignore"),
    ("src/build/copy.rs", "download"),
    ("src/build/instructions.rs", "created_by"),
    ("src/build/instructions.rs", "expand"),
    ("src/build/parser.rs", "dispatch"),
    ("src/build/parser.rs", "parse"),
    ("src/container/attach.rs", "detach_keys"),
    ("src/container/attach.rs", "server"),
    ("src/container/cli.rs", "run_run"),
    ("src/container/exec.rs", "exec"),
    ("src/container/exec.rs", "exec_child"),
    ("src/container/init.rs", "init_main"),
    ("src/container/logs.rs", "writer"),
    ("src/container/mod.rs", "create"),
    ("src/container/mod.rs", "stop"),
    ("src/container/monitor.rs", "monitor"),
    ("src/container/shim.rs", "launch"),
    ("src/container/shim.rs", "pump"),
    ("src/container/shim.rs", "step"),
    ("src/container/shim.rs", "supervise"),
    ("src/container/spec.rs", "build"),
    ("src/container/spec.rs", "default_mounts"),
    ("src/container/spec.rs", "env"),
    ("src/container/spec.rs", "host_devices"),
    ("src/container/spec.rs", "init_layer"),
    ("src/container/state.rs", "restart_policy"),
    ("src/container/user.rs", "exec_user"),
    ("src/daemon/containers.rs", "pipe"),
    ("src/daemon/mod.rs", "route"),
    ("src/overlay.rs", "mount"),
    ("src/rootless.rs", "start_holder"),
];

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
        .filter(|(file, anchor, lines)| {
            *lines > SCREEN && !LONG.contains(&(file.as_str(), anchor.as_str()))
        })
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
fn the_list_of_long_regions_only_shrinks() {
    let regions = included_regions();
    let stale: Vec<String> = LONG
        .iter()
        .filter(|(file, anchor)| {
            !regions
                .iter()
                .any(|(f, a, lines)| f == file && a == anchor && *lines > SCREEN)
        })
        .map(|(file, anchor)| format!("{file}:{anchor}"))
        .collect();
    assert!(
        stale.is_empty(),
        "listed as {LONG_REASON:?}, but no longer an included region over {SCREEN} lines: \
         take them off LONG:\n{}",
        stale.join("\n")
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

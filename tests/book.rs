//! The book's code comes only from the sources, by anchor: check that every
//! `{{#include path:anchor}}` names a file that exists and an anchor that it has, and that every
//! relative link and image points at a file that exists. mdBook alone would only warn.

use std::path::{Path, PathBuf};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src")
}

fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(book_src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// `{{#include PATH:ANCHOR}}` and `{{#include PATH}}` directives in a chapter.
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    text.match_indices("{{#include ")
        .filter_map(|(start, _)| {
            let rest = &text[start + "{{#include ".len()..];
            let end = rest.find("}}")?;
            let spec = rest[..end].trim();
            // PATH:ANCHOR, or PATH with a line range (PATH:5:, PATH:5:20), or PATH alone.
            Some(match spec.split_once(':') {
                Some((path, rest)) if rest.chars().all(|c| c.is_ascii_digit() || c == ':') => {
                    (path.to_owned(), None)
                }
                Some((path, anchor)) => (path.to_owned(), Some(anchor.to_owned())),
                None => (spec.to_owned(), None),
            })
        })
        .collect()
}

/// Targets of markdown links and images: `](target)`.
fn links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(start, _)| {
            let rest = &text[start + 2..];
            let end = rest.find(')')?;
            Some(
                rest[..end]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_include_names_an_existing_file_and_anchor() {
    let mut problems = Vec::new();
    let mut count = 0;
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).unwrap();
        for (path, anchor) in includes(&text) {
            count += 1;
            let file = chapter.parent().unwrap().join(&path);
            let Ok(source) = std::fs::read_to_string(&file) else {
                problems.push(format!("{}: missing file {path}", chapter.display()));
                continue;
            };
            if let Some(anchor) = anchor {
                let open = source
                    .lines()
                    .any(|l| l.trim_start().ends_with(&format!("ANCHOR: {anchor}")));
                let close = source
                    .lines()
                    .any(|l| l.trim_start().ends_with(&format!("ANCHOR_END: {anchor}")));
                if !open || !close {
                    problems.push(format!(
                        "{}: {path} has no anchor {anchor}",
                        chapter.display()
                    ));
                }
            }
        }
    }
    assert!(count > 0, "the book includes no code at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_relative_link_points_at_a_file() {
    let mut problems = Vec::new();
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).unwrap();
        for target in links(&text) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with('#')
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if !chapter.parent().unwrap().join(path).exists() {
                problems.push(format!("{}: broken link {target}", chapter.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_book_pastes_no_rust_code() {
    // A ```rust block must contain only an include: code in the book is the code that runs.
    let mut problems = Vec::new();
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).unwrap();
        let mut in_rust = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```rust") {
                in_rust = true;
            } else if line.trim_start().starts_with("```") {
                in_rust = false;
            } else if in_rust && !line.trim().is_empty() && !line.contains("{{#include") {
                problems.push(format!(
                    "{}:{}: pasted code: {line}",
                    chapter.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = std::fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    for chapter in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        if name != "SUMMARY.md" {
            assert!(
                summary.contains(&format!("({name})")),
                "{name} is not in SUMMARY.md"
            );
        }
    }
    for target in links(&summary) {
        assert!(
            book_src().join(&target).exists(),
            "SUMMARY.md links to missing {target}"
        );
    }
}

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

/// A count as the README spells it.
fn in_words(n: usize) -> String {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_owned())
}

#[test]
fn the_readme_counts_what_is_there() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let not_run: usize = chapters()
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.matches("<!-- console: not run: ").count()
        })
        .sum();
    let claim = format!("(there\n  are {})", in_words(not_run));
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat(&readme).contains(&flat(&claim)),
        "README.md must say the book has {not_run} console blocks not run: {claim:?}"
    );
    let vm_test = std::fs::read_to_string(repo.join("scripts/vm-test")).unwrap();
    let default_tests = vm_test
        .lines()
        .find_map(|l| l.strip_prefix("default_tests=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("scripts/vm-test lists default_tests=(...)")
        .split_whitespace()
        .count();
    let claim = format!(
        "({} test files under software emulation)",
        in_words(default_tests)
    );
    assert!(
        flat(&readme).contains(&flat(&claim)),
        "README.md must say scripts/vm-test runs {default_tests} test files: {claim:?}"
    );
}

#[test]
fn every_source_path_the_prose_names_exists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).unwrap();
        for (start, _) in text.match_indices('`') {
            let rest = &text[start + 1..];
            let Some(end) = rest.find('`') else { continue };
            let named = rest[..end].split(':').next().unwrap_or("");
            let is_path = ["src/", "tests/", "scripts/", "lessons/"]
                .iter()
                .any(|top| named.starts_with(top));
            // `lessons/NN-name/` stands for every lesson's directory.
            if is_path
                && !named.contains("NN")
                && !named.contains(' ')
                && !repo.join(named).exists()
            {
                problems.push(format!("{}: `{named}` does not exist", chapter.display()));
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

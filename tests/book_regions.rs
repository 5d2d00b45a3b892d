//! The book includes code a screenful at a time: every region a chapter includes by anchor
//! (`{{#include PATH:ANCHOR}}`, the lines between `ANCHOR: name` and `ANCHOR_END: name`) is
//! at most 50 lines. A longer function is split into named steps, each with its own anchor.
//!
//! And the code a reader sees is about the mechanism: in each included region of Rust code,
//! tracer calls and error plumbing (see [`Crowding`]) are at most a third of the code lines.

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

/// The lines between `ANCHOR: anchor` and `ANCHOR_END: anchor` in `source`, or None when
/// either marker is missing.
fn region<'a>(source: &'a str, anchor: &str) -> Option<Vec<&'a str>> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines
        .iter()
        .position(|l| names_anchor(l, "ANCHOR:", anchor))?;
    let end = lines
        .iter()
        .position(|l| names_anchor(l, "ANCHOR_END:", anchor))?;
    Some(lines.get(start + 1..end).unwrap_or_default().to_vec())
}

/// An included region: the source file relative to the crate, the anchor, and its lines.
struct Region {
    file: String,
    anchor: String,
    lines: Vec<String>,
}

/// Every region the book includes, once.
fn included_regions() -> Vec<Region> {
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
            let Some(lines) = region(&source, &anchor) else {
                panic!("{}: {path} has no anchor {anchor}", chapter.display());
            };
            let lines = lines.into_iter().map(str::to_owned).collect();
            out.push(Region {
                file: relative,
                anchor,
                lines,
            });
        }
    }
    out
}

/// The most plumbing lines a region may have: a third of its code lines, rounded down.
///
/// No region is exempt for being short. A short region is where the plumbing shows most (the
/// old `set_hostname` had 5 of 8), and the third still leaves room for what a short
/// function needs: a signature, a trace line and the call with its context on the call's
/// line is 3 code lines with 1 of plumbing.
fn plumbing_allowed(code: usize) -> usize {
    code / 3
}

/// How the lines of a region of Rust code divide. Code lines are those that are not blank,
/// not comments (doc comments and anchors included) and not lone braces (`}`, `});`, `),`).
/// Among them, plumbing lines are:
/// - tracer calls: a statement starting `explain::` or `trace!(`, with its continuation
///   lines (up to the line that closes its brackets);
/// - error plumbing: a line starting `.with_context(`, `.context(`, `.map_err(`,
///   `.ok_or_else(`, with their continuation lines (the `format!` of a context closure is
///   one); the first line of a `bail!`/`anyhow!` statement (when the line is nothing else:
///   the message on the lines after it says what is refused, and is read as code); a line
///   that is only `?;` or `})?;`.
///
/// A real call that carries its context on the same line (`f(x).context("f")?;`) is a line
/// of code, not of plumbing: it is the form this rule asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Crowding {
    code: usize,
    plumbing: usize,
}

/// Where the scanner is at the end of a line: inside a string (normal, or raw with that many
/// `#`) or a block comment, which carry over to the next line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Code,
    Str,
    RawStr(usize),
    Comment,
}

/// A line of Rust with comments removed and the insides of string and char literals
/// dropped (their quotes kept), so brackets are counted on code only.
fn strip_line(line: &str, scan: &mut Scan) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match *scan {
            Scan::Comment => {
                if c == '*' && chars.get(i + 1) == Some(&'/') {
                    *scan = Scan::Code;
                    i += 1;
                }
            }
            Scan::Str => match c {
                '\\' => i += 1,
                '"' => {
                    out.push('"');
                    *scan = Scan::Code;
                }
                _ => {}
            },
            Scan::RawStr(hashes) => {
                let closes = c == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
                if closes {
                    out.push('"');
                    *scan = Scan::Code;
                    i += hashes;
                }
            }
            Scan::Code => i = scan_code(&chars, i, &mut out, scan),
        }
        i += 1;
    }
    out
}

/// One step of [`strip_line`] outside literals and comments, at `chars[i]`: returns the
/// index of the last character it consumed.
fn scan_code(chars: &[char], i: usize, out: &mut String, scan: &mut Scan) -> usize {
    let c = chars[i];
    let next = chars.get(i + 1).copied();
    let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if c == '/' && next == Some('/') {
        return chars.len();
    }
    if c == '/' && next == Some('*') {
        *scan = Scan::Comment;
        return i + 1;
    }
    if c == '"' {
        out.push('"');
        *scan = Scan::Str;
        return i;
    }
    if c == 'r' && !after_ident && matches!(next, Some('"' | '#')) {
        let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
        if chars.get(i + 1 + hashes) == Some(&'"') {
            out.push('"');
            *scan = Scan::RawStr(hashes);
            return i + 1 + hashes;
        }
    }
    if c == '\'' {
        // A char literal ('x' or '\n'); otherwise a lifetime, kept as it is.
        if next == Some('\\') {
            let close = chars[i + 2..].iter().position(|&q| q == '\'');
            return close.map_or(chars.len(), |p| i + 2 + p);
        }
        if chars.get(i + 2) == Some(&'\'') {
            return i + 2;
        }
    }
    out.push(c);
    i
}

/// The change in bracket depth over a stripped line.
fn depth_change(code: &str) -> isize {
    code.chars()
        .map(|c| match c {
            '(' | '[' | '{' => 1,
            ')' | ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

/// The starts of the statements that are tracer calls or error plumbing with all their lines.
const PLUMBING_STATEMENTS: [&str; 7] = [
    "explain::",
    "crate::explain::",
    "trace!(",
    ".with_context(",
    ".context(",
    ".map_err(",
    ".ok_or_else(",
];

/// The starts of the statements that are error plumbing by their first line only: the lines
/// after it are the message, which says what is refused and is read as code.
const PLUMBING_LINES: [&str; 5] = [
    "bail!(",
    "anyhow::bail!(",
    "anyhow!(",
    "anyhow::anyhow!(",
    "return Err(anyhow",
];

/// Counts the code lines and plumbing lines of a region of Rust code (see [`Crowding`]).
fn crowding(lines: &[impl AsRef<str>]) -> Crowding {
    let mut scan = Scan::Code;
    let mut count = Crowding::default();
    // Bracket depth still open in the plumbing statement being read, if any.
    let mut open: Option<isize> = None;
    for line in lines {
        let stripped = strip_line(line.as_ref(), &mut scan);
        let code = stripped.trim();
        let lone_brace = code.chars().all(|c| "{}()[];,".contains(c));
        let plumbing = if let Some(depth) = open {
            let depth = depth + depth_change(code);
            open = (depth > 0).then_some(depth);
            true
        } else if PLUMBING_STATEMENTS.iter().any(|s| code.starts_with(s)) {
            let depth = depth_change(code);
            open = (depth > 0).then_some(depth);
            true
        } else {
            PLUMBING_LINES.iter().any(|s| code.starts_with(s)) || code == "?;" || code == "})?;"
        };
        if !lone_brace {
            count.code += 1;
            count.plumbing += usize::from(plumbing);
        }
    }
    count
}

/// Each region of Rust code the book includes whose plumbing is more than a third of its
/// code lines, with its counts.
fn crowded_regions() -> Vec<String> {
    let mut out = Vec::new();
    for r in included_regions() {
        if !r.file.ends_with(".rs") {
            continue;
        }
        let Crowding { code, plumbing } = crowding(&r.lines);
        if plumbing > plumbing_allowed(code) {
            out.push(format!(
                "{}:{}: {plumbing} of {code} code lines are tracer calls or error plumbing",
                r.file, r.anchor
            ));
        }
    }
    out
}

#[test]
fn tracer_calls_and_error_plumbing_do_not_crowd_the_code() {
    let crowded = crowded_regions();
    assert!(
        crowded.is_empty(),
        "included regions where tracer calls and error plumbing are more than a third of the \
         code lines (carry the trace and the context in one helper call, fold the context \
         onto the call's line):\n{}",
        crowded.join("\n")
    );
}

#[test]
fn every_included_region_fits_a_screen() {
    let regions = included_regions();
    assert!(!regions.is_empty(), "the book includes no code by anchor");
    let long: Vec<String> = regions
        .iter()
        .filter(|r| r.lines.len() > SCREEN)
        .map(|r| format!("{}:{} is {} lines", r.file, r.anchor, r.lines.len()))
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
    assert_eq!(region(source, "one").map(|l| l.len()), Some(5));
    assert_eq!(region(source, "one_more").map(|l| l.len()), Some(1));
    assert_eq!(region(source, "two"), None);
    let text = "{{#include ../../src/a.rs:step}} {{#include ../x.rs}} {{#include ../y.rs:3:9}}";
    assert_eq!(
        anchored_includes(text),
        vec![("../../src/a.rs".to_owned(), "step".to_owned())]
    );
}

#[test]
fn plumbing_is_told_from_code() {
    // set_hostname as it once was: 5 of its 8 code lines are plumbing.
    let crowded = r#"pub fn set_hostname(hostname: &str) -> Result<()> {
    explain::step(
        "set the hostname",
        || format!("sethostname({hostname:?})"),
        Chapter::Namespaces,
    );
    nix::unistd::sethostname(hostname)
        .with_context(|| format!("sethostname({hostname:?})"))?;
    Ok(())
}"#;
    let lines: Vec<&str> = crowded.lines().collect();
    assert_eq!(
        crowding(&lines),
        Crowding {
            code: 8,
            plumbing: 5
        }
    );
    let folded = r#"/// Sets the hostname.
pub fn set_hostname(hostname: &str) -> Result<()> {
    explain::trace!(Namespaces: "set the hostname" => "sethostname({hostname:?})");

    nix::unistd::sethostname(hostname).with_context(|| format!("sethostname({hostname:?})"))
}"#;
    let lines: Vec<&str> = folded.lines().collect();
    assert_eq!(
        crowding(&lines),
        Crowding {
            code: 3,
            plumbing: 1
        }
    );
    // Brackets in strings, char literals and comments do not extend a plumbing statement;
    // a bail! inside an `if` line is code, a lone `bail!` statement and `})?;` are not.
    let mixed = r##"let ok = f(')', "(").map(|x| x.len())?; // (
    .with_context(|| format!("{{ ( {}", r#"(("#))?;
    if bad { bail!("no") }
    bail!(
        "(("
    );
    return Err(anyhow!("x"));
    let v = g(|| {
        h()
    })?;
    /* ( */ let w = 1;"##;
    let lines: Vec<&str> = mixed.lines().collect();
    assert_eq!(
        crowding(&lines),
        Crowding {
            code: 10,
            plumbing: 4
        }
    );
}

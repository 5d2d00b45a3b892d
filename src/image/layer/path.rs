//! Entry names: the first, purely textual line of defence.
//!
//! A tar entry's name is attacker-controlled bytes. Before any system call sees it, it is
//! cleaned into a relative path of plain components. This rejects the two oldest tricks in
//! the book outright, rather than "fixing" them: a leading `/` (GNU tar strips it, some
//! extractors did not) and `..` components (the "zip slip" family, e.g. CVE-2001-1267 in GNU
//! tar and, for Docker images, CVE-2014-6407).
//!
//! Text checks alone are not enough, because a *symlink* already on disk can make an innocent
//! `a/b` point anywhere. That is handled in `beneath.rs`, which never follows one.

use std::fmt;

/// PATH_MAX on Linux: no single path of the kernel's can be longer, so neither may an entry's.
pub const MAX_PATH: usize = 4096;
/// NAME_MAX: the longest single component most filesystems accept.
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    Absolute,
    DotDot,
    Nul,
    TooLong(usize),
    NameTooLong(usize),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Absolute => {
                f.write_str("absolute path (layer paths are relative to the layer root)")
            }
            PathError::DotDot => f.write_str("path leaves the layer through \"..\""),
            PathError::Nul => f.write_str("path contains a NUL byte"),
            PathError::TooLong(n) => write!(f, "path is {n} bytes, over the {MAX_PATH}-byte limit"),
            PathError::NameTooLong(n) => {
                write!(
                    f,
                    "a path component is {n} bytes, over the {MAX_NAME}-byte limit"
                )
            }
        }
    }
}

// ANCHOR: clean
/// Cleans an entry name: drops `.` components, empty components (`a//b`) and a trailing `/`,
/// and refuses absolute paths, `..` anywhere, NUL bytes and over-long names. The result is
/// components joined by single `/`; the empty result is the layer root itself.
pub fn clean(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.first() == Some(&b'/') {
        return Err(PathError::Absolute);
    }
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    if raw.len() > MAX_PATH {
        return Err(PathError::TooLong(raw.len()));
    }
    let mut out = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(PathError::DotDot),
            name if name.len() > MAX_NAME => return Err(PathError::NameTooLong(name.len())),
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    Ok(out)
}
// ANCHOR_END: clean

/// Splits a cleaned path into its parent (possibly empty: the root) and its last component.
pub fn split(clean: &[u8]) -> (&[u8], &[u8]) {
    match clean.iter().rposition(|&b| b == b'/') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (&[], clean),
    }
}

/// Joins a cleaned parent and one component.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// How an entry name is shown in errors: [`crate::cli::quote`]d (escaped, cut), so the message
/// stays one short line whatever the archive contains.
pub fn show(raw: &[u8]) -> String {
    crate::cli::quote(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_plain_relative_paths() {
        assert_eq!(clean(b"etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean(b"./etc//passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean(b"usr/lib/").unwrap(), b"usr/lib");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b".").unwrap(), b"");
        assert_eq!(clean(b"a/./b/.").unwrap(), b"a/b");
        // ".." inside a longer name is just a name.
        assert_eq!(clean(b"a/..b/c..").unwrap(), b"a/..b/c..");
    }

    #[test]
    fn clean_refuses_escapes() {
        assert_eq!(clean(b"/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(clean(b"../x"), Err(PathError::DotDot));
        assert_eq!(clean(b"a/../../x"), Err(PathError::DotDot));
        // Even a ".." that would stay inside is refused: there is no honest reason for it.
        assert_eq!(clean(b"a/../b"), Err(PathError::DotDot));
        assert_eq!(clean(b"a\0b"), Err(PathError::Nul));
        assert_eq!(clean(&[b'a'; 4097]), Err(PathError::TooLong(4097)));
        assert_eq!(clean(&[b'a'; 256]), Err(PathError::NameTooLong(256)));
    }

    #[test]
    fn split_and_join_are_inverse() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
        assert_eq!(join(b"", b"c"), b"c");
    }

    #[test]
    fn errors_show_names_on_one_line() {
        assert_eq!(show(b"a\nb"), "\"a\\nb\"");
        assert_eq!(show(b"\xff"), "\"\\xff\"");
    }
}

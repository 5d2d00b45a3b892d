//! What every binary does at its edge: print an error as one line and exit with a Docker-style
//! status code.

use std::fmt;
use std::process::ExitCode;

/// Docker's exit codes for failures that are not the contained program's own status
/// (docker-run(1), "Exit Status").
pub mod code {
    /// minidock itself failed (bad input, a failing syscall, ...).
    pub const FAILED: u8 = 125;
    /// The command was found but could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// An error that decides the process exit status. Attach it with `anyhow::Error::new` or
/// `.context(..)`; [`run_main`] finds it anywhere in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

// ANCHOR: quote
/// The most characters of untrusted text an error message shows; longer text is cut, with `…`.
pub const QUOTE_MAX: usize = 64;

/// Untrusted text (an archive's bytes or entry names, a manifest field, a registry's error
/// body, a file the user pointed at) as an error message shows it: in double quotes, escaped
/// as Go's `%q` does (`\"`, `\\`, `\n`, `\t`, other control characters and invalid UTF-8
/// bytes as `\xNN`, Unicode format characters such as bidi overrides as `\u{NNNN}`), and cut
/// to [`QUOTE_MAX`] characters with `…` before the closing quote. The result is one line of
/// printable text, whatever the input holds.
pub fn quote(text: impl AsRef<[u8]>) -> String {
    let mut out = String::from('"');
    let cut = escape_into(&mut out, text.as_ref(), QUOTE_MAX, true);
    if cut {
        out.push('…');
    }
    out.push('"');
    out
}
// ANCHOR_END: quote

/// An error from a parser of untrusted input (a tar reader, a JSON decoder) whose message may
/// carry that input's bytes: `WHAT: "MESSAGE"`, the message [`quote`]d. An I/O error
/// underneath that is the machine's, not the input's (a full disk), is kept as it is, so it
/// can be reported as such.
pub fn untrusted_error<E>(what: impl fmt::Display, err: E) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let io = (&err as &(dyn std::error::Error + 'static)).downcast_ref::<std::io::Error>();
    if io.is_some_and(crate::state::is_disk_full_io) {
        return anyhow::Error::new(err).context(what.to_string());
    }
    anyhow::anyhow!("{what}: {}", quote(err.to_string()))
}

/// The most characters an error line shows before it is cut (after escaping).
pub const LINE_MAX: usize = 4096;

/// A whole message made safe to print as one line: the escaping of [`quote`] for everything
/// but `"` and `\` (the message's own quotes stay), cut at [`LINE_MAX`] characters. The last guard at the edge of every binary, for the
/// text that no site quoted.
pub fn one_line(text: &str) -> String {
    let mut out = String::new();
    if escape_into(&mut out, text.as_bytes(), LINE_MAX, false) {
        out.push('…');
    }
    out
}

/// Appends `bytes`, escaped, to `out`, stopping after `max` characters of input; returns
/// whether it stopped early. `quoted`: the text goes between double quotes, so `"` and `\`
/// are escaped too.
fn escape_into(out: &mut String, bytes: &[u8], max: usize, quoted: bool) -> bool {
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max {
                return true;
            }
            shown += 1;
            match c {
                '"' if quoted => out.push_str("\\\""),
                '\\' if quoted => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x80 && c.is_ascii_control() => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() || is_format_char(c) => {
                    out.push_str(&format!("\\u{{{:04x}}}", c as u32));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            if shown == max {
                return true;
            }
            shown += 1;
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    false
}

/// Unicode format characters that reorder or hide text on a terminal (Cf): bidi controls,
/// zero-width characters, the byte order mark.
fn is_format_char(c: char) -> bool {
    matches!(c as u32, 0xad | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff)
}

/// The exit status an error should produce: the code of the first [`Exit`] in its chain, or
/// 125.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Exit>().map(|exit| exit.code))
        .unwrap_or(code::FAILED)
}

/// Runs a binary's body. On error, prints `PROG: outer context: ...: root cause` on one line
/// ([`one_line`]: no control characters, bounded; no backtrace, no panic) and exits with the
/// error's code. On success, exits with the status
/// the body returned (the contained program's own status, for example).
pub fn run_main(prog: &str, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    match body() {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            eprintln!("{prog}: {}", one_line(&format!("{err:#}")));
            ExitCode::from(exit_code_of(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_exit_code_is_found_under_context() {
        let err = Err::<(), _>(Exit::new(code::NOT_FOUND, "exec \"nope\": not found"))
            .context("running the container")
            .unwrap_err();
        assert_eq!(exit_code_of(&err), 127);
        assert_eq!(
            format!("{err:#}"),
            "running the container: exec \"nope\": not found"
        );
    }

    #[test]
    fn untrusted_text_is_quoted_escaped_and_cut() {
        assert_eq!(quote("busybox"), "\"busybox\"");
        assert_eq!(quote("a\"b\\c\n\x1b[31m"), r#""a\"b\\c\n\x1b[31m""#);
        assert_eq!(quote(b"\xff\xfeok"), r#""\xff\xfeok""#);
        assert_eq!(quote("a\u{202e}b\u{85}"), r#""a\u{202e}b\u{0085}""#);
        let long = quote("x".repeat(1000));
        assert_eq!(long, format!("\"{}…\"", "x".repeat(QUOTE_MAX)));
        let random: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let shown = quote(&random);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.chars().count() <= QUOTE_MAX * 8 + 3);
    }

    #[test]
    fn a_message_becomes_one_bounded_line() {
        assert_eq!(one_line("a\nb\x07 \"q\""), "a\\nb\\x07 \"q\"");
        assert_eq!(one_line(&"y".repeat(5000)).chars().count(), LINE_MAX + 1);
    }

    #[test]
    fn plain_errors_are_125() {
        assert_eq!(exit_code_of(&anyhow::anyhow!("boom")), 125);
    }
}

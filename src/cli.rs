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
    /// A request failed: every command but `run` (and `create`'s flags), a wrong number of
    /// arguments, an unknown command, as Docker's CLI exits.
    pub const REQUEST_FAILED: u8 = 1;
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

// ANCHOR: parse_args
/// Parses a command line with Docker's rules and exit codes (docker-run(1), "Exit Status";
/// the docker CLI's cobra/pflag handling): a flag that takes a value takes the next argument
/// whatever it looks like (`-m -5`, `--cpus -1`), as pflag does; `--help` and `--version`
/// exit 0, and so does a command group given no subcommand (its help, on stderr); a bad flag
/// (unknown, missing or invalid value) exits 125; a wrong number of arguments or an unknown
/// command exits 1. On error the message is printed as `PROG: MESSAGE` and the exit status
/// returned.
pub fn parse_args<P: clap::Parser>(
    prog: &str,
    argv: Vec<std::ffi::OsString>,
) -> Result<P, ExitCode> {
    let mut command = values_take_hyphens(P::command(), &argv);
    let parsed = command
        .try_get_matches_from_mut(argv.clone())
        .and_then(|matches| P::from_arg_matches(&matches));
    parsed.map_err(|err| usage_exit(prog, &command, &argv, &err))
}

/// Every option that takes a value takes the next argument even when it starts with `-`: the
/// options of `command` and of the subcommands `argv` names (only those can parse it; the
/// others, most of the tree, are left as they are, which keeps start-up short).
fn values_take_hyphens(command: clap::Command, argv: &[std::ffi::OsString]) -> clap::Command {
    let named = |sub: &clap::Command| {
        argv.iter()
            .filter_map(|a| a.to_str())
            .any(|a| sub.get_name() == a || sub.get_all_aliases().any(|alias| alias == a))
    };
    command
        .mut_args(|arg| {
            let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
            if !arg.is_positional() && arg.get_action().takes_values() && !optional {
                arg.allow_hyphen_values(true)
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| {
            if named(&sub) {
                values_take_hyphens(sub, argv)
            } else {
                sub
            }
        })
}

/// Prints a parse error as Docker's CLI would and returns its exit status.
fn usage_exit(
    prog: &str,
    root: &clap::Command,
    argv: &[std::ffi::OsString],
    err: &clap::Error,
) -> ExitCode {
    use clap::error::ErrorKind;
    let (path, command) = command_path(root, argv);
    let (status, message) = match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprint!("{}", command.clone().render_help());
            return ExitCode::SUCCESS;
        }
        ErrorKind::InvalidSubcommand => {
            let name = context(err, clap::error::ContextKind::InvalidSubcommand);
            (
                code::REQUEST_FAILED,
                format!("unknown command: {path} {name}"),
            )
        }
        ErrorKind::UnknownArgument => {
            let arg = context(err, clap::error::ContextKind::InvalidArg);
            match (arg.strip_prefix("--"), arg.strip_prefix('-')) {
                (Some(_), _) => (code::FAILED, format!("unknown flag: {arg}")),
                (None, Some(short)) if !short.is_empty() => {
                    let letter = short.chars().next().unwrap_or('-');
                    (
                        code::FAILED,
                        format!("unknown shorthand flag: '{letter}' in {arg}"),
                    )
                }
                _ => (
                    code::REQUEST_FAILED,
                    format!("'{path}' takes no further argument, got {}", quote(&arg)),
                ),
            }
        }
        ErrorKind::MissingRequiredArgument if !missing_flag(err) => {
            (code::REQUEST_FAILED, arguments_required(&path, &command))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(err, clap::error::ContextKind::InvalidArg);
            let value = context(err, clap::error::ContextKind::InvalidValue);
            let flag = flag_names(&command, root, &arg);
            if value.is_empty() && err.kind() == ErrorKind::InvalidValue {
                (code::FAILED, format!("flag needs an argument: {flag}"))
            } else {
                let why = std::error::Error::source(err)
                    .map(|source| source.to_string())
                    .unwrap_or_else(|| clap_message(err));
                (
                    code::FAILED,
                    format!(
                        "invalid argument {} for \"{flag}\" flag: {why}",
                        quote(&value)
                    ),
                )
            }
        }
        _ => (code::FAILED, clap_message(err)),
    };
    eprintln!("{prog}: {}", one_line(&message));
    eprintln!("Run '{path} --help' for more information");
    ExitCode::from(status)
}

/// The subcommands named on the command line, as `minidock image ls`, and the last one.
fn command_path(root: &clap::Command, argv: &[std::ffi::OsString]) -> (String, clap::Command) {
    let mut path = vec![root.get_name().to_owned()];
    let mut command = root;
    let mut args = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if let Some(flag) = arg.strip_prefix('-') {
            let takes_value = !arg.contains('=')
                && [command, root].iter().any(|c| {
                    c.get_arguments().any(|a| {
                        a.get_action().takes_values()
                            && (a
                                .get_long()
                                .is_some_and(|l| flag.strip_prefix('-') == Some(l))
                                || (flag.len() == 1 && a.get_short() == flag.chars().next()))
                    })
                });
            if takes_value {
                args.next();
            }
            continue;
        }
        match command.find_subcommand(arg.as_ref()) {
            Some(sub) => {
                path.push(sub.get_name().to_owned());
                command = sub;
            }
            None => break,
        }
    }
    (path.join(" "), command.clone())
}

/// Docker's message for too few arguments: `'minidock tag' requires 2 arguments`,
/// `'minidock run' requires at least 1 argument`.
fn arguments_required(path: &str, command: &clap::Command) -> String {
    let required: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|a| a.is_positional() && a.is_required_set())
        .collect();
    let n = required.len().max(1);
    let positionals = command
        .get_arguments()
        .filter(|a| a.is_positional())
        .count();
    let more = positionals > required.len()
        || required
            .iter()
            .any(|a| a.get_num_args().is_some_and(|r| r.max_values() > 1));
    let plural = if n == 1 { "" } else { "s" };
    let at_least = if more { "at least " } else { "" };
    format!("'{path}' requires {at_least}{n} argument{plural}")
}

/// Whether a missing required argument is a flag (a usage error of the flags: 125).
fn missing_flag(err: &clap::Error) -> bool {
    match err.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::Strings(names)) => names.iter().any(|n| n.starts_with('-')),
        _ => false,
    }
}

/// A flag as Docker names it in errors: `-m, --memory`, or `--cpus` with no short form.
/// `display` is clap's `--memory <MEMORY>`.
fn flag_names(command: &clap::Command, root: &clap::Command, display: &str) -> String {
    let name = display.split_whitespace().next().unwrap_or(display);
    let long = name.strip_prefix("--");
    let found = [command, root]
        .into_iter()
        .flat_map(|c| c.get_arguments())
        .find(|a| long.is_some() && a.get_long() == long);
    match found.and_then(|a| a.get_short().zip(a.get_long())) {
        Some((short, long)) => format!("-{short}, --{long}"),
        None => name.to_owned(),
    }
}

fn context(err: &clap::Error, kind: clap::error::ContextKind) -> String {
    match err.get(kind) {
        Some(clap::error::ContextValue::String(text)) => text.clone(),
        Some(clap::error::ContextValue::Strings(texts)) => texts.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// clap's own message, first line, without its `error: ` prefix.
fn clap_message(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}
// ANCHOR_END: parse_args

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

//! The Dockerfile parser (pure, no I/O): text in, a list of instruction nodes out.
//!
//! It produces the tree Docker's own parser does (buildkit's
//! `frontend/dockerfile/parser`), so [`Dockerfile::dump`] prints buildkit's `result` format
//! byte for byte. This is the parse stage only: quotes are kept and variables are not
//! expanded; [`crate::build::shell`] does that per instruction at build time, as Docker does.
//!
//! What it handles, as Docker does:
//! - parser directives at the top (`# escape=` with `\` or `` ` ``, `# syntax=`, `# check=`),
//!   each at most once, none after the first other line;
//! - comments (`#` first on a line, also inside a continued instruction) and blank lines;
//! - line continuation with the escape character as the last non-blank character;
//! - `--flag` words after the keyword (`--from`, `--chown`, `--chmod`, `--link`,
//!   `--platform`, …), with `--` ending them; `RUN --mount` is refused;
//! - per instruction, the argument shape of buildkit's dispatch table: JSON (exec) form with
//!   a fallback to the shell form, `ENV`/`LABEL` triples, whitespace-split words, one string,
//!   `HEALTHCHECK`'s type word, `ONBUILD`'s nested instruction;
//! - heredocs (`RUN <<EOF`, `COPY <<A <<B /dst`, `<<-` stripping tabs, quoted names not
//!   expanded) for `RUN`, `COPY`, `ADD` (also under `ONBUILD`).
//!
//! Unknown keywords parse (with an empty argument); rejecting them is the builder's job, as
//! in Docker.

use std::fmt;

use crate::build::shell::{Lex, go_quote, is_space};

// ANCHOR: node
/// One instruction, as Docker's parser leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`from`, `RUN`, …); compare it lowercased.
    pub keyword: String,
    /// The `--name[=value]` words after the keyword, quotes and escapes removed, `--` kept.
    pub flags: Vec<String>,
    /// The arguments, shaped per instruction (see the module documentation).
    pub args: Vec<Arg>,
    /// True when the arguments were a JSON array (exec form).
    pub json: bool,
    /// The instruction line after continuation lines were joined, keyword included.
    pub original: String,
    /// The heredocs of `RUN`, `COPY` and `ADD`, in order.
    pub heredocs: Vec<Heredoc>,
    /// First and last line of the instruction in the file, 1-based, inclusive.
    pub start_line: usize,
    pub end_line: usize,
    /// The comment lines right before the instruction (`#` and surrounding space removed).
    pub comments: Vec<String>,
}

/// An argument of an instruction: a word, or the instruction under `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Word(String),
    Instruction(Box<Node>),
}
// ANCHOR_END: node

/// A heredoc: `<<[-]NAME` on the instruction line and the lines up to `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator, quotes removed.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub file_descriptor: u32,
    /// True unless part of the name was quoted (`<<'EOF'`): variables in the content expand.
    pub expand: bool,
    /// True for `<<-`: leading tabs are stripped from the content and the terminator.
    pub chomp: bool,
    /// The lines between, each with its line ending.
    pub content: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The instructions in file order.
    pub instructions: Vec<Node>,
    /// The escape character in force (`\` unless `# escape=` said `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive's value, if any.
    pub syntax: Option<String>,
    /// Warnings Docker prints but that do not fail the parse (empty continuation lines).
    pub warnings: Vec<String>,
}

/// A parse failure: the lines of the instruction, its keyword when known, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based first line of the offending instruction (or the line being read).
    pub line: usize,
    /// 1-based last line of it.
    pub end_line: usize,
    /// The instruction's keyword as written, when the error is about one.
    pub instruction: Option<String>,
    /// Docker's message, e.g. `ENV must have two arguments`.
    pub message: String,
}

impl fmt::Display for ParseError {
    /// Docker's words: `dockerfile parse error on line 3: ENV must have two arguments`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dockerfile parse error on line {}: {}",
            self.line, self.message
        )
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The one-line report for file `file`: `Dockerfile:3: ENV must have two arguments`; the
    /// instruction is named first when the message does not start with it
    /// (`Dockerfile:1: CMD: when using JSON array syntax, …`).
    pub fn report(&self, file: &str) -> String {
        match &self.instruction {
            Some(i) if !self.message.starts_with(&i.to_uppercase()) => {
                format!(
                    "{file}:{}: {}: {}",
                    self.line,
                    i.to_uppercase(),
                    self.message
                )
            }
            _ if self.line == 0 && self.message == EMPTY => {
                format!("the Dockerfile ({file}) cannot be empty")
            }
            _ if self.line == 0 => format!("{file}: {}", self.message),
            _ => format!("{file}:{}: {}", self.line, self.message),
        }
    }
}

/// The message for a zero-byte Dockerfile (the classic builder's check before parsing).
const EMPTY: &str = "the Dockerfile cannot be empty";

/// Docker's maximum line length (Go's `bufio.MaxScanTokenSize` less the newline).
const MAX_LINE: usize = 64 * 1024 - 1;

/// How deep `ONBUILD ONBUILD …` may nest before the parser refuses it (the builder refuses
/// any nesting, with the same message).
const MAX_ONBUILD_DEPTH: usize = 16;

/// The instructions that may carry heredocs.
const HEREDOC_KEYWORDS: [&str; 3] = ["add", "copy", "run"];

// ANCHOR: parse
/// Parses a Dockerfile's text.
///
/// Errors ([`ParseError`]): an empty file, no instruction at all (only comments), a repeated or
/// invalid directive, an instruction whose arguments Docker rejects (`ENV PATH`, a JSON array
/// holding a non-string, `RUN --mount`), an unterminated heredoc, a line over 65535 bytes.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    if text.is_empty() {
        return Err(NodeError::plain(EMPTY).at(0, 0));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines::new(text);
    let mut d = Directives::new();
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    while let Some(raw) = lines.next_line()? {
        note_comment(raw, &mut comments);
        let (line, directive) = d.process_line(raw, true, lines.number)?;
        if directive {
            comments.pop();
        }
        let start = lines.number;
        let (first, eol) = d.trim_continuation(line);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        if !eol && continue_line(&mut buf, &mut lines, &mut d)? {
            warnings.push(format!("Empty continuation line found in: {buf}"));
        }
        let at = |e: NodeError, end| e.at(start, end);
        let mut node = node_from_line(&buf, &d, std::mem::take(&mut comments), 0)
            .map_err(|e| at(e, lines.number))?;
        read_heredocs(&mut node, &buf, &mut lines).map_err(|e| at(e, lines.number))?;
        node.start_line = start;
        node.end_line = lines.number;
        out.push(node);
    }
    if out.is_empty() {
        return Err(NodeError::plain("file with no instructions").at(lines.number, 0));
    }
    Ok(Dockerfile {
        instructions: out,
        escape: d.escape,
        syntax: d.syntax,
        warnings,
    })
}
// ANCHOR_END: parse

// ANCHOR: continue_line
/// Appends to `buf` the continuation lines of an instruction, up to the line that does not
/// end with the escape character. Comments inside are skipped; so are empty lines, which
/// makes the result true (Docker's `Empty continuation line` warning).
fn continue_line(
    buf: &mut String,
    lines: &mut Lines,
    d: &mut Directives,
) -> Result<bool, ParseError> {
    let mut empty_continuation = false;
    while let Some(raw) = lines.next_line()? {
        let (line, _) = d.process_line(raw, false, lines.number)?;
        if is_comment(raw) {
            continue;
        }
        if line.trim_start_matches(is_space).is_empty() {
            empty_continuation = true;
            continue;
        }
        let (part, end) = d.trim_continuation(line);
        buf.push_str(part);
        if end {
            break;
        }
    }
    Ok(empty_continuation)
}
// ANCHOR_END: continue_line

impl Dockerfile {
    /// buildkit's `Node.Dump()` of the whole file: one `(keyword ["--flag"…] "arg"…)` line
    /// per instruction, no trailing newline.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for n in &self.instructions {
            s.push('(');
            s.push_str(&n.dump());
            s.push_str(")\n");
        }
        s.trim_matches(is_space).to_string()
    }

    /// The first and last line the instructions span (1-based), as Docker's root node.
    pub fn lines(&self) -> (usize, usize) {
        let first = self.instructions.first().map_or(0, |n| n.start_line);
        (first, self.instructions.last().map_or(0, |n| n.end_line))
    }
}

impl Node {
    /// The keyword lowercased: `run`, `copy`, ….
    pub fn instruction(&self) -> String {
        self.keyword.to_lowercase()
    }

    /// The word arguments (an `ONBUILD`'s nested instruction is left out).
    pub fn words(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter_map(|a| match a {
                Arg::Word(w) => Some(w.as_str()),
                Arg::Instruction(_) => None,
            })
            .collect()
    }

    /// This instruction as buildkit dumps it, without the outer parentheses:
    /// `copy ["--from=a"] "x" "/y"`.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", quoted.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            match a {
                Arg::Word(w) => s.push_str(&go_quote(w)),
                Arg::Instruction(n) => s.push_str(&format!("({})", n.dump())),
            }
        }
        s.trim_matches(is_space).to_string()
    }
}

/// The physical lines of the text, each with its line ending, and the 1-based number of the
/// last one read.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            rest: text,
            number: 0,
        }
    }

    fn next_line(&mut self) -> Result<Option<&'a str>, ParseError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        if trim_newline(line).len() > MAX_LINE {
            let msg = format!("dockerfile line greater than max allowed size of {MAX_LINE}");
            return Err(NodeError::plain(&msg).at(self.number + 1, 0));
        }
        self.rest = rest;
        self.number += 1;
        Ok(Some(line))
    }
}

/// Comment lines right before an instruction are kept with it; an empty `#` line resets them.
fn note_comment(raw: &str, comments: &mut Vec<String>) {
    if !is_comment(raw) {
        return;
    }
    // Docker drops the line's first character, whatever it is, then trims.
    let mut chars = raw.chars();
    chars.next();
    let text = chars.as_str().trim_matches(is_space);
    if text.is_empty() {
        comments.clear();
    } else {
        comments.push(text.to_string());
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Docker's whitespace between words: ASCII blanks, not newlines (`[\t\v\f\r ]+`).
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of [`is_blank`], at most `n` parts (all when `n` is 0), as Go's
/// `regexp.Split`.
fn split_blanks(s: &str, n: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s;
    while n == 0 || parts.len() + 1 < n {
        let Some(i) = rest.find(is_blank) else { break };
        parts.push(&rest[..i]);
        rest = rest[i..].trim_start_matches(is_blank);
    }
    parts.push(rest);
    parts
}

/// The parser directives' state and the escape character.
struct Directives {
    escape: char,
    syntax: Option<String>,
    seen: Vec<String>,
    done: bool,
}

impl Directives {
    fn new() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            seen: Vec::new(),
            done: false,
        }
    }

    /// The line without its ending (and leading blanks when `strip`), or empty for a comment;
    /// true when it was a directive.
    fn process_line<'a>(
        &mut self,
        raw: &'a str,
        strip: bool,
        number: usize,
    ) -> Result<(&'a str, bool), ParseError> {
        let mut line = trim_newline(raw);
        if strip {
            line = line.trim_start_matches(is_space);
        }
        let directive = self
            .directive(line)
            .map_err(|m| NodeError::plain(&m).at(number, 0))?;
        Ok((if is_comment(line) { "" } else { line }, directive))
    }

    /// `# name = value` at the top of the file; any other line ends the directives.
    fn directive(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = directive_parts(line) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_lowercase();
        if !["syntax", "escape", "check"].contains(&key.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" if value == "`" || value == "\\" => {
                self.escape = value.chars().next().unwrap_or('\\')
            }
            "escape" => {
                return Err(format!(
                    "invalid escape token '{value}' does not match ` or \\"
                ));
            }
            "syntax" => self.syntax = Some(value.to_string()),
            _ => {}
        }
        Ok(true)
    }

    /// The line without a trailing escape character (and blanks after it), and false when
    /// it continues on the next line. An escaped escape character (`\\`) does not continue.
    fn trim_continuation<'a>(&self, line: &'a str) -> (&'a str, bool) {
        let t = line.trim_end_matches([' ', '\t']);
        let Some(before) = t.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }
}

/// `# key = value` (Docker's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).
fn directive_parts(line: &str) -> Option<(&str, &str)> {
    const GO_S: [char; 5] = [' ', '\t', '\n', '\x0c', '\r'];
    let rest = line.strip_prefix('#')?.trim_start_matches(is_space);
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    let (key, rest) = rest.split_at(key_len);
    let value = rest
        .trim_start_matches(GO_S)
        .strip_prefix('=')?
        .trim_matches(GO_S);
    (!key.is_empty() && !value.is_empty()).then_some((key, value))
}

/// An error inside one instruction, before its lines are known.
struct NodeError {
    instruction: Option<String>,
    message: String,
}

impl NodeError {
    fn plain(message: &str) -> Self {
        NodeError {
            instruction: None,
            message: message.to_string(),
        }
    }

    fn of(instruction: &str, message: String) -> Self {
        NodeError {
            instruction: Some(instruction.to_string()),
            message,
        }
    }

    fn at(self, line: usize, end: usize) -> ParseError {
        ParseError {
            line,
            end_line: end.max(line),
            instruction: self.instruction,
            message: self.message,
        }
    }
}

impl From<ParseError> for NodeError {
    fn from(e: ParseError) -> Self {
        NodeError {
            instruction: e.instruction,
            message: e.message,
        }
    }
}

// ANCHOR: node_from_line
/// One instruction line (continuations joined): keyword, flags, then the arguments shaped by
/// the keyword, as buildkit's dispatch table. `depth` counts enclosing `ONBUILD`s.
fn node_from_line(
    line: &str,
    d: &Directives,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, NodeError> {
    let (keyword, flags, rest) = split_command(line, d.escape);
    let kw = keyword.to_lowercase();
    let err = |m: String| NodeError::of(keyword, m);
    if kw == "run"
        && flags
            .iter()
            .any(|f| f == "--mount" || f.starts_with("--mount="))
    {
        return Err(err(
            "the --mount option requires BuildKit, which minidock does not implement".into(),
        ));
    }
    let (args, json) = dispatch(&kw, keyword, rest, d, depth)?;
    Ok(Node {
        keyword: keyword.to_string(),
        flags,
        args,
        json,
        original: line.to_string(),
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}
// ANCHOR_END: node_from_line

// ANCHOR: dispatch
/// The arguments of instruction `kw` (lowercase; `keyword` as written) from the rest of its
/// line, shaped as buildkit's dispatch table shapes them, and whether they were JSON.
fn dispatch(
    kw: &str,
    keyword: &str,
    rest: &str,
    d: &Directives,
    depth: usize,
) -> Result<(Vec<Arg>, bool), NodeError> {
    let err = |m: String| NodeError::of(keyword, m);
    Ok(match kw {
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest).map_err(err)?,
        "add" | "copy" | "volume" => maybe_json_list(rest).map_err(err)?,
        "env" | "label" => (
            name_values(rest, &keyword.to_uppercase(), d.escape).map_err(err)?,
            false,
        ),
        "arg" => (
            words(rest, d.escape).into_iter().map(Arg::Word).collect(),
            false,
        ),
        "from" | "expose" => (blank_split(rest), false),
        "maintainer" | "user" | "workdir" | "stopsignal" => (one_string(rest), false),
        "healthcheck" => health_config(rest).map_err(err)?,
        "onbuild" if rest.is_empty() => (Vec::new(), false),
        "onbuild" if depth >= MAX_ONBUILD_DEPTH => {
            return Err(err(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
            ));
        }
        "onbuild" => {
            let child = node_from_line(rest, d, Vec::new(), depth + 1)?;
            (vec![Arg::Instruction(Box::new(child))], false)
        }
        // Unknown instructions keep one empty argument; the builder rejects them.
        _ => (vec![Arg::Word(String::new())], false),
    })
}
// ANCHOR_END: dispatch

/// Keyword, `--flags`, and the rest of the line trimmed.
fn split_command(line: &str, escape: char) -> (&str, Vec<String>, &str) {
    let parts = split_blanks(line.trim_matches(is_space), 2);
    match parts.as_slice() {
        [cmd, rest] => {
            let (rest, flags) = builder_flags(rest, escape);
            (cmd, flags, rest.trim_matches(is_space))
        }
        _ => (parts[0], Vec::new(), ""),
    }
}

/// The leading `--flag` words (quotes and escapes removed) and the rest of the line; a `--`
/// word ends the flags and is dropped.
fn builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| is_space(c)).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return ("", flags);
        };
        if !line[start..].starts_with("--") {
            return (&line[start..], flags);
        }
        let (word, quoted) = flag_word(&mut chars, escape);
        if word == "--" {
            return (chars.peek().map_or("", |&(i, _)| &line[i..]), flags);
        }
        if quoted || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// One word of the flags part: up to unquoted whitespace, quotes removed, the escape
/// character escaping the next one (and dropped at the end). Also whether it had quotes.
fn flag_word(
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
    escape: char,
) -> (String, bool) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut quoted = false;
    while let Some(&(_, c)) = chars.peek() {
        if quote.is_none() && is_space(c) {
            break;
        }
        chars.next();
        match quote {
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                quoted = true;
            }
            Some(q) if c == q => quote = None,
            _ if c == escape => {
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                } else {
                    quote = None;
                }
            }
            _ => word.push(c),
        }
    }
    (word, quoted)
}

/// Words split on whitespace outside quotes, quotes and escapes kept (an escape at the very
/// end is dropped); used by `ARG`, `ENV` and `LABEL`.
fn words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let at_end = chars.peek().is_none();
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == escape && q != '\'' {
                if at_end {
                    quote = None;
                    continue;
                }
                word.push(c);
                word.push(chars.next().unwrap_or(c));
                continue;
            }
            word.push(c);
            continue;
        }
        if is_space(c) {
            if in_word && (blank_ok || !word.is_empty()) {
                out.push(std::mem::take(&mut word));
            }
            word.clear();
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        } else if c == escape {
            if at_end {
                continue;
            }
            word.push(c);
            word.push(chars.next().unwrap_or(c));
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        out.push(word);
    }
    out
}

/// `ENV`/`LABEL`: triples name, value, `=` for `k=v…`, or `""` for the legacy `KEY name value`.
fn name_values(rest: &str, key: &str, escape: char) -> Result<Vec<Arg>, String> {
    let ws = words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    let triple = |k: &str, v: &str, sep: &str| [k, v, sep].map(|s| Arg::Word(s.to_string()));
    if !first.contains('=') {
        let parts = split_blanks(rest, 2);
        let [name, value] = parts.as_slice() else {
            return Err(format!("{key} must have two arguments"));
        };
        return Ok(triple(name, value, "").to_vec());
    }
    let mut out = Vec::new();
    for w in &ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(w)
            ));
        };
        out.extend(triple(k, v, "="));
    }
    Ok(out)
}

/// `FROM`, `EXPOSE`: words split on blanks.
fn blank_split(rest: &str) -> Vec<Arg> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_blanks(rest, 0)
        .into_iter()
        .map(|w| Arg::Word(w.to_string()))
        .collect()
}

/// `USER`, `WORKDIR`, `MAINTAINER`, `STOPSIGNAL`: the rest of the line as one argument.
fn one_string(rest: &str) -> Vec<Arg> {
    if rest.is_empty() {
        return Vec::new();
    }
    vec![Arg::Word(rest.to_string())]
}

/// Why a JSON array was not taken.
enum JsonError {
    /// Not JSON (or not an array): the shell form applies.
    NotJson,
    /// A JSON array with something other than strings: an error.
    NotStrings,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// The strings of a JSON array (exec form).
fn json_array(rest: &str) -> Result<Vec<Arg>, JsonError> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(rest).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(Arg::Word(s)),
            _ => Err(JsonError::NotStrings),
        })
        .collect()
}

/// `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`: a JSON array, else the rest of the line as one
/// argument (shell form).
fn maybe_json(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match json_array(rest) {
        Ok(args) => Ok((args, true)),
        Err(JsonError::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonError::NotJson) => Ok((vec![Arg::Word(rest.to_string())], false)),
    }
}

/// `COPY`, `ADD`, `VOLUME`: a JSON array, else words split on blanks.
fn maybe_json_list(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    match json_array(rest) {
        Ok(args) => Ok((args, true)),
        Err(JsonError::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonError::NotJson) => Ok((blank_split(rest), false)),
    }
}

/// `HEALTHCHECK [--flags] TYPE [command]`: the type word (`CMD`, `NONE`, …) then the command
/// as `RUN`'s arguments.
fn health_config(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let cmd = rest[sep..].trim_start_matches(is_space);
    let (mut args, json) = maybe_json(cmd)?;
    args.insert(0, Arg::Word(rest[..sep].to_string()));
    Ok((args, json))
}

// ANCHOR: heredoc
/// Reads the heredocs an instruction line announces from the lines after it.
fn read_heredocs(node: &mut Node, line: &str, lines: &mut Lines) -> Result<(), NodeError> {
    let target = match node.args.first() {
        Some(Arg::Instruction(child)) if node.instruction() == "onbuild" => child.as_ref(),
        _ => &*node,
    };
    if !HEREDOC_KEYWORDS.contains(&target.instruction().as_str())
        || target.json
        || !line.contains("<<")
    {
        return Ok(());
    }
    let mut docs = Vec::new();
    for mut doc in heredocs_from_line(line)? {
        let mut terminated = false;
        while let Some(raw) = lines.next_line()? {
            let mut end = trim_newline(raw);
            if doc.chomp {
                end = end.trim_start_matches('\t');
            }
            if end == doc.name {
                terminated = true;
                break;
            }
            doc.content.push_str(raw);
        }
        if !terminated {
            return Err(NodeError::of(
                &node.keyword,
                "unterminated heredoc".to_string(),
            ));
        }
        docs.push(doc);
    }
    node.heredocs = docs;
    Ok(())
}

// ANCHOR_END: heredoc

/// The heredoc words of an instruction line (`<<EOF`, `3<<-"EOF"`), in order.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, NodeError> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let no_env = |_: &str| -> Option<String> { None };
    let words = lex.process_words(line, &no_env).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w).map_err(|e| NodeError::plain(&e.to_string()))? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// One word as a heredoc (`^(\d*)<<(-?)\s*([^<]*)$`), or `None` when it is not one.
pub fn parse_heredoc(word: &str) -> anyhow::Result<Option<Heredoc>> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let no_env = |_: &str| -> Option<String> { None };
    let names = lex.process_words(rest, &no_env)?;
    let [name] = names.as_slice() else {
        return Ok(None);
    };
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &no_env)?;
    if raw.len() != 1 {
        anyhow::bail!("internal lexing of heredoc produced inconsistent results: {rest}");
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor: word[..digits].parse().unwrap_or(0),
        expand: quotes(name) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

/// Heredoc content with the leading tabs of every line removed (for `<<-`).
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(s: &str) -> String {
        parse(s).unwrap().dump()
    }

    #[test]
    fn mount_is_refused_with_the_line() {
        let e = parse("FROM a\n\nRUN --mount=type=cache,target=/x \\\n  make\n").unwrap_err();
        assert_eq!((e.line, e.end_line), (3, 4));
        assert!(
            e.to_string()
                .starts_with("dockerfile parse error on line 3: the --mount option"),
            "{e}"
        );
        assert!(
            e.report("Dockerfile")
                .starts_with("Dockerfile:3: RUN: the --mount"),
            "{}",
            e.report("Dockerfile")
        );
    }

    #[test]
    fn errors_name_file_line_and_instruction() {
        let e = parse("FROM busybox\n\nENV PATH\n").unwrap_err();
        assert_eq!(
            e.report("Dockerfile"),
            "Dockerfile:3: ENV must have two arguments"
        );
        let e = parse("# x\nCMD [1]\n").unwrap_err();
        assert_eq!(e.report("df"), format!("df:2: CMD: {NOT_STRINGS}"));
        assert!(parse("# escape=x\nFROM a\n").is_err());
        assert!(parse("# escape=`\n# escape=`\nFROM a\n").is_err());
    }

    #[test]
    fn flags_and_unknown_instructions() {
        assert_eq!(
            dump("COPY --from=build --chown=\"a b\" --link -- --x /y\nFOO bar\n"),
            "(copy [\"--from=build\" \"--chown=a b\" \"--link\"] \"--x\" \"/y\")\n(foo \"\")"
        );
        assert_eq!(
            dump("onbuild\nFROM --platform=linux/amd64 a AS b"),
            "(onbuild)\n(from [\"--platform=linux/amd64\"] \"a\" \"AS\" \"b\")"
        );
    }

    #[test]
    fn heredocs_are_read() {
        let df = parse("FROM a\nRUN <<EOF\necho $X\nEOF\nCOPY <<-A 3<<'B' /d\n\tone\n\tA\ntwo\nB\nRUN \"<<NO\"\n").unwrap();
        let run = &df.instructions[1];
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].content, "echo $X\n");
        assert!(run.heredocs[0].expand);
        assert_eq!((run.start_line, run.end_line), (2, 4));
        let copy = &df.instructions[2];
        assert_eq!(copy.heredocs[0].name, "A");
        assert!(copy.heredocs[0].chomp);
        assert_eq!(chomp_heredoc_content(&copy.heredocs[0].content), "one\n");
        assert_eq!(copy.heredocs[1].file_descriptor, 3);
        assert!(!copy.heredocs[1].expand);
        assert_eq!(copy.heredocs[1].content, "two\n");
        assert!(df.instructions[3].heredocs.is_empty());
        assert!(parse("RUN <<EOF\nnever ends\n").is_err());
        assert_eq!(df.dump().lines().count(), 4);
    }

    /// (instruction and body, then per heredoc: name, expand, chomp, fd, content)
    type HeredocCase = (
        &'static str,
        &'static [(&'static str, bool, bool, u32, &'static str)],
    );

    #[test]
    fn heredoc_names_quotes_and_terminators() {
        let cases: &[HeredocCase] = &[
            ("USER <<INVALID\nINVALID", &[]),
            ("RUN <<EMPTY\nEMPTY", &[("EMPTY", true, false, 0, "")]),
            ("RUN 3<<EMPTY2\nEMPTY2", &[("EMPTY2", true, false, 3, "")]),
            ("RUN \"<<NOHEREDOC\"", &[]),
            (
                "RUN <<-U\n\tbaz\n\tquux\n\tU",
                &[("U", true, true, 0, "\tbaz\n\tquux\n")],
            ),
            (
                "RUN <<-'NO'\n\t$NAME\nNO",
                &[("NO", false, true, 0, "\t$NAME\n")],
            ),
            (
                "COPY <<X <<Y /dest\nY\nX\nX\nY",
                &[("X", true, false, 0, "Y\n"), ("Y", true, false, 0, "X\n")],
            ),
            (
                "RUN <<C python3\n# not a comment\nC",
                &[("C", true, false, 0, "# not a comment\n")],
            ),
            (
                "COPY <<file.txt /dest\nhi\nfile.txt",
                &[("file.txt", true, false, 0, "hi\n")],
            ),
            ("RUN <<eo'f'\nx\neof", &[("eof", false, false, 0, "x\n")]),
            ("RUN <<eo\\'f\nx\neo'f", &[("eo'f", true, false, 0, "x\n")]),
            (
                "RUN <<'e'o\\'f\nx\neo'f",
                &[("eo'f", false, false, 0, "x\n")],
            ),
            (
                "RUN <<'one two'\nx\none two",
                &[("one two", false, false, 0, "x\n")],
            ),
            ("RUN <<$EOF\n$EOF", &[("$EOF", true, false, 0, "")]),
            ("RUN <<  EOF  > foo\nEOF", &[("EOF", true, false, 0, "")]),
            ("RUN [\"<<EOF\"]", &[]),
            (
                "ONBUILD RUN <<EOF\nx\nEOF",
                &[("EOF", true, false, 0, "x\n")],
            ),
        ];
        for (text, want) in cases {
            let df = parse(&format!("FROM a\n{text}\n")).unwrap();
            let got: Vec<_> = df.instructions[1]
                .heredocs
                .iter()
                .map(|h| {
                    (
                        h.name.as_str(),
                        h.expand,
                        h.chomp,
                        h.file_descriptor,
                        h.content.as_str(),
                    )
                })
                .collect();
            assert_eq!(&got, want, "{text:?}");
        }
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
            ("a '' b", &["a", "''", "b"]),
        ];
        for (input, want) in cases {
            assert_eq!(words(input, '\\'), *want, "{input:?}");
        }
    }

    #[test]
    fn empty_continuation_lines_warn_and_comments_do_not() {
        let text = "FROM a\nRUN something \\\n\n    following \\\n\n    more\nRUN x \\\n# c\n  y\nRUN z \\\n    # c\n    w\n";
        let df = parse(text).unwrap();
        assert_eq!(
            df.warnings,
            ["Empty continuation line found in: RUN something     following     more"]
        );
        assert_eq!(df.instructions[2].words(), ["x   y"]);
        assert_eq!(df.instructions[3].words(), ["z     w"]);
    }

    #[test]
    fn deep_onbuild_chains_are_an_error_not_a_crash() {
        assert_eq!(
            dump("ONBUILD ONBUILD RUN x"),
            "(onbuild (onbuild (run \"x\")))"
        );
        let e = parse(&format!("{}RUN x\n", "ONBUILD ".repeat(5000))).unwrap_err();
        assert!(e.message.contains("Chaining ONBUILD"), "{e}");
    }

    #[test]
    fn overlong_lines_are_refused() {
        let text = format!("FROM image\nLABEL test={}\n", "a".repeat(65536));
        let e = parse(&text).unwrap_err();
        assert_eq!(
            e.message,
            "dockerfile line greater than max allowed size of 65535"
        );
        assert_eq!(e.line, 2);
    }

    #[test]
    fn syntax_directive_and_bom() {
        let df =
            parse("\u{feff}# syntax=docker/dockerfile:1\n# escape=`\nFROM a `\n  b\n").unwrap();
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.escape, '`');
        assert_eq!(df.dump(), "(from \"a\" \"b\")");
    }
}

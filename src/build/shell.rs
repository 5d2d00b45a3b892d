//! Docker's variable substitution and word splitting for Dockerfile arguments (pure, no I/O).
//!
//! This is the lexer Docker runs on an instruction's words after parsing
//! (`frontend/dockerfile/shell/lex.go` in buildkit): `$VAR`, `${VAR}`, the modifiers
//! `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`,
//! the pattern forms `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/repl}`, `${VAR//pat/repl}`, single and double quotes, and the escape character
//! (`\` or the one a `# escape=` directive chose). It mimics sh, with Docker's differences:
//! positional and special parameters (`$1`, `$@`, `$?`, …) are never set, and an unset
//! variable expands to nothing.
//!
//! [`Lex::process_word`] returns one string (spaces kept), as Docker does for `ENV`, `WORKDIR`,
//! `USER`, …; [`Lex::process_words`] also splits the result into words as sh would, splitting
//! the values of unquoted variables too, as Docker does for `EXPOSE` (`EXPOSE $PORTS`) and
//! for heredoc names. Errors are one line: `failed to process "WORD": REASON`.

use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};

/// A set of variables the lexer can look up: `None` when unset, `Some("")` when set but empty.
pub trait Env {
    /// The value of variable `name`, if set.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for [(String, String)] {
    /// The last assignment of `name` wins, as in an environment list.
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// An environment given as `KEY=VALUE` strings (a value without `=` is set and empty); later
/// entries override earlier ones.
pub fn env_from_list<S: AsRef<str>>(list: &[S]) -> HashMap<String, String> {
    list.iter()
        .map(|e| {
            let (k, v) = e.as_ref().split_once('=').unwrap_or((e.as_ref(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The lexer's settings. `Lex::new('\\')` is what Docker uses for an instruction's words;
/// the flags exist for the heredoc scanner, which needs quotes and escapes kept.
#[derive(Debug, Clone)]
pub struct Lex {
    /// The escape character: `\` or `` ` ``.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave unset variables as written (`$X`, `${X}`) instead of expanding them to nothing.
    pub skip_unset_env: bool,
}

impl Lex {
    /// A lexer with escape character `escape` and Docker's default behaviour.
    pub fn new(escape: char) -> Self {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// `word` with quotes removed, escapes applied and variables substituted from `env`.
    /// Errors: unterminated quotes, `${` without `}`, bad or unsupported substitutions,
    /// `${VAR?msg}` on an unset variable.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String> {
        Ok(self.process(word, env)?.0)
    }

    /// `word` processed as by [`Lex::process_word`], then split into words on whitespace
    /// outside quotes (including whitespace that came from an unquoted variable).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>> {
        Ok(self.process(word, env)?.1)
    }

    fn process(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>)> {
        let mut sw = ShellWord {
            lex: self,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: self.raw_escapes,
            depth: 0,
        };
        let raw = sw.raw_escapes;
        sw.process_stop_on(None, raw)
            .map_err(|e| anyhow!("failed to process {}: {e}", go_quote(word)))
    }
}

/// Go's `strconv.Quote`: `"` and `\` escaped, printable characters (non-ASCII included) kept,
/// other characters as `\n`, `\t`, `\x00`, `\u200b`, …. Used wherever Docker prints `%q`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint` for the characters a Dockerfile holds: ASCII space and graphic
/// characters; not controls, other spaces, format characters, private use or noncharacters.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e)
        || matches!(u, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f)
        || matches!(u, 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xfdd0..=0xfdef)
        || u & 0xfffe == 0xfffe
        || u >= 0xf0000
        || matches!(u, 0xe0001 | 0xe0020..=0xe007f))
}

/// Go's `unicode.IsSpace` (the Unicode White_Space property, as Rust's).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Words being collected: a word ends at unquoted whitespace.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if is_space(c) {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// The state of one `process` call: the characters and the read position.
struct ShellWord<'a> {
    lex: &'a Lex,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    /// How many `$` substitutions enclose the current position.
    depth: usize,
}

/// How deeply `${A:-${B:-…}}` may nest.
const MAX_NESTING: usize = 100;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to `stop` (consumed) or the end; the text and its words.
    fn process_stop_on(&mut self, stop: Option<char>, raw: bool) -> Result<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw);
        let out = self.stop_on(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let s = self.dollar()?;
                    words.add_string(&s);
                    result.push_str(&s);
                }
                '<' | '\'' | '"' => {
                    let s = match c {
                        '<' => self.possible_heredoc(),
                        '\'' => self.single_quote()?,
                        _ => self.double_quote()?,
                    };
                    words.add_raw_string(&s);
                    result.push_str(&s);
                }
                _ => {
                    self.next();
                    if c != self.lex.escape {
                        words.add_char(c);
                        result.push(c);
                        continue;
                    }
                    if self.raw_escapes {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                    // The escape character escapes the next one; at the end it is dropped.
                    let Some(c) = self.next() else { break };
                    words.add_raw_char(c);
                    result.push(c);
                }
            }
        }
        if let Some(stop) = stop {
            bail!("unexpected end of statement while looking for matching {stop}");
        }
        Ok((result, words.finish()))
    }

    /// `'…'`: every character literal; a single quote cannot be escaped.
    fn single_quote(&mut self) -> Result<String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    bail!("unexpected end of statement while looking for matching single-quote")
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"…"`: literal except `$` substitutions and the escape character before `"`, `$` or
    /// itself (before any other character it stays).
    fn double_quote(&mut self) -> Result<String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    bail!("unexpected end of statement while looking for matching double-quote")
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                }
                Some(_) => {
                    let mut c = self.next().unwrap_or_default();
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                c = self.next().unwrap_or_default();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay together, so a heredoc word is one word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn get_env(&self, name: &str) -> Option<String> {
        self.env.lookup(name)
    }

    /// A `$` and what follows it, with nesting bounded.
    fn dollar(&mut self) -> Result<String> {
        if self.depth >= MAX_NESTING {
            bail!("syntax error: substitutions nested more than {MAX_NESTING} deep");
        }
        self.depth += 1;
        let out = self.substitution();
        self.depth -= 1;
        out
    }

    // ANCHOR: dollar
    /// A `$` and what follows it.
    fn substitution(&mut self) -> Result<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => bail!("syntax error: missing '}}'"),
            Some('{' | '}' | ':') => bail!("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        let c = self.next();
        match c {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => self.modifier(&name, c),
            Some('/') => self.replace(&name),
            c => bail!("unsupported modifier ({}) in substitution", char_text(c)),
        }
    }
    // ANCHOR_END: dollar

    /// `${NAME:-word}`, `${NAME+word}`, `${NAME?msg}`, `${NAME#pat}`, …; `first` is the
    /// character after the name.
    fn modifier(&mut self, name: &str, first: Option<char>) -> Result<String> {
        let mut mods = char_text(first);
        let mut op = first;
        let null_is_unset = first == Some(':');
        if null_is_unset {
            op = self.next();
            mods.push_str(&char_text(op));
        }
        let pattern = matches!(op, Some('#' | '%'));
        if null_is_unset && pattern {
            bail!("unsupported modifier ({mods}) in substitution");
        }
        let word = self.until_brace(pattern)?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{mods}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            Some('-') => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if empty { String::new() } else { word }),
            Some('?') => match value {
                Some(v) if !(null_is_unset && v.is_empty()) => Ok(v),
                v => {
                    let default = if v.is_none() {
                        "is not allowed to be unset"
                    } else {
                        "is not allowed to be empty"
                    };
                    let message = if word.is_empty() { default } else { &word };
                    bail!("{name}: {message}")
                }
            },
            Some(c @ ('%' | '#')) => {
                let (greedy, pat) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                if c == '%' {
                    trim_suffix(pat, &value, greedy)
                } else {
                    trim_prefix(pat, &value, greedy)
                }
            }
            _ => bail!("unsupported modifier ({mods}) in substitution"),
        }
    }

    /// The word of a `${…}` modifier, up to its `}`.
    fn until_brace(&mut self, raw: bool) -> Result<String> {
        match self.process_stop_on(Some('}'), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => bail!("syntax error: missing '}}'"),
            Err(e) => Err(e),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Result<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => bail!("syntax error: missing '/' in ${{}}"),
            Err(e) => return Err(e),
        };
        let replacement = self.until_brace(true)?;
        let Some(value) = self.get_env(name) else {
            if self.lex.skip_unset_env {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return replace_in("", &pattern, &replacement, all);
        };
        replace_in(&value, &pattern, &replacement, all)
    }

    /// A variable name: letters, digits and `_`; or all the digits of a positional
    /// parameter; or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }
}

/// A character for a message; the end of input prints as Go prints it, `\u{FFFD}`.
fn char_text(c: Option<char>) -> String {
    c.unwrap_or('\u{FFFD}').to_string()
}

fn replace_in(value: &str, pattern: &str, replacement: &str, all: bool) -> Result<String> {
    let re = shell_pattern_regex(pattern, true, false)
        .map_err(|e| anyhow!("invalid pattern ({pattern}) in substitution: {e}"))?;
    if all {
        return Ok(re.replace_all(value, replacement).into_owned());
    }
    Ok(match re.find(value) {
        Some(m) => format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..]),
        None => value.to_string(),
    })
}

/// A shell wildcard pattern (`?` one character, `*` any string, `\` escaping `*`, `?` or
/// `\`) as a regular expression; bracket expressions are not supported, as in Docker.
fn shell_pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex> {
    let mut out = String::from(if anchored { "^" } else { "" });
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` are the escapes of `${…}` itself, not of the pattern.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(e);
                    }
                    e => bail!("invalid escape '\\{}'", char_text(e)),
                }
            }
            c => {
                if "[]{}.+()|^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    Ok(regex::Regex::new(&out)?)
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String> {
    let re = shell_pattern_regex(pattern, greedy, true)
        .map_err(|e| anyhow!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// The shortest (or longest) matching suffix removed: both strings are reversed, so the
/// search is a leftmost one (escapes stay before the character they escape).
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String> {
    let rev: String = value.chars().rev().collect();
    let out = trim_prefix(&reverse_pattern(pattern), &rev, greedy)?;
    Ok(out.chars().rev().collect())
}

fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; p.len()];
    let last = p.len().saturating_sub(1);
    let mut i = 0;
    while i < p.len() {
        let o = last - i;
        if p[i] == '\\' && i != last {
            out[o - 1] = '\\';
            out[o] = p[i + 1];
            i += 2;
        } else {
            out[o] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        env_from_list(&["PWD=/home", "EMPTY=", "P=a/b/c.tar.gz"])
    }

    fn word(s: &str) -> Result<String> {
        Lex::new('\\').process_word(s, &env())
    }

    #[test]
    fn patterns_trim_shortest_and_longest() {
        assert_eq!(word("${P#*/}").unwrap(), "b/c.tar.gz");
        assert_eq!(word("${P##*/}").unwrap(), "c.tar.gz");
        assert_eq!(word("${P%.*}").unwrap(), "a/b/c.tar");
        assert_eq!(word("${P%%.*}").unwrap(), "a/b/c");
        assert_eq!(word("${P/b/x}").unwrap(), "a/x/c.tar.gz");
        assert_eq!(word("${P//[/}").unwrap(), "a/b/c.tar.gz");
        assert_eq!(word("${P//\\//-}").unwrap(), "a-b-c.tar.gz");
        assert!(word("${P:#x}").is_err());
    }

    #[test]
    fn mandatory_variables_give_their_message() {
        assert_eq!(word("${PWD:?no}").unwrap(), "/home");
        let err = word("${EMPTY:?message here$PWD}").unwrap_err().to_string();
        assert!(err.contains("EMPTY: message here/home"), "{err}");
        assert!(
            word("${UNSET?}")
                .unwrap_err()
                .to_string()
                .contains("is not allowed to be unset")
        );
        assert_eq!(word("${EMPTY?}").unwrap(), "");
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        assert_eq!(lex.process_word("a`$PWD\\x", &env()).unwrap(), "a$PWD\\x");
        assert_eq!(lex.process_word("\"`\"q`\"\"", &env()).unwrap(), "\"q\"");
    }

    #[test]
    fn skip_unset_keeps_references() {
        let mut lex = Lex::new('\\');
        lex.skip_unset_env = true;
        assert_eq!(
            lex.process_word("$X ${Y} ${Z:-w} $PWD", &env()).unwrap(),
            "$X ${Y} ${Z:-w} /home"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}x{}", "${A:-".repeat(5000), "}".repeat(5000));
        assert!(word(&deep).unwrap_err().to_string().contains("nested"));
        assert_eq!(
            word(&format!("{}x{}", "${A:-".repeat(50), "}".repeat(50))).unwrap(),
            "x"
        );
    }

    #[test]
    fn go_quote_matches_strconv() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\t\u{7f}\u{200b}♥"), r#""\x00\t\x7f\u200b♥""#);
    }
}

//! Dockerfile instructions: the parser's nodes checked and typed, then grouped into stages
//! (pure, no I/O).
//!
//! This is Docker's second stage after parsing (buildkit's `frontend/dockerfile/instructions`,
//! which Docker's classic builder uses too): each keyword's arguments and `--flags` are
//! checked with Docker's messages, `ARG`s before the first `FROM` become the meta args, and
//! every other instruction joins the stage its `FROM` began. Words are still unexpanded here:
//! `$VAR` is substituted per step at build time, with the values [`crate::build::args`]
//! gives.

use std::collections::{BTreeMap, BTreeSet};

use crate::build::parser::{
    Arg, Dockerfile, Heredoc, Node, ParseError, chomp_heredoc_content, parse_heredoc,
};
use crate::build::shell::{Env, Lex};

/// One instruction, typed, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based first and last line in the Dockerfile.
    pub line: usize,
    pub end_line: usize,
    /// The instruction line as written (continuations joined), for messages and `Step N/M :`.
    pub original: String,
    pub kind: Kind,
}

/// What an instruction does, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Arg(Vec<ArgDecl>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Run(CommandLine),
    Cmd(CommandLine),
    /// `None` for `ENTRYPOINT []` (resets the entrypoint).
    Entrypoint(Option<CommandLine>),
    /// The shell for the shell form, from a JSON array.
    Shell(Vec<String>),
    Copy(CopySpec),
    Add(CopySpec),
    Workdir(String),
    User(String),
    /// Ports as written (`80`, `53/udp`, `${PORT}`), sorted as Docker sorts them.
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
    /// The trigger instruction's text (`RUN echo hi`), stored in the image and run by builds
    /// that use it as their base.
    Onbuild(String),
}

/// A `KEY=value` of `ENV` or `LABEL`; `no_delim` for the legacy `ENV KEY value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub no_delim: bool,
}

/// One name of an `ARG`, with its default when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub key: String,
    pub default: Option<String>,
}

/// The command of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the argv; shell form: one string, the words joined by a space.
    pub args: Vec<String>,
    /// True for the shell form: the stage's `SHELL` (default `/bin/sh -c`) goes first.
    pub prepend_shell: bool,
    /// The heredocs, as files the command reads.
    pub files: Vec<Heredoc>,
}

/// The arguments of `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Source paths (patterns, URLs for `ADD`), unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources: file name, content, whether variables expand in it.
    pub inline: Vec<InlineSource>,
    pub dest: String,
    /// `--from=stage|image|index` (`COPY` only).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
}

/// A heredoc given as a `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    pub path: String,
    pub data: String,
    pub expand: bool,
}

/// `HEALTHCHECK NONE` or a check with its options (durations in nanoseconds, 0 = default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    None,
    Check {
        /// `["CMD", argv…]` (exec form) or `["CMD-SHELL", "command"]`, as the image config.
        test: Vec<String>,
        interval: u64,
        timeout: u64,
        start_period: u64,
        start_interval: u64,
        retries: u32,
    },
}

impl Health {
    /// The check as the image config's `Healthcheck` (Docker's `HealthConfig`: `Test`, and
    /// `Interval`, `Timeout`, `StartPeriod`, `StartInterval` in ns and `Retries` when set).
    pub fn config_json(&self) -> serde_json::Value {
        match self {
            Health::None => serde_json::json!({ "Test": ["NONE"] }),
            Health::Check {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let mut map = serde_json::Map::new();
                map.insert("Test".into(), serde_json::json!(test));
                let fields = [
                    ("Interval", *interval),
                    ("Timeout", *timeout),
                    ("StartPeriod", *start_period),
                    ("StartInterval", *start_interval),
                    ("Retries", u64::from(*retries)),
                ];
                for (key, value) in fields.into_iter().filter(|(_, v)| *v != 0) {
                    map.insert(key.into(), serde_json::json!(value));
                }
                serde_json::Value::Object(map)
            }
        }
    }

    /// The check as Go's `%q` prints the classic builder's `*HealthConfig`, which it records
    /// in the history: `&{["CMD-SHELL" "true"] "30s" "0s" "0s" '\x03'}` (test, interval,
    /// timeout, start period, retries; the classic builder has no start interval).
    pub fn go_q(&self) -> String {
        let (test, durations, retries) = match self {
            Health::None => (vec!["NONE".to_string()], [0; 3], 0),
            Health::Check {
                test,
                interval,
                timeout,
                start_period,
                retries,
                ..
            } => (test.clone(), [*interval, *timeout, *start_period], *retries),
        };
        let test: Vec<String> = test
            .iter()
            .map(|w| crate::build::shell::go_quote(w))
            .collect();
        let durations: Vec<String> = durations
            .iter()
            .map(|d| format!("\"{}\"", go_duration_string(*d)))
            .collect();
        format!(
            "&{{[{}] {} {}}}",
            test.join(" "),
            durations.join(" "),
            go_quote_rune(retries)
        )
    }
}

/// Go's `time.Duration.String` for a non-negative duration in ns: `0s`, `1.5s`, `5m0s`,
/// `1h0m0s`, `300ms`.
pub fn go_duration_string(ns: u64) -> String {
    let fraction = |value: u64, unit: u64| {
        let digits = unit.ilog10() as usize;
        let (whole, part) = (value / unit, value % unit);
        if part == 0 {
            whole.to_string()
        } else {
            let part = format!("{part:0digits$}");
            format!("{whole}.{}", part.trim_end_matches('0'))
        }
    };
    match ns {
        0 => "0s".into(),
        1..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{}µs", fraction(ns, 1_000)),
        1_000_000..1_000_000_000 => format!("{}ms", fraction(ns, 1_000_000)),
        _ => {
            let (hours, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
            let (minutes, seconds) = (rest / 60_000_000_000, rest % 60_000_000_000);
            let mut out = String::new();
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if hours > 0 || minutes > 0 {
                out.push_str(&format!("{minutes}m"));
            }
            out.push_str(&format!("{}s", fraction(seconds, 1_000_000_000)));
            out
        }
    }
}

/// Go's `%q` of an integer: the rune literal (`'a'`, `'\n'`, `'\x03'`).
fn go_quote_rune(n: u32) -> String {
    let escaped = match n {
        7 => "\\a".into(),
        8 => "\\b".into(),
        9 => "\\t".into(),
        10 => "\\n".into(),
        11 => "\\v".into(),
        12 => "\\f".into(),
        13 => "\\r".into(),
        0x27 => "\\'".into(),
        0x5c => "\\\\".into(),
        0x20..0x7f => char::from_u32(n).map(String::from).unwrap_or_default(),
        0..0x80 => format!("\\x{n:02x}"),
        _ => match char::from_u32(n) {
            Some(c) if !c.is_control() => c.to_string(),
            _ if n < 0x10000 => format!("\\u{n:04x}"),
            _ => format!("\\U{n:08x}"),
        },
    };
    format!("'{escaped}'")
}

/// A build stage: a `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The base image reference or stage name as written (`$VAR` unexpanded), or `scratch`.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// The `FROM` line.
    pub line: usize,
    pub original: String,
    pub commands: Vec<Instruction>,
}

/// A Dockerfile as stages: the meta args (`ARG`s before the first `FROM`) and the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// The `ARG` instructions before the first `FROM` (each a [`Kind::Arg`]).
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

impl Stages {
    /// The names the meta `ARG`s declare, in order.
    pub fn meta_decls(&self) -> Vec<ArgDecl> {
        let decls = |i: &Instruction| match &i.kind {
            Kind::Arg(d) => d.clone(),
            _ => Vec::new(),
        };
        self.meta_args.iter().flat_map(decls).collect()
    }

    /// The number of steps the classic builder announces (`Step 1/N`): every instruction,
    /// meta `ARG`s and `FROM`s included.
    pub fn steps(&self) -> usize {
        self.meta_args.len()
            + self
                .stages
                .iter()
                .map(|s| 1 + s.commands.len())
                .sum::<usize>()
    }

    /// The stage index for `--target NAME` (or `--from=NAME`): by name, case-insensitive.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        let name = name.to_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(name.as_str()))
    }
}

impl Stages {
    /// The stages `target` needs, in build order (ascending), `target` last: the stages its
    /// `FROM` names and those its `COPY --from` names (by name or index), transitively. A
    /// name only refers to a stage defined before it; otherwise it is an image. `FROM` and
    /// `--from` words are expanded with the meta args `meta`.
    pub fn needed(&self, target: usize, meta: &dyn Env, lex: &Lex) -> anyhow::Result<Vec<usize>> {
        let mut needed = BTreeSet::from([target]);
        let mut queue = vec![target];
        while let Some(i) = queue.pop() {
            for dep in self.dependencies(i, meta, lex)? {
                if needed.insert(dep) {
                    queue.push(dep);
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// The earlier stages stage `i` refers to.
    fn dependencies(&self, i: usize, meta: &dyn Env, lex: &Lex) -> anyhow::Result<Vec<usize>> {
        let stage = &self.stages[i];
        let mut refs = vec![lex.process_word(&stage.base, meta)?];
        for c in &stage.commands {
            if let Kind::Copy(CopySpec { from: Some(f), .. }) = &c.kind {
                refs.push(lex.process_word(f, meta).unwrap_or_else(|_| f.clone()));
            }
        }
        let earlier = |r: &String| match r.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => self.by_name(r),
        };
        Ok(refs.iter().filter_map(earlier).filter(|&j| j < i).collect())
    }
}

// ANCHOR: expand
impl Kind {
    /// The instruction with `$VAR` substituted where Docker substitutes: `ENV` and `LABEL`
    /// keys and values, `ARG` names and defaults, `COPY`/`ADD` sources, destination,
    /// `--from`, `--chown` and `--chmod`, `WORKDIR`, `USER`, `VOLUME`, `STOPSIGNAL`, and
    /// `EXPOSE`, whose words are also split (`EXPOSE $PORTS` with `PORTS="80 443"` is two
    /// ports). `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`, `MAINTAINER` and
    /// `ONBUILD` stay as written. Every word sees `env` as it was before the instruction.
    pub fn expand(&self, lex: &Lex, env: &dyn Env) -> anyhow::Result<Kind> {
        let w = |s: &String| lex.process_word(s, env);
        let all = |v: &[String]| v.iter().map(w).collect::<anyhow::Result<Vec<_>>>();
        Ok(match self {
            Kind::Env(v) => Kind::Env(expand_key_values(v, lex, env)?),
            Kind::Label(v) => Kind::Label(expand_key_values(v, lex, env)?),
            Kind::Arg(v) => Kind::Arg(expand_arg_decls(v, lex, env)?),
            Kind::Copy(c) => Kind::Copy(expand_copy(c, lex, env)?),
            Kind::Add(c) => Kind::Add(expand_copy(c, lex, env)?),
            Kind::Workdir(p) => Kind::Workdir(w(p)?),
            Kind::User(u) => Kind::User(w(u)?),
            Kind::StopSignal(s) => Kind::StopSignal(w(s)?),
            Kind::Volume(v) => Kind::Volume(all(v)?),
            Kind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.process_words(p, env)?);
                }
                Kind::Expose(out)
            }
            other => other.clone(),
        })
    }
}
// ANCHOR_END: expand

/// `ENV`/`LABEL` pairs with their keys and values expanded.
fn expand_key_values(v: &[KeyValue], lex: &Lex, env: &dyn Env) -> anyhow::Result<Vec<KeyValue>> {
    v.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: lex.process_word(&kv.key, env)?,
                value: lex.process_word(&kv.value, env)?,
                no_delim: kv.no_delim,
            })
        })
        .collect()
}

/// `ARG` declarations with their names and defaults expanded.
fn expand_arg_decls(v: &[ArgDecl], lex: &Lex, env: &dyn Env) -> anyhow::Result<Vec<ArgDecl>> {
    v.iter()
        .map(|a| {
            Ok(ArgDecl {
                key: lex.process_word(&a.key, env)?,
                default: a
                    .default
                    .as_ref()
                    .map(|d| lex.process_word(d, env))
                    .transpose()?,
            })
        })
        .collect()
}

// ANCHOR: expand_copy
/// A `COPY`/`ADD` with its sources, destination and flags expanded, and its heredocs' text
/// when their terminator was not quoted.
fn expand_copy(c: &CopySpec, lex: &Lex, env: &dyn Env) -> anyhow::Result<CopySpec> {
    let w = |s: &String| lex.process_word(s, env);
    let opt = |o: &Option<String>| o.as_ref().map(w).transpose();
    // Heredoc text expands as buildkit's `ExpandRaw`: quotes stay as written.
    let raw = Lex {
        raw_quotes: true,
        ..lex.clone()
    };
    let inline = c
        .inline
        .iter()
        .map(|f| {
            let data = if f.expand {
                raw.process_word(&f.data, env)?
            } else {
                f.data.clone()
            };
            Ok(InlineSource { data, ..f.clone() })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CopySpec {
        sources: c
            .sources
            .iter()
            .map(w)
            .collect::<anyhow::Result<Vec<_>>>()?,
        inline,
        dest: w(&c.dest)?,
        from: opt(&c.from)?,
        chown: opt(&c.chown)?,
        chmod: opt(&c.chmod)?,
        ..c.clone()
    })
}
// ANCHOR_END: expand_copy

// ANCHOR: created_by
impl Kind {
    /// What the classic builder records for a step that only changes the config (its history
    /// `created_by` after `SHELL #(nop) `, and its cache key): `ENV A=1 B=2`, `ARG V=1`,
    /// `EXPOSE 80 53/udp`, `VOLUME [/a /b]`, `CMD ["sh" "-c" "x"]`, …, from the expanded
    /// instruction. `None` for `RUN`, `COPY`, `ADD` and `HEALTHCHECK`, which record more.
    pub fn commit_comment(&self) -> Option<String> {
        let kvs = |v: &[KeyValue]| {
            v.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(match self {
            Kind::Env(v) => format!("ENV {}", kvs(v)),
            Kind::Label(v) => format!("LABEL {}", kvs(v)),
            Kind::Arg(decls) => {
                let words: Vec<String> = decls
                    .iter()
                    .map(|d| match &d.default {
                        Some(v) => format!("{}={v}", d.key),
                        None => d.key.clone(),
                    })
                    .collect();
                format!("ARG {}", words.join(" "))
            }
            Kind::Maintainer(m) => format!("MAINTAINER {m}"),
            Kind::Workdir(p) => format!("WORKDIR {p}"),
            Kind::User(u) => format!("USER {u}"),
            Kind::StopSignal(s) => format!("STOPSIGNAL {s}"),
            Kind::Expose(p) => format!("EXPOSE {}", p.join(" ")),
            Kind::Volume(v) => format!("VOLUME [{}]", v.join(" ")),
            Kind::Onbuild(t) => format!("ONBUILD {t}"),
            // Go's `%v` of a string slice: no quotes.
            Kind::Shell(v) => format!("SHELL [{}]", v.join(" ")),
            Kind::Cmd(_)
            | Kind::Entrypoint(_)
            | Kind::Run(_)
            | Kind::Copy(_)
            | Kind::Add(_)
            | Kind::Healthcheck(_) => {
                return None;
            }
        })
    }
}
// ANCHOR_END: created_by

// ANCHOR: nop_created_by
/// A metadata step's history `created_by`: the stage's shell, `#(nop) `, and the comment
/// (`/bin/sh -c #(nop)  ENV A=1`: Docker joins the words with a space after `#(nop) `).
pub fn nop_created_by(shell: &[String], comment: &str) -> String {
    let mut words = shell.to_vec();
    words.push("#(nop) ".to_string());
    words.push(comment.to_string());
    words.join(" ")
}
// ANCHOR_END: nop_created_by

/// The instructions Docker knows, for the unknown-instruction message.
pub const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

// ANCHOR: stages
/// Groups a parsed Dockerfile into meta args and stages, checking every instruction.
///
/// Errors (with the instruction's line): an unknown instruction, an instruction before the
/// first `FROM` other than `ARG` (`no build stage in current context`), wrong argument
/// counts, unknown or malformed flags, a stage name Docker rejects.
pub fn stages(df: &Dockerfile) -> Result<Stages, ParseError> {
    let mut out = Stages {
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &df.instructions {
        if node.instruction() == "from" {
            out.stages
                .push(stage(node).map_err(|m| node_error(node, m))?);
            continue;
        }
        let step = checked(node)?;
        match out.stages.last_mut() {
            Some(current) => current.commands.push(step),
            None if matches!(step.kind, Kind::Arg(_)) => out.meta_args.push(step),
            None => {
                let message = "no build stage in current context".into();
                return Err(node_error(node, message));
            }
        }
    }
    Ok(out)
}
// ANCHOR_END: stages

/// A ParseError at `node`'s lines, about its instruction.
fn node_error(node: &Node, message: String) -> ParseError {
    ParseError {
        line: node.start_line,
        end_line: node.end_line,
        instruction: Some(node.keyword.to_uppercase()),
        message,
    }
}

/// One non-`FROM` node checked and typed, with its lines and text.
fn checked(node: &Node) -> Result<Instruction, ParseError> {
    Ok(Instruction {
        line: node.start_line,
        end_line: node.end_line,
        original: node.original.trim().to_string(),
        kind: instruction(node).map_err(|m| node_error(node, m))?,
    })
}

/// The instructions of an `ONBUILD` trigger, which moby parses as a Dockerfile of its own (so
/// its lines count from 1): each checked as a stage's instruction. Errors as [`stages`], and
/// moby's refusals of `ONBUILD`, `FROM` and `MAINTAINER` as triggers.
pub fn trigger(df: &Dockerfile) -> Result<Vec<Instruction>, ParseError> {
    let mut out = Vec::new();
    for node in &df.instructions {
        let keyword = node.keyword.to_uppercase();
        let refused = match keyword.as_str() {
            "ONBUILD" => Some("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_owned()),
            "FROM" | "MAINTAINER" => Some(format!("{keyword} isn't allowed as an ONBUILD trigger")),
            _ => None,
        };
        if let Some(message) = refused {
            return Err(node_error(node, message));
        }
        out.push(checked(node)?);
    }
    Ok(out)
}

/// `FROM [--platform=P] image [AS name]`.
fn stage(node: &Node) -> Result<Stage, String> {
    let args = node_args(node);
    let name = match args.as_slice() {
        [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or contain symbols",
                    crate::build::shell::go_quote(name)
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let mut flags = Flags::new(&node.flags, &[("platform", FlagType::String)]);
    flags.parse()?;
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform: flags.string("platform"),
        line: node.start_line,
        original: node.original.trim().to_string(),
        commands: Vec::new(),
    })
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The words of a node; for `ONBUILD`, the nested keyword then its words.
fn node_args(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for a in &node.args {
        match a {
            Arg::Word(w) => out.push(w.clone()),
            Arg::Instruction(n) => {
                out.push(n.keyword.clone());
                out.extend(node_args(n));
            }
        }
    }
    out
}

// ANCHOR: instruction
/// One non-`FROM` instruction, typed.
fn instruction(node: &Node) -> Result<Kind, String> {
    let args = node_args(node);
    let kw = node.instruction();
    let no_flags = || Flags::new(&node.flags, &[]).parse();
    Ok(match kw.as_str() {
        "env" | "label" => {
            no_flags()?;
            let kvs = key_values(&args, &kw.to_uppercase())?;
            if kw == "env" {
                Kind::Env(kvs)
            } else {
                Kind::Label(kvs)
            }
        }
        "maintainer" => Kind::Maintainer(exactly_one(&args, "MAINTAINER", no_flags)?),
        "workdir" => Kind::Workdir(exactly_one(&args, "WORKDIR", no_flags)?),
        "user" => Kind::User(exactly_one(&args, "USER", no_flags)?),
        // Docker reads no flags for STOPSIGNAL and ARG.
        "stopsignal" => Kind::StopSignal(exactly_one(&args, "STOPSIGNAL", || Ok(()))?),
        "arg" => Kind::Arg(arg_decls(&args)?),
        "run" => {
            no_flags()?;
            Kind::Run(command_line(node, &args))
        }
        "cmd" => {
            no_flags()?;
            Kind::Cmd(command_line(node, &args))
        }
        "entrypoint" => {
            no_flags()?;
            let c = command_line(node, &args);
            Kind::Entrypoint((!c.args.is_empty()).then_some(c))
        }
        "shell" => Kind::Shell(shell(node, &args, no_flags)?),
        "copy" | "add" => copy_spec(node, &args, &kw)?,
        "expose" => {
            at_least_one(&args, "EXPOSE")?;
            no_flags()?;
            let mut ports = args;
            ports.sort();
            Kind::Expose(ports)
        }
        "volume" => Kind::Volume(volumes(&args, no_flags)?),
        "healthcheck" => Kind::Healthcheck(health(node, &args)?),
        "onbuild" => Kind::Onbuild(onbuild(node, &args)?),
        _ => return Err(format!("unknown instruction: {}", node.keyword)),
    })
}
// ANCHOR_END: instruction

fn at_least_one(args: &[String], name: &str) -> Result<(), String> {
    if args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    Ok(())
}

fn exactly_one(
    args: &[String],
    name: &str,
    flags: impl FnOnce() -> Result<(), String>,
) -> Result<String, String> {
    let [one] = args else {
        return Err(format!("{name} requires exactly one argument"));
    };
    flags()?;
    Ok(one.clone())
}

/// `ENV`/`LABEL` triples.
fn key_values(args: &[String], name: &str) -> Result<Vec<KeyValue>, String> {
    at_least_one(args, name)?;
    if !args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {name}, too many arguments"));
    }
    args.chunks(3)
        .map(|t| {
            if t[0].is_empty() {
                return Err(format!("{name} names can not be blank"));
            }
            Ok(KeyValue {
                key: t[0].clone(),
                value: t[1].clone(),
                no_delim: t[2].is_empty(),
            })
        })
        .collect()
}

fn arg_decls(args: &[String]) -> Result<Vec<ArgDecl>, String> {
    at_least_one(args, "ARG")?;
    args.iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok(ArgDecl {
                key: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                key: a.clone(),
                default: None,
            }),
        })
        .collect()
}

/// Exec form as is; shell form joined into one string.
fn command_line(node: &Node, args: &[String]) -> CommandLine {
    CommandLine {
        args: if node.json || args.is_empty() {
            args.to_vec()
        } else {
            vec![args.join(" ")]
        },
        prepend_shell: !node.json,
        files: node.heredocs.clone(),
    }
}

fn shell(
    node: &Node,
    args: &[String],
    flags: impl FnOnce() -> Result<(), String>,
) -> Result<Vec<String>, String> {
    flags()?;
    if args.is_empty() {
        return Err("SHELL requires at least one argument".into());
    }
    if !node.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(args.to_vec())
}

fn volumes(
    args: &[String],
    flags: impl FnOnce() -> Result<(), String>,
) -> Result<Vec<String>, String> {
    at_least_one(args, "VOLUME")?;
    flags()?;
    args.iter()
        .map(|v| match v.trim() {
            "" => Err("VOLUME specified can not be an empty string".to_string()),
            v => Ok(v.to_string()),
        })
        .collect()
}

/// `COPY`/`ADD` flags, sources (heredocs among them) and destination.
fn copy_spec(node: &Node, args: &[String], kw: &str) -> Result<Kind, String> {
    let name = kw.to_uppercase();
    if args.len() < 2 {
        return Err(format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let mut known = vec![
        ("chown", FlagType::String),
        ("chmod", FlagType::String),
        ("link", FlagType::Bool),
    ];
    if kw == "copy" {
        known.push(("from", FlagType::String));
    }
    let mut flags = Flags::new(&node.flags, &known);
    flags.parse()?;
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if heredoc_word(&dest).is_some() {
        return Err(format!("{name} cannot accept a heredoc as a destination"));
    }
    let mut spec = CopySpec {
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        ..CopySpec::default()
    };
    for src in srcs {
        let Some(h) = heredoc_word(src) else {
            spec.sources.push(src.clone());
            continue;
        };
        let content = node
            .heredocs
            .iter()
            .rev()
            .find(|d| d.name == h.name)
            .map(|d| d.content.as_str())
            .unwrap_or("");
        let data = if h.chomp {
            chomp_heredoc_content(content)
        } else {
            content.to_string()
        };
        spec.inline.push(InlineSource {
            path: h.name,
            data,
            expand: h.expand,
        });
    }
    Ok(if kw == "copy" {
        Kind::Copy(spec)
    } else {
        Kind::Add(spec)
    })
}

fn heredoc_word(word: &str) -> Option<Heredoc> {
    parse_heredoc(word).ok().flatten()
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=…] CMD command`.
fn health(node: &Node, args: &[String]) -> Result<Health, String> {
    at_least_one(args, "HEALTHCHECK")?;
    let typ = args[0].to_uppercase();
    let rest = &args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Health::None);
    }
    let names = [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ];
    let known: Vec<_> = names.iter().map(|n| (*n, FlagType::String)).collect();
    let mut flags = Flags::new(&node.flags, &known);
    flags.parse()?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            crate::build::shell::go_quote(&typ)
        ));
    }
    let cmd = if node.json || rest.is_empty() {
        rest.to_vec()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let head = if node.json { "CMD" } else { "CMD-SHELL" };
    let interval = |n: &str| flags.string(n).map_or(Ok(0), |v| interval(n, &v));
    let retries = match flags.string("retries") {
        None => 0,
        Some(v) => parse_retries(&v)?,
    };
    Ok(Health::Check {
        test: std::iter::once(head.to_string()).chain(cmd).collect(),
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })
}

fn parse_retries(v: &str) -> Result<u32, String> {
    let n: i32 = v.parse().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            crate::build::shell::go_quote(v)
        )
    })?;
    u32::try_from(n).map_err(|_| format!("--retries cannot be negative ({n})"))
}

/// A `--interval`-style duration in nanoseconds: 0 stays 0 (the default), else at least 1ms.
fn interval(name: &str, value: &str) -> Result<u64, String> {
    let ns = go_duration(value).ok_or_else(|| {
        format!(
            "time: invalid duration {}",
            crate::build::shell::go_quote(value)
        )
    })?;
    if ns != 0 && ns < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            crate::build::shell::go_quote(name)
        ));
    }
    Ok(ns)
}

/// Go's `time.ParseDuration` for non-negative durations: `1h2m3.5s`, `300ms`, `10us`, `0`.
pub fn go_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * scale;
        rest = tail;
    }
    (total < u64::MAX as f64).then_some(total as u64)
}

/// `ONBUILD X …`: the trigger's text; `ONBUILD`, `FROM` and `MAINTAINER` are refused.
fn onbuild(node: &Node, args: &[String]) -> Result<String, String> {
    at_least_one(args, "ONBUILD")?;
    Flags::new(&node.flags, &[]).parse()?;
    let trigger = args[0].trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
        }
        _ => {}
    }
    let original = node.original.trim_start_matches(char::is_whitespace);
    let mut text = original
        .get(7..)
        .filter(|_| original[..7].eq_ignore_ascii_case("onbuild"))
        .unwrap_or(original)
        .trim_start_matches(char::is_whitespace)
        .to_string();
    for h in &node.heredocs {
        text.push('\n');
        text.push_str(&h.content);
        text.push_str(&h.name);
    }
    Ok(text)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    String,
}

/// Docker's `--flag` checking for one instruction (buildkit's `BFlags`).
struct Flags<'a> {
    args: &'a [String],
    known: BTreeMap<&'a str, FlagType>,
    values: BTreeMap<String, String>,
}

impl<'a> Flags<'a> {
    fn new(args: &'a [String], known: &[(&'a str, FlagType)]) -> Self {
        Flags {
            args,
            known: known.iter().copied().collect(),
            values: BTreeMap::new(),
        }
    }

    /// Errors as Docker's classic builder: `Unknown flag: x`, `Duplicate flag specified: x`,
    /// `Missing a value on flag: x`, `Expecting boolean value for flag x, not: y`.
    fn parse(&mut self) -> Result<(), String> {
        for a in self.args {
            if a == "--" {
                return Ok(());
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("Arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&typ) = self.known.get(name) else {
                return Err(format!("Unknown flag: {name}"));
            };
            if self.values.contains_key(name) {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            let v = match (typ, value) {
                (FlagType::Bool, Some("")) | (FlagType::String, None) => {
                    return Err(format!("Missing a value on flag: {name}"));
                }
                (FlagType::Bool, None) => "true".to_string(),
                (FlagType::Bool, Some(v)) => match v.to_lowercase().as_str() {
                    b @ ("true" | "false") => b.to_string(),
                    _ => {
                        return Err(format!("Expecting boolean value for flag {name}, not: {v}"));
                    }
                },
                (FlagType::String, Some(v)) => v.to_string(),
            };
            self.values.insert(name.to_string(), v);
        }
        Ok(())
    }

    /// A string flag's value; `None` when not given (or given empty, as Docker treats it).
    fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn bool(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::parser::parse;

    fn staged(text: &str) -> Result<Stages, String> {
        let df = parse(text).map_err(|e| e.to_string())?;
        stages(&df).map_err(|e| e.report("Dockerfile"))
    }

    #[test]
    fn meta_args_and_stages() {
        let s = staged(
            "ARG BASE=busybox\nARG V\nFROM $BASE AS Build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
        )
        .unwrap();
        assert_eq!(s.meta_decls().len(), 2);
        assert_eq!(s.meta_decls()[0].default.as_deref(), Some("busybox"));
        assert_eq!(s.steps(), 6);
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].name.as_deref(), Some("build"));
        assert_eq!(s.stages[0].base, "$BASE");
        assert_eq!(s.by_name("BUILD"), Some(0));
        let Kind::Copy(c) = &s.stages[1].commands[0].kind else {
            panic!()
        };
        assert_eq!(
            (c.from.as_deref(), c.sources.as_slice(), c.dest.as_str()),
            (Some("build"), &["/out".to_string()][..], "/")
        );
    }

    #[test]
    fn docker_messages_with_line() {
        let cases = [
            (
                "RUN x\n",
                "Dockerfile:1: RUN: no build stage in current context",
            ),
            (
                "FROM a\nBADCMD x\n",
                "Dockerfile:2: BADCMD: unknown instruction: BADCMD",
            ),
            (
                "FROM a b\n",
                "Dockerfile:1: FROM requires either one or three arguments",
            ),
            (
                "FROM a AS 1x\n",
                "Dockerfile:1: FROM: invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
            ),
            (
                "FROM a\nCOPY x\n",
                "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
            ),
            (
                "FROM a\nADD --from=b x y\n",
                "Dockerfile:2: ADD: Unknown flag: from",
            ),
            (
                "FROM a\nCOPY --link --link x y\n",
                "Dockerfile:2: COPY: Duplicate flag specified: link",
            ),
            (
                "FROM a\nCOPY --chown x y\n",
                "Dockerfile:2: COPY: Missing a value on flag: chown",
            ),
            (
                "FROM a\nSHELL /bin/bash -c\n",
                "Dockerfile:2: SHELL requires the arguments to be in JSON form",
            ),
            (
                "FROM a\nONBUILD FROM b\n",
                "Dockerfile:2: ONBUILD: FROM isn't allowed as an ONBUILD trigger",
            ),
            (
                "FROM a\nWORKDIR\n",
                "Dockerfile:2: WORKDIR requires exactly one argument",
            ),
            (
                "FROM a\nHEALTHCHECK --interval=1us CMD x\n",
                "Dockerfile:2: HEALTHCHECK: Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "FROM a\nHEALTHCHECK --retries=-1 CMD x\n",
                "Dockerfile:2: HEALTHCHECK: --retries cannot be negative (-1)",
            ),
            (
                "FROM a\nARG =x\n",
                "Dockerfile:2: ARG names can not be blank",
            ),
            (
                "FROM a\nCOPY <<EOF <<EOF\nx\nEOF\nEOF\n",
                "Dockerfile:2: COPY cannot accept a heredoc as a destination",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(staged(text).unwrap_err(), want, "{text:?}");
        }
    }

    #[test]
    fn typed_instructions() {
        let s = staged(concat!(
            "FROM a\n",
            "RUN echo  a \\\n  b\n",
            "CMD [\"x\", \"y\"]\n",
            "ENTRYPOINT []\n",
            "EXPOSE 8080 443/tcp 80\n",
            "HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/\n",
            "ENV A=1 B\\ C=2\n",
            "COPY --chmod=0755 --link <<-EOF /run.sh\n\techo hi\nEOF\n",
            "ONBUILD RUN echo $X\n",
            "HEALTHCHECK NONE\n",
        ))
        .unwrap();
        let kinds: Vec<&Kind> = s.stages[0].commands.iter().map(|c| &c.kind).collect();
        let Kind::Run(run) = kinds[0] else { panic!() };
        assert_eq!(
            (run.args.as_slice(), run.prepend_shell),
            (&["echo  a   b".to_string()][..], true)
        );
        let Kind::Cmd(cmd) = kinds[1] else { panic!() };
        assert_eq!((cmd.args.len(), cmd.prepend_shell), (2, false));
        assert_eq!(kinds[2], &Kind::Entrypoint(None));
        assert_eq!(
            kinds[3],
            &Kind::Expose(vec!["443/tcp".into(), "80".into(), "8080".into()])
        );
        let Kind::Healthcheck(Health::Check {
            test,
            interval,
            retries,
            ..
        }) = kinds[4]
        else {
            panic!()
        };
        assert_eq!(
            (test.as_slice(), *interval, *retries),
            (
                &["CMD-SHELL".to_string(), "curl -f http://x/".into()][..],
                90_000_000_000,
                3
            )
        );
        let Kind::Env(env) = kinds[5] else { panic!() };
        assert_eq!((env[1].key.as_str(), env[1].value.as_str()), ("B\\ C", "2"));
        let Kind::Copy(c) = kinds[6] else { panic!() };
        assert_eq!(
            (c.chmod.as_deref(), c.link, c.inline[0].data.as_str()),
            (Some("0755"), true, "echo hi\n")
        );
        assert_eq!(kinds[7], &Kind::Onbuild("RUN echo $X".into()));
        assert_eq!(kinds[8], &Kind::Healthcheck(Health::None));
    }

    #[test]
    fn expansion_where_docker_expands() {
        let s = staged(concat!(
            "FROM a\n",
            "ENV A=$B B=2 \"C D\"='$B'\n",
            "EXPOSE $PORTS 22\n",
            "COPY --chown=$U:$U --from=${S:-base} $B/*.txt ${DEST}/\n",
            "RUN echo $B\n",
            "ONBUILD WORKDIR $B\n",
        ))
        .unwrap();
        let env =
            crate::build::shell::env_from_list(&["B=1", "PORTS=80/tcp  443", "U=app", "DEST=/srv"]);
        let lex = Lex::new('\\');
        let kinds: Vec<Kind> = s.stages[0]
            .commands
            .iter()
            .map(|c| c.kind.expand(&lex, &env).unwrap())
            .collect();
        let Kind::Env(e) = &kinds[0] else { panic!() };
        let pairs: Vec<(&str, &str)> = e
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(pairs, [("A", "1"), ("B", "2"), ("C D", "$B")]);
        // Docker sorts the words as written, then expands them.
        assert_eq!(
            kinds[1],
            Kind::Expose(vec!["80/tcp".into(), "443".into(), "22".into()])
        );
        let Kind::Copy(c) = &kinds[2] else { panic!() };
        assert_eq!(
            (c.chown.as_deref(), c.from.as_deref()),
            (Some("app:app"), Some("base"))
        );
        assert_eq!(
            (c.sources[0].as_str(), c.dest.as_str()),
            ("1/*.txt", "/srv/")
        );
        assert_eq!(kinds[3], s.stages[0].commands[3].kind);
        assert_eq!(kinds[4], Kind::Onbuild("WORKDIR $B".into()));
    }

    #[test]
    fn target_needs_only_its_stages() {
        let s = staged(concat!(
            "ARG BASE=deps\n",
            "FROM busybox AS deps\n",
            "FROM busybox AS unused\n",
            "FROM $BASE AS build\n",
            "FROM busybox AS tools\n",
            "FROM scratch AS final\n",
            "COPY --from=build /a /\n",
            "COPY --from=3 /b /\n",
            "COPY --from=final /c /\n",
            "COPY --from=alpine /d /\n",
        ))
        .unwrap();
        let lex = Lex::new('\\');
        let meta = crate::build::shell::env_from_list(&["BASE=deps"]);
        assert_eq!(s.needed(4, &meta, &lex).unwrap(), [0, 2, 3, 4]);
        assert_eq!(s.needed(1, &meta, &lex).unwrap(), [1]);
    }

    #[test]
    fn commit_comments_as_the_classic_builder() {
        let s = staged("FROM a\nARG A B=1\nSHELL [\"/bin/bash\", \"-c\"]\nVOLUME /a /b\nRUN x\n")
            .unwrap();
        let c: Vec<Option<String>> = s.stages[0]
            .commands
            .iter()
            .map(|c| c.kind.commit_comment())
            .collect();
        assert_eq!(c[0].as_deref(), Some("ARG A B=1"));
        assert_eq!(c[1].as_deref(), Some("SHELL [/bin/bash -c]"));
        assert_eq!(c[2].as_deref(), Some("VOLUME [/a /b]"));
        assert_eq!(c[3], None);
        let shell = ["/bin/bash".to_string(), "-c".to_string()];
        assert_eq!(
            nop_created_by(&shell, "USER x"),
            "/bin/bash -c #(nop)  USER x"
        );
    }

    #[test]
    fn durations_as_go() {
        assert_eq!(go_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(go_duration("300ms"), Some(300_000_000));
        assert_eq!(go_duration("0"), Some(0));
        assert_eq!(go_duration("5"), None);
        assert_eq!(go_duration("1x"), None);
    }
}

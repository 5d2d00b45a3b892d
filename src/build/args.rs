//! Build arguments and their scoping, as Docker's classic builder keeps them (pure, no I/O).
//!
//! - `--build-arg K=V` values override `ARG` defaults; an arg is only visible where an
//!   `ARG` declared it.
//! - `ARG`s before the first `FROM` are *meta args*: visible in `FROM` lines only. Inside a
//!   stage, `ARG NAME` without a default brings a meta arg's value in.
//! - Each stage starts with no declared args (a stage does not see the ARGs of another).
//! - `ENV` wins over an `ARG` of the same name, both in `$VAR` expansion and in `RUN`.
//! - The proxy args (`HTTP_PROXY`, `https_proxy`, …) are usable without an `ARG`, and are
//!   left out of a `RUN`'s history and cache key unless an `ARG` declared them.
//! - A `--build-arg` that no `ARG` declared is reported as not consumed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;

use crate::build::instructions::ArgDecl;
use crate::build::shell::Lex;

/// The args Docker allows without an `ARG` instruction.
pub const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

// ANCHOR: build_args
/// The build args of one build or, after [`BuildArgs::for_stage`], of one stage.
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    /// `--build-arg` values (`None`: named without a value and absent from the environment).
    options: BTreeMap<String, Option<String>>,
    /// Args declared by `ARG` in the current stage, with their (expanded) defaults.
    allowed: BTreeMap<String, Option<String>>,
    /// Meta args (declared before the first `FROM`), with their expanded defaults.
    meta: BTreeMap<String, Option<String>>,
    /// Every name an `ARG` declared, for the not-consumed warning.
    referenced: BTreeSet<String>,
}
// ANCHOR_END: build_args

impl BuildArgs {
    /// Build args from `--build-arg` options.
    pub fn new<I: IntoIterator<Item = (String, Option<String>)>>(options: I) -> Self {
        BuildArgs {
            options: options.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Declares the meta args, in order: each default is expanded with the args before it.
    /// Errors: a default that does not expand (`${X`).
    pub fn add_meta_args(&mut self, decls: &[ArgDecl], lex: &Lex) -> Result<()> {
        for d in decls {
            let env = self.allowed();
            let key = lex.process_word(&d.key, &env)?;
            let default = d
                .default
                .as_ref()
                .map(|v| lex.process_word(v, &env))
                .transpose()?;
            self.allowed.insert(key.clone(), default.clone());
            self.meta.insert(key.clone(), default);
            self.referenced.insert(key);
        }
        Ok(())
    }

    /// The args a new stage starts with: the meta args stay in reach, no arg is declared.
    pub fn for_stage(&self) -> BuildArgs {
        BuildArgs {
            allowed: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// `ARG key[=default]` in a stage; `default` already expanded by the caller.
    pub fn declare(&mut self, key: &str, default: Option<String>) {
        self.allowed.insert(key.to_string(), default);
        self.referenced.insert(key.to_string());
    }

    /// Records the names a finished stage declared, for [`BuildArgs::not_consumed`].
    pub fn merge_referenced(&mut self, stage: &BuildArgs) {
        self.referenced.extend(stage.referenced.iter().cloned());
    }

    /// Declared args (and given proxy args) with a value: option, else default, else the
    /// meta arg's value.
    pub fn allowed(&self) -> HashMap<String, String> {
        self.values(&self.allowed)
    }

    /// The values `FROM` lines expand with: the meta args (and given proxy args).
    pub fn meta(&self) -> HashMap<String, String> {
        self.values(&self.meta)
    }

    fn values(&self, source: &BTreeMap<String, Option<String>>) -> HashMap<String, String> {
        let keys = source.keys().map(String::as_str).chain(PREDEFINED_ARGS);
        keys.filter_map(|k| Some((k.to_string(), self.value(k, source)?)))
            .collect()
    }

    fn value(&self, key: &str, source: &BTreeMap<String, Option<String>>) -> Option<String> {
        if let Some(Some(v)) = self.options.get(key) {
            return Some(v.clone());
        }
        match source.get(key) {
            Some(Some(default)) => Some(default.clone()),
            Some(None) => self.meta.get(key).cloned().flatten(),
            None => None,
        }
    }

    /// `KEY=value` of the args a `RUN` gets in its environment: the allowed ones that no
    /// `ENV` (in `env`, `KEY=value` strings) overrides; sorted.
    pub fn run_env(&self, env: &[String]) -> Vec<String> {
        let set: BTreeSet<&str> = env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
            .collect();
        let mut out: Vec<String> = self
            .allowed()
            .into_iter()
            .filter(|(k, _)| !set.contains(k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.sort();
        out
    }

    // ANCHOR: run_prefix
    /// What Docker puts before a `RUN`'s command in its history and cache key when build
    /// args are in its environment: `["|2", "A=1", "B=2"]` (proxy args only when declared),
    /// or nothing.
    pub fn run_prefix(&self, env: &[String]) -> Vec<String> {
        let all = self.run_env(env);
        if all.is_empty() {
            return Vec::new();
        }
        let args: Vec<String> = all
            .into_iter()
            .filter(|kv| {
                let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                self.allowed.contains_key(k) || !PREDEFINED_ARGS.contains(&k)
            })
            .collect();
        std::iter::once(format!("|{}", args.len()))
            .chain(args)
            .collect()
    }
    // ANCHOR_END: run_prefix

    /// The values `$VAR` expands to in a step: the image's `ENV` (`KEY=value` strings) over
    /// the allowed args.
    pub fn expansion_env(&self, env: &[String]) -> HashMap<String, String> {
        let mut out = self.allowed();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            out.insert(k.to_string(), v.to_string());
        }
        out
    }

    /// `--build-arg` names no `ARG` declared (proxy args excepted), sorted; Docker warns
    /// `[Warning] One or more build-args [A B] were not consumed`.
    pub fn not_consumed(&self) -> Vec<String> {
        self.options
            .keys()
            .filter(|k| !self.referenced.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(k: &str, v: Option<&str>) -> ArgDecl {
        ArgDecl {
            key: k.into(),
            default: v.map(String::from),
        }
    }

    fn opts(list: &[(&str, Option<&str>)]) -> BuildArgs {
        BuildArgs::new(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.map(String::from))),
        )
    }

    #[test]
    fn meta_args_reach_from_lines_only_until_redeclared() {
        let mut b = opts(&[("TAG", Some("1.36"))]);
        let lex = Lex::new('\\');
        b.add_meta_args(
            &[
                decl("IMG", Some("busybox")),
                decl("TAG", Some("latest")),
                decl("REF", Some("$IMG:$TAG")),
            ],
            &lex,
        )
        .unwrap();
        assert_eq!(b.meta()["REF"], "busybox:1.36");
        assert_eq!(b.meta()["TAG"], "1.36");
        let mut stage = b.for_stage();
        assert!(stage.allowed().is_empty());
        stage.declare("IMG", None);
        assert_eq!(stage.allowed()["IMG"], "busybox");
        assert!(!stage.allowed().contains_key("REF"));
    }

    #[test]
    fn options_override_defaults_and_env_overrides_args() {
        let mut s = opts(&[
            ("A", Some("from-cli")),
            ("UNUSED", Some("x")),
            ("http_proxy", Some("http://p")),
        ]);
        s.declare("A", Some("default".into()));
        s.declare("B", Some("b".into()));
        s.declare("C", None);
        assert_eq!(s.allowed()["A"], "from-cli");
        assert!(!s.allowed().contains_key("C"));
        let env = vec!["B=from-env".to_string(), "PATH=/bin".to_string()];
        assert_eq!(s.run_env(&env), ["A=from-cli", "http_proxy=http://p"]);
        assert_eq!(s.run_prefix(&env), ["|1", "A=from-cli"]);
        assert_eq!(s.expansion_env(&env)["B"], "from-env");
        assert_eq!(s.not_consumed(), ["UNUSED"]);
    }

    #[test]
    fn stages_do_not_share_args() {
        let root = opts(&[("V", Some("1"))]);
        let mut first = root.for_stage();
        first.declare("V", None);
        let second = root.for_stage();
        assert_eq!(first.allowed()["V"], "1");
        assert!(second.allowed().is_empty());
        let mut root = root;
        assert_eq!(root.not_consumed(), ["V"]);
        root.merge_referenced(&first);
        assert!(root.not_consumed().is_empty());
        assert!(second.run_prefix(&[]).is_empty());
    }
}

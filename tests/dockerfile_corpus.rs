//! The Dockerfile parser and the variable substitution judged by buildkit's own corpus
//! (`../shared/dockerfile-corpus`, see its README): every `testfiles/*/Dockerfile` dumps to
//! its `result` byte for byte, every `testfiles-negative` case fails, the line-number case
//! spans the lines buildkit asserts, and the `shell/envVarTest` and `shell/wordsTest`
//! tables pass. Every case is checked and every failure reported before the test fails.
//!
//! The same Dockerfiles (and a few more) are also built by a private Debian dockerd with the
//! classic builder (`DOCKER_BUILDKIT=0`): it must announce as many steps as minidock counts,
//! or fail with minidock's message (and line, where Docker gives one). A `FROM scratch` build
//! of metadata steps checks `$VAR` expansion and build-arg scoping against the image config
//! Docker writes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use minidock::build::shell::{Lex, env_from_list};
use minidock::build::{instructions, parser};

fn read(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

/// The case directories under `dir`, sorted.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", dir.display());
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Panics with every failure when there is any; prints the counts.
fn report(what: &str, total: usize, failures: &[String]) {
    eprintln!("{what}: {} of {total} passed", total - failures.len());
    assert!(
        failures.is_empty(),
        "{what}: {} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn testfiles_dump_to_their_result() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    let all = cases(&corpus.join("testfiles"));
    let mut failures = Vec::new();
    for case in &all {
        let expected = read(&case.join("result"));
        match parser::parse(&read(&case.join("Dockerfile"))) {
            Ok(df) if df.dump() + "\n" == expected => {}
            Ok(df) => failures.push(format!(
                "{}: dump differs\n--- expected\n{expected}--- got\n{}\n",
                name(case),
                df.dump()
            )),
            Err(e) => failures.push(format!("{}: {e}", name(case))),
        }
    }
    report("testfiles", all.len(), &failures);
}

#[test]
fn negative_testfiles_fail() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    let all = cases(&corpus.join("testfiles-negative"));
    let mut failures = Vec::new();
    for case in &all {
        match parser::parse(&read(&case.join("Dockerfile"))) {
            Err(e) => eprintln!("{}: {}", name(case), e.report("Dockerfile")),
            Ok(df) => failures.push(format!("{}: parsed as {:?}", name(case), df.dump())),
        }
    }
    report("testfiles-negative", all.len(), &failures);
}

#[test]
fn line_numbers_span_continuations_and_comments() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    let df = parser::parse(&read(&corpus.join("testfile-line/Dockerfile"))).unwrap();
    let spans: Vec<(usize, usize)> = df
        .instructions
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(df.lines(), (5, 31));
    assert_eq!(spans, [(5, 5), (11, 12), (17, 31)]);
}

#[test]
fn env_var_table() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    let env = env_from_list(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lex = Lex::new('\\');
    let (mut total, mut failures) = (0, Vec::new());
    for (i, line) in read(&corpus.join("shell/envVarTest")).lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else {
            panic!("envVarTest line {}: not 3 fields: {line:?}", i + 1)
        };
        assert!(
            ["A", "U", "W"].contains(&platform),
            "line {}: platform {platform:?}",
            i + 1
        );
        if platform == "W" {
            continue;
        }
        total += 1;
        let got = lex.process_word(input, &env);
        let ok = match &got {
            Ok(w) => expected != "error" && w == expected,
            Err(_) => expected == "error",
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                i + 1
            ));
        }
    }
    report("envVarTest", total, &failures);
}

#[test]
fn words_table() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    let lex = Lex::new('\\');
    let mut env: Vec<String> = Vec::new();
    let (mut total, mut failures) = (0, Vec::new());
    for (i, line) in read(&corpus.join("shell/wordsTest")).lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            env.push(kv.trim_start_matches(' ').to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [input, expected] = fields[..] else {
            panic!("wordsTest line {}: not 2 fields: {line:?}", i + 1)
        };
        let (input, expected) = (input.trim(), expected.trim_start_matches(' '));
        let expected: Vec<&str> = expected.split(',').collect();
        total += 1;
        let got = lex
            .process_words(input, &env_from_list(&env))
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                i + 1
            ));
        }
    }
    report("wordsTest", total, &failures);
}

/// Dockerfiles beyond the corpus whose fate (steps, or the error and its line) is compared
/// with Docker's classic builder: the second pass's checks. (What minidock takes from
/// BuildKit instead, `--link`, `--chmod` and heredocs, which the classic builder refuses, is
/// checked by the unit tests.)
const MORE: &[(&str, &str)] = &[
    ("unknown-instruction", "FROM a\n\nBADCMD x\n"),
    ("from-two-args", "FROM a b\n"),
    ("bad-stage-name", "FROM a AS 1x\n"),
    ("copy-one-arg", "FROM a\nCOPY x\n"),
    ("unknown-flag", "FROM a\nCOPY --nope=1 x y\n"),
    ("duplicate-flag", "FROM a\nCOPY --chown=1 --chown=2 x y\n"),
    ("flag-without-value", "FROM a\nCOPY --chown x y\n"),
    ("arg-without-name", "FROM a\nARG\n"),
    ("onbuild-from", "FROM a\nONBUILD FROM b\n"),
    ("onbuild-onbuild", "FROM a\nONBUILD ONBUILD RUN x\n"),
    ("shell-not-json", "FROM a\nSHELL /bin/sh -c\n"),
    ("workdir-two", "FROM a\nWORKDIR /a /b\n"),
    ("env-no-equals", "FROM a\nENV a=1 b\n"),
    ("healthcheck-type", "FROM a\nHEALTHCHECK FOO x\n"),
    (
        "meta-args-and-stages",
        "ARG A=1\nARG B\nFROM a AS one\nRUN x\nFROM one\nCOPY --from=one /a /b\n",
    ),
    (
        "directives",
        "# syntax=x/y\n# escape=`\nFROM a\nRUN x `\n  y\n",
    ),
];

/// What Docker's classic builder made of a Dockerfile: the number of steps it announced, or
/// its error.
#[derive(Debug, PartialEq)]
enum Fate {
    Steps(usize),
    Error(usize, String),
}

fn docker_fate(d: &common::dockerd::Dockerd, text: &str) -> Fate {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), text).unwrap();
    let out = d
        .docker_command()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--network", "none"])
        .arg(ctx.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (common::text(&out.stdout), common::text(&out.stderr));
    if let Some(rest) = stderr
        .split("Step 1/")
        .nth(1)
        .or_else(|| stdout.split("Step 1/").nth(1))
    {
        return Fate::Steps(rest.split(' ').next().unwrap().parse().unwrap());
    }
    let msg = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Error response from daemon: "))
        .unwrap_or_else(|| panic!("no step and no error from docker build:\n{stderr}"));
    let msg = msg
        .strip_prefix("failed to parse Dockerfile: ")
        .unwrap_or(msg);
    match msg
        .strip_prefix("dockerfile parse error line ")
        .and_then(|r| r.split_once(": "))
    {
        Some((line, m)) => Fate::Error(line.parse().unwrap(), m.to_string()),
        None => Fate::Error(0, msg.to_string()),
    }
}

/// The same for minidock: the steps, or the error's line (0 when Docker prints none: for
/// errors of the first pass, and for an instruction before any `FROM`) and message.
fn minidock_fate(text: &str) -> Fate {
    let df = match parser::parse(text) {
        Ok(df) => df,
        Err(e) if e.line == 0 => return Fate::Error(0, e.report("Dockerfile")),
        Err(e) => return Fate::Error(0, e.message),
    };
    match instructions::stages(&df) {
        Ok(s) => Fate::Steps(s.steps()),
        Err(e) if e.message == "no build stage in current context" => Fate::Error(0, e.message),
        Err(e) => Fate::Error(e.line, e.message),
    }
}

#[test]
fn docker_classic_builder_reads_every_case_the_same() {
    let Some(corpus) = common::dockerfile_corpus() else {
        return;
    };
    if !common::dockerd::require_docker() {
        return;
    }
    let mut inputs: Vec<(String, String)> = ["testfiles", "testfiles-negative"]
        .iter()
        .flat_map(|dir| cases(&corpus.join(dir)))
        .map(|c| (name(&c), read(&c.join("Dockerfile"))))
        .collect();
    inputs.extend(MORE.iter().map(|(n, t)| (n.to_string(), t.to_string())));
    let d = common::dockerd::Dockerd::start();
    let mut failures = Vec::new();
    for (case, text) in &inputs {
        let (docker, ours) = (docker_fate(&d, text), minidock_fate(text));
        eprintln!("{case}: docker {docker:?}, minidock {ours:?}");
        if docker != ours {
            failures.push(format!("{case}: docker {docker:?}, minidock {ours:?}"));
        }
    }
    report("against docker's classic builder", inputs.len(), &failures);
}

/// A Dockerfile of metadata steps only (no container runs), built `FROM scratch`.
const EXPANSIONS: &str = r#"ARG META=meta-default
FROM scratch
ARG A=1
ARG B=${A}-two
ARG META
ARG PORTS="80 443/tcp"
ENV E1=$A E2="${B:+set}" E3='$A' E4=${UNSET:-dflt} E5=\$A E6="$META"
ENV A=env-wins
LABEL l1=$A l2="${META}" "l 3"=${CLI}
ARG CLI
LABEL l4=$CLI l5="a b"\ c
EXPOSE $PORTS 22/udp
STOPSIGNAL ${SIG:-SIGTERM}
USER ${A}:x
VOLUME ["/v/$A", "/w"]
"#;

/// The config fields minidock's reading gives for `EXPANSIONS`: the steps applied to a
/// `scratch` config (whose `PATH` Docker sets), with `--build-arg CLI=from-cli`.
fn expected_config(build_args: &[(&str, &str)]) -> (serde_json::Value, Vec<String>) {
    use minidock::build::args::BuildArgs;
    use minidock::build::instructions::Kind;
    use minidock::build::shell::Lex;
    let s = instructions::stages(&parser::parse(EXPANSIONS).unwrap()).unwrap();
    let lex = Lex::new('\\');
    let mut root = BuildArgs::new(
        build_args
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string()))),
    );
    root.add_meta_args(&s.meta_decls(), &lex).unwrap();
    let mut args = root.for_stage();
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    let mut config = serde_json::json!({"Labels": {}, "ExposedPorts": {}, "Volumes": {}});
    let mut history = Vec::new();
    let shell = ["/bin/sh".to_string(), "-c".to_string()];
    for step in &s.stages[0].commands {
        let kind = step.kind.expand(&lex, &args.expansion_env(&env)).unwrap();
        history.push(instructions::nop_created_by(
            &shell,
            &kind.commit_comment().unwrap(),
        ));
        match kind {
            Kind::Arg(decls) => decls
                .into_iter()
                .for_each(|d| args.declare(&d.key, d.default)),
            Kind::Env(kvs) => {
                for kv in kvs {
                    env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(kv.key.as_str()));
                    env.push(format!("{}={}", kv.key, kv.value));
                }
            }
            Kind::Label(kvs) => kvs
                .into_iter()
                .for_each(|kv| config["Labels"][kv.key] = kv.value.into()),
            Kind::Expose(ports) => {
                for p in ports {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    config["ExposedPorts"][p] = serde_json::json!({});
                }
            }
            Kind::StopSignal(sig) => config["StopSignal"] = sig.into(),
            Kind::User(u) => config["User"] = u.into(),
            Kind::Volume(v) => v
                .into_iter()
                .for_each(|v| config["Volumes"][v] = serde_json::json!({})),
            other => panic!("not a metadata step: {other:?}"),
        }
    }
    config["Env"] = env.into();
    config["History"] = history.into();
    root.merge_referenced(&args);
    (config, root.not_consumed())
}

#[test]
fn docker_classic_builder_expands_words_the_same() {
    if !common::dockerd::require_docker() {
        return;
    }
    let build_args = [("CLI", "from-cli"), ("UNUSED", "x")];
    let (want, not_consumed) = expected_config(&build_args);
    let d = common::dockerd::Dockerd::start();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), EXPANSIONS).unwrap();
    let mut cmd = d.docker_command();
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "expansions", "--network", "none"]);
    for (k, v) in build_args {
        cmd.args(["--build-arg", &format!("{k}={v}")]);
    }
    let out = cmd.arg(ctx.path()).output().unwrap();
    let stdout = common::text(&out.stdout);
    assert!(
        out.status.success(),
        "docker build: {stdout}\n{}",
        common::text(&out.stderr)
    );
    let warning = format!(
        "[Warning] One or more build-args [{}] were not consumed",
        not_consumed.join(" ")
    );
    assert!(
        stdout.contains(&warning),
        "expected {warning:?} in:\n{stdout}"
    );
    let got: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", "-f", "{{json .Config}}", "expansions"]))
            .unwrap();
    eprintln!("docker's config: {got}");
    let mut failures = Vec::new();
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "expansions",
    ]);
    let history: Vec<&str> = history.lines().rev().collect();
    let want_history: Vec<&str> = want["History"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    if history != want_history {
        failures.push(format!(
            "history: docker {history:#?}, minidock {want_history:#?}"
        ));
    }
    for field in [
        "Env",
        "Labels",
        "ExposedPorts",
        "StopSignal",
        "User",
        "Volumes",
    ] {
        if got[field] != want[field] {
            failures.push(format!(
                "{field}: docker {}, minidock {}",
                got[field], want[field]
            ));
        }
    }
    report(
        "config fields and history against docker's classic builder",
        7,
        &failures,
    );
}

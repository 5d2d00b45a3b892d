//! The workshop: a learner rebuilds each mechanism from a starter, and a checker verifies what
//! the kernel actually did.
//!
//! `lessons/lessons.toml` is the manifest. Each lesson is one binary in the `lessons/` crate
//! (its own workspace, so a half-finished starter never breaks the main build). The learner
//! edits `starter.rs`; `solution.rs` sits beside it. `workshop check N` builds the learner's
//! binary, runs it in a throwaway environment, and compares what the kernel shows (hostname,
//! PID 1, mounts, cgroup files, links, upper-dir contents) with what the lesson asks for. A
//! lesson about system calls runs its program under strace(1), and those calls count only when
//! the learner's own binary made them, not a command it ran (`checks/trace.rs`).
//! Each lesson also lists known-wrong answers (`lessons/NN/wrong/*.rs`): the shortcuts a learner
//! would try, which `workshop verify` proves the check fails, each with the misunderstanding
//! behind it named in the failure output.
//!
//! Hints come in steps (`workshop hint N [STEP]`): the idea, then the call, then its flags and
//! arguments, then the order of the steps; a failed check prints only the first
//! ([`HINT_STEPS`], `lessons/README.md`).

mod checks;
mod observe;

pub use checks::mkdir_i386;
pub use observe::{enter_throwaway_environment, namespace_hostname, namespace_mountinfo};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One entry of `lessons/lessons.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    pub id: u32,
    pub title: String,
    /// The binary name in `lessons/Cargo.toml`; the solution is `<bin>-solution`.
    pub bin: String,
    /// Paths relative to `lessons/`.
    pub starter: String,
    pub solution: String,
    /// The book chapter that teaches it, e.g. "2 Namespaces".
    pub chapter: String,
    /// The hints in steps, gentlest first: [`HINT_STEPS`] names what each step gives. At least
    /// three.
    pub hints: Vec<String>,
    /// The shortcuts a learner would try; each must fail the check.
    pub wrong: Vec<WrongAnswer>,
    /// The check runs for a learner without root (`workshop check N` as an ordinary user);
    /// every other lesson's check needs root, and says so in one line.
    #[serde(default)]
    pub rootless: bool,
}

/// A known-wrong answer of a lesson: a program that looks like it does the job and does not.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrongAnswer {
    /// The binary name in `lessons/Cargo.toml`.
    pub bin: String,
    /// Its source, relative to `lessons/`.
    pub file: String,
    /// The shortcut it takes, in a few words.
    pub shortcut: String,
    /// Words the check's failure output holds for this answer: the misunderstanding it names
    /// (an [`Observation::likely`] text, or part of one). `workshop verify` requires them.
    #[serde(default)]
    pub misunderstanding: String,
}

/// What each step of a lesson's hints gives, by position: step 1 the idea (no call named),
/// step 2 the system call (or request) that does it, step 3 its flags and arguments, step 4
/// and later the order the steps go in or a detail that trips learners up.
pub const HINT_STEPS: [&str; 4] = [
    "the idea",
    "the call",
    "the flags and arguments",
    "the order",
];

/// Hint `step` (1-based) of `lesson`, headed by what it gives, and how to get the next one.
/// Errors: a step beyond the lesson's hints, or 0.
pub fn hint(lesson: &Lesson, step: usize) -> Result<String> {
    let total = lesson.hints.len();
    let Some(text) = step.checked_sub(1).and_then(|i| lesson.hints.get(i)) else {
        bail!("lesson {} has hints 1 to {total}, not {step}", lesson.id);
    };
    let about = HINT_STEPS.get(step - 1).unwrap_or(&"more");
    let next = if step < total {
        format!("next step: workshop hint {} {}", lesson.id, step + 1)
    } else {
        format!(
            "that was the last step; the reference: workshop solution {}",
            lesson.id
        )
    };
    Ok(format!(
        "hint {step} of {total} ({about}): {text}\n({next})"
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    lesson: Vec<Lesson>,
}

/// Which file of a lesson to check: the learner's (the starter they edit) or the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Learner,
    Solution,
    /// The known-wrong answer at this index of [`Lesson::wrong`].
    Wrong(usize),
}

/// One thing the checker looked at: what the lesson expects and what the kernel showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub what: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
    /// The likely misunderstanding behind a failure, printed under expected and actual when
    /// the observation fails.
    pub likely: Option<String>,
}

impl Observation {
    /// An observation that passes when `actual == expected`.
    pub fn equal(what: &str, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        let (expected, actual) = (expected.into(), actual.into());
        Observation {
            ok: expected == actual,
            what: what.into(),
            expected,
            actual,
            likely: None,
        }
    }

    /// An observation whose pass/fail the check decided itself.
    pub fn judged(
        what: &str,
        expected: impl Into<String>,
        actual: impl Into<String>,
        ok: bool,
    ) -> Self {
        Observation {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
            ok,
            likely: None,
        }
    }

    /// The same observation, naming the misunderstanding that most likely makes it fail.
    pub fn likely(mut self, misunderstanding: impl Into<String>) -> Self {
        self.likely = Some(misunderstanding.into());
        self
    }
}

/// The result of checking one lesson.
#[derive(Debug)]
pub struct Report {
    pub lesson: Lesson,
    pub observations: Vec<Observation>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.observations.is_empty() && self.observations.iter().all(|o| o.ok)
    }

    /// Expected next to what happened, one line each, with the likely misunderstanding under
    /// each failed observation, and on failure the first hint step only.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "lesson {:02}: {}", self.lesson.id, self.lesson.title);
        for o in &self.observations {
            let mark = if o.ok { "✔" } else { "✘" };
            let _ = writeln!(
                out,
                "  {mark} {}\n      expected: {}\n      actual:   {}",
                o.what, o.expected, o.actual
            );
            if let Some(likely) = o.likely.as_ref().filter(|_| !o.ok) {
                let _ = writeln!(out, "      likely:   {likely}");
            }
        }
        if self.passed() {
            let _ = writeln!(out, "PASS");
        } else {
            if let Ok(first) = hint(&self.lesson, 1) {
                let _ = writeln!(out, "{first}");
            }
            let _ = writeln!(
                out,
                "FAIL (book: {}; lessons/{})",
                self.lesson.chapter,
                Path::new(&self.lesson.starter)
                    .parent()
                    .map_or_else(String::new, |d| format!("{}/README.md", d.display()))
            );
        }
        out
    }
}

/// The `lessons/` directory: `$MINIDOCK_LESSONS`, else next to this crate's sources.
pub fn lessons_dir() -> PathBuf {
    std::env::var_os("MINIDOCK_LESSONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons"))
}

pub fn load_manifest(dir: &Path) -> Result<Vec<Lesson>> {
    let path = dir.join("lessons.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(manifest.lesson)
}

pub fn find_lesson(dir: &Path, id: u32) -> Result<Lesson> {
    let lessons = load_manifest(dir)?;
    let known: Vec<String> = lessons.iter().map(|l| l.id.to_string()).collect();
    lessons
        .into_iter()
        .find(|l| l.id == id)
        .with_context(|| format!("no lesson {id} (lessons: {})", known.join(", ")))
}

/// The index in [`Lesson::wrong`] of the known-wrong answer whose file is `wrong/NAME.rs`.
pub fn wrong_answer_index(lesson: &Lesson, name: &str) -> Result<usize> {
    let stem = |w: &WrongAnswer| {
        Path::new(&w.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
    };
    lesson
        .wrong
        .iter()
        .position(|w| stem(w).as_deref() == Some(name))
        .with_context(|| {
            let known: Vec<String> = lesson.wrong.iter().filter_map(stem).collect();
            format!(
                "lesson {} has no wrong answer {name:?} (known: {})",
                lesson.id,
                known.join(", ")
            )
        })
}

/// Builds the lesson binary with cargo and returns its path.
pub fn build(dir: &Path, lesson: &Lesson, variant: Variant) -> Result<PathBuf> {
    let bin = match variant {
        Variant::Learner => lesson.bin.clone(),
        Variant::Solution => format!("{}-solution", lesson.bin),
        Variant::Wrong(i) => lesson
            .wrong
            .get(i)
            .with_context(|| format!("lesson {} has no wrong answer {i}", lesson.id))?
            .bin
            .clone(),
    };
    let target = dir.join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--bin", &bin, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("running cargo to build the lesson")?;
    if !status.success() {
        bail!("building {bin} failed: fix the compile errors above");
    }
    Ok(target.join("debug").join(bin))
}

/// Builds and checks one lesson.
pub fn check(dir: &Path, lesson: &Lesson, variant: Variant) -> Result<Report> {
    let root = nix::unistd::geteuid().is_root();
    if !root && !lesson.rootless {
        bail!("{}", needs_root(dir, lesson));
    }
    let bin = build(dir, lesson, variant)?;
    // Without root the checker makes no namespace of its own: the lesson's program is the
    // only thing that makes one, and it makes it as the learner.
    if root {
        enter_throwaway_environment()?;
    }
    let observations =
        checks::run(lesson.id, &bin).with_context(|| format!("checking lesson {}", lesson.id))?;
    Ok(Report {
        lesson: lesson.clone(),
        observations,
    })
}

/// The one line `workshop check N` says to a learner without root when lesson N needs root,
/// naming the lessons that do not.
fn needs_root(dir: &Path, lesson: &Lesson) -> String {
    let rootless: Vec<String> = load_manifest(dir)
        .unwrap_or_default()
        .iter()
        .filter(|l| l.rootless)
        .map(|l| l.id.to_string())
        .collect();
    format!(
        "lesson {} needs root (its check makes namespaces, mounts or cgroups on the host): run \
         `sudo workshop check {}`; without root, lessons {} run",
        lesson.id,
        lesson.id,
        rootless.join(", ")
    )
}

/// Whether a known-wrong answer's failure output names its misunderstanding (true for the
/// starter and the solution, and for a wrong answer whose manifest entry names none).
fn names_misunderstanding(lesson: &Lesson, variant: Variant, report: &Report) -> bool {
    let Variant::Wrong(i) = variant else {
        return true;
    };
    lesson
        .wrong
        .get(i)
        .is_none_or(|w| report.render().contains(w.misunderstanding.as_str()))
}

/// The CI invariant, as rustlings has it: every starter fails its check, every known-wrong
/// answer fails it too and names its misunderstanding, and every solution passes. Returns one line per lesson, and an error
/// naming the lessons that break it.
pub fn verify(dir: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut broken = Vec::new();
    for lesson in load_manifest(dir)? {
        let mut runs = vec![("starter".to_owned(), Variant::Learner, false)];
        runs.extend(lesson.wrong.iter().enumerate().map(|(i, w)| {
            (
                format!("wrong answer ({})", w.shortcut),
                Variant::Wrong(i),
                false,
            )
        }));
        runs.push(("solution".to_owned(), Variant::Solution, true));
        let mut verdicts = Vec::new();
        let mut why = format!("lesson {:02}", lesson.id);
        for (name, variant, must_pass) in runs {
            let result = check(dir, &lesson, variant);
            // A starter or wrong answer that cannot even build or run is broken too: the
            // learner must see the checker's explanation, not a crash.
            let as_asked = matches!(&result, Ok(report) if report.passed() == must_pass);
            let named =
                matches!(&result, Ok(report) if names_misunderstanding(&lesson, variant, report));
            let good = as_asked && named;
            let word = match (must_pass, as_asked, named) {
                (true, true, _) => "passes (good)",
                (true, false, _) => "DOES NOT PASS",
                (false, true, true) => "fails (good)",
                (false, true, false) => "FAILS WITHOUT NAMING ITS MISUNDERSTANDING",
                (false, false, _) => "DOES NOT FAIL CLEANLY",
            };
            verdicts.push(format!("{name} {word}"));
            if !good {
                match &result {
                    Ok(report) => {
                        let _ = write!(why, "\n--- {name} ---\n{}", report.render());
                    }
                    Err(err) => {
                        let _ = write!(why, "\n--- {name} --- error: {err:#}");
                    }
                }
            }
        }
        lines.push(format!("lesson {:02}: {}", lesson.id, verdicts.join(" / ")));
        if why.contains("\n---") {
            broken.push(why);
        }
    }
    if !broken.is_empty() {
        bail!(
            "the workshop invariant is broken:\n{}\n{}",
            lines.join("\n"),
            broken.join("\n")
        );
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_parses_and_every_lesson_has_files_and_a_check() {
        let dir = lessons_dir();
        let lessons = load_manifest(&dir).unwrap();
        assert!(!lessons.is_empty());
        assert_eq!(lessons[0].id, 1, "the first lesson is lesson 1");
        for pair in lessons.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "lessons are listed by increasing number"
            );
        }
        for lesson in &lessons {
            assert!(dir.join(&lesson.starter).is_file(), "{}", lesson.starter);
            assert!(dir.join(&lesson.solution).is_file(), "{}", lesson.solution);
            assert!(
                lesson.hints.len() >= 3,
                "lesson {} needs hints in at least three steps (the idea, the call, the flags)",
                lesson.id
            );
            assert!(
                !lesson.wrong.is_empty(),
                "lesson {} has no known-wrong answer",
                lesson.id
            );
            for wrong in &lesson.wrong {
                assert!(dir.join(&wrong.file).is_file(), "{}", wrong.file);
                assert!(
                    !wrong.misunderstanding.trim().is_empty(),
                    "{}: name the misunderstanding its failure shows",
                    wrong.file
                );
            }
            assert!(
                checks::has_check(lesson.id),
                "lesson {} has no check",
                lesson.id
            );
        }
    }

    #[test]
    fn a_report_passes_only_when_every_observation_does() {
        let lesson = Lesson {
            id: 1,
            title: "t".into(),
            bin: "b".into(),
            starter: "s".into(),
            solution: "s".into(),
            chapter: "2 Namespaces".into(),
            hints: vec![
                "a namespace of its own".into(),
                "try unshare".into(),
                "CLONE_NEWUTS".into(),
            ],
            wrong: Vec::new(),
            rootless: false,
        };
        let mut report = Report {
            lesson,
            observations: vec![Observation::equal("hostname", "box", "box")],
        };
        assert!(report.passed());
        report.observations.push(
            Observation::equal("hostname again", "box", "box").likely("never shown: it passed"),
        );
        assert!(!report.render().contains("likely:"), "{}", report.render());
        report
            .observations
            .push(Observation::equal("pid", "1", "4242").likely("no fork after unshare"));
        assert!(!report.passed());
        let text = report.render();
        assert!(text.contains("expected: 1"));
        assert!(text.contains("actual:   4242\n      likely:   no fork after unshare\n"));
        assert!(!text.contains("never shown"), "{text}");
        // Only the first step of the hints, and the way to the next.
        assert!(
            text.contains("hint 1 of 3 (the idea): a namespace of its own"),
            "{text}"
        );
        assert!(text.contains("workshop hint 1 2"), "{text}");
        assert!(!text.contains("try unshare"), "{text}");
    }

    #[test]
    fn hints_come_one_step_at_a_time_and_say_what_comes_next() {
        let lesson = Lesson {
            id: 7,
            title: "t".into(),
            bin: "b".into(),
            starter: "07-x/starter.rs".into(),
            solution: "s".into(),
            chapter: "4 Union filesystems and layers".into(),
            hints: vec!["idea".into(), "call".into(), "flags".into(), "order".into()],
            wrong: Vec::new(),
            rootless: false,
        };
        let second = hint(&lesson, 2).unwrap();
        assert_eq!(
            second,
            "hint 2 of 4 (the call): call\n(next step: workshop hint 7 3)"
        );
        let last = hint(&lesson, 4).unwrap();
        assert!(
            last.starts_with("hint 4 of 4 (the order): order\n"),
            "{last}"
        );
        assert!(last.contains("workshop solution 7"), "{last}");
        for bad in [0, 5] {
            let err = hint(&lesson, bad).unwrap_err().to_string();
            assert!(err.contains("hints 1 to 4"), "{err}");
        }
    }
}

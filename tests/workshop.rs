//! The workshop's checks against the shortcuts a learner would try: a `chroot` in place of
//! `pivot_root` (lessons 3 and 10) and a missing MS_PRIVATE (lesson 3) must fail, the
//! solutions must pass. (`workshop verify`, run by scripts/test, covers every lesson.)

mod common;

use std::process::Output;

fn workshop(args: &[&str]) -> Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("workshop"))
        .args(args)
        .output()
        .unwrap()
}

/// The report's lines for the observation named `what`: its mark, expected and actual.
fn observation(report: &str, what: &str) -> String {
    let lines: Vec<&str> = report.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} in:\n{report}"));
    lines[at..(at + 3).min(lines.len())].join("\n")
}

const FROM_HOST: &str = "the command's mount namespace, seen from the host";

#[test]
fn a_chroot_answer_fails_lessons_3_and_10_where_the_solution_passes() {
    if !common::require_root() {
        return;
    }
    for lesson in ["3", "10"] {
        let wrong = workshop(&["check", lesson, "--wrong", "chroot"]);
        let report = common::text(&wrong.stdout);
        assert_eq!(wrong.status.code(), Some(1), "lesson {lesson}:\n{report}");
        let seen = observation(&report, FROM_HOST);
        assert!(seen.starts_with("  ✘"), "lesson {lesson}:\n{report}");
        assert!(
            seen.contains("the host's / is still mounted at [\"/\"]"),
            "{seen}"
        );
        // From inside, the chroot looks right: only the host-side check can tell.
        if lesson == "3" {
            let inside = observation(&report, "mount points inside");
            assert!(inside.starts_with("  ✔"), "{report}");
        }

        let solution = workshop(&["check", lesson, "--solution"]);
        let report = common::text(&solution.stdout);
        assert_eq!(
            solution.status.code(),
            Some(0),
            "lesson {lesson}:\n{report}"
        );
        assert!(
            observation(&report, FROM_HOST).starts_with("  ✔"),
            "{report}"
        );
    }
}

#[test]
fn lesson_3_without_ms_private_leaks_into_the_checkers_shared_root_and_fails() {
    if !common::require_root() {
        return;
    }
    let out = workshop(&["check", "3", "--wrong", "no-private"]);
    let report = common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let host = observation(&report, "the host's mount table is unchanged");
    assert!(host.starts_with("  ✘"), "{report}");
    assert!(host.contains("leaked to the host"), "{host}");
    // The checker's throwaway namespace took the leak: the real host's table has nothing.
    assert!(
        common::mounts_containing("minidock-workshop-rootfs").is_empty(),
        "{:?}",
        common::mounts_containing("minidock-workshop-rootfs")
    );
}

#[test]
fn an_unknown_wrong_answer_is_named_with_the_known_ones() {
    let out = workshop(&["check", "3", "--wrong", "nope"]);
    assert!(!out.status.success());
    let stderr = common::text(&out.stderr);
    assert!(
        stderr.contains("chroot") && stderr.contains("no-private"),
        "{stderr}"
    );
}

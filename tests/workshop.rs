//! The workshop's checks against the shortcuts a learner would try: a `chroot` in place of
//! `pivot_root` (lessons 3 and 10), a missing MS_PRIVATE (lesson 3), the expected output
//! printed (lessons 1, 2, 3, 10), unshare(1), nsenter(1), busybox or a copy of busybox making
//! the system calls for the program, mount(8) mounting the overlay or the volume, or setpriv(1)
//! dropping the capabilities (lessons 1, 2, 3, 6, 11, 13, 15, 16: the trace shows who made
//! them), a file written into the upper dir directly (lesson 6), a layer written
//! from a fixed list (lesson 7), a trusted manifest (lesson 12), a volume bind-mounted after
//! pivot_root or copied instead of mounted (lesson 13), a gid map before setgroups "deny" or
//! no gid map (lesson 15), only the effective capabilities dropped (lesson 16), a killing
//! seccomp filter or one without no_new_privs (lesson 17), a bundle without a UTS namespace or
//! a read-only root (lesson 18) and a daemon client that prints the API's names as they come
//! or lists only running containers (lesson 19) must fail, the solutions must pass. Every
//! known-wrong answer fails with its own misunderstanding named, and hints come one step at a
//! time.
//! Run by a user without root, the lessons marked rootless (12, 15) check their solutions and
//! starters, and the others say in one line that they need root.
//! (`workshop verify`, run by scripts/test, covers every lesson.)

mod common;

use std::process::Output;

fn workshop(args: &[&str]) -> Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("workshop"))
        .args(args)
        .output()
        .unwrap()
}

/// The report's lines for the observation named `what`: its mark, expected and actual, and
/// the likely misunderstanding when one is printed under them.
fn observation(report: &str, what: &str) -> String {
    let lines: Vec<&str> = report.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} in:\n{report}"));
    let likely = lines
        .get(at + 3)
        .is_some_and(|l| l.trim_start().starts_with("likely:"));
    let end = at + if likely { 4 } else { 3 };
    lines[at..end.min(lines.len())].join("\n")
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

/// Checks `lesson` with its known-wrong answer `name`: it must fail, and the observation
/// `what` must be the one that fails it, with `because` in it. Returns the report.
fn fails_on(lesson: &str, name: &str, what: &str, because: &str) -> String {
    let out = workshop(&["check", lesson, "--wrong", name]);
    let report = common::text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "lesson {lesson} {name}:\n{report}"
    );
    let seen = observation(&report, what);
    assert!(seen.starts_with("  ✘"), "lesson {lesson} {name}:\n{report}");
    assert!(seen.contains(because), "lesson {lesson} {name}:\n{seen}");
    report
}

#[test]
fn printed_output_fails_where_the_checker_looks_at_the_command_from_the_host() {
    if !common::require_root() {
        return;
    }
    let never = "never printed WORKSHOP_READY";
    // Every line the command would print is there: only the host side tells.
    let report = fails_on("1", "fake-output", "UTS namespace and its hostname", never);
    assert!(
        observation(&report, "hostname inside").starts_with("  ✔"),
        "{report}"
    );
    let report = fails_on("2", "fake-output", "its pid in its own namespace", never);
    assert!(
        observation(&report, "the shell's pid").starts_with("  ✔"),
        "{report}"
    );
    fails_on("3", "fake-output", FROM_HOST, never);
    let report = fails_on("10", "fake-output", FROM_HOST, never);
    assert!(
        observation(&report, "cpu time charged").starts_with("  ✔"),
        "{report}"
    );
    for (lesson, what) in [
        ("1", "UTS namespace and its hostname"),
        ("2", "its pid in its own namespace"),
    ] {
        let solution = workshop(&["check", lesson, "--solution"]);
        let report = common::text(&solution.stdout);
        assert_eq!(
            solution.status.code(),
            Some(0),
            "lesson {lesson}:\n{report}"
        );
        assert!(observation(&report, what).starts_with("  ✔"), "{report}");
    }
}

const MADE_BY: &str = "who made the lesson's system calls";
const COMMAND_DID_IT: &str = "a command did the work for your program";

/// A command that makes the lesson's system calls for the program (unshare(1), nsenter(1),
/// mount(8), setpriv(1), busybox, a copy of busybox under a temp name) fails on the trace, whatever its name: the
/// calls were made, with the right flags, by another program than the learner's. Nothing is
/// turned off: the same commands work on the host and inside the check.
#[test]
fn a_command_that_makes_the_calls_fails_whatever_its_name() {
    if !common::require_root() {
        return;
    }
    for (lesson, name, program) in [
        ("1", "unshare-command", "/usr/bin/unshare"),
        ("2", "unshare-command", "/usr/bin/unshare"),
        ("11", "nsenter-command", "/usr/bin/nsenter"),
        ("16", "setpriv-command", "/usr/bin/setpriv"),
        ("6", "mount-command", "/usr/bin/mount"),
        ("13", "mount-command", "/usr/bin/mount"),
        ("1", "busybox-unshare", "busybox (pid"),
        ("2", "busybox-unshare", "busybox (pid"),
        ("3", "busybox-unshare", "busybox (pid"),
        ("15", "busybox-unshare", "busybox (pid"),
        ("1", "busybox-copy", "-tool-"),
        ("2", "busybox-copy", "-tool-"),
        ("3", "busybox-copy", "-tool-"),
        ("15", "busybox-copy", "-tool-"),
        ("4", "shell-write", "/usr/bin/sh"),
        ("5", "shell-write", "/usr/bin/sh"),
    ] {
        let report = fails_on(lesson, name, MADE_BY, COMMAND_DID_IT);
        let seen = observation(&report, MADE_BY);
        assert!(
            seen.contains(program) && seen.contains("not by your program"),
            "lesson {lesson} {name}:\n{seen}"
        );
        // Every other observation passes: the kernel's results are right, only who made
        // the calls is wrong.
        let failed = report.lines().filter(|l| l.starts_with("  ✘")).count();
        assert_eq!(failed, 1, "lesson {lesson} {name}:\n{report}");
    }
    for lesson in [
        "1", "2", "3", "4", "5", "6", "8", "9", "10", "11", "13", "15", "16",
    ] {
        let out = workshop(&["check", lesson, "--solution"]);
        let report = common::text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "lesson {lesson}:\n{report}");
        let seen = observation(&report, MADE_BY);
        assert!(seen.starts_with("  ✔"), "lesson {lesson}:\n{seen}");
    }
    let host = std::process::Command::new("unshare")
        .arg("--help")
        .output()
        .unwrap();
    assert!(host.status.success(), "{host:?}");
}

#[test]
fn a_file_written_into_upper_directly_is_not_a_copy_up() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "6",
        "upper-write",
        "UPPER/hello.txt's owner and mode",
        "actual:   uid 0, gid 0",
    );
}

#[test]
fn a_program_that_trusts_the_manifest_fails_lesson_12() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "12",
        "trust-manifest",
        "a manifest whose bytes do not match",
        "exit 0, config.json written",
    );
}

#[test]
fn a_layer_written_from_a_fixed_list_misses_what_upper_already_held() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "7",
        "fixed-list",
        "in UPPER before your program ran, in the layer",
        "actual:   (absent)",
    );
}

#[test]
fn a_volume_copied_or_mounted_after_pivot_root_fails_lesson_13_where_the_solution_passes() {
    if !common::require_root() {
        return;
    }
    const MOUNTED: &str = "a mount of the volume in the new root";
    // The file reaches the host directory, but no mount was ever there.
    let report = fails_on("13", "copy", MOUNTED, "the host directory is not mounted");
    assert!(
        observation(&report, "the file the command wrote").contains("a copy in the rootfs"),
        "{report}"
    );
    // After the pivot the host path is gone: the mount fails and so does the program.
    fails_on(
        "13",
        "after-pivot",
        "the program runs /bin/sh with the volume",
        "exit status: 1",
    );
    let solution = workshop(&["check", "13", "--solution"]);
    let report = common::text(&solution.stdout);
    assert_eq!(solution.status.code(), Some(0), "{report}");
    assert!(observation(&report, MOUNTED).starts_with("  ✔"), "{report}");
    assert!(
        observation(&report, FROM_HOST).starts_with("  ✔"),
        "{report}"
    );
}

#[test]
fn a_run_step_that_tars_the_whole_rootfs_or_drops_whiteouts_fails_lesson_14() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "14",
        "whole-rootfs",
        "entries of the new layer beyond built.txt",
        "more, e.g.",
    );
    fails_on(
        "14",
        "no-whiteout",
        "the deletion of /etc/motd in the new layer",
        "no etc/.wh.motd",
    );
}

#[test]
fn every_known_wrong_answer_fails_naming_its_misunderstanding_and_only_the_first_hint() {
    if !common::require_root() {
        return;
    }
    let dir = minidock::workshop::lessons_dir();
    let lessons = minidock::workshop::load_manifest(&dir).unwrap();
    let mut checked = 0;
    let mut wrong_reasons = Vec::new();
    for lesson in &lessons {
        for wrong in &lesson.wrong {
            let name = std::path::Path::new(&wrong.file)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let id = lesson.id.to_string();
            let out = workshop(&["check", &id, "--wrong", &name]);
            let report = common::text(&out.stdout);
            let context = format!(
                "lesson {id} --wrong {name}:\n{report}{}",
                common::text(&out.stderr)
            );
            checked += 1;
            // The explanation sits on a failed observation's "likely:" line, and only the
            // first hint step is shown, with the way to the next.
            let named = !wrong.misunderstanding.is_empty()
                && report.lines().any(|l| {
                    l.trim_start().starts_with("likely:") && l.contains(&wrong.misunderstanding)
                });
            let first_hint = format!(
                "hint 1 of {} (the idea): {}",
                lesson.hints.len(),
                lesson.hints[0]
            );
            let hints_ok = report.contains(&first_hint)
                && report.contains(&format!("workshop hint {id} 2"))
                && !report.contains(&lesson.hints[1]);
            if out.status.code() != Some(1) || !named || !hints_ok {
                wrong_reasons.push(format!(
                    "expected exit 1, a likely: line with {:?} and only hint 1 in {context}",
                    wrong.misunderstanding
                ));
            }
        }
    }
    assert!(wrong_reasons.is_empty(), "{}", wrong_reasons.join("\n\n"));
    assert!(checked >= 50, "{checked} known-wrong answers checked");
}

#[test]
fn hints_come_in_steps_from_the_idea_to_the_order() {
    let dir = minidock::workshop::lessons_dir();
    let lessons = minidock::workshop::load_manifest(&dir).unwrap();
    let lesson = lessons.iter().find(|l| l.id == 3).unwrap();
    let first = workshop(&["hint", "3"]);
    assert!(first.status.success(), "{first:?}");
    let text = common::text(&first.stdout);
    assert_eq!(
        text,
        format!(
            "hint 1 of 4 (the idea): {}\n(next step: workshop hint 3 2)\n",
            lesson.hints[0]
        )
    );
    let second = common::text(&workshop(&["hint", "3", "2"]).stdout);
    assert!(
        second.starts_with(&format!("hint 2 of 4 (the call): {}", lesson.hints[1])),
        "{second}"
    );
    let last = common::text(&workshop(&["hint", "3", "4"]).stdout);
    assert!(last.contains("workshop solution 3"), "{last}");
    let all = common::text(&workshop(&["hint", "3", "--all"]).stdout);
    assert_eq!(all.matches("hint ").count(), 4 + 3, "{all}");
    let beyond = workshop(&["hint", "3", "5"]);
    assert!(!beyond.status.success());
    assert!(
        common::text(&beyond.stderr).contains("hints 1 to 4"),
        "{beyond:?}"
    );
}

/// Checks `lesson`'s solution: it must pass, and each observation in `passing` with it.
fn solution_passes(lesson: &str, passing: &[&str]) {
    let solution = workshop(&["check", lesson, "--solution"]);
    let report = common::text(&solution.stdout);
    assert_eq!(
        solution.status.code(),
        Some(0),
        "lesson {lesson}:\n{report}"
    );
    for what in passing {
        assert!(observation(&report, what).starts_with("  ✔"), "{report}");
    }
}

#[test]
fn a_gid_map_before_setgroups_deny_or_no_gid_map_fails_lesson_15() {
    if !common::require_root() {
        return;
    }
    // The kernel refuses the gid map (EPERM), and the report says why.
    fails_on(
        "15",
        "gid-map-first",
        "the program runs the command as an ordinary user",
        "write \"deny\" to /proc/self/setgroups first",
    );
    let report = fails_on("15", "uid-map-only", "/proc/PID/gid_map", "(empty)");
    assert!(
        observation(&report, "id -u and id -g inside").contains("actual:   0 65534"),
        "{report}"
    );
    solution_passes("15", &["/proc/PID/uid_map", "/proc/PID/setgroups"]);
}

#[test]
fn dropping_only_the_effective_set_fails_lesson_16_because_execve_refills_it() {
    if !common::require_root() {
        return;
    }
    // Effective was cut before execve, and yet the command holds CAP_SYS_ADMIN.
    let report = fails_on(
        "16",
        "effective-only",
        "/proc/PID/status CapEff",
        "CAP_SYS_ADMIN",
    );
    assert!(
        observation(&report, "/proc/PID/status CapBnd").starts_with("  ✘"),
        "{report}"
    );
    assert!(
        observation(&report, "sethostname").contains("still holds CAP_SYS_ADMIN"),
        "{report}"
    );
    solution_passes("16", &["/proc/PID/status CapBnd", "sethostname", "mknod"]);
}

#[test]
fn a_killing_filter_or_one_without_no_new_privs_fails_lesson_17() {
    if !common::require_root() {
        return;
    }
    fails_on("17", "kill", "mkdir in the command", "killed by SIGSYS");
    fails_on(
        "17",
        "no-new-privs",
        "the program runs the command as an ordinary user",
        "set no_new_privs first",
    );
    solution_passes(
        "17",
        &[
            "mkdir in the command",
            "/proc/PID/status Seccomp",
            "other system calls",
        ],
    );
}

#[test]
fn a_bundle_without_a_uts_namespace_or_a_readonly_root_fails_lesson_18() {
    if !common::require_root() {
        return;
    }
    let host = nix::unistd::gethostname().unwrap();
    // The runtime refuses it, as runc does, and nothing was renamed.
    let report = fails_on(
        "18",
        "no-uts",
        "minidock runtime run",
        "without a private UTS namespace",
    );
    assert!(
        observation(&report, "the host's hostname").starts_with("  ✔"),
        "{report}"
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), host);
    fails_on("18", "writable-root", "mountinfo options", "mounted rw");
    solution_passes(
        "18",
        &[
            "UTS namespace and hostname",
            "mountinfo options",
            "memory cgroup's limit",
        ],
    );
}

#[test]
fn names_with_their_slash_or_running_containers_only_fail_lesson_19() {
    if !common::require_root()
        || !common::prerequisite(
            common::dockerd::have("docker"),
            "the docker CLI is missing (apt-get install docker.io)",
        )
    {
        return;
    }
    // The real docker CLI, against the checker's own daemon, is the reference.
    let report = fails_on(
        "19",
        "leading-slash",
        "against docker ps -a",
        "keeps a leading '/' on every name",
    );
    assert!(report.contains(" /lesson19-web"), "{report}");
    fails_on(
        "19",
        "running-only",
        "how many containers the program printed",
        "all=1",
    );
    solution_passes(
        "19",
        &[
            "how many containers the program printed",
            "against docker ps -a",
        ],
    );
}

/// `workshop ARGS` as a user without root (`common::rootless`, made by the test). The lesson binaries are built beforehand by root: the user
/// cannot reach root's toolchain (rustup keeps it under /root), so `CARGO=true` stands in
/// for the build the checker starts with, and the checker runs what root built.
fn workshop_as(user: &common::rootless::RootlessUser, args: &[&str]) -> std::process::Output {
    let mut cmd = user.command(std::path::Path::new("env"));
    cmd.arg("CARGO=true")
        .arg(assert_cmd::cargo::cargo_bin("workshop"))
        .args(args);
    cmd.output().unwrap()
}

#[test]
fn the_rootless_lessons_check_as_the_user_and_the_others_say_they_need_root() {
    let Some(user) = common::rootless::RootlessUser::new() else {
        return;
    };
    let lessons = common::repo().join("lessons");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--manifest-path"]);
    build.arg(lessons.join("Cargo.toml"));
    for bin in ["lesson12", "lesson15"] {
        build.args(["--bin", bin, "--bin", &format!("{bin}-solution")]);
    }
    build.args(["--bin", "lesson15-wrong-busybox-copy"]);
    let status = build
        .env("CARGO_TARGET_DIR", lessons.join("target"))
        .status()
        .unwrap();
    assert!(status.success(), "building the lessons failed");

    for lesson in ["12", "15"] {
        let args = ["check", lesson, "--solution"];
        let report = common::ok_stdout(&args, &workshop_as(&user, &args));
        if lesson == "15" {
            // The learner's own ids, as the kernel shows them from outside, and the calls
            // traced as the learner (strace needs no privilege over its own child).
            assert!(report.contains(&format!("0 {} 1", user.uid)), "{report}");
            assert!(observation(&report, MADE_BY).starts_with("  ✔"), "{report}");
        }
        let starter = workshop_as(&user, &["check", lesson]);
        assert_eq!(
            starter.status.code(),
            Some(1),
            "{}",
            common::text(&starter.stdout)
        );
    }
    let copy = workshop_as(&user, &["check", "15", "--wrong", "busybox-copy"]);
    let report = common::text(&copy.stdout);
    assert_eq!(copy.status.code(), Some(1), "{report}");
    let seen = observation(&report, MADE_BY);
    assert!(
        seen.starts_with("  ✘") && seen.contains(COMMAND_DID_IT),
        "{report}"
    );
    let args = ["check", "1", "--solution"];
    let err = common::failed_stderr(&args, &workshop_as(&user, &args));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("lesson 1 needs root")
            && err.contains("sudo workshop check 1")
            && err.contains("lessons 12, 15 run"),
        "{err}"
    );
}

#[test]
fn a_seccomp_made_by_strace_or_blind_to_the_architecture_fails_lesson_17() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "17",
        "strace-inject",
        "who made the lesson's system calls",
        "a command did the work for your program",
    );
    fails_on(
        "17",
        "no-arch-check",
        "mkdir with i386 numbers",
        "another architecture's numbers",
    );
    let solution = workshop(&["check", "17", "--solution"]);
    assert!(
        solution.status.success(),
        "{}",
        common::text(&solution.stdout)
    );
}

#[test]
fn the_docker_cli_asking_for_the_program_fails_lesson_19() {
    if !common::require_root() {
        return;
    }
    fails_on(
        "19",
        "docker-cli",
        "who made the lesson's system calls",
        "a command did the work for your program",
    );
    let solution = workshop(&["check", "19", "--solution"]);
    assert!(
        solution.status.success(),
        "{}",
        common::text(&solution.stdout)
    );
}

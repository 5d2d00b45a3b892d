//! `minidock doctor`: what it reports must match what the machine has.

mod common;

use assert_cmd::prelude::*;
use std::process::Command;

#[test]
fn doctor_json_reports_every_check_and_matches_the_kernel() {
    let out = Command::cargo_bin("minidock")
        .unwrap()
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check named {name}"))
            .clone()
    };
    for ns in ["uts", "pid", "mnt", "ipc", "net", "user", "cgroup"] {
        let check = find(&format!("{ns} namespace"));
        assert_eq!(
            check["ok"].as_bool().unwrap(),
            std::path::Path::new(&format!("/proc/self/ns/{ns}")).exists()
        );
    }
    // Root, or rootless mode (whose own checks follow, as `tests/rootless.rs` shows).
    assert!(find("root")["ok"].as_bool().unwrap());
    assert_eq!(
        checks.iter().any(|c| c["name"] == "subordinate ids"),
        !common::is_root()
    );
    // The layout doctor reports is the one the tests see.
    let layout = find("cgroup layout")["detail"].as_str().unwrap().to_owned();
    assert!(
        layout.starts_with(common::cgroup_layout_name()),
        "doctor says {layout:?}, the mount table says {}",
        common::cgroup_layout_name()
    );
    // Every failed check says how to fix it; the exit status says whether all passed.
    for check in &checks {
        if !check["ok"].as_bool().unwrap() {
            assert!(check["fix"].is_string(), "{check}");
        }
    }
    let all_ok = checks.iter().all(|c| c["ok"].as_bool().unwrap());
    assert_eq!(out.status.success(), all_ok);
}

#[test]
fn doctor_text_marks_each_line() {
    let out = Command::cargo_bin("minidock")
        .unwrap()
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let marked = text
        .lines()
        .filter(|l| l.starts_with('✔') || l.starts_with('✘'))
        .count();
    assert!(marked >= 15, "{text}");
    println!("{text}");
}

//! `--format` on the image commands (`image inspect -f`, `images`, `history`): Go's
//! text/template with Docker's functions and `table`, against images imported into a temp
//! root. The container commands' templates are checked in `tests/container.rs`.

use std::path::Path;
use std::process::{Command, Output};

struct World {
    root: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            root: tempfile::Builder::new()
                .prefix("minidock-format")
                .tempdir()
                .unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_minidock"))
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "minidock {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expecting exit code `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "minidock {args:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Imports a one-file image; returns its ID.
    fn import(&self, name: &str, extra: &[&str]) -> String {
        let tar = self.root.path().join("in.tar");
        write_tar(&tar, &[("hello.txt", b"hello, world\n")]);
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        let path = tar.to_string_lossy().into_owned();
        args.extend([path.as_str(), name]);
        let id = self.ok(&args).trim().to_owned();
        std::fs::remove_file(&tar).unwrap();
        id
    }
}

fn write_tar(path: &Path, files: &[(&str, &[u8])]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.finish().unwrap();
}

#[test]
fn image_inspect_takes_a_go_template() {
    let world = World::new();
    let id = world.import(
        "fmt/app:1",
        &[
            "-c",
            "ENV A=1",
            "-c",
            "ENV B=2",
            "-c",
            "LABEL z=last",
            "-c",
            "LABEL a=first",
            "-c",
            r#"CMD ["sh", "-c", "echo hi"]"#,
        ],
    );
    let inspect = |template: &str| {
        world
            .ok(&["image", "inspect", "-f", template, "fmt/app:1"])
            .trim_end_matches('\n')
            .to_owned()
    };
    assert_eq!(inspect("{{.Id}}"), id);
    assert_eq!(inspect("{{range .Config.Env}}{{.}};{{end}}"), "A=1;B=2;");
    assert_eq!(inspect("{{index .RepoTags 0}}"), "fmt/app:1");
    assert_eq!(inspect(r#"{{join .Config.Cmd " "}}"#), "sh -c echo hi");
    assert_eq!(inspect("{{.Config.Labels}}"), "map[a:first z:last]");
    assert_eq!(inspect(r#"{{index .Config.Labels "z"}}"#), "last");
    assert_eq!(
        inspect("{{json .Config.Labels}}"),
        r#"{"a":"first","z":"last"}"#
    );
    assert_eq!(
        inspect("{{.RootFS.Type}} {{len .RootFS.Layers}}"),
        "layers 1"
    );
    assert_eq!(
        inspect("{{with .Config}}{{upper .WorkingDir}}|{{.User}}{{else}}none{{end}}"),
        "|"
    );
    assert_eq!(
        inspect("{{.Os}}/{{.Architecture}}"),
        format!(
            "linux/{}",
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64")
        )
    );
    // A struct prints in braces, in field order, as Go prints it.
    assert_eq!(
        inspect("{{.RootFS}}"),
        format!("{{layers {}}}", inspect("{{.RootFS.Layers}}"))
    );
    let err = world.fails(&["image", "inspect", "-f", "{{.Nope}}", "fmt/app:1"], 1);
    assert!(
        err.starts_with("minidock: template parsing error: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A template that does not parse: exit 64, as docker inspect, before any lookup.
    let err = world.fails(
        &["image", "inspect", "-f", "{{upper .Id", "nosuchimage"],
        64,
    );
    assert!(
        err.starts_with("minidock: template parsing error: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = world.fails(
        &["image", "inspect", "-f", "{{nosuch .Id}}", "fmt/app:1"],
        64,
    );
    assert!(err.contains(r#"function "nosuch" not defined"#), "{err}");
}

#[test]
fn images_and_history_take_templates_and_tables() {
    let world = World::new();
    let id = world.import("fmt/one:1", &["-m", "first image"]);
    world.ok(&["tag", "fmt/one:1", "fmt/two:latest"]);
    assert_eq!(
        world.ok(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"
        ]),
        format!("fmt/one:1 {0} 13B\nfmt/two:latest {0} 13B\n", &id[7..19])
    );
    assert_eq!(
        world.ok(&[
            "images",
            "--format",
            r"table {{.Repository}}\t{{.Tag}}\t{{.Size}}"
        ]),
        "REPOSITORY   TAG       SIZE\nfmt/one      1         13B\nfmt/two      latest    13B\n"
    );
    let digests = world.ok(&["images", "--no-trunc", "--format", "{{.ID}} {{.Digest}}"]);
    assert!(digests.starts_with(&format!("{id} sha256:")), "{digests}");
    assert_eq!(
        world.ok(&["images", "--format", "{{json .Tag}}", "fmt/two"]),
        "\"latest\"\n"
    );
    assert_eq!(
        world.ok(&[
            "history",
            "--format",
            "{{.ID}}|{{.Size}}|{{.Comment}}",
            "fmt/one:1"
        ]),
        format!("{}|13B|first image\n", &id[7..19])
    );
    assert_eq!(
        world.ok(&[
            "history",
            "--format",
            r"table {{.ID}}\t{{lower .Comment}}",
            "fmt/one:1"
        ]),
        format!("IMAGE          COMMENT\n{}   first image\n", &id[7..19])
    );
    let err = world.fails(&["images", "--format", "{{.Id"], 1);
    assert!(
        err.starts_with("minidock: template parsing error: "),
        "{err}"
    );
    let err = world.fails(&["history", "--format", "{{nosuch .ID}}", "fmt/one:1"], 1);
    assert!(
        err.starts_with("minidock: template parsing error: "),
        "{err}"
    );
}

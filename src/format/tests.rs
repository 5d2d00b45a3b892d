use super::*;

fn data() -> Value {
    let json: Json = serde_json::from_str(
        r#"{"Id":"abc","Name":"/web","State":{"Status":"running","Running":true,"Pid":42,"Error":""},
            "Config":{"Env":["A=1","B=2"],"Cmd":["sh","-c","echo hi"],"Labels":{"b":"2","a":"x y"},"Image":"busybox"},
            "Mounts":[{"Type":"bind","Source":"/s","RW":true},{"Type":"bind","Source":"/t","RW":false}],
            "Size":1234}"#,
    )
    .unwrap();
    to_value(
        &json,
        &Shape {
            maps: &["Config.Labels"],
            pointers: &["State.Health"],
            omitted: &[("State", "Health")],
        },
    )
}

fn render(template: &str) -> String {
    Format::inspect(template)
        .unwrap()
        .execute(&data())
        .unwrap_or_else(|err| format!("ERROR {err}"))
}

#[test]
fn actions_and_go_functions_work_as_in_go() {
    let cases = [
        ("{{.Id}} {{.State.Pid}}", "abc 42"),
        ("{{range .Config.Env}}{{.}},{{end}}", "A=1,B=2,"),
        (
            "{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}",
            "0:A=1 1:B=2 ",
        ),
        ("{{index .Config.Cmd 2}}", "echo hi"),
        (r#"{{index .Config.Labels "a"}}"#, "x y"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if not .State.Running}}up{{else}}down{{end}}", "down"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{len .Mounts}} {{len .Config.Env}}", "2 2"),
        (
            "{{range .Mounts}}{{.Source}}:{{.RW}} {{end}}",
            "/s:true /t:false ",
        ),
        (
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "a=x y;b=2;",
        ),
        (r#"{{printf "%d-%s" .State.Pid .Id}}"#, "42-abc"),
        (r#"{{printf "%v" .State}}"#, "{running true 42  <nil>}"),
        (r#"{{.State | printf "%v"}}"#, "{running true 42  <nil>}"),
        ("{{println .Id .State.Pid}}", "abc 42\n"),
        ("{{print .State.Pid .State.Running}}", "42 true"),
        (r#"{{eq .State.Status "running"}}"#, "true"),
        ("{{.Size}}", "1234"),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template), expected, "{template}");
    }
}

#[test]
fn dockers_functions_work_as_dockers() {
    let cases = [
        (r#"{{join .Config.Cmd " "}}"#, "sh -c echo hi"),
        (r#"{{join .Config.Env ","}}"#, "A=1,B=2"),
        ("{{upper .State.Status}}", "RUNNING"),
        (r#"{{lower "ABC"}}"#, "abc"),
        ("{{title .State.Status}}", "Running"),
        (r#"{{split .Config.Image "b"}}"#, "[ usy ox]"),
        (r#"{{index (split .Config.Image "y") 0}}"#, "bus"),
        ("{{pad .Id 1 2}}|", " abc  |"),
        ("{{truncate .Id 2}} {{truncate .Id 9}}", "ab abc"),
        (
            "{{json .State}}",
            r#"{"Status":"running","Running":true,"Pid":42,"Error":""}"#,
        ),
        (
            "{{json .Mounts}}",
            r#"[{"Type":"bind","Source":"/s","RW":true},{"Type":"bind","Source":"/t","RW":false}]"#,
        ),
        ("{{json .Config.Labels}}", r#"{"a":"x y","b":"2"}"#),
        ("{{json .Id}}", r#""abc""#),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template), expected, "{template}");
    }
}

#[test]
fn structs_print_in_braces_and_maps_with_map() {
    assert_eq!(render("{{.State}}"), "{running true 42  <nil>}");
    assert_eq!(render("{{.Config.Labels}}"), "map[a:x y b:2]");
    assert_eq!(render("{{.Config.Env}}"), "[A=1 B=2]");
    assert_eq!(render("{{.Mounts}}"), "[{bind /s true} {bind /t false}]");
}

#[test]
fn bad_templates_fail_in_one_line() {
    for template in [
        "{{.Nope}}",
        "{{.Id",
        "{{nosuchfunc .Id}}",
        "{{range .State}}x{{end}}",
        "{{upper .State.Pid}}",
    ] {
        let result = Format::inspect(template).and_then(|f| f.execute(&data()));
        let err = format!("{:#}", result.expect_err(template));
        assert!(err.starts_with("template parsing error: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn tables_have_a_header_row_and_aligned_columns() {
    let header = header(&[
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
    ]);
    let rows = [
        row(vec![
            ("ID", "abc".into()),
            ("Names", "web".into()),
            ("Image", "busybox".into()),
        ]),
        row(vec![
            ("ID", "def".into()),
            ("Names", "a-much-longer-name".into()),
            ("Image", "b".into()),
        ]),
    ];
    let format = Format::list(r"table {{.ID}}\t{{.Names}}\t{{.Image}}", "").unwrap();
    assert!(format.is_table());
    assert_eq!(
        format.render_list(&rows, &header).unwrap(),
        "CONTAINER ID   NAMES                IMAGE\n\
         abc            web                  busybox\n\
         def            a-much-longer-name   b\n"
    );
    let format = Format::list("table {{upper .Names}}", "").unwrap();
    assert_eq!(
        format.render_list(&rows, &header).unwrap(),
        "NAMES\nWEB\nA-MUCH-LONGER-NAME\n"
    );
    let plain = Format::list(r"{{.ID}}:{{.Names}}\n", "").unwrap();
    assert!(!plain.is_table());
    assert_eq!(
        plain.render_list(&rows, &header).unwrap(),
        "abc:web\n\ndef:a-much-longer-name\n\n"
    );
    let unknown = Format::list(r"table {{.Names}}\t{{.Extra}}", "").unwrap();
    assert_eq!(
        unknown.render_list(&[], &header).unwrap(),
        "NAMES     <no value>\n"
    );
    let default = Format::list("table", r"{{.ID}}\t{{.Image}}").unwrap();
    assert_eq!(
        default.render_list(&rows[..1], &header).unwrap(),
        "CONTAINER ID   IMAGE\nabc            busybox\n"
    );
}

#[test]
fn unknown_functions_are_parse_errors_as_in_go() {
    assert!(Format::inspect("{{nosuch .Id}}").is_err());
    assert!(Format::inspect("{{.Nope}}").is_ok());
}

//! Users and groups as Docker resolves them: `-u`/`USER` and `--group-add` against the
//! container's own `/etc/passwd` and `/etc/group`.
//!
//! The rules are moby's `getUser` (daemon/oci_linux.go) over `GetExecUser` and
//! `GetAdditionalGroups` of moby/sys `user` (formerly runc's libcontainer/user):
//!
//! - `USER[:GROUP]`, each a name or a number. A number is always an id, never a name; an id
//!   must lie in 0..=2147483647. A uid missing from passwd is allowed (gid 0, home `/`); a name
//!   missing from passwd is an error. An empty user means uid 0 (as found in passwd).
//! - With an explicit `GROUP` the primary gid is that group (a number missing from the group
//!   file is allowed, a name is not) and no supplementary groups come from `/etc/group`.
//!   Without one, the gid is passwd's and the supplementary groups are those listing the user
//!   by name.
//! - Since the CVE-2022-36109 hardening, the process's groups always begin with the primary
//!   gid, then the supplementary groups, then `--group-add`'s (names or numbers), each gid
//!   once.
//! - The files are the container's: their symlinks resolve inside the rootfs. A missing or
//!   non-regular one is as if it were empty.

use crate::cli::{Exit, code};
use anyhow::{Result, anyhow};
use std::path::Path;

/// The largest uid or gid moby accepts (`maxID`: 31 bits, for 32-bit systems); the smallest
/// is 0.
pub const MAX_ID: i64 = (1 << 31) - 1;

/// The most bytes moby reads of a passwd or group file.
const MAX_FILE_BYTES: u64 = 10 << 20;

/// A user as the kernel wants it, from `-u` or the image's `User`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// What `process.user.additionalGids` holds: the primary gid first, then the groups
    /// from `/etc/group`, then `--group-add`'s, as moby lists them, each gid once.
    pub additional_gids: Vec<u32>,
    /// The home directory of the uid's first passwd entry (`/` for a uid passwd does not
    /// list), which runc gives a process whose environment has no `HOME`.
    pub home: String,
}

/// moby/sys `ExecUser`: the result of [`exec_user`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    pub uid: i64,
    pub gid: i64,
    /// Supplementary groups from the group file (only for the implicit `USER` form).
    pub sgids: Vec<i64>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// A user or group as typed: a number (an id) or a name.
enum Arg<'a> {
    Id(i64),
    Name(&'a str),
}

fn failed(message: String) -> anyhow::Error {
    Exit::new(code::FAILED, message).into()
}

/// A name as an error shows it: as typed when it is short printable text (Docker's messages
/// show it bare), otherwise quoted and escaped, since an image's `USER` is untrusted.
fn shown(name: &str) -> String {
    if name.chars().count() <= crate::cli::QUOTE_MAX && name.chars().all(|c| c.is_ascii_graphic()) {
        name.to_owned()
    } else {
        crate::cli::quote(name)
    }
}

fn range_error() -> anyhow::Error {
    failed(format!("uids and gids must be in range 0-{MAX_ID}"))
}

/// Go's `strconv.Atoi` as moby/sys's `parseNumeric` uses it: `Ok(None)` for text that is not
/// a number (a name), an error for a number out of range.
fn parse_arg(text: &str) -> Result<Option<Arg<'_>>> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if (0..=MAX_ID).contains(&id) => Ok(Some(Arg::Id(id))),
        Ok(_) => Err(range_error()),
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                Err(range_error())
            }
            _ => Ok(Some(Arg::Name(text))),
        },
    }
}

/// A number field of passwd or group: Go's `Atoi` with its error ignored (0 for text that is
/// not a number, the nearest bound for one out of range), as moby/sys parses them.
fn number_field(text: &str) -> i64 {
    match text.parse::<i64>() {
        Ok(n) => n,
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow => i64::MAX,
            std::num::IntErrorKind::NegOverflow => i64::MIN,
            _ => 0,
        },
    }
}

/// The lines of a passwd or group file as moby/sys reads them: trimmed, blank ones skipped;
/// a line longer than Go's scanner takes (`max_line` bytes) is an error.
fn lines(text: &str, max_line: usize, file: &str) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() >= max_line {
            return Err(failed(format!(
                "reading {file}: bufio.Scanner: token too long"
            )));
        }
        let line = line.trim();
        if !line.is_empty() {
            out.push(line.split(':').map(str::to_owned).collect());
        }
    }
    Ok(out)
}

fn field(fields: &[String], n: usize) -> &str {
    fields.get(n).map_or("", String::as_str)
}

fn parse_passwd(text: &str) -> Result<Vec<PasswdEntry>> {
    // name:password:UID:GID:GECOS:directory:shell; missing fields are empty (or 0).
    Ok(lines(text, 64 * 1024, "/etc/passwd")?
        .iter()
        .map(|f| PasswdEntry {
            name: field(f, 0).to_owned(),
            uid: number_field(field(f, 2)),
            gid: number_field(field(f, 3)),
            home: field(f, 5).to_owned(),
        })
        .collect())
}

fn parse_group(text: &str) -> Result<Vec<GroupEntry>> {
    // group_name:password:GID:user_list; `#` starts a comment, as for glibc.
    Ok(lines(text, 1024 * 1024, "/etc/group")?
        .iter()
        .filter(|f| !field(f, 0).starts_with('#'))
        .map(|f| GroupEntry {
            name: field(f, 0).to_owned(),
            gid: number_field(field(f, 2)),
            members: match field(f, 3) {
                "" => Vec::new(),
                list => list.split(',').map(str::to_owned).collect(),
            },
        })
        .collect())
}

fn group_matches(arg: &Arg, group: &GroupEntry) -> bool {
    match arg {
        Arg::Id(gid) => group.gid == *gid,
        Arg::Name(name) => group.name == *name,
    }
}

// ANCHOR: exec_user
/// moby/sys `GetExecUser` with no defaults: resolves `USER[:GROUP]` against the passwd and
/// group files' text (`None`: the file is missing). See the module documentation for the
/// rules; errors are Docker's ("unable to find user NAME: no matching entries in passwd
/// file"), exit code 125.
pub fn exec_user(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser> {
    let (user_text, group_text) = spec.split_once(':').unwrap_or((spec, ""));
    let user_arg = parse_arg(user_text)?;
    let group_arg = parse_arg(group_text)?;
    let mut user = ExecUser::default();
    let matched_name = passwd_user(user_arg.as_ref(), passwd, &mut user)?;
    if group_arg.is_none() && matched_name.is_empty() {
        return Ok(user);
    }
    group_ids(group_arg.as_ref(), group, &matched_name, &mut user)?;
    Ok(user)
}
// ANCHOR_END: exec_user

// ANCHOR: passwd_user
/// The user's part: the passwd entry that matches (by default uid 0) gives the uid, gid and
/// home; a number without an entry is an id of its own, a name without one an error. Returns
/// the name of the entry matched, empty for none.
fn passwd_user(
    user_arg: Option<&Arg>,
    passwd: Option<&str>,
    user: &mut ExecUser,
) -> Result<String> {
    let users = passwd.map(parse_passwd).transpose()?.unwrap_or_default();
    let found = users.iter().find(|u| match &user_arg {
        None => u.uid == 0,
        Some(Arg::Id(uid)) => u.uid == *uid,
        Some(Arg::Name(name)) => u.name == *name,
    });
    let mut matched_name = String::new();
    match (found, &user_arg) {
        (Some(entry), _) => {
            matched_name = entry.name.clone();
            (user.uid, user.gid, user.home) = (entry.uid, entry.gid, entry.home.clone());
        }
        (None, Some(Arg::Id(uid))) => user.uid = *uid,
        (None, Some(Arg::Name(name))) => {
            return Err(failed(format!(
                "unable to find user {}: no matching entries in passwd file",
                shown(name)
            )));
        }
        (None, None) => {}
    }
    Ok(matched_name)
}
// ANCHOR_END: passwd_user

// ANCHOR: group_ids
/// The group's part: a group named replaces the primary gid and gives no supplementary
/// groups; without one, every group that lists the user by name is a supplementary group.
fn group_ids(
    group_arg: Option<&Arg>,
    group: Option<&str>,
    matched_name: &str,
    user: &mut ExecUser,
) -> Result<()> {
    let groups = group.map(parse_group).transpose()?.unwrap_or_default();
    match &group_arg {
        // The explicit form: the group named, and no supplementary groups.
        Some(arg) => match (groups.iter().find(|g| group_matches(arg, g)), arg) {
            (Some(entry), _) => user.gid = entry.gid,
            (None, Arg::Id(gid)) => user.gid = *gid,
            (None, Arg::Name(name)) => {
                return Err(failed(format!(
                    "unable to find group {}: no matching entries in group file",
                    shown(name)
                )));
            }
        },
        // The implicit form: every group that lists the user by name.
        None => {
            user.sgids = groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == matched_name))
                .map(|g| g.gid)
                .collect();
        }
    }
    Ok(())
}
// ANCHOR_END: group_ids

/// moby/sys `GetAdditionalGroups`: each `--group-add` value, a group name or a gid, as a gid
/// (a gid the group file does not list is taken as it is; a name must be listed). Each gid
/// appears once, in the order first asked for (moby returns them in a Go map's order).
pub fn additional_groups(wanted: &[String], group: Option<&str>) -> Result<Vec<i64>> {
    let args = wanted
        .iter()
        .map(|w| parse_arg(w)?.ok_or_else(|| failed("--group-add: a group cannot be empty".into())))
        .collect::<Result<Vec<_>>>()?;
    let groups = group.map(parse_group).transpose()?.unwrap_or_default();
    let mut out = Vec::new();
    for arg in &args {
        let gid = match (groups.iter().find(|g| group_matches(arg, g)), arg) {
            (Some(entry), _) if !(0..=MAX_ID).contains(&entry.gid) => return Err(range_error()),
            (Some(entry), _) => entry.gid,
            (None, Arg::Id(gid)) => *gid,
            (None, Arg::Name(name)) => {
                return Err(failed(format!(
                    "unable to find group {}: no matching entries in group file",
                    shown(name)
                )));
            }
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

/// A passwd or group file of the container, read as moby's `openUserFile` does: the path is
/// resolved inside `rootfs` (an image's symlink cannot point at the host's file); missing or
/// not a regular file is `None`; more than 10 MiB is an error.
pub fn read_user_file(rootfs: &Path, path: &str) -> Result<Option<String>> {
    use std::io::Read;
    let Ok(resolved) = crate::runtime::mounts::secure_join(rootfs, Path::new(path)) else {
        return Ok(None);
    };
    let Ok(file) = std::fs::File::open(&resolved) else {
        return Ok(None);
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("reading {path}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(failed(format!(
            "reading {path}: file exceeds {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

// ANCHOR: resolve_user
/// moby's `getUser`: the user `spec` (`-u`, or the image's `USER`; empty for root) and the
/// `--group-add` values, resolved in the container's `/etc/passwd` and `/etc/group` under
/// `rootfs`. The groups always begin with the primary gid (CVE-2022-36109).
pub fn resolve_user(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let passwd = read_user_file(rootfs, "/etc/passwd")?;
    let group = read_user_file(rootfs, "/etc/group")?;
    let user = exec_user(spec, passwd.as_deref(), group.as_deref())?;
    let added = if group_add.is_empty() {
        Vec::new()
    } else {
        additional_groups(group_add, group.as_deref())?
    };
    // Go converts with uint32(...): ids from passwd and group are not range-checked.
    let id = |n: i64| n as u32;
    // Each gid once: runc gives the kernel each group once (Docker 20.10 with runc 1.1 shows
    // `-u app --group-add wheel` with wheel listing app as one group 10, not two).
    let mut additional_gids = vec![id(user.gid)];
    for gid in user.sgids.iter().chain(&added).map(|g| id(*g)) {
        if !additional_gids.contains(&gid) {
            additional_gids.push(gid);
        }
    }
    Ok(ResolvedUser {
        uid: id(user.uid),
        gid: id(user.gid),
        additional_gids,
        home: home_of(passwd.as_deref(), user.uid)?,
    })
}
// ANCHOR_END: resolve_user

/// The home directory runc gives a process whose environment has no `HOME`: that of the
/// first passwd entry with its uid, or `/` when there is none.
pub fn home_of(passwd: Option<&str>, uid: i64) -> Result<String> {
    let users = passwd.map(parse_passwd).transpose()?.unwrap_or_default();
    Ok(users
        .into_iter()
        .find(|u| u.uid == uid)
        .map_or_else(|| "/".to_owned(), |u| u.home))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        \n   \n\
        short:x:1001\n\
        42:x:2000:2000::/home/fortytwo:/bin/sh\n\
        twin:x:1000:5::/home/twin:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        # a comment:x:999:app\n\
        nogroup:x:65534:\n\
        app:x:1000:\n\
        wheel:x:10:root,app\n\
        g1:x:1234:nobody,app\n\
        g2:x:2345:nobody\n\
        7:x:77:\n";

    fn user(spec: &str) -> Result<ExecUser> {
        exec_user(spec, Some(PASSWD), Some(GROUP))
    }

    fn ids(u: &ExecUser) -> (i64, i64, Vec<i64>, &str) {
        (u.uid, u.gid, u.sgids.clone(), u.home.as_str())
    }

    #[test]
    fn every_form_of_user_resolves_as_moby_does() {
        type Expected = (i64, i64, &'static [i64], &'static str);
        let cases: &[(&str, Expected)] = &[
            ("", (0, 0, &[10], "/root")),
            ("root", (0, 0, &[10], "/root")),
            ("app", (1000, 1000, &[10, 1234], "/home/app")),
            ("1000", (1000, 1000, &[10, 1234], "/home/app")),
            ("nobody", (65534, 65534, &[1234, 2345], "/nonexistent")),
            ("app:wheel", (1000, 10, &[], "/home/app")),
            ("app:10", (1000, 10, &[], "/home/app")),
            ("app:4242", (1000, 4242, &[], "/home/app")),
            ("1000:wheel", (1000, 10, &[], "/home/app")),
            ("4242", (4242, 0, &[], "")),
            ("4242:4242", (4242, 4242, &[], "")),
            ("4242:wheel", (4242, 10, &[], "")),
            // A number is always an id: "42" is uid 42 (unknown), not the user named 42.
            ("42", (42, 0, &[], "")),
            // ...and a group "7" is gid 7, not the group named 7.
            ("app:7", (1000, 7, &[], "/home/app")),
            // Missing passwd fields are empty or 0.
            ("short", (1001, 0, &[], "")),
            // An explicit empty group is no group.
            ("app:", (1000, 1000, &[10, 1234], "/home/app")),
            // A leading + is a number, as for Go's Atoi.
            ("+1000", (1000, 1000, &[10, 1234], "/home/app")),
            // The first entry wins.
            ("twin", (1000, 5, &[], "/home/twin")),
        ];
        for (spec, (uid, gid, sgids, home)) in cases {
            let u = user(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(ids(&u), (*uid, *gid, sgids.to_vec(), *home), "{spec}");
        }
    }

    #[test]
    fn unknown_names_and_ids_out_of_range_are_errors() {
        let message = |spec: &str| user(spec).unwrap_err().to_string();
        assert_eq!(
            message("nosuch"),
            "unable to find user nosuch: no matching entries in passwd file"
        );
        assert_eq!(
            message("app:nosuch"),
            "unable to find group nosuch: no matching entries in group file"
        );
        for spec in [
            "-1",
            "2147483648",
            "99999999999999999999",
            "app:-5",
            "0:2147483648",
        ] {
            assert_eq!(message(spec), "uids and gids must be in range 0-2147483647");
        }
        assert_eq!(ids(&user("2147483647").unwrap()).0, MAX_ID);
        // Hostile text from an image is quoted.
        assert!(message("a\u{1b}[2J").contains("\"a\\x1b[2J\""));
        // Without the files: numbers still work, names do not.
        assert_eq!(
            ids(&exec_user("7:8", None, None).unwrap()),
            (7, 8, vec![], "")
        );
        assert_eq!(ids(&exec_user("", None, None).unwrap()), (0, 0, vec![], ""));
        assert!(exec_user("root", None, None).is_err());
        assert!(exec_user("0:root", Some(PASSWD), None).is_err());
    }

    #[test]
    fn group_add_takes_names_and_numbers() {
        let wanted = |w: &[&str]| {
            additional_groups(
                &w.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                Some(GROUP),
            )
        };
        assert_eq!(
            wanted(&["wheel", "4242", "1234", "g1"]).unwrap(),
            [10, 4242, 1234]
        );
        assert_eq!(wanted(&["7"]).unwrap(), [7]);
        assert_eq!(
            wanted(&["nosuch"]).unwrap_err().to_string(),
            "unable to find group nosuch: no matching entries in group file"
        );
        assert!(wanted(&["-3"]).is_err());
        assert_eq!(additional_groups(&["9".into()], None).unwrap(), [9]);
    }

    #[test]
    fn the_primary_gid_always_comes_first() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(root.path().join("etc/group"), GROUP).unwrap();
        let r = |spec: &str, add: &[&str]| {
            let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
            resolve_user(root.path(), spec, &add).unwrap()
        };
        assert_eq!(r("4242:4242", &[]).additional_gids, [4242]);
        assert_eq!(r("nobody", &[]).additional_gids, [65534, 1234, 2345]);
        assert_eq!(
            r("app", &["wheel", "5", "1000"]).additional_gids,
            [1000, 10, 1234, 5]
        );
        assert_eq!(r("", &[]).additional_gids, [0, 10]);
        assert_eq!(r("4242", &[]).home, "/");
        assert_eq!(r("app:wheel", &[]).home, "/home/app");
        // HOME follows the uid, as runc looks it up.
        assert_eq!(r("twin", &[]).home, "/home/app");
        // An image's passwd that is a symlink is resolved inside the rootfs; one that is not a
        // regular file counts as missing.
        let outside = tempfile::tempdir().unwrap();
        let host_passwd = outside.path().join("passwd");
        std::fs::write(&host_passwd, "outsider:x:5:5::/:/bin/sh\n").unwrap();
        std::fs::remove_file(root.path().join("etc/passwd")).unwrap();
        let climb = format!("../../../../../../../../..{}", host_passwd.display());
        std::os::unix::fs::symlink(&climb, root.path().join("etc/passwd")).unwrap();
        assert!(resolve_user(root.path(), "outsider", &[]).is_err());
        std::fs::remove_file(root.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(&host_passwd, root.path().join("etc/passwd")).unwrap();
        assert!(resolve_user(root.path(), "outsider", &[]).is_err());
        std::fs::remove_file(root.path().join("etc/passwd")).unwrap();
        std::fs::create_dir(root.path().join("etc/passwd")).unwrap();
        assert_eq!(r("7", &[]).uid, 7);
    }
}

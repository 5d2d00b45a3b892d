//! `run`'s mount flags as the docker CLI and daemon read them: `-v`, `--mount` and `--tmpfs`.
//!
//! Errors the docker CLI itself reports are [`cli_error`]s (exit 125 from `run` and
//! `create`); the ones Docker's daemon reports are plain errors (exit 125 from `run`, 1 from
//! `create`, as `docker create` exits with the daemon's refusals).

use crate::cli::{Exit, code};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// What a mount is, as Docker's `mount.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountKind {
    /// A host directory or file (`-v /host:/path`, `--mount type=bind`).
    #[default]
    Bind,
    /// A volume in the state root, named or anonymous.
    Volume,
    /// A fresh tmpfs (`--tmpfs`, `--mount type=tmpfs`).
    Tmpfs,
}

impl MountKind {
    /// Docker's name for it: `bind`, `volume`, `tmpfs`.
    pub fn name(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount a container asked for, from `-v`, `--mount`, `--tmpfs`, `--volumes-from` or the
/// image's `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountRequest {
    pub kind: MountKind,
    /// A bind's host path; a volume's `_data` once the volume exists; empty for a tmpfs.
    pub host: PathBuf,
    /// A volume's name; empty for an anonymous volume until it is made.
    pub name: String,
    /// Cleaned, absolute, inside the container.
    pub container: String,
    pub read_only: bool,
    /// `inspect`'s `Mounts[].Mode`: the `-v` options as typed (`z` for a named `-v` without
    /// any), empty otherwise.
    pub mode: String,
    /// A bind's propagation (`rprivate` unless given); empty for the rest.
    pub propagation: String,
    /// No copy-up into a new volume (`nocopy`, `volume-nocopy`).
    pub nocopy: bool,
    /// A tmpfs's options (`size=...`, `mode=...`, flags), after Docker's defaults.
    pub tmpfs: Vec<String>,
    /// `-v` as typed, for `inspect`'s `HostConfig.Binds`; empty for the other flags.
    pub text: String,
    /// Given with `-v`, which makes a missing host directory (`--mount type=bind` refuses
    /// it), and whose anonymous form `-v /path` is also in the container's `Config.Volumes`.
    pub create_host: bool,
    /// Left out of `inspect`'s `Mounts` (`--tmpfs`, which Docker shows only in
    /// `HostConfig.Tmpfs`).
    pub unlisted: bool,
}

/// An error the docker CLI reports before asking the daemon (exit 125).
pub fn cli_error(message: String) -> anyhow::Error {
    Exit::new(code::FAILED, message).into()
}

/// Docker's check of a local volume's name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), with its messages.
pub fn check_volume_name(name: &str) -> Result<()> {
    let chars_ok = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-')));
    if !chars_ok || name.is_empty() {
        anyhow::bail!(
            "create {name}: {} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path",
            crate::cli::quote(name)
        );
    }
    if name.len() < 2 {
        anyhow::bail!(
            "create {name}: volume name is too short, names should be at least two \
             alphanumeric characters"
        );
    }
    Ok(())
}

/// Go's `path.Clean` of an absolute container path; a relative one is refused with Docker's
/// message for a mount of type `kind`.
fn target(kind: MountKind, path: &str) -> Result<String> {
    if !path.starts_with('/') {
        anyhow::bail!(
            "invalid mount config for type {:?}: invalid mount path: '{path}' mount path must \
             be absolute",
            kind.name()
        );
    }
    crate::container::spec::clean_container_path("mount destination", path)
}

/// Docker's defaults for a tmpfs in a container, which the user's options may override.
const TMPFS_DEFAULTS: [&str; 3] = ["noexec", "nosuid", "nodev"];

// ANCHOR: parse_volume
/// Parses `-v` as Docker does: `/CONTAINER` is an anonymous volume, `NAME:/CONTAINER` a named
/// one, `/HOST:/CONTAINER` a bind, each with `[:OPTIONS]` (`ro`, `rw`, `z`, `Z`, `nocopy` for
/// volumes, a propagation mode for binds).
pub fn parse_volume_flag(text: &str) -> Result<MountRequest> {
    if let Some(absolute) = relative_bind(text)? {
        return parse_volume_flag(&absolute);
    }
    let (source, container, options) = volume_sections(text)?;
    let kind = if source.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let container = volume_target(text, kind, container)?;
    if kind == MountKind::Volume && !source.is_empty() {
        check_volume_name(source)?;
    }
    let mut request = volume_request(text, kind, source, container, options);
    if kind == MountKind::Volume && !source.is_empty() && options.is_empty() {
        request.mode = "z".into();
    }
    volume_options(&mut request, options)
        .map_err(|_| anyhow::anyhow!("invalid mode: {options}"))?;
    Ok(request)
}
// ANCHOR_END: parse_volume

// ANCHOR: volume_sections
/// The docker CLI (23 and later) makes a bind's source starting with `.` (`./d`, `..`,
/// `.hid`) absolute, relative to the current directory, and sends it so: the flag rewritten
/// with the absolute source, or None when there is nothing to rewrite.
fn relative_bind(text: &str) -> Result<Option<String>> {
    if !text.starts_with('.') {
        return Ok(None);
    }
    let (source, rest) = text.split_once(':').unwrap_or((text, ""));
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let cwd = cwd.to_string_lossy();
    let absolute =
        crate::container::spec::clean_container_path("the path", &format!("{cwd}/{source}"))?;
    Ok((!rest.is_empty()).then(|| format!("{absolute}:{rest}")))
}

/// Splits `-v` at its colons into source, container path and options, each possibly empty
/// when absent. One to three sections, none of them empty, as the docker CLI checks.
fn volume_sections(text: &str) -> Result<(&str, &str, &str)> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(cli_error(format!("invalid spec: {text}: too many colons")));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(cli_error(format!(
            "invalid spec: {text}: empty section between colons"
        )));
    }
    Ok(match parts.as_slice() {
        [container] => ("", *container, ""),
        [source, container] => (*source, *container, ""),
        [source, container, options] => (*source, *container, *options),
        _ => unreachable!("one to three parts"),
    })
}
// ANCHOR_END: volume_sections

// ANCHOR: volume_target
/// The container path of `-v`, cleaned; the daemon refuses `/` (the volume would hide the
/// whole root) and a relative path, in its own words.
fn volume_target(text: &str, kind: MountKind, container: &str) -> Result<String> {
    let invalid = |why: String| {
        anyhow::anyhow!(
            "invalid volume specification: '{text}': invalid mount config for type {:?}: {why}",
            kind.name()
        )
    };
    match target(kind, container) {
        Ok(path) if path == "/" => Err(invalid(
            "invalid specification: destination can't be '/'".into(),
        )),
        Ok(path) => Ok(path),
        Err(_) => Err(invalid(format!(
            "invalid mount path: '{container}' mount path must be absolute"
        ))),
    }
}
// ANCHOR_END: volume_target

// ANCHOR: volume_request
/// The request one `-v` makes, before its options: a bind keeps the host path and Docker's
/// `rprivate`, a volume its name (empty for an anonymous one, which keeps no text either).
fn volume_request(
    text: &str,
    kind: MountKind,
    source: &str,
    container: String,
    options: &str,
) -> MountRequest {
    let bind = kind == MountKind::Bind;
    MountRequest {
        kind,
        host: PathBuf::from(if bind { source } else { "" }),
        name: if bind {
            String::new()
        } else {
            source.to_owned()
        },
        container,
        mode: options.to_owned(),
        propagation: if bind {
            "rprivate".into()
        } else {
            String::new()
        },
        text: if source.is_empty() {
            String::new()
        } else {
            text.to_owned()
        },
        create_host: true,
        ..MountRequest::default()
    }
}
// ANCHOR_END: volume_request

/// The options of one `-v` (`ro,nocopy`): at most one of `ro`/`rw`, one label mode, one
/// propagation (binds), `nocopy` (volumes).
fn volume_options(request: &mut MountRequest, options: &str) -> std::result::Result<(), ()> {
    let (mut access, mut label, mut propagation, mut nocopy) = (0, 0, 0, 0);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "rw" => {
                access += 1;
                request.read_only = option == "ro";
            }
            "z" | "Z" => label += 1,
            "nocopy" if request.kind == MountKind::Volume => {
                nocopy += 1;
                request.nocopy = true;
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                if request.kind == MountKind::Bind =>
            {
                propagation += 1;
                request.propagation = option.to_owned();
            }
            _ => return Err(()),
        }
    }
    if access > 1 || label > 1 || propagation > 1 || nocopy > 1 {
        return Err(());
    }
    Ok(())
}

/// A boolean `--mount` field: `readonly`, `readonly=true|1|false|0`.
fn mount_bool(key: &str, value: Option<&str>) -> std::result::Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(_) => Err(format!("invalid value for {key}: {}", value.unwrap_or(""))),
    }
}

/// The fields of one `--mount`, as the docker CLI collects them (`opts.MountOpt`).
#[derive(Default)]
struct MountFields {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    propagation: Option<String>,
    nocopy: Option<bool>,
    tmpfs_size: Option<i64>,
    tmpfs_mode: Option<u32>,
}

/// Reads the `key=value` fields of a `--mount` (the docker CLI's own checks).
fn mount_fields(text: &str) -> std::result::Result<MountFields, String> {
    let mut f = MountFields {
        kind: "volume".into(),
        ..MountFields::default()
    };
    for field in text.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let needs = |value: Option<&str>| {
            value
                .map(str::to_owned)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "readonly" | "ro" => f.read_only = mount_bool(&key, value)?,
            "volume-nocopy" => f.nocopy = Some(mount_bool(&key, value)?),
            "type" => f.kind = needs(value)?.to_ascii_lowercase(),
            "source" | "src" => f.source = needs(value)?,
            "target" | "dst" | "destination" => f.target = needs(value)?,
            "bind-propagation" => f.propagation = Some(needs(value)?.to_ascii_lowercase()),
            "tmpfs-size" => {
                let v = needs(value)?;
                let size = crate::container::cli::ram_in_bytes(&v)
                    .ok_or_else(|| format!("invalid value for {key}: {v}"))?;
                f.tmpfs_size = Some(size);
            }
            "tmpfs-mode" => {
                let v = needs(value)?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("invalid value for {key}: {v}"))?;
                f.tmpfs_mode = Some(mode);
            }
            "consistency" => {
                needs(value)?;
            }
            _ if value.is_none() => {
                return Err(format!("invalid field '{field}' must be a key=value pair"));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if f.target.is_empty() {
        return Err("target is required".into());
    }
    let mixed = |prefix: &str| {
        format!(
            "cannot mix '{prefix}-*' options with mount type '{}'",
            f.kind
        )
    };
    if f.propagation.is_some() && f.kind != "bind" {
        return Err(mixed("bind"));
    }
    if f.nocopy.is_some() && f.kind != "volume" {
        return Err(mixed("volume"));
    }
    if (f.tmpfs_size.is_some() || f.tmpfs_mode.is_some()) && f.kind != "tmpfs" {
        return Err(mixed("tmpfs"));
    }
    Ok(f)
}

/// A tmpfs size in bytes as Docker writes it into the mount data (`ConvertTmpfsOptions`): in
/// the largest unit that divides it.
fn tmpfs_size(bytes: i64) -> String {
    for (shift, unit) in [(30, "g"), (20, "m"), (10, "k")] {
        if bytes % (1 << shift) == 0 {
            return format!("size={}{unit}", bytes >> shift);
        }
    }
    format!("size={bytes}")
}

// ANCHOR: parse_mount
/// Parses `--mount type=bind|volume|tmpfs,source=,target=,readonly,bind-propagation=,
/// volume-nocopy,tmpfs-size=,tmpfs-mode=` with the docker CLI's checks, then the daemon's.
pub fn parse_mount_flag(text: &str) -> Result<MountRequest> {
    let f = mount_fields(text).map_err(|why| {
        cli_error(format!(
            "invalid argument {text:?} for \"--mount\" flag: {why}"
        ))
    })?;
    let kind = match f.kind.as_str() {
        "bind" => MountKind::Bind,
        "volume" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        other => anyhow::bail!("invalid mount config for type {other:?}: mount type unknown"),
    };
    let container = target(kind, &f.target)?;
    if container == "/" {
        return Err(mount_config(
            kind,
            "invalid specification: destination can't be '/'",
        ));
    }
    let mut request = MountRequest {
        kind,
        container,
        read_only: f.read_only,
        ..MountRequest::default()
    };
    match kind {
        MountKind::Bind => bind_fields(&mut request, f)?,
        MountKind::Volume => {
            if !f.source.is_empty() {
                check_volume_name(&f.source)?;
            }
            request.name = f.source;
            request.mode = "z".into();
            request.nocopy = f.nocopy.unwrap_or(false);
        }
        MountKind::Tmpfs => tmpfs_fields(&mut request, f)?,
    }
    Ok(request)
}
// ANCHOR_END: parse_mount

// ANCHOR: mount_config
/// The daemon's words for a `--mount` it refuses.
fn mount_config(kind: MountKind, why: &str) -> anyhow::Error {
    anyhow::anyhow!("invalid mount config for type {:?}: {why}", kind.name())
}
// ANCHOR_END: mount_config

// ANCHOR: bind_fields
/// The fields of `--mount type=bind`. Unlike `-v`, which makes a missing host directory,
/// `--mount` wants the source to exist; the propagation defaults to Docker's `rprivate`.
fn bind_fields(request: &mut MountRequest, f: MountFields) -> Result<()> {
    let config = |why: &str| mount_config(MountKind::Bind, why);
    if f.source.is_empty() {
        return Err(config("field Source must not be empty"));
    }
    if !f.source.starts_with('/') {
        return Err(config(&format!(
            "invalid mount path: '{}' mount path must be absolute",
            f.source
        )));
    }
    if !std::path::Path::new(&f.source).exists() {
        return Err(config(&format!(
            "bind source path does not exist: {}",
            f.source
        )));
    }
    request.host = PathBuf::from(&f.source);
    request.propagation = f.propagation.unwrap_or_else(|| "rprivate".into());
    if !matches!(
        request.propagation.as_str(),
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
    ) {
        return Err(config(&format!(
            "invalid propagation mode: {}",
            request.propagation
        )));
    }
    Ok(())
}
// ANCHOR_END: bind_fields

// ANCHOR: tmpfs_fields
/// The fields of `--mount type=tmpfs`: no source (a tmpfs is made, not found), Docker's
/// defaults, then the size and mode as the kernel's options.
fn tmpfs_fields(request: &mut MountRequest, f: MountFields) -> Result<()> {
    if !f.source.is_empty() {
        return Err(mount_config(
            MountKind::Tmpfs,
            "field Source must not be specified",
        ));
    }
    request.tmpfs = TMPFS_DEFAULTS.map(str::to_owned).to_vec();
    request
        .tmpfs
        .extend(f.tmpfs_size.filter(|s| *s > 0).map(tmpfs_size));
    request
        .tmpfs
        .extend(f.tmpfs_mode.map(|m| format!("mode={m:o}")));
    Ok(())
}
// ANCHOR_END: tmpfs_fields

/// Parses `--tmpfs /PATH[:OPTIONS]`: a tmpfs with Docker's defaults (`noexec,nosuid,nodev`),
/// then the options as given (`size=64m,mode=1777,exec`...), which the kernel checks.
pub fn parse_tmpfs_flag(text: &str) -> Result<MountRequest> {
    let (path, options) = text.split_once(':').unwrap_or((text, ""));
    if !path.starts_with('/') {
        anyhow::bail!("invalid mount path: '{path}' mount path must be absolute");
    }
    let container = target(MountKind::Tmpfs, path)?;
    if container == "/" {
        anyhow::bail!(
            "invalid mount config for type \"tmpfs\": invalid specification: destination \
             can't be '/'"
        );
    }
    let mut tmpfs: Vec<String> = TMPFS_DEFAULTS.map(str::to_owned).to_vec();
    let mut read_only = false;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            other => tmpfs.push(other.to_owned()),
        }
    }
    Ok(MountRequest {
        kind: MountKind::Tmpfs,
        container,
        read_only,
        tmpfs,
        ..MountRequest::default()
    })
}

/// Parses `--volumes-from CONTAINER[:ro|:rw]`: the container, and the access it forces
/// (`None`: each mount keeps its own).
pub fn parse_volumes_from(text: &str) -> Result<(String, Option<bool>)> {
    match text.rsplit_once(':') {
        None => Ok((text.to_owned(), None)),
        Some((name, "ro")) => Ok((name.to_owned(), Some(true))),
        Some((name, "rw")) => Ok((name.to_owned(), Some(false))),
        Some((_, mode)) => anyhow::bail!("invalid mode: {mode}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<MountRequest>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn volume_flags_are_binds_named_or_anonymous() {
        let bind = parse_volume_flag("/srv:/data:ro").unwrap();
        assert_eq!((bind.kind, bind.read_only), (MountKind::Bind, true));
        assert_eq!(
            (bind.mode.as_str(), bind.propagation.as_str()),
            ("ro", "rprivate")
        );
        let named = parse_volume_flag("myvol:/data/../data/").unwrap();
        assert_eq!(
            (named.kind, named.name.as_str()),
            (MountKind::Volume, "myvol")
        );
        assert_eq!(
            (named.container.as_str(), named.mode.as_str()),
            ("/data", "z")
        );
        let anonymous = parse_volume_flag("/data").unwrap();
        assert_eq!(
            (anonymous.kind, anonymous.name.as_str()),
            (MountKind::Volume, "")
        );
        assert_eq!((anonymous.mode.as_str(), anonymous.text.as_str()), ("", ""));
        assert!(parse_volume_flag("v1:/x:ro,nocopy").unwrap().nocopy);
        let cwd = std::env::current_dir().unwrap();
        let relative = parse_volume_flag("./sub:/x:ro").unwrap();
        assert_eq!(relative.host, cwd.join("sub"));
        assert_eq!(
            relative.text,
            format!("{}:/x:ro", cwd.join("sub").display())
        );
    }

    #[test]
    fn bad_volume_flags_get_dockers_messages() {
        assert_eq!(
            message(parse_volume_flag("/a:/b:/c:/d")),
            "invalid spec: /a:/b:/c:/d: too many colons"
        );
        assert_eq!(
            message(parse_volume_flag(":/x")),
            "invalid spec: :/x: empty section between colons"
        );
        assert_eq!(message(parse_volume_flag("v1:/x:foo")), "invalid mode: foo");
        assert_eq!(
            message(parse_volume_flag("v1:/x:rw,ro")),
            "invalid mode: rw,ro"
        );
        assert_eq!(
            message(parse_volume_flag("/h:/x:nocopy")),
            "invalid mode: nocopy"
        );
        assert_eq!(
            message(parse_volume_flag("v1:rel")),
            "invalid volume specification: 'v1:rel': invalid mount config for type \
             \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            message(parse_volume_flag("v1:/")),
            "invalid volume specification: 'v1:/': invalid mount config for type \
             \"volume\": invalid specification: destination can't be '/'"
        );
        assert!(message(parse_volume_flag("bad name:/x")).starts_with(
            "create bad name: \"bad name\" includes invalid characters for a local volume name"
        ));
        assert!(message(parse_volume_flag("a:/x")).contains("volume name is too short"));
    }

    #[test]
    fn mount_flags_are_checked_as_docker_checks_them() {
        let cases = [
            ("type=volume", "target is required"),
            ("target=/x,typo=1", "unexpected key 'typo' in 'typo=1'"),
            (
                "type=volume,target=/x,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=bind,source=/tmp,target=/x,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,target=/x,tmpfs-size=1",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=tmpfs,target=/x,tmpfs-size=abc",
                "invalid value for tmpfs-size: abc",
            ),
            (
                "type=volume,target=/x,readonly=maybe",
                "invalid value for readonly: maybe",
            ),
        ];
        for (text, why) in cases {
            let err = parse_mount_flag(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid argument {text:?} for \"--mount\" flag: {why}")
            );
            assert_eq!(crate::cli::exit_code_of(&err), code::FAILED, "{text}");
        }
        let daemon = [
            (
                "type=bind,target=/x",
                "invalid mount config for type \"bind\": field Source must not be empty",
            ),
            (
                "type=bind,source=/surely/not/here,target=/x",
                "invalid mount config for type \"bind\": bind source path does not exist: \
                 /surely/not/here",
            ),
            (
                "type=tmpfs,source=foo,target=/x",
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ),
            (
                "type=foo,target=/x",
                "invalid mount config for type \"foo\": mount type unknown",
            ),
            (
                "type=volume,target=rel",
                "invalid mount config for type \"volume\": invalid mount path: 'rel' mount \
                 path must be absolute",
            ),
        ];
        for (text, why) in daemon {
            assert_eq!(message(parse_mount_flag(text)), why, "{text}");
        }
        let tmpfs = parse_mount_flag("type=tmpfs,dst=/x,tmpfs-size=1m,tmpfs-mode=1700").unwrap();
        assert_eq!(
            tmpfs.tmpfs,
            ["noexec", "nosuid", "nodev", "size=1m", "mode=1700"]
        );
        let bind =
            parse_mount_flag("type=bind,src=/tmp,dst=/w,ro=true,bind-propagation=rslave").unwrap();
        assert_eq!(
            (bind.read_only, bind.propagation.as_str()),
            (true, "rslave")
        );
        let volume = parse_mount_flag("target=/z,volume-nocopy").unwrap();
        assert_eq!(
            (volume.kind, volume.nocopy, volume.mode.as_str()),
            (MountKind::Volume, true, "z")
        );
    }

    #[test]
    fn tmpfs_and_volumes_from_flags() {
        let t = parse_tmpfs_flag("/run:size=2m,mode=700,exec").unwrap();
        assert_eq!(
            t.tmpfs,
            ["noexec", "nosuid", "nodev", "size=2m", "mode=700", "exec"]
        );
        assert!(parse_tmpfs_flag("rel").is_err());
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".into(), Some(true))
        );
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1".into(), None));
        assert_eq!(
            parse_volumes_from("c1:xx").unwrap_err().to_string(),
            "invalid mode: xx"
        );
    }
}

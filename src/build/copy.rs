//! `COPY` and `ADD` from the build context: the files go into a fresh directory laid out as
//! the image's root, which becomes the step's layer (moby `builder/dockerfile/copy.go`).
//!
//! Docker's directory semantics: a source directory's contents (not the directory itself)
//! are copied; a file goes to `DEST/name` when `DEST` ends in `/`, names a directory of the
//! image or there are several sources, else to `DEST` itself. Files belong to root unless
//! `--chown UID[:GID]`; `--chmod` sets every copied file's and directory's mode. Sources may
//! use Go's `filepath.Match` wildcards (`*`, `?`, `[a-z]`) in their last component. The cache
//! key names a hash of every copied path, mode, owner and content, as Docker's
//! `COPY file:<hash> in <dest>`. `ADD` unpacks a local tar archive (plain or compressed) into
//! the destination directory, and fetches an http(s) URL as one file (not unpacked, mode
//! 0600, its mtime from `Last-Modified`). `--chown` takes names too, looked up in the image's
//! `/etc/passwd` and `/etc/group`. A heredoc source (`COPY <<EOF /file`, buildkit's syntax:
//! the classic builder has none) is a file named after its terminator, mode 0644, its text
//! expanded unless the terminator was quoted. `--link` is accepted and gives the same image.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::build::builder::{Builder, CurrentImage, TempDir};
use crate::build::instructions::{CopySpec, InlineSource};
use crate::image::store::hex;

/// The part of a stage's state a copy changes.
pub struct StepState<'a> {
    pub(crate) current: &'a mut crate::build::builder::CurrentImage,
    /// The stage's shell, which the history entry names.
    pub(crate) shell: &'a [String],
}

/// Who the copied files belong to and which mode they get.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
    mode: Option<u32>,
}

// ANCHOR: copy_step
/// Runs a `COPY` (or `ADD`, `add`) step.
pub fn copy_step(
    builder: &mut Builder,
    state: StepState,
    spec: &CopySpec,
    add: bool,
) -> Result<()> {
    let name = if add { "ADD" } else { "COPY" };
    let (urls, paths): (Vec<String>, Vec<String>) = spec
        .sources
        .iter()
        .cloned()
        .partition(|s| add && (s.starts_with("http://") || s.starts_with("https://")));
    // The source: the context (less what .dockerignore excludes), or with --from another
    // stage's or image's root filesystem, mounted read-only for the step.
    let _from_dir;
    let _from_mount;
    let (context, ignore) = match &spec.from {
        None if paths.is_empty() => (PathBuf::from("/nonexistent"), Ignore::default()),
        None => {
            let context = builder.options.context.clone().with_context(|| {
                format!("{name} needs a build context: the Dockerfile came on stdin")
            })?;
            let ignore = Ignore::load(&context)?;
            (context, ignore)
        }
        Some(from) => {
            if add {
                bail!("ADD --from is not supported: use COPY --from");
            }
            let image = builder.copy_source_image(from)?;
            _from_dir = TempDir::new(&builder.paths.root)?;
            _from_mount = mount_image(builder, &image, &_from_dir.path)?;
            (_from_dir.path.join("merged"), Ignore::default())
        }
    };
    let owner = owner(builder, state.current, spec)?;
    let mut sources = if paths.is_empty() {
        Vec::new()
    } else {
        expand_sources(&context, &paths, &ignore)?
    };
    let workdir = state.current.working_dir();
    let dest = absolute(&workdir, &spec.dest);
    // When nothing has to be fetched, unpacked or written first, the sources are hashed where
    // they are and a cached step copies nothing at all.
    let plain = urls.is_empty()
        && spec.inline.is_empty()
        && !(add && sources.iter().any(|s| is_archive(s)));
    if plain && !builder.options.no_cache {
        let dest_is_dir = spec.dest.ends_with('/')
            || sources.len() > 1
            || builder.is_dir_in(state.current, &dest)?;
        let walk = Walk {
            layer: Path::new("/"),
            context: &context.canonicalize().unwrap_or_else(|_| context.clone()),
            ignore: &ignore,
            owner,
            write: false,
            stat_only: false,
            newest_change: Cell::new(i64::MIN),
        };
        let copied = Copied {
            sources: &sources,
            dest: &dest,
            dest_is_dir,
            name,
        };
        // Another stage's or image's files are hashed as they are (their paths are a
        // temp mount's, new each build).
        let sum = match spec.from {
            None => sources_sum(builder, &copied, walk)?,
            Some(_) => walk_hash(&copied, &walk)?,
        };
        let comment = step_comment(name, spec, &sources, &sum);
        if builder.use_cache(state.current, &comment)? {
            return Ok(());
        }
    }
    let tmp = TempDir::new(&builder.paths.root)?;
    let inline_dir = tmp.path.join(".inline");
    for file in &spec.inline {
        sources.push(write_inline(&inline_dir, file)?);
    }
    let downloads = tmp.path.join(".download");
    let fetched = urls
        .iter()
        .map(|url| download(url, &downloads))
        .collect::<Result<Vec<_>>>()?;
    let layer = tmp.path.join("layer");
    let count = sources.len() + fetched.len();
    let dest_is_dir =
        spec.dest.ends_with('/') || count > 1 || builder.is_dir_in(state.current, &dest)?;
    let mut hasher = Sha256::new();
    for (path, mtime) in &fetched {
        let file = path.file_name().context("a download without a name")?;
        let target = if dest_is_dir {
            format!("{}/{}", dest.trim_end_matches('/'), file.to_string_lossy())
        } else {
            dest.clone()
        };
        let to = layer.join(target.trim_start_matches('/'));
        make_parents(&to)?;
        let url_owner = Owner {
            mode: Some(owner.mode.unwrap_or(0o600)),
            ..owner
        };
        copy_download(path, &to, url_owner, *mtime, &mut hasher)?;
    }
    for source in &sources {
        if add && is_archive(source) {
            if spec.chmod.is_some() {
                bail!("ADD --chmod of an archive is not supported by minidock build");
            }
            let dir = layer.join(dest.trim_start_matches('/'));
            unpack_archive(
                source,
                &dir,
                spec.chown.is_some().then_some(owner),
                &mut hasher,
            )?;
            continue;
        }
        let walk = Walk {
            layer: &layer,
            context: &context.canonicalize().unwrap_or_else(|_| context.clone()),
            ignore: &ignore,
            owner,
            write: true,
            stat_only: false,
            newest_change: Cell::new(i64::MIN),
        };
        copy_source(source, &dest, dest_is_dir, &walk, &mut hasher, name)?;
    }
    fs::create_dir_all(&layer).with_context(|| format!("mkdir {}", layer.display()))?;
    let all: Vec<PathBuf> = fetched
        .iter()
        .map(|(p, _)| p.clone())
        .chain(sources)
        .collect();
    let comment = step_comment(name, spec, &all, &hex(&hasher.finalize()));
    let created_by = crate::build::builder::nop_single(state.shell, &comment);
    builder.commit_step(state.current, &comment, Some(&layer), &created_by)
}
// ANCHOR_END: copy_step

/// Copies one source (not an archive to unpack) to its place under `walk.layer`: into `dest`
/// when it is a directory or `dest_is_dir` is false, else into `dest/NAME`.
fn copy_source(
    source: &Path,
    dest: &str,
    dest_is_dir: bool,
    walk: &Walk,
    hasher: &mut Sha256,
    name: &str,
) -> Result<()> {
    let meta = fs::symlink_metadata(source)
        .with_context(|| format!("{name} failed: stat {}", source.display()))?;
    let target = if meta.is_dir() || !dest_is_dir {
        dest.to_owned()
    } else {
        let file = source.file_name().context("a source without a name")?;
        format!("{}/{}", dest.trim_end_matches('/'), file.to_string_lossy())
    };
    let to = walk.layer.join(target.trim_start_matches('/'));
    if walk.write {
        make_parents(&to)?;
    }
    copy_tree(source, &to, walk, hasher, true)
}

/// The step's cache key and history comment, in Docker's words, the missing space after the
/// flags included (`COPY --chown=1000:1000file:<hash> in ./ `), with the destination as
/// written; `sources` are every fetched file and source, in that order.
fn step_comment(name: &str, spec: &CopySpec, sources: &[PathBuf], sum: &str) -> String {
    let kind = if sources.len() > 1 {
        "multi"
    } else if sources
        .first()
        .is_some_and(|s| fs::metadata(s).is_ok_and(|m| m.is_dir()))
    {
        "dir"
    } else {
        "file"
    };
    let flags: String = [("chown", &spec.chown), ("chmod", &spec.chmod)]
        .iter()
        .filter_map(|(flag, value)| value.as_ref().map(|v| format!("--{flag}={v}")))
        .collect();
    format!("{name} {flags}{kind}:{sum} in {} ", spec.dest)
}

/// The sources of a plain copy and where they go.
struct Copied<'a> {
    sources: &'a [PathBuf],
    dest: &'a str,
    dest_is_dir: bool,
    /// `COPY` or `ADD`, for errors.
    name: &'a str,
}

// ANCHOR: sources_sum
/// The hash of what a plain copy copies (every path, mode, owner and byte: the hash the copy
/// itself computes), without reading the bytes when the files have not changed. The hash is
/// kept in `<images>/build-cache/sums/`, named by a hash of the same walk's stat data in
/// place of the bytes (device, inode, size, modification and change times in nanoseconds),
/// as git's index trusts unchanged stat data. Any write, chmod or rename gives a file a new
/// change time, which no one can set back (stat(2)); a sum is stored only when every
/// entry's change time is over a second old, so a change in the same clock tick as the
/// hashing cannot go unseen.
fn sources_sum(builder: &Builder, copied: &Copied, walk: Walk) -> Result<String> {
    let stat_walk = Walk {
        stat_only: true,
        ..walk
    };
    let key = walk_hash(copied, &stat_walk)?;
    let dir = builder.store.dir().join("build-cache").join("sums");
    let file = dir.join(&key);
    if let Ok(sum) = fs::read_to_string(&file)
        && sum.len() == 64
        && sum.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(sum);
    }
    let walk = Walk {
        stat_only: false,
        ..stat_walk
    };
    let sum = walk_hash(copied, &walk)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if walk.newest_change.get() < now - 1 {
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        crate::state::write_atomic_unsynced(&file, sum.as_bytes())?;
    }
    Ok(sum)
}
// ANCHOR_END: sources_sum

/// One walk of the sources (see [`Walk`]), its hash in hex.
fn walk_hash(copied: &Copied, walk: &Walk) -> Result<String> {
    let mut hasher = Sha256::new();
    if walk.stat_only {
        hasher.update(b"minidock stat sum 1\0");
        hasher.update(walk.context.as_os_str().as_encoded_bytes());
    }
    for source in copied.sources {
        let (dest, dir) = (copied.dest, copied.dest_is_dir);
        copy_source(source, dest, dir, walk, &mut hasher, copied.name)?;
    }
    Ok(hex(&hasher.finalize()))
}

// ANCHOR: unpack_archive
/// `ADD`'s local archive: a tar (plain, gzip, bzip2, xz or zstd) unpacked into `dir`, owners
/// and modes as the archive has them, or owned by `chown` when given. Entries that would land
/// outside `dir` are refused by the tar reader. The archive's bytes go into the cache hash.
fn unpack_archive(
    source: &Path,
    dir: &Path,
    chown: Option<Owner>,
    hasher: &mut Sha256,
) -> Result<()> {
    let bytes = fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    hasher.update(&bytes);
    let (reader, _) = crate::image::archive::decompressed(std::io::Cursor::new(bytes))?;
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .with_context(|| format!("unpacking {}", source.display()))?;
    if let Some(owner) = chown {
        chown_tree(dir, owner)?;
    }
    Ok(())
}
// ANCHOR_END: unpack_archive

/// `lchown` of everything below `dir` (not `dir` itself, which existed before).
fn chown_tree(dir: &Path, owner: Owner) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        std::os::unix::fs::lchown(&path, Some(owner.uid), Some(owner.gid))
            .with_context(|| format!("chown {}", path.display()))?;
        if entry.file_type()?.is_dir() {
            chown_tree(&path, owner)?;
        }
    }
    Ok(())
}

/// Mounts `image`'s layers under `dir/merged` (an overlay with an empty upper dir, unmounted
/// on drop).
fn mount_image(
    builder: &Builder,
    image: &crate::image::store::Image,
    dir: &Path,
) -> Result<crate::overlay::OverlayMount> {
    let mut lowers: Vec<PathBuf> = builder.store.unpacked_layers(image)?;
    lowers.reverse();
    for sub in ["upper", "work", "merged"] {
        fs::create_dir(dir.join(sub)).with_context(|| format!("mkdir {sub}"))?;
    }
    if lowers.is_empty() {
        lowers.push(dir.join("empty"));
        fs::create_dir(&lowers[0]).context("mkdir empty")?;
    }
    crate::overlay::mount(
        &lowers,
        &dir.join("upper"),
        &dir.join("work"),
        &dir.join("merged"),
    )
}

// ANCHOR: chown
/// `--chown USER[:GROUP]` and `--chmod` (octal). As the classic builder's `parseChownFlag`:
/// a name is looked up in the image's `/etc/passwd` or `/etc/group`, a number is taken as
/// it is, and `USER` alone stands for the group too (`--chown=app` is `app:app`).
fn owner(builder: &Builder, current: &CurrentImage, spec: &CopySpec) -> Result<Owner> {
    let (uid, gid) = match &spec.chown {
        None => (0, 0),
        Some(text) => {
            let (u, g) = text.split_once(':').unwrap_or((text, text));
            let lookup = |file: &str, name: &str, what: &str| -> Result<u32> {
                if let Ok(n) = name.parse::<u32>() {
                    return Ok(n);
                }
                let table = builder.read_in(current, file)?.unwrap_or_default();
                id_by_name(&String::from_utf8_lossy(&table), name).with_context(|| {
                    format!(
                        "unable to convert uid/gid chown string to host mapping: can't find {what} for {}: no such {}: {name}",
                        if what == "uid" { format!("user {name}") } else { format!("group {name}") },
                        if what == "uid" { "user" } else { "group" },
                    )
                })
            };
            (
                lookup("/etc/passwd", u, "uid")?,
                lookup("/etc/group", g, "gid")?,
            )
        }
    };
    let mode = spec
        .chmod
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .with_context(|| format!("invalid chmod parameter {m:?}"))
        })
        .transpose()?;
    Ok(Owner { uid, gid, mode })
}

/// The third field (the ID) of the `/etc/passwd` or `/etc/group` line named `name`.
fn id_by_name(table: &str, name: &str) -> Option<u32> {
    table
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
}
// ANCHOR_END: chown

/// A heredoc source written as `dir/NAME` (0644), its text as the parser left it (already
/// expanded by the step when the terminator was not quoted).
fn write_inline(dir: &Path, file: &InlineSource) -> Result<PathBuf> {
    if file.path.is_empty() || file.path.contains('/') || file.path == ".." || file.path == "." {
        bail!(
            "a heredoc source's name must be a plain file name: {:?}",
            file.path
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let path = dir.join(&file.path);
    fs::write(&path, &file.data).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(path)
}

// ANCHOR: download
/// `ADD URL`: the body fetched into `dir/NAME` (NAME the URL path's last component), with its
/// `Last-Modified` time when the server sends one. Errors: a URL without a file name, a
/// connection failure, a status other than 2xx (moby's `failed to GET … with status …`).
fn download(url: &str, dir: &Path) -> Result<(PathBuf, Option<std::time::SystemTime>)> {
    let path_part = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, p)| p.split(['?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    let name = path_part.rsplit('/').next().unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        bail!("cannot determine filename from url: {url}");
    }
    let response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .with_context(|| format!("failed to GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("failed to GET {url} with status {status}");
    }
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let path = dir.join(name);
    let mut file =
        fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    std::io::copy(&mut response.into_body().into_reader(), &mut file)
        .with_context(|| format!("reading {url}"))?;
    Ok((path, mtime))
}
// ANCHOR_END: download

// ANCHOR: download_mtime
/// An HTTP date (`Mon, 02 Jan 2006 15:04:05 GMT`, RFC 7231's IMF-fixdate) as a time.
fn parse_http_date(text: &str) -> Option<std::time::SystemTime> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = words.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    crate::state::parse_rfc3339(&format!("{year}-{month:02}-{day:02}T{time}Z"))
}

/// A downloaded file into the layer at `to`, owned and moded as `owner` says, its mtime set.
fn copy_download(
    from: &Path,
    to: &Path,
    owner: Owner,
    mtime: Option<std::time::SystemTime>,
    hasher: &mut Sha256,
) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mode = owner.mode.unwrap_or(0o600);
    hasher.update(to.file_name().unwrap_or_default().as_encoded_bytes());
    hasher.update(format!("\0{mode:o}\0{}:{}\0", owner.uid, owner.gid).as_bytes());
    hasher.update(&bytes);
    fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    std::os::unix::fs::chown(to, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("chown {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))?;
    if let Some(mtime) = mtime {
        fs::File::options()
            .write(true)
            .open(to)
            .and_then(|f| f.set_modified(mtime))
            .with_context(|| format!("setting the mtime of {}", to.display()))?;
    }
    Ok(())
}
// ANCHOR_END: download_mtime

/// The source paths inside the context, wildcards matched; a path leaving the context is
/// refused.
fn expand_sources(context: &Path, sources: &[String], ignore: &Ignore) -> Result<Vec<PathBuf>> {
    let root = context
        .canonicalize()
        .with_context(|| format!("the build context {}", context.display()))?;
    let mut out = Vec::new();
    for source in sources {
        check_inside_context(source)?;
        let rel = clean(source);
        let (dir, last) = match rel.rsplit_once('/') {
            Some((d, l)) => (d.to_owned(), l.to_owned()),
            None => (String::new(), rel.clone()),
        };
        if has_wildcard(&dir) {
            bail!(
                "wildcards outside a source's last component are not supported by minidock build: {source:?}"
            );
        }
        let found: Vec<String> = if has_wildcard(&last) {
            let pattern = go_match_regex(&last)?;
            let mut names: Vec<_> = fs::read_dir(resolve_in(&root, &dir)?)
                .with_context(|| format!("reading {dir:?} in the build context"))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| pattern.is_match(n))
                .filter(|n| !ignore.excluded(format!("{dir}/{n}").trim_start_matches('/')))
                .collect();
            names.sort();
            names.into_iter().map(|n| format!("{dir}/{n}")).collect()
        } else {
            vec![rel.clone()]
        };
        if found.is_empty() {
            bail!("COPY failed: no source files were specified");
        }
        for path in found {
            if !rel.is_empty() && ignore.excluded(&rel) && !has_wildcard(&last) {
                bail!(
                    "COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
                );
            }
            let path = resolve_in(&root, &path)?;
            if fs::symlink_metadata(&path).is_err() {
                bail!(
                    "COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
                );
            }
            out.push(path);
        }
    }
    Ok(out)
}

/// Refuses a source whose `..` climbs above the context, read as the classic builder reads it
/// (one leading `/`, then one leading `./`, dropped), with its message; a pattern with
/// wildcards is matched inside the context instead.
fn check_inside_context(source: &str) -> Result<()> {
    let path = source.strip_prefix('/').unwrap_or(source);
    let path = path.strip_prefix("./").unwrap_or(path);
    if has_wildcard(path) {
        return Ok(());
    }
    let mut depth = 0i32;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            bail!("COPY failed: forbidden path outside the build context: {path} ()");
        }
    }
    Ok(())
}

/// A source path relative to the context, with `.`/`..` resolved inside it.
fn clean(source: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

// ANCHOR: resolve_in
/// `rel` resolved inside `root` as if `root` were `/` (moby's `FollowSymlinkInScope`): every
/// symlink on the way is followed with its target read against `root` (an absolute target
/// starts again at `root`, `..` stops at it), so the result never leaves `root`. The last
/// component is followed too: a source that is a symlink copies what it points to.
pub(crate) fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut parts: std::collections::VecDeque<String> = rel
        .split('/')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = parts.pop_front() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    bail!("too many levels of symbolic links in {rel:?}");
                }
                let target = fs::read_link(&candidate)
                    .with_context(|| format!("readlink {}", candidate.display()))?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for p in target.split('/').rev().filter(|p| !p.is_empty()) {
                    parts.push_front(p.to_owned());
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved.join("/")))
}
// ANCHOR_END: resolve_in

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` pattern for one name as a regex.
fn go_match_regex(pattern: &str) -> Result<regex::Regex> {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                for c in chars.by_ref() {
                    match c {
                        ']' => break,
                        '^' | '!' if re.ends_with('[') => re.push('^'),
                        '\\' => re.push_str("\\\\"),
                        c => re.push(c),
                    }
                }
                re.push(']');
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).with_context(|| format!("bad source pattern {pattern:?}"))
}

/// Whether a file starts with a tar or compressed stream's magic bytes.
fn is_archive(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = vec![0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// `dest` made absolute against the working dir (Docker keeps a trailing `/`).
fn absolute(workdir: &str, dest: &str) -> String {
    let joined = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    };
    let trailing = joined.ends_with('/') || dest == ".";
    let cleaned = format!("/{}", clean(&joined));
    if trailing && cleaned != "/" {
        format!("{cleaned}/")
    } else {
        cleaned
    }
}

fn make_parents(to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
    }
    Ok(())
}

/// Copies `from` (a file, symlink or directory's contents) to `to` (unless `walk.write` is
/// false), owned and moded as `owner` says, hashing each entry's path (relative to
/// `walk.layer`), mode, owner and bytes. Every entry keeps its modification time in whole
/// seconds, as moby's tar copy does (`FileInfoHeader` truncates it), except the directory a
/// directory's contents go into (`top`), which has the time of the copy.
fn copy_tree(from: &Path, to: &Path, walk: &Walk, hasher: &mut Sha256, top: bool) -> Result<()> {
    let owner = walk.owner;
    let meta = fs::symlink_metadata(from).with_context(|| format!("stat {}", from.display()))?;
    let to = if to.to_string_lossy().ends_with('/') && !meta.is_dir() {
        to.join(from.file_name().unwrap_or_default())
    } else {
        to.to_path_buf()
    };
    let rel = to.strip_prefix(walk.layer).unwrap_or(&to);
    hasher.update(rel.as_os_str().as_encoded_bytes());
    hasher.update(format!("\0{:o}\0{}:{}\0", meta.mode(), owner.uid, owner.gid).as_bytes());
    if walk.stat_only {
        hasher.update(stat_words(&meta).as_bytes());
        walk.newest_change
            .set(walk.newest_change.get().max(meta.ctime()));
    }
    if meta.file_type().is_symlink() {
        return copy_symlink(from, &to, &meta, walk, hasher);
    }
    if meta.is_dir() {
        copy_dir(from, &to, walk, hasher)?;
    } else if meta.is_file() && walk.stat_only {
        return Ok(());
    } else if meta.is_file() {
        let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        hasher.update(&bytes);
        if walk.write {
            fs::write(&to, &bytes).with_context(|| format!("writing {}", to.display()))?;
        }
    } else {
        bail!(
            "copying {}: only files, directories and symlinks are supported",
            from.display()
        );
    }
    if !walk.write {
        return Ok(());
    }
    let mode = owner.mode.unwrap_or(meta.mode() & 0o7777);
    std::os::unix::fs::chown(&to, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("chown {}", to.display()))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))?;
    if top && meta.is_dir() {
        return Ok(());
    }
    keep_mtime(&to, &meta)
}

/// A directory's entries (less what `.dockerignore` excludes), copied under `to`.
fn copy_dir(from: &Path, to: &Path, walk: &Walk, hasher: &mut Sha256) -> Result<()> {
    if walk.write {
        fs::create_dir_all(to).with_context(|| format!("mkdir {}", to.display()))?;
    }
    let mut entries: Vec<_> = fs::read_dir(from)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(walk.context).unwrap_or(&path);
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if walk.ignore.excluded(&rel.to_string_lossy()) && !(is_dir && walk.ignore.has_exceptions())
        {
            continue;
        }
        copy_tree(&path, &to.join(entry.file_name()), walk, hasher, false)?;
    }
    Ok(())
}

/// A symlink, recreated at `to` with the step's owner and the link's own mtime.
fn copy_symlink(
    from: &Path,
    to: &Path,
    meta: &fs::Metadata,
    walk: &Walk,
    hasher: &mut Sha256,
) -> Result<()> {
    let target = fs::read_link(from)?;
    hasher.update(target.as_os_str().as_encoded_bytes());
    if !walk.write {
        return Ok(());
    }
    let _ = fs::remove_file(to);
    std::os::unix::fs::symlink(&target, to).with_context(|| format!("symlink {}", to.display()))?;
    std::os::unix::fs::lchown(to, Some(walk.owner.uid), Some(walk.owner.gid))?;
    keep_mtime(to, meta)
}

/// What tells a changed file from an unchanged one without reading it: device, inode, size,
/// modification and change times (seconds and nanoseconds).
fn stat_words(meta: &fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{}:{}.{}\0",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// Sets `to`'s access and modification times (not following a symlink) to `meta`'s
/// modification time, whole seconds (utimensat(2)).
fn keep_mtime(to: &Path, meta: &fs::Metadata) -> Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    let time = nix::sys::time::TimeSpec::new(meta.mtime(), 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        to,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("utimensat {}", to.display()))
}

/// Where a copy goes and what it skips.
struct Walk<'a> {
    /// The step's layer dir (paths are hashed relative to it).
    layer: &'a Path,
    /// The context's real path (`.dockerignore` patterns are relative to it).
    context: &'a Path,
    ignore: &'a Ignore,
    owner: Owner,
    /// False: only hash what would be copied (to look the step up in the cache).
    write: bool,
    /// Hash each entry's stat data instead of its bytes (see [`sources_sum`]); never writes.
    stat_only: bool,
    /// The newest change time (ctime, seconds) the walk met.
    newest_change: Cell<i64>,
}

// ANCHOR: dockerignore
/// The context's `.dockerignore`, as moby's `patternmatcher`: one pattern a line (`#`
/// comments, blank lines skipped), cleaned and relative to the context; `*`, `?` and `[…]`
/// within a name, `**` across directories; a pattern also excludes everything below a
/// directory it matches; `!` re-includes; the last matching pattern decides.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<(regex::Regex, bool)>,
}

impl Ignore {
    /// Reads `CONTEXT/.dockerignore` (none: nothing excluded).
    pub fn load(context: &Path) -> Result<Ignore> {
        let path = context.join(".dockerignore");
        match fs::read_to_string(&path) {
            Ok(text) => Ignore::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ignore::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The patterns of a `.dockerignore` text.
    pub fn parse(text: &str) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pattern);
            if cleaned.is_empty() {
                continue;
            }
            patterns.push((ignore_regex(&cleaned)?, exception));
        }
        Ok(Ignore { patterns })
    }
}
// ANCHOR_END: dockerignore

// ANCHOR: dockerignore_excluded
impl Ignore {
    /// Whether `rel` (a path relative to the context) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let mut excluded = false;
        for (pattern, exception) in &self.patterns {
            let mut candidate = rel.as_str();
            let matched = loop {
                if pattern.is_match(candidate) {
                    break true;
                }
                match candidate.rsplit_once('/') {
                    Some((parent, _)) => candidate = parent,
                    None => break false,
                }
            };
            if matched {
                excluded = !exception;
            }
        }
        excluded
    }

    /// Whether any pattern is an `!` exception (an excluded directory is walked then).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(_, e)| *e)
    }
}
// ANCHOR_END: dockerignore_excluded

// ANCHOR: dockerignore_regex
/// A `.dockerignore` pattern as a regex over slash-separated relative paths.
fn ignore_regex(pattern: &str) -> Result<regex::Regex> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i..].iter().position(|&c| c == ']');
                let Some(end) = end else {
                    bail!("bad .dockerignore pattern {pattern:?}: no closing ]");
                };
                let class: String = chars[i + 1..i + end].iter().collect();
                let class = class.replacen('!', "^", usize::from(class.starts_with('!')));
                re.push_str(&format!("[{}]", class.replace('\\', "\\\\")));
                i += end;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).with_context(|| format!("bad .dockerignore pattern {pattern:?}"))
}
// ANCHOR_END: dockerignore_regex

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_patterns_as_docker_reads_them() {
        assert_eq!(absolute("/app", "x"), "/app/x");
        assert_eq!(absolute("/app", "."), "/app/");
        assert_eq!(absolute("/", "/a/../b/"), "/b/");
        let re = go_match_regex("*.txt").unwrap();
        assert!(re.is_match("a.txt") && !re.is_match("a.txt.bak"));
        let re = go_match_regex("f[0-9]?").unwrap();
        assert!(re.is_match("f1x") && !re.is_match("fa1"));
        assert_eq!(clean("../../etc/passwd"), "etc/passwd");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::write(r.join("bin/busybox"), "x").unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("../../../etc", r.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve_in(r, "bin/sh").unwrap(), r.join("bin/busybox"));
        assert_eq!(resolve_in(r, "up/passwd").unwrap(), r.join("etc/passwd"));
        assert!(resolve_in(r, "loop").is_err());
    }

    #[test]
    fn dockerignore_patterns_and_exceptions() {
        let ignore =
            Ignore::parse("# comment\n*.md\n!README.md\nbuild\n**/*.tmp\n/secret?\n").unwrap();
        assert!(ignore.excluded("notes.md"));
        assert!(!ignore.excluded("README.md"));
        assert!(!ignore.excluded("docs/notes.md"));
        assert!(ignore.excluded("build"));
        assert!(ignore.excluded("build/out/x"));
        assert!(ignore.excluded("a/b/c.tmp") && ignore.excluded("c.tmp"));
        assert!(ignore.excluded("secret1") && !ignore.excluded("secret12"));
        assert!(!ignore.excluded("src/main.rs"));
        assert!(ignore.has_exceptions());
    }
}

//! The image subcommands of `minidock`, with Docker's flags and output: `import`, `images`,
//! `tag`, `rmi` and `image inspect` (and the `image ls|rm|tag|import|inspect` spellings).
//!
//! `src/bin/minidock.rs` only parses arguments into these clap structs and calls the `run_*`
//! functions; the formatting lives here, in functions that return strings, so the tests check
//! exactly what a user sees.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;

use super::import::{ImportOptions, import};
use super::reference::Reference;
use super::store::{ContainerUse, Image, Removed, Store, containers_from_state};
use crate::cli::Exit;
use crate::state::disk_full_at;

/// Docker's CLI exits 1 when a request fails (no such image, a conflict).
const REQUEST_FAILED: u8 = 1;

/// `minidock import [OPTIONS] file|- [REPOSITORY[:TAG]]`
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The root filesystem tarball (plain or gzip), or - to read it from stdin
    pub source: String,
    /// The name to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Set the commit message (the history comment)
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set the platform, as os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
}

/// `minidock images [OPTIONS] [REPOSITORY[:TAG]]`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (dangling=true|false, reference=PATTERN,
    /// label=KEY[=VALUE], before=IMAGE, since=IMAGE)
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Format the output with a Go template ({{.ID}}, {{json .}}, or `table` and columns:
    /// ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size, Containers, SharedSize,
    /// UniqueSize, VirtualSize)
    #[arg(long)]
    pub format: Option<String>,
}

/// `minidock tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`
#[derive(Debug, Clone, clap::Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `minidock rmi [OPTIONS] IMAGE [IMAGE...]`
#[derive(Debug, Clone, clap::Args)]
pub struct RmiArgs {
    /// Force removal of the image: untag it even when a container uses it, or when it is
    /// tagged in several repositories (by ID, an image a running container uses stays)
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `minidock image inspect IMAGE [IMAGE...]`
#[derive(Debug, Clone, clap::Args)]
pub struct ImageInspectArgs {
    /// Format the output with a Go template ({{.Id}}, {{json .RootFS}}, {{range}}...)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `minidock image COMMAND`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImageCommand {
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

/// `minidock image ...`
pub fn run_image(root: &Path, command: &ImageCommand) -> Result<u8> {
    match command {
        ImageCommand::Import(args) => run_import(root, args),
        ImageCommand::Inspect(args) => run_image_inspect(root, args),
        ImageCommand::Ls(args) => run_images(root, args),
        ImageCommand::Rm(args) => run_rmi(root, args),
        ImageCommand::Tag(args) => run_tag(root, args),
    }
}

// ANCHOR: run_import
/// `minidock import`: prints the new image's ID.
pub fn run_import(root: &Path, args: &ImportArgs) -> Result<u8> {
    let names = match &args.reference {
        Some(text) => vec![Reference::parse(text).map_err(request_failed)?],
        None => Vec::new(),
    };
    let store = Store::open(root).map_err(|err| disk_full_at(err, root))?;
    let options = ImportOptions {
        source: args.source.clone(),
        message: args.message.clone(),
        changes: args.changes.clone(),
        platform: args.platform.clone(),
        created: None,
    };
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let input: Box<dyn Read> = if args.source == "-" {
        Box::new(io::stdin().lock())
    } else if is_url {
        super::import::open_url(&args.source).map_err(request_failed)?
    } else {
        Box::new(
            File::open(&args.source)
                .with_context(|| format!("opening {}", args.source))
                .map_err(request_failed)?,
        )
    };
    let image = import(&store, input, &names, &options)
        .map_err(|err| request_failed(disk_full_at(err, store.dir())))?;
    println!("{}", image.id);
    Ok(0)
}
// ANCHOR_END: run_import

/// `minidock images`
pub fn run_images(root: &Path, args: &ImagesArgs) -> Result<u8> {
    let store = Store::open(root)?;
    let table = images_table(&store, args, SystemTime::now())?;
    io::stdout()
        .lock()
        .write_all(table.as_bytes())
        .context("writing to stdout")?;
    Ok(0)
}

/// The images less the intermediate ones (untagged, and the parent of another image in the
/// store: the classic builder's step images), which Docker lists only with `-a`.
fn without_intermediate(store: &Store, images: Vec<Image>) -> Result<Vec<Image>> {
    let parents = parent_ids(store)?;
    Ok(images
        .into_iter()
        .filter(|i| !i.names.is_empty() || !parents.contains(&i.id.to_string()))
        .collect())
}

/// The IDs of the images some present image was made from (moby's images with children).
fn parent_ids(store: &Store) -> Result<BTreeSet<String>> {
    let links = store.parents()?;
    if links.is_empty() {
        return Ok(BTreeSet::new());
    }
    let present: BTreeSet<String> = store.images()?.iter().map(|i| i.id.to_string()).collect();
    Ok(links
        .into_iter()
        .filter(|(child, _)| present.contains(child))
        .map(|(_, parent)| parent)
        .collect())
}

/// `minidock tag`
pub fn run_tag(root: &Path, args: &TagArgs) -> Result<u8> {
    let target = Reference::parse(&args.target).map_err(request_failed)?;
    let store = Store::open(root)?;
    store.tag(&args.source, &target).map_err(request_failed)?;
    Ok(0)
}

/// `minidock rmi`, with the containers found under `<root>/containers/` as the users.
pub fn run_rmi(root: &Path, args: &RmiArgs) -> Result<u8> {
    run_rmi_with(root, args, |_| containers_from_state(root))
}

// ANCHOR: run_rmi
/// `minidock rmi`, with the container layer saying which containers use which image. Like
/// Docker, it goes on after a failure and exits 1 if any image could not be removed.
pub fn run_rmi_with(
    root: &Path,
    args: &RmiArgs,
    in_use: impl Fn(&Store) -> Result<Vec<ContainerUse>>,
) -> Result<u8> {
    let store = Store::open(root)?;
    let mut status = 0;
    for name in &args.images {
        match store.remove(name, args.force, &in_use) {
            Ok(events) => {
                let mut out = io::stdout().lock();
                for event in events {
                    let line = match event {
                        Removed::Untagged(reference) => {
                            format!("Untagged: {}", reference.familiar())
                        }
                        Removed::Deleted(id) => format!("Deleted: {id}"),
                    };
                    writeln!(out, "{line}").context("writing to stdout")?;
                }
            }
            Err(err) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                status = REQUEST_FAILED;
            }
        }
    }
    Ok(status)
}
// ANCHOR_END: run_rmi

/// `minidock image inspect`: a JSON array (or each image through `-f`'s template), then one
/// error line per image not found (exit 1).
pub fn run_image_inspect(root: &Path, args: &ImageInspectArgs) -> Result<u8> {
    let format = args
        .format
        .as_deref()
        .map(crate::format::Format::inspect)
        .transpose()
        .map_err(|err| Exit::new(crate::format::BAD_TEMPLATE, format!("{err:#}")))?;
    let store = Store::open(root)?;
    let mut found = Vec::new();
    let mut status = 0;
    for name in &args.images {
        match store.resolve(name) {
            Ok(image) => found.push(inspect(&store, &image)?),
            Err(err) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                status = REQUEST_FAILED;
            }
        }
    }
    let mut out = io::stdout().lock();
    match &format {
        Some(format) => {
            for one in &found {
                let value = crate::format::to_value(&crate::format::Json::of(one)?, &INSPECT_SHAPE);
                match format.execute(&value) {
                    Ok(text) => writeln!(out, "{text}").context("writing to stdout")?,
                    Err(err) => {
                        eprintln!("minidock: {err:#}");
                        status = REQUEST_FAILED;
                    }
                }
            }
        }
        None => writeln!(out, "{}", to_docker_json(&found)?).context("writing to stdout")?,
    }
    Ok(status)
}

/// Which objects of [`ImageInspect`] are Go maps, for `image inspect -f`.
pub const INSPECT_SHAPE: crate::format::Shape = crate::format::Shape {
    maps: &[
        "Config.ExposedPorts",
        "Config.Volumes",
        "Config.Labels",
        "GraphDriver.Data",
        "Descriptor.annotations",
    ],
    pointers: &["Descriptor.platform"],
    omitted: &[],
};

/// Makes an error exit 1 (Docker's code for a failed request), unless it carries its own code.
pub fn request_failed(err: anyhow::Error) -> anyhow::Error {
    if err.chain().any(|cause| cause.is::<Exit>()) {
        return err;
    }
    Exit::new(REQUEST_FAILED, format!("{err:#}")).into()
}

// ------------------------------------------------------------------------------------------
// images
// ------------------------------------------------------------------------------------------

// ANCHOR: images_table
/// The output of `images`, at time `now` (for the CREATED column).
pub fn images_table(store: &Store, args: &ImagesArgs, now: SystemTime) -> Result<String> {
    let filter = match &args.filter {
        Some(text) => Some(ImagesFilter::parse(text).map_err(request_failed)?),
        None => None,
    };
    let default_table = if args.digests {
        IMAGES_DIGESTS_TABLE
    } else {
        IMAGES_TABLE
    };
    let format = crate::format::chosen(args.format.as_deref(), args.quiet)
        .map(|text| crate::format::Format::list(text, default_table))
        .transpose()
        .map_err(request_failed)?;
    let mut values = Vec::new();
    let mut images = store.images()?;
    // Newest first, as Docker lists them.
    images.sort_by(|a, b| {
        b.created()
            .cmp(&a.created())
            .then_with(|| a.names.cmp(&b.names))
    });
    let filters = crate::container::filter::Filters::parse(&args.filters, IMAGES_FILTER_KEYS)?;
    images = filter_images(store, images, &filters)?;
    if !args.all {
        images = without_intermediate(store, images)?;
    }

    let id_of = |image: &Image| {
        if args.no_trunc {
            image.id.to_string()
        } else {
            image.short_id().to_owned()
        }
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut quiet_ids: Vec<String> = Vec::new();
    for image in &images {
        // Walking the unpacked layers costs time: once per image, only when shown.
        let size = if args.quiet && format.is_none() {
            String::new()
        } else {
            human_size(super::size::image_size(store, image)?)
        };
        // One row per name; an untagged image is one `<none>` row.
        let names: Vec<Option<&Reference>> = if image.names.is_empty() {
            vec![None]
        } else {
            image.names.iter().map(Some).collect()
        };
        for name in names {
            if let Some(filter) = &filter
                && !name.is_some_and(|n| filter.matches(n))
            {
                continue;
            }
            if filters.contains("reference")
                && !name.is_some_and(|n| reference_matches(filters.get("reference"), n))
            {
                continue;
            }
            if format.is_some() {
                values.push(image_row(image, name, &size, args, now));
                continue;
            }
            if args.quiet {
                let id = id_of(image);
                if !quiet_ids.contains(&id) {
                    quiet_ids.push(id);
                }
                continue;
            }
            let none = || "<none>".to_owned();
            let mut row = vec![
                name.map_or_else(none, Reference::familiar_repository),
                name.and_then(|n| n.tag()).map_or_else(none, str::to_owned),
            ];
            if args.digests {
                row.push(image.repo_digest(name).to_string());
            }
            row.push(id_of(image));
            row.push(match image.created() {
                Some(created) => {
                    let age = now.duration_since(created).unwrap_or(Duration::ZERO);
                    format!("{} ago", human_duration(age))
                }
                None => "N/A".to_owned(),
            });
            row.push(size.clone());
            rows.push(row);
        }
    }
    if let Some(format) = format {
        return format
            .render_list(&values, &crate::format::header(IMAGES_HEADER))
            .map_err(request_failed);
    }
    if args.quiet {
        return Ok(quiet_ids.iter().map(|id| format!("{id}\n")).collect());
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    rows.insert(0, header.into_iter().map(str::to_owned).collect());
    Ok(format_table(&rows))
}
// ANCHOR_END: images_table

/// Docker's default `images` table, as a template.
pub const IMAGES_TABLE: &str = r"{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
/// Docker's `images --digests` table, as a template.
pub const IMAGES_DIGESTS_TABLE: &str =
    r"{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// The column names of `images --format 'table ...'`, by field.
pub const IMAGES_HEADER: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// One row of `images` as `--format` sees it: Docker's `ImageContext` fields, as strings.
/// `size` is the image's size as shown ([`human_size`] of [`super::size::image_size`]).
pub fn image_row(
    image: &Image,
    name: Option<&Reference>,
    size: &str,
    args: &ImagesArgs,
    now: SystemTime,
) -> gotmpl::Value {
    let none = || "<none>".to_owned();
    let created = image.created();
    crate::format::row(vec![
        (
            "ID",
            if args.no_trunc {
                image.id.to_string()
            } else {
                image.short_id().to_owned()
            },
        ),
        (
            "Repository",
            name.map_or_else(none, Reference::familiar_repository),
        ),
        (
            "Tag",
            name.and_then(|n| n.tag()).map_or_else(none, str::to_owned),
        ),
        ("Digest", image.repo_digest(name).to_string()),
        (
            "CreatedSince",
            created.map_or_else(
                || "N/A".to_owned(),
                |t| {
                    let age = now.duration_since(t).unwrap_or(Duration::ZERO);
                    format!("{} ago", human_duration(age))
                },
            ),
        ),
        (
            "CreatedAt",
            crate::format::go_time(created.unwrap_or(std::time::UNIX_EPOCH)),
        ),
        ("Size", size.to_owned()),
        ("Containers", "N/A".to_owned()),
        ("SharedSize", "N/A".to_owned()),
        ("UniqueSize", "N/A".to_owned()),
        ("VirtualSize", size.to_owned()),
    ])
}

/// The keys `images --filter` takes.
pub const IMAGES_FILTER_KEYS: &[&str] = &["before", "dangling", "label", "reference", "since"];

// ANCHOR: images_filters
/// `images --filter` as moby's image list applies it: `dangling=true` keeps the untagged
/// images no other image was made from (moby's `Heads`, so with or without `-a` no
/// intermediate image), `false` the tagged; `label=KEY[=VALUE]` the images whose config has every label,
/// `before=IMAGE`/`since=IMAGE` those created before/after that image (an unknown one is
/// `No such image`). Errors: `Invalid filter 'dangling=[VALUE]'` for any other value (exit 1).
pub fn filter_images(
    store: &Store,
    images: Vec<Image>,
    filters: &crate::container::filter::Filters,
) -> Result<Vec<Image>> {
    let dangling = match filters.get("dangling").last().map(String::as_str) {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Some(false),
        Some(v) => {
            return Err(crate::container::filter::invalid(&format!(
                "dangling=[{v}]"
            )));
        }
    };
    let created_of = |key: &str| -> Result<Option<SystemTime>> {
        match filters.get(key).first() {
            Some(name) => Ok(store.resolve(name).map_err(request_failed)?.created()),
            None => Ok(None),
        }
    };
    let (before, since) = (created_of("before")?, created_of("since")?);
    let parents = match dangling {
        Some(true) => parent_ids(store)?,
        _ => BTreeSet::new(),
    };
    Ok(images
        .into_iter()
        .filter(|image| {
            let labels: std::collections::BTreeMap<String, String> = image
                .config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone())
                .map(|l| l.into_iter().collect())
                .unwrap_or_default();
            dangling.is_none_or(|d| d == image.names.is_empty())
                && !parents.contains(&image.id.to_string())
                && filters.matches_labels("label", &labels)
                && before.is_none_or(|b| image.created().is_some_and(|c| c < b))
                && since.is_none_or(|s| image.created().is_some_and(|c| c > s))
        })
        .collect())
}

/// `reference=PATTERN`: Go's `path.Match` of any pattern against the familiar name with its
/// tag (`busybox:latest`), or else without it (`busybox`), as distribution's `FamiliarMatch`.
pub fn reference_matches(patterns: &[String], name: &Reference) -> bool {
    let with_tag = name.familiar();
    let without = name.familiar_repository();
    patterns.iter().any(|p| {
        path_match(p.as_bytes(), with_tag.as_bytes())
            || path_match(p.as_bytes(), without.as_bytes())
    })
}

/// Go's `path.Match`: `*` is any run of characters but `/`, `?` one such character,
/// `[...]` a class (`[^...]` negated, `a-z` ranges), `\\` quotes the next one.
pub fn path_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != b'/')
            .any(|i| path_match(rest, &text[i..])),
        Some((b'?', rest)) => text
            .split_first()
            .is_some_and(|(&c, tail)| c != b'/' && path_match(rest, tail)),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            let Some(end) = rest.iter().skip(1).position(|&b| b == b']').map(|p| p + 1) else {
                return false;
            };
            let (class, after) = (&rest[..end], &rest[end + 1..]);
            let (negated, class) = match class.split_first() {
                Some((b'^', more)) => (true, more),
                _ => (false, class),
            };
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negated && c != b'/' && path_match(after, tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first() == Some(&rest[0]) && path_match(&rest[1..], &text[1..])
        }
        Some((&p, rest)) => text.first() == Some(&p) && path_match(rest, &text[1..]),
    }
}
// ANCHOR_END: images_filters

/// `images busybox` or `images busybox:1.36`: a repository, and a tag only if one was given.
struct ImagesFilter {
    repository: String,
    tag: Option<String>,
}

impl ImagesFilter {
    fn parse(text: &str) -> Result<ImagesFilter> {
        let reference = Reference::parse(text)?;
        let after_slash = text.rsplit('/').next().unwrap_or(text);
        let explicit_tag = after_slash.split('@').next().unwrap_or("").contains(':');
        Ok(ImagesFilter {
            repository: reference.repository(),
            tag: explicit_tag.then(|| reference.tag().unwrap_or_default().to_owned()),
        })
    }

    fn matches(&self, name: &Reference) -> bool {
        name.repository() == self.repository
            && self
                .tag
                .as_deref()
                .is_none_or(|tag| name.tag() == Some(tag))
    }
}

// ANCHOR: format_table
/// Aligns rows as Docker's CLI does with Go's tabwriter (minimum width 10, padding 3): every
/// column but the last is padded to its widest cell plus 3, and to at least 10.
pub fn format_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(10);
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
// ANCHOR_END: format_table

/// A size as Docker prints it: decimal units, three significant digits (`4.26MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // Go's %.3g: three significant digits, trailing zeros dropped.
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// A duration as Docker prints "CREATED ... ago" (go-units `HumanDuration`).
pub fn human_duration(age: Duration) -> String {
    let seconds = age.as_secs();
    let minutes = seconds / 60;
    let hours = ((age.as_secs_f64() / 3600.0) + 0.5) as u64;
    match () {
        _ if seconds < 1 => "Less than a second".to_owned(),
        _ if seconds == 1 => "1 second".to_owned(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

// ------------------------------------------------------------------------------------------
// image inspect
// ------------------------------------------------------------------------------------------

/// `image inspect`'s JSON for one image, in Docker's shape and field order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: InspectConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    /// The manifest, as Docker shows it with the containerd image store.
    pub descriptor: oci_spec::image::Descriptor,
}

/// The image's default run settings, as Docker's `Config`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Docker's `HealthConfig` (`Test`, durations in ns, `Retries`), as the image has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    pub working_dir: String,
    /// The `ONBUILD` triggers, shown when the image has the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// The `SHELL` of shell-form commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Go's `struct{}` in a map (`"ExposedPorts": {"80/tcp": {}}`).
#[derive(Debug, Clone, Serialize)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

// ANCHOR: inspect
/// Builds `image inspect`'s record for an image.
pub fn inspect(store: &Store, image: &Image) -> Result<ImageInspect> {
    let config = &image.config;
    let run = config.config().clone().unwrap_or_default();
    // One repo digest per repository: the index's for a name pulled through one.
    let repo_digests: BTreeSet<String> = image
        .names
        .iter()
        .map(|name| {
            let pulled = image
                .repo_digests
                .iter()
                .find(|(n, _)| n.familiar_repository() == name.familiar_repository());
            let digest = pulled.map_or_else(|| image.repo_digest(Some(name)), |(_, d)| d);
            format!("{}@{digest}", name.familiar_repository())
        })
        .collect();
    let manifest_digest = image.manifest_descriptor.digest();
    let history_comment = config
        .history()
        .as_ref()
        .and_then(|history| history.last())
        .and_then(|entry| entry.comment().clone());
    // overlayfs's lowerdir= takes the top layer first.
    let lower_dirs: Vec<String> = image
        .chain_ids()?
        .iter()
        .rev()
        .map(|chain_id| store.layer_dir(chain_id).display().to_string())
        .collect();
    let as_set = |items: Option<Vec<String>>| {
        items.map(|items| items.into_iter().map(|k| (k, Empty {})).collect())
    };
    Ok(ImageInspect {
        id: image.id.to_string(),
        repo_tags: image
            .names
            .iter()
            .filter_map(|name| Some(format!("{}:{}", name.familiar_repository(), name.tag()?)))
            .collect(),
        repo_digests: repo_digests.into_iter().collect(),
        parent: store
            .parents()?
            .remove(&image.id.to_string())
            .unwrap_or_default(),
        comment: history_comment.unwrap_or_default(),
        created: config.created().clone().unwrap_or_default(),
        docker_version: String::new(),
        author: config.author().clone().unwrap_or_default(),
        config: InspectConfig {
            user: run.user().clone().unwrap_or_default(),
            exposed_ports: as_set(run.exposed_ports().clone()),
            env: run.env().clone(),
            cmd: run.cmd().clone(),
            healthcheck: image.config_extra.get("Healthcheck").cloned(),
            entrypoint: run.entrypoint().clone(),
            volumes: as_set(run.volumes().clone()),
            working_dir: run.working_dir().clone().unwrap_or_default(),
            on_build: extra_list(image, "OnBuild"),
            labels: run
                .labels()
                .clone()
                .map(|labels| labels.into_iter().collect()),
            stop_signal: run.stop_signal().clone(),
            shell: extra_list(image, "Shell"),
        },
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
        os: config.os().to_string(),
        size: super::size::image_size(store, image)?,
        graph_driver: GraphDriver {
            name: "overlay".to_owned(),
            data: BTreeMap::from([("LowerDir".to_owned(), lower_dirs.join(":"))]),
        },
        root_fs: InspectRootFs {
            kind: config.rootfs().typ().clone(),
            layers: config.rootfs().diff_ids().clone(),
        },
        descriptor: oci_spec::image::Descriptor::new(
            image.manifest_descriptor.media_type().clone(),
            image.manifest_descriptor.size(),
            manifest_digest.clone(),
        ),
    })
}
// ANCHOR_END: inspect

/// A list of strings among the image's Docker config fields (`OnBuild`, `Shell`).
fn extra_list(image: &Image, key: &str) -> Option<Vec<String>> {
    serde_json::from_value(image.config_extra.get(key)?.clone()).ok()
}

/// JSON indented with four spaces, as Docker's `inspect` prints it.
pub fn to_docker_json(value: &impl Serialize) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .context("serialising JSON")?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn reference_patterns_match_as_gos_path_match() {
        let m = |p: &str, t: &str| path_match(p.as_bytes(), t.as_bytes());
        assert!(m("bb*", "bb2"));
        assert!(m("bb2:*", "bb2:v1"));
        assert!(m("*:latest", "busybox:latest"));
        assert!(!m("*", "library/busybox"));
        assert!(m("*/busybox", "library/busybox"));
        assert!(m("b?sybox", "busybox"));
        assert!(m("[a-c]usybox", "busybox"));
        assert!(!m("[^a-c]usybox", "busybox"));
        assert!(m("bb\\*", "bb*"));
        assert!(!m("bb\\*", "bb2"));
        assert!(!m("[", "["));
        assert!(!m("bb", "bb2"));
    }

    /// The shape the lead wires into `minidock`, to check the clap definitions.
    #[derive(Debug, Parser)]
    struct Wired {
        #[command(subcommand)]
        command: Wiring,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Wiring {
        Import(ImportArgs),
        Images(ImagesArgs),
        Tag(TagArgs),
        Rmi(RmiArgs),
        #[command(subcommand)]
        Image(ImageCommand),
    }

    #[test]
    fn the_arguments_parse_like_dockers() {
        Wired::command().debug_assert();
        let parse = |args: &[&str]| Wired::try_parse_from([&["minidock"], args].concat());
        let Wiring::Import(import) = parse(&["import", "-c", "CMD [\"sh\"]", "-", "busybox"])
            .unwrap()
            .command
        else {
            panic!("not import")
        };
        assert_eq!(import.source, "-");
        assert_eq!(import.reference.as_deref(), Some("busybox"));
        assert_eq!(import.changes, ["CMD [\"sh\"]"]);
        let Wiring::Images(images) = parse(&["images", "-q", "--digests"]).unwrap().command else {
            panic!("not images")
        };
        assert!(images.quiet && images.digests);
        assert!(parse(&["rmi"]).is_err(), "rmi needs an image");
        let Wiring::Image(ImageCommand::Rm(rmi)) =
            parse(&["image", "rm", "-f", "a", "b"]).unwrap().command
        else {
            panic!("not image rm")
        };
        assert!(rmi.force);
        assert_eq!(rmi.images, ["a", "b"]);
        assert!(matches!(
            parse(&["image", "ls"]).unwrap().command,
            Wiring::Image(ImageCommand::Ls(_))
        ));
    }

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(4_261_234), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn durations_read_like_dockers() {
        let d = Duration::from_secs;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(59)), "59 seconds");
        assert_eq!(human_duration(d(60)), "About a minute");
        assert_eq!(human_duration(d(59 * 60)), "59 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(5 * 3600)), "5 hours");
        assert_eq!(human_duration(d(3 * 86_400)), "3 days");
        assert_eq!(human_duration(d(20 * 86_400)), "2 weeks");
        assert_eq!(human_duration(d(90 * 86_400)), "3 months");
        assert_eq!(human_duration(d(800 * 86_400)), "2 years");
    }

    #[test]
    fn the_table_is_aligned_like_dockers() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4.26MB".into()],
        ];
        assert_eq!(
            format_table(&rows),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }
}

// ------------------------------------------------------------------------------------------
// save, load, history (src/image/archive.rs, src/image/history.rs)
// ------------------------------------------------------------------------------------------

/// `minidock save [OPTIONS] IMAGE [IMAGE...]`
#[derive(Debug, Clone, clap::Args)]
pub struct SaveArgs {
    /// Write to a file, instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// The archive format: docker (Docker 25's `docker save`: OCI layout plus manifest.json, the
    /// default), oci (the OCI layout only) or docker-legacy (Docker 24's and older)
    #[arg(long, value_enum, default_value_t = super::archive::ArchiveFormat::Docker)]
    pub format: super::archive::ArchiveFormat,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `minidock load [OPTIONS]`
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Read from a tar archive file (docker save or OCI format; plain, gzip, bzip2, xz or
    /// zstd), instead of stdin
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: Option<std::path::PathBuf>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `minidock history [OPTIONS] IMAGE`
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output with a Go template ({{.ID}}, {{json .}}, or `table` and columns:
    /// ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment)
    #[arg(long)]
    pub format: Option<String>,
}

// ANCHOR: run_save
/// `minidock save`: the archive goes to a temp file beside `-o FILE` and is renamed into place
/// when complete, so a failed save never leaves a truncated archive under that name.
pub fn run_save(root: &Path, args: &SaveArgs) -> Result<u8> {
    let store = Store::open(root).map_err(|err| disk_full_at(err, root))?;
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let temp = tempfile::Builder::new()
                .prefix(".minidock-save-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a temp file in {}", dir.display()))
                .map_err(|err| disk_full_at(err, dir))?;
            let out = io::BufWriter::with_capacity(256 << 10, temp.as_file());
            super::archive::save(&store, &args.images, args.format, out)
                .map_err(|err| request_failed(disk_full_at(err, dir)))?;
            temp.as_file()
                .sync_all()
                .with_context(|| format!("writing {}", path.display()))
                .map_err(|err| disk_full_at(err, dir))?;
            temp.persist(path)
                .map_err(|err| err.error)
                .with_context(|| format!("renaming the archive to {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            if std::io::IsTerminal::is_terminal(&stdout) {
                return Err(Exit::new(
                    REQUEST_FAILED,
                    "refusing to write an archive to a terminal: use -o FILE or redirect stdout",
                )
                .into());
            }
            let out = io::BufWriter::with_capacity(256 << 10, stdout.lock());
            super::archive::save(&store, &args.images, args.format, out)
                .map_err(|err| request_failed(disk_full_at(err, Path::new("/dev/stdout"))))?;
        }
    }
    Ok(0)
}
// ANCHOR_END: run_save

/// `minidock load`: prints `Loaded image: NAME` (or `Loaded image ID: ID` when untagged).
pub fn run_load(root: &Path, args: &LoadArgs) -> Result<u8> {
    let store = Store::open(root).map_err(|err| disk_full_at(err, root))?;
    let input: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(io::BufReader::new(
            File::open(path)
                .with_context(|| format!("opening {}", path.display()))
                .map_err(request_failed)?,
        )),
        None => Box::new(io::stdin().lock()),
    };
    let loaded = super::archive::load(&store, input)
        .map_err(|err| request_failed(disk_full_at(err, store.dir())))?;
    if !args.quiet {
        let mut out = io::stdout().lock();
        for line in loaded_lines(&loaded) {
            writeln!(out, "{line}").context("writing to stdout")?;
        }
    }
    Ok(0)
}

/// What `load` reports for each loaded image: `Loaded image: NAME` for each of its names,
/// `Loaded image ID: ID` for one without a name.
pub fn loaded_lines(loaded: &[super::archive::Loaded]) -> Vec<String> {
    let mut lines = Vec::new();
    for image in loaded {
        if image.names.is_empty() {
            lines.push(format!("Loaded image ID: {}", image.id));
        }
        for name in &image.names {
            lines.push(format!("Loaded image: {}", name.familiar()));
        }
    }
    lines
}

/// `minidock history`
pub fn run_history(root: &Path, args: &HistoryArgs) -> Result<u8> {
    let store = Store::open(root)?;
    let image = store.resolve(&args.image).map_err(request_failed)?;
    let format = super::history::HistoryFormat {
        no_trunc: args.no_trunc,
        quiet: args.quiet,
        template: args.format.clone(),
    };
    let table = super::history::history_table(&store, &image, &format, SystemTime::now())
        .map_err(request_failed)?;
    io::stdout()
        .lock()
        .write_all(table.as_bytes())
        .context("writing to stdout")?;
    Ok(0)
}

// ------------------------------------------------------------------------------------------
// commit (src/image/commit.rs)
// ------------------------------------------------------------------------------------------

/// `minidock commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`
#[derive(Debug, Clone, clap::Args)]
pub struct CommitArgs {
    /// Author (e.g., "Ada Lovelace <ada@example.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message (the history comment)
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause the container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The name to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

// ANCHOR: run_commit
/// `minidock commit`: prints the new image's ID.
pub fn run_commit(root: &Path, args: &CommitArgs) -> Result<u8> {
    let names = match &args.reference {
        Some(text) => vec![Reference::parse(text).map_err(request_failed)?],
        None => Vec::new(),
    };
    let paths = crate::container::Paths::new(Some(root));
    let options = super::commit::CommitOptions {
        message: args.message.clone(),
        author: args.author.clone(),
        changes: args.changes.clone(),
        created: None,
        pause: args.pause,
    };
    let image = super::commit::commit(&paths, &args.container, &names, &options)
        .map_err(|err| request_failed(disk_full_at(err, &root.join("images"))))?;
    println!("{}", image.id);
    Ok(0)
}
// ANCHOR_END: run_commit

//! `minidock volume create|ls|inspect|rm|prune`, with Docker's flags, output and exit codes.
//! `prune` follows Docker 23 and later (API 1.42): only anonymous volumes unless `-a`.

use super::{Store, Volume, users};
use crate::cli::Exit;
use crate::container::{Paths, REQUEST_FAILED};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// The volume subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes (refused while a container uses one)
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (with -a, every unused volume)
    Prune(PruneArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Specify volume driver name (only "local")
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options: type=tmpfs|none|..., device=..., o=...
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// The volume's name (default: a random 64-hex one)
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (dangling=true|false, name=..., label=KEY[=VALUE], driver=...)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template ({{.Name}}, {{json .}}, or `table` and columns)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    /// Do not fail on a volume that does not exist (one in use is still refused)
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `KEY=VALUE` (or `KEY`) flags as a map.
fn pairs(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

fn request(err: anyhow::Error) -> anyhow::Error {
    crate::image::cli::request_failed(err)
}

/// Dispatches one volume subcommand.
pub fn run_command(cli_root: Option<&std::path::Path>, command: &VolumeCommand) -> Result<u8> {
    let paths = Paths::new(cli_root);
    let store = Store::new(&paths.root);
    match command {
        VolumeCommand::Create(args) => {
            let volume = create(
                &paths,
                &store,
                args.name.as_deref(),
                &args.driver,
                pairs(&args.label),
                pairs(&args.opt),
            )
            .map_err(request)?;
            println!("{}", volume.name);
            Ok(0)
        }
        VolumeCommand::Ls(args) => {
            print!("{}", ls(&paths, &store, args).map_err(request)?);
            Ok(0)
        }
        VolumeCommand::Inspect(args) => inspect(&store, args),
        VolumeCommand::Rm(args) => {
            let mut status = 0;
            for name in &args.volumes {
                match remove(&paths, &store, name, args.force) {
                    Ok(()) => println!("{name}"),
                    Err(err) => {
                        eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                        status = REQUEST_FAILED;
                    }
                }
            }
            Ok(status)
        }
        VolumeCommand::Prune(args) => {
            let warning = if args.all {
                "WARNING! This will remove all local volumes not used by at least one container.\n\
                 Are you sure you want to continue? [y/N] "
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one \
                 container.\nAre you sure you want to continue? [y/N] "
            };
            if !args.force && !crate::container::prune::confirm(warning)? {
                return Ok(0);
            }
            let (removed, reclaimed) = prune(&paths, &store, args.all).map_err(request)?;
            let mut out = String::new();
            if !removed.is_empty() {
                out.push_str("Deleted Volumes:\n");
                for name in &removed {
                    out.push_str(name);
                    out.push('\n');
                }
                out.push('\n');
            }
            out.push_str(&format!(
                "Total reclaimed space: {}\n",
                crate::image::cli::human_size(reclaimed)
            ));
            print!("{out}");
            Ok(0)
        }
    }
}

/// `volume create`: volume `name` (a random 64-hex name when `None`) with the local driver's
/// `options`; an existing volume is returned as it is. Any driver but `local` is refused
/// (exit 1).
pub fn create(
    paths: &Paths,
    store: &Store,
    name: Option<&str>,
    driver: &str,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
) -> Result<Volume> {
    crate::state::private_dir(&paths.root)?;
    let name = match name.filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => crate::container::new_id()?,
    };
    if driver != super::DRIVER {
        return Err(Exit::new(
            REQUEST_FAILED,
            format!(
                "create {name}: error looking up volume plugin {driver}: plugin {driver:?} not \
                 found (only the local driver is supported)"
            ),
        )
        .into());
    }
    Ok(store.create(&name, labels, options)?.0)
}

/// `volume rm NAME`: refused (exit 1) while a container uses it; with `force` a missing
/// volume is no error.
pub fn remove(paths: &Paths, store: &Store, name: &str, force: bool) -> Result<()> {
    let (_lock, used) = users_while_locked(paths)?;
    match store.remove(name, used.get(name).map_or(&[][..], Vec::as_slice)) {
        Err(_) if force && store.find(name).ok().flatten().is_none() => Ok(()),
        other => other,
    }
}

/// The volumes in use, with the containers' lock held (and returned), so that no `create` can
/// start using a volume until the caller has removed what it is about to remove. A `create`
/// records its volumes only when it finishes, so this first waits (up to 10 s) until no
/// `create` is under way. Docker's daemon closes the same race with a reference count on each
/// volume, taken at create.
fn users_while_locked(
    paths: &Paths,
) -> Result<(crate::state::Lock, BTreeMap<String, Vec<String>>)> {
    for _ in 0..500 {
        // Recovery first: a `create` that was killed half way is removed.
        paths.list()?;
        let lock = paths.lock()?;
        let containers = paths.list_recorded()?;
        if !containers
            .iter()
            .any(|c| c.creating && c.supervisor_alive())
        {
            return Ok((lock, users(&containers)));
        }
        drop(lock);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    anyhow::bail!("a container is being created with volumes for more than 10 s: try again")
}

// ANCHOR: prune
/// `volume prune`: removes the volumes no container uses, anonymous ones only unless `all`
/// (Docker 23 and later), then records `volume prune` with the bytes reclaimed (and no
/// `destroy` per volume), as dockerd does. Returns their names and the bytes their data held.
pub fn prune(paths: &Paths, store: &Store, all: bool) -> Result<(Vec<String>, u64)> {
    let (_lock, used) = users_while_locked(paths)?;
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for volume in store.list()? {
        if used.contains_key(&volume.name) || !(all || volume.anonymous()) {
            continue;
        }
        let size = crate::image::size::directory_size(std::path::Path::new(&volume.mountpoint))
            .unwrap_or(0);
        store.remove_unrecorded(&volume.name, &[])?;
        reclaimed += size;
        removed.push(volume.name);
    }
    crate::events::pruned(&paths.root, "volume", reclaimed);
    Ok((removed, reclaimed))
}
// ANCHOR_END: prune

/// One `--filter` of `volume ls`, as Docker's daemon checks it.
enum Filter {
    Dangling(bool),
    Name(String),
    Label(String, Option<String>),
    Driver(String),
}

fn parse_filter(text: &str) -> Result<Filter> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        crate::volume::parse::cli_error(format!(
            "invalid argument {text:?} for \"-f, --filter\" flag: bad format of filter \
             (expected name=value)"
        ))
    })?;
    match key.to_ascii_lowercase().as_str() {
        "dangling" => match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Filter::Dangling(true)),
            "false" | "0" => Ok(Filter::Dangling(false)),
            _ => anyhow::bail!("Invalid filter 'dangling=[{value}]'"),
        },
        "name" => Ok(Filter::Name(value.to_owned())),
        "label" => Ok(match value.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
            None => Filter::Label(value.to_owned(), None),
        }),
        "driver" => Ok(Filter::Driver(value.to_owned())),
        _ => anyhow::bail!("Invalid filter '{key}'"),
    }
}

/// Whether `volume` passes every filter (Docker ANDs different keys and ORs one key's values;
/// minidock ANDs them all).
fn passes(volume: &Volume, filters: &[Filter], used: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|f| match f {
        Filter::Dangling(dangling) => used.contains_key(&volume.name) != *dangling,
        Filter::Name(part) => volume.name.contains(part.as_str()),
        Filter::Label(key, value) => volume.labels.as_ref().is_some_and(|labels| {
            labels
                .get(key)
                .is_some_and(|v| value.as_ref().is_none_or(|want| want == v))
        }),
        Filter::Driver(driver) => volume.driver == *driver,
    })
}

const LS_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
const LS_HEADER: &[(&str, &str)] = &[
    ("Availability", "AVAILABILITY"),
    ("Driver", "DRIVER"),
    ("Group", "GROUP"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Size", "SIZE"),
    ("Status", "STATUS"),
];

/// One `volume ls` row for `--format`, with the docker CLI's fields.
fn ls_row(volume: &Volume) -> gotmpl::Value {
    let labels = volume
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    crate::format::row(vec![
        ("Availability", "N/A".into()),
        ("Driver", volume.driver.clone()),
        ("Group", "N/A".into()),
        ("Labels", labels),
        ("Links", "N/A".into()),
        ("Mountpoint", volume.mountpoint.clone()),
        ("Name", volume.name.clone()),
        ("Scope", volume.scope.clone()),
        ("Size", "N/A".into()),
        ("Status", "N/A".into()),
    ])
}

/// The volumes that pass every `KEY=VALUE` filter (`dangling`, `name`, `label`, `driver`),
/// by name; an unknown filter is an error with Docker's words.
pub fn list(paths: &Paths, store: &Store, filters: &[String]) -> Result<Vec<Volume>> {
    let filters = filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>>>()?;
    let used = users(&paths.list()?);
    Ok(store
        .list()?
        .into_iter()
        .filter(|v| passes(v, &filters, &used))
        .collect())
}

// ANCHOR: ls
/// `volume ls`: Docker's `DRIVER  VOLUME NAME` table, names only with `-q`, or `--format`.
pub fn ls(paths: &Paths, store: &Store, args: &LsArgs) -> Result<String> {
    let volumes = list(paths, store, &args.filter)?;
    if args.quiet {
        return Ok(volumes.iter().map(|v| format!("{}\n", v.name)).collect());
    }
    let text = crate::format::chosen(args.format.as_deref(), false).unwrap_or(LS_TABLE);
    let format = crate::format::Format::list(text, LS_TABLE)?;
    let rows: Vec<_> = volumes.iter().map(ls_row).collect();
    format.render_list(&rows, &crate::format::header(LS_HEADER))
}
// ANCHOR_END: ls

/// Which objects of [`Volume`] are Go maps, for `volume inspect -f`.
const INSPECT_SHAPE: crate::format::Shape = crate::format::Shape {
    maps: &["Labels", "Options"],
    pointers: &[],
    omitted: &[],
};

/// `volume inspect`: Docker's JSON array, or `-f` per volume; a missing one is an error (exit
/// 1) after the others are printed.
fn inspect(store: &Store, args: &InspectArgs) -> Result<u8> {
    let format = args
        .format
        .as_deref()
        .map(crate::format::Format::inspect)
        .transpose()
        .map_err(|err| Exit::new(crate::format::BAD_TEMPLATE, format!("{err:#}")))?;
    let mut found = Vec::new();
    let mut status = 0;
    for name in &args.volumes {
        match store.get(name) {
            Ok(volume) => found.push(volume),
            Err(err) => {
                eprintln!("minidock: {}", crate::cli::one_line(&format!("{err:#}")));
                status = REQUEST_FAILED;
            }
        }
    }
    match &format {
        Some(format) => {
            for volume in &found {
                let json = crate::format::Json::of(volume)?;
                let text = format.execute(&crate::format::to_value(&json, &INSPECT_SHAPE))?;
                println!("{text}");
            }
        }
        None => println!(
            "{}",
            crate::image::cli::to_docker_json(&found).context("printing volumes")?
        ),
    }
    Ok(status)
}

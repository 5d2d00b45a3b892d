//! `system df [-v] [--format]`: the disk space images and containers take, as
//! `docker system df` shows it. Image sizes are the unpacked layers' ([`crate::image::size`]),
//! each layer counted once; a container's size is what it wrote (its overlay upper dir).
//! A volume's size is its `_data`'s; it is active when a container (in any state) names it.
//! minidock has no build cache: its row is there, at zero.

use crate::container::cli::status_text;
use crate::container::{ContainerState, Paths, Status, short_id};
use crate::image::cli::{human_duration, human_size};
use crate::image::store::{Image, Store};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// One image's share of the disk.
struct ImageUsage {
    image: Image,
    size: u64,
    shared: u64,
    containers: usize,
}

/// One container's share of the disk.
struct ContainerUsage {
    state: ContainerState,
    size: u64,
    active: bool,
}

/// What `system df` counts.
pub struct Usage {
    images: Vec<ImageUsage>,
    /// Each layer once.
    layers_size: u64,
    /// The layers no image in use needs.
    images_reclaimable: u64,
    containers: Vec<ContainerUsage>,
    /// Each volume: its name, how many containers use it, and its size.
    volumes: Vec<(String, usize, u64)>,
}

impl Usage {
    /// Each layer once, bytes.
    pub fn layers_size(&self) -> u64 {
        self.layers_size
    }

    /// Each image with its size, the part of it other images share, and how many containers
    /// use it (bytes).
    pub fn images(&self) -> impl Iterator<Item = (&Image, u64, u64, usize)> {
        self.images
            .iter()
            .map(|i| (&i.image, i.size, i.shared, i.containers))
    }

    /// Each container with what it wrote (its upper dir), bytes.
    pub fn containers(&self) -> impl Iterator<Item = (&ContainerState, u64)> {
        self.containers.iter().map(|c| (&c.state, c.size))
    }

    /// Each volume: its name, how many containers use it, and its size in bytes.
    pub fn volumes(&self) -> &[(String, usize, u64)] {
        &self.volumes
    }
}

/// Each volume's name, links (containers using it) and size.
fn volume_usage(paths: &Paths, containers: &[ContainerUsage]) -> Result<Vec<(String, usize, u64)>> {
    let states: Vec<ContainerState> = containers.iter().map(|c| c.state.clone()).collect();
    let users = crate::volume::users(&states);
    crate::volume::Store::new(&paths.root)
        .list()?
        .into_iter()
        .map(|v| {
            let size = crate::image::size::directory_size(std::path::Path::new(&v.mountpoint))
                .unwrap_or(0);
            let links = users.get(&v.name).map_or(0, Vec::len);
            Ok((v.name, links, size))
        })
        .collect()
}

/// Measures the state root.
pub fn usage(paths: &Paths) -> Result<Usage> {
    let containers: Vec<ContainerUsage> = paths
        .list()
        .context("listing containers")?
        .into_iter()
        .map(|state| {
            let upper = paths.dir(&state.id).join("upper");
            let size = if upper.is_dir() {
                crate::image::size::directory_size(&upper)?
            } else {
                0
            };
            let active = state.observe() == Status::Running;
            Ok(ContainerUsage {
                state,
                size,
                active,
            })
        })
        .collect::<Result<_>>()?;
    let store = Store::open(&paths.root)?;
    let mut layer_size: BTreeMap<String, u64> = BTreeMap::new();
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    let mut layers_of = Vec::new();
    for image in store.images()? {
        let chain: Vec<String> = image.chain_ids()?.iter().map(|d| d.to_string()).collect();
        let sizes = crate::image::size::layer_sizes(&store, &image)?;
        for (id, size) in chain.iter().zip(sizes) {
            layer_size.insert(id.clone(), size);
            *users.entry(id.clone()).or_default() += 1;
        }
        layers_of.push((image, chain));
    }
    let mut used_layers = BTreeSet::new();
    let mut images = Vec::new();
    for (image, chain) in layers_of {
        let count = containers
            .iter()
            .filter(|c| c.state.image_id == image.id.to_string())
            .count();
        if count > 0 {
            used_layers.extend(chain.iter().cloned());
        }
        let size = chain.iter().map(|l| layer_size[l]).sum();
        let shared = chain
            .iter()
            .filter(|l| users[*l] > 1)
            .map(|l| layer_size[l])
            .sum();
        images.push(ImageUsage {
            image,
            size,
            shared,
            containers: count,
        });
    }
    let layers_size = layer_size.values().sum();
    let images_reclaimable = layer_size
        .iter()
        .filter(|(id, _)| !used_layers.contains(*id))
        .map(|(_, size)| size)
        .sum();
    let volumes = volume_usage(paths, &containers)?;
    Ok(Usage {
        images,
        layers_size,
        images_reclaimable,
        containers,
        volumes,
    })
}

/// Docker's RECLAIMABLE: the size, and its share of the total when there is one.
fn reclaimable(part: u64, total: u64) -> String {
    match (part * 100).checked_div(total) {
        Some(percent) => format!("{} ({percent}%)", human_size(part)),
        None => human_size(part),
    }
}

/// The summary rows, as `system df --format` sees them (Docker's `Type`, `TotalCount`,
/// `Active`, `Size`, `Reclaimable`).
pub fn summary_rows(usage: &Usage) -> Vec<gotmpl::Value> {
    let containers_size: u64 = usage.containers.iter().map(|c| c.size).sum();
    let containers_reclaimable = usage
        .containers
        .iter()
        .filter(|c| !c.active)
        .map(|c| c.size)
        .sum();
    let row = |kind: &str, total: usize, active: usize, size: u64, part: u64| {
        crate::format::row(vec![
            ("Type", kind.to_owned()),
            ("TotalCount", total.to_string()),
            ("Active", active.to_string()),
            ("Size", human_size(size)),
            ("Reclaimable", reclaimable(part, size)),
        ])
    };
    vec![
        row(
            "Images",
            usage.images.len(),
            usage.images.iter().filter(|i| i.containers > 0).count(),
            usage.layers_size,
            usage.images_reclaimable,
        ),
        row(
            "Containers",
            usage.containers.len(),
            usage.containers.iter().filter(|c| c.active).count(),
            containers_size,
            containers_reclaimable,
        ),
        row(
            "Local Volumes",
            usage.volumes.len(),
            usage.volumes.iter().filter(|v| v.1 > 0).count(),
            usage.volumes.iter().map(|v| v.2).sum(),
            usage.volumes.iter().filter(|v| v.1 == 0).map(|v| v.2).sum(),
        ),
        row("Build Cache", 0, 0, 0, 0),
    ]
}

/// Docker's default `system df` table.
pub const DF_TABLE: &str = r"{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

/// The column names of `system df --format 'table ...'`.
pub const DF_HEADER: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

fn table(rows: Vec<Vec<String>>) -> String {
    let text: String = rows.iter().map(|r| r.join("\t") + "\n").collect();
    crate::format::tabwrite(&text)
}

/// `system df -v`'s text: Docker's four sections.
pub fn verbose_text(usage: &Usage, now: SystemTime) -> String {
    let mut images = vec![
        [
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for i in &usage.images {
        let created = i.image.created().map_or_else(
            || "N/A".to_owned(),
            |t| {
                let age = now.duration_since(t).unwrap_or(Duration::ZERO);
                format!("{} ago", human_duration(age))
            },
        );
        let names: Vec<Option<&crate::image::reference::Reference>> = if i.image.names.is_empty() {
            vec![None]
        } else {
            i.image.names.iter().map(Some).collect()
        };
        for name in names {
            images.push(vec![
                name.map_or_else(|| "<none>".into(), |n| n.familiar_repository()),
                name.and_then(|n| n.tag())
                    .map_or_else(|| "<none>".into(), str::to_owned),
                i.image.short_id().to_owned(),
                created.clone(),
                human_size(i.size),
                human_size(i.shared),
                human_size(i.size - i.shared),
                i.containers.to_string(),
            ]);
        }
    }
    let mut containers = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for c in &usage.containers {
        let s = &c.state;
        let created = crate::state::parse_rfc3339(&s.created)
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let mut command = s.command();
        if command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        containers.push(vec![
            short_id(&s.id).to_owned(),
            s.image.clone(),
            format!("{command:?}"),
            s.config
                .mounts
                .iter()
                .filter(|m| m.kind == "volume")
                .count()
                .to_string(),
            human_size(c.size),
            format!("{} ago", human_duration(created)),
            status_text(s, now),
            s.name.clone(),
        ]);
    }
    let mut volumes = vec![["VOLUME NAME", "LINKS", "SIZE"].map(str::to_owned).to_vec()];
    for (name, links, size) in &usage.volumes {
        volumes.push(vec![name.clone(), links.to_string(), human_size(*size)]);
    }
    let cache = vec![
        [
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "USAGE",
            "SHARED",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    format!(
        "Images space usage:\n\n{}\nContainers space usage:\n\n{}\nLocal Volumes space usage:\n\n{}\n\
         Build cache usage: 0B\n\n{}",
        table(images),
        table(containers),
        table(volumes),
        table(cache)
    )
}

/// `minidock system df [-v] [--format]`
#[derive(Debug, Clone, clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format the output with a Go template ({{.Type}}, {{.Size}}...), table, or json
    #[arg(long)]
    pub format: Option<String>,
}

/// `minidock system df`. Template errors exit 1.
pub fn run_df(paths: &Paths, args: &DfArgs) -> Result<u8> {
    let usage = usage(paths)?;
    if args.verbose && args.format.is_none() {
        print!("{}", verbose_text(&usage, SystemTime::now()));
        return Ok(0);
    }
    let text = match args.format.as_deref().unwrap_or("table") {
        "json" => "{{json .}}",
        other => other,
    };
    let format = crate::format::Format::list(text, DF_TABLE)
        .map_err(|err| crate::cli::Exit::new(1, format!("{err:#}")))?;
    let out = format
        .render_list(&summary_rows(&usage), &crate::format::header(DF_HEADER))
        .map_err(|err| crate::cli::Exit::new(1, format!("{err:#}")))?;
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_shows_the_share() {
        assert_eq!(reclaimable(212, 212), "212B (100%)");
        assert_eq!(reclaimable(0, 0), "0B");
        assert_eq!(reclaimable(1_000_000, 3_000_000), "1MB (33%)");
    }
}

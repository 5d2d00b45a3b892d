//! `minidock history`: how an image was made, from its config's `history` array.
//!
//! Each build step leaves one history entry (`created`, `created_by`, `comment`). Steps that
//! changed files also left a layer; steps that only changed the config (`CMD`, `ENV`) are
//! marked `empty_layer` and have none. So the n-th non-empty entry goes with the n-th layer of
//! the manifest, which gives each row its size.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::cli::{human_duration, human_size};
use super::store::{Image, Store};
use crate::state;

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID on the top row; `<missing>` below it, as Docker shows (the intermediate
    /// images of a pulled image are not in the store).
    pub image: String,
    pub created: Option<SystemTime>,
    pub created_by: String,
    /// The size of the step's layer unpacked, 0 for a step without a layer.
    pub size: u64,
    pub comment: String,
}

// ANCHOR: history_rows
/// The image's history, newest step first, given the sizes of its layers (base first, see
/// [`super::size::layer_sizes`]). An image whose config has no history gets one row per
/// layer, with the layers' sizes.
pub fn history_rows(image: &Image, layers: &[u64]) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    match image.config.history().as_ref().filter(|h| !h.is_empty()) {
        Some(history) => {
            let mut next_layer = 0;
            for entry in history {
                let empty = entry.empty_layer().unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    let size = layers.get(next_layer).copied().unwrap_or(0);
                    next_layer += 1;
                    size
                };
                rows.push(HistoryRow {
                    image: "<missing>".to_owned(),
                    created: entry.created().as_deref().and_then(state::parse_rfc3339),
                    created_by: entry.created_by().clone().unwrap_or_default(),
                    size,
                    comment: entry.comment().clone().unwrap_or_default(),
                });
            }
        }
        None => {
            for size in layers {
                rows.push(HistoryRow {
                    image: "<missing>".to_owned(),
                    created: None,
                    created_by: String::new(),
                    size: *size,
                    comment: String::new(),
                });
            }
        }
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.image = image.short_id().to_owned();
    }
    rows
}
// ANCHOR_END: history_rows

/// How to print the table.
#[derive(Debug, Clone, Default)]
pub struct HistoryFormat {
    pub no_trunc: bool,
    pub quiet: bool,
    /// `--format`: a Go template over each row's [`history_value`] (see [`crate::format`]).
    pub template: Option<String>,
}

/// Docker's default `history` table, as a template.
pub const HISTORY_TABLE: &str =
    r"{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// The column names of `history --format 'table ...'`, by field.
pub const HISTORY_HEADER: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// One row as `history --format` sees it: Docker's `historyContext` fields, as strings.
pub fn history_value(
    image: &Image,
    row: &HistoryRow,
    no_trunc: bool,
    now: SystemTime,
) -> gotmpl::Value {
    let created = match row.created {
        Some(time) => format!(
            "{} ago",
            human_duration(now.duration_since(time).unwrap_or(Duration::ZERO))
        ),
        None => "N/A".to_owned(),
    };
    // Docker truncates the command to 45 characters, with an ellipsis.
    let created_by = if no_trunc || row.created_by.chars().count() <= 45 {
        row.created_by.replace('\t', " ")
    } else {
        let mut short: String = row.created_by.replace('\t', " ").chars().take(44).collect();
        short.push('…');
        short
    };
    let id = if no_trunc && row.image != "<missing>" {
        image.id.to_string()
    } else {
        row.image.clone()
    };
    crate::format::row(vec![
        ("ID", id),
        ("CreatedSince", created),
        (
            "CreatedAt",
            crate::format::rfc3339_seconds(row.created.unwrap_or(std::time::UNIX_EPOCH)),
        ),
        ("CreatedBy", created_by),
        ("Size", human_size(row.size)),
        ("Comment", row.comment.clone()),
    ])
}

/// The `history` table at time `now`: IMAGE, CREATED, CREATED BY, SIZE, COMMENT, or the
/// `--format` template's output.
pub fn history_table(
    store: &Store,
    image: &Image,
    format: &HistoryFormat,
    now: SystemTime,
) -> Result<String> {
    let rows = history_rows(image, &super::size::layer_sizes(store, image)?);
    let template = crate::format::chosen(format.template.as_deref(), format.quiet)
        .map(|text| crate::format::Format::list(text, HISTORY_TABLE))
        .transpose()?;
    if format.quiet && template.is_none() {
        return Ok(rows.iter().map(|row| format!("{}\n", row.image)).collect());
    }
    let template = match template {
        Some(template) => template,
        None => crate::format::Format::list("table", HISTORY_TABLE)?,
    };
    let values: Vec<_> = rows
        .iter()
        .map(|row| history_value(image, row, format.no_trunc, now))
        .collect();
    template.render_list(&values, &crate::format::header(HISTORY_HEADER))
}

//! `minidock history`: how an image was made, from its config's `history` array.
//!
//! Each build step leaves one history entry (`created`, `created_by`, `comment`). Steps that
//! changed files also left a layer; steps that only changed the config (`CMD`, `ENV`) are
//! marked `empty_layer` and have none. So the n-th non-empty entry goes with the n-th layer of
//! the manifest, which gives each row its size.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::cli::{format_table, human_duration, human_size};
use super::store::Image;
use crate::state;

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID on the top row; `<missing>` below it, as Docker shows (the intermediate
    /// images of a pulled image are not in the store).
    pub image: String,
    pub created: Option<SystemTime>,
    pub created_by: String,
    /// The size of the step's layer blob, 0 for a step without a layer.
    pub size: u64,
    pub comment: String,
}

// ANCHOR: history_rows
/// The image's history, newest step first. An image whose config has no history gets one row
/// per layer, with the layers' sizes.
pub fn history_rows(image: &Image) -> Vec<HistoryRow> {
    let layers = image.manifest.layers();
    let mut rows = Vec::new();
    match image.config.history().as_ref().filter(|h| !h.is_empty()) {
        Some(history) => {
            let mut next_layer = 0;
            for entry in history {
                let empty = entry.empty_layer().unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    let size = layers.get(next_layer).map_or(0, |l| l.size());
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
            for layer in layers {
                rows.push(HistoryRow {
                    image: "<missing>".to_owned(),
                    created: None,
                    created_by: String::new(),
                    size: layer.size(),
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
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryFormat {
    pub no_trunc: bool,
    pub quiet: bool,
}

/// The `history` table at time `now`: IMAGE, CREATED, CREATED BY, SIZE, COMMENT.
pub fn history_table(image: &Image, format: HistoryFormat, now: SystemTime) -> Result<String> {
    let rows = history_rows(image);
    if format.quiet {
        return Ok(rows.iter().map(|row| format!("{}\n", row.image)).collect());
    }
    let mut table = vec![
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for row in rows {
        let created = match row.created {
            Some(time) => format!(
                "{} ago",
                human_duration(now.duration_since(time).unwrap_or(Duration::ZERO))
            ),
            None => "N/A".to_owned(),
        };
        // Docker truncates the command to 45 characters, with an ellipsis.
        let created_by = if format.no_trunc || row.created_by.chars().count() <= 45 {
            row.created_by.replace('\t', " ")
        } else {
            let mut short: String = row.created_by.chars().take(44).collect();
            short.push('…');
            short
        };
        let image = if format.no_trunc && row.image != "<missing>" {
            image.id.to_string()
        } else {
            row.image
        };
        table.push(vec![
            image,
            created,
            created_by,
            human_size(row.size),
            row.comment,
        ]);
    }
    Ok(format_table(&table))
}

//! The image endpoints that talk to a registry besides pull: `POST /images/{name}/push`
//! (what `minidock push` does, [`crate::registry::push`]) and `GET /images/search`
//! ([`crate::registry::search::search`], what `minidock search` does).

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, json, streamed};
use crate::image::reference::Reference;
use crate::image::store::Store;
use crate::registry::auth::Credentials;
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::{Response, header::HeaderMap};
use serde_json::json as object;

/// One of Docker's progress JSON messages, one per line.
fn line(value: serde_json::Value) -> Bytes {
    Bytes::from(format!("{value}\r\n"))
}

/// A progress message: a status, for a layer's line with its ID.
fn status(text: &str, id: Option<&str>) -> Bytes {
    line(match id {
        Some(id) => object!({ "status": text, "progressDetail": {}, "id": id }),
        None => object!({ "status": text }),
    })
}

/// What ends a stream that failed: `{"errorDetail":{"message":..},"error":..}`.
pub(super) fn error_line(err: &anyhow::Error) -> Bytes {
    let text = crate::cli::one_line(&format!("{err:#}"));
    line(object!({ "errorDetail": { "message": text }, "error": text }))
}

/// The tags `push` sends for `name` and the `tag` query: that one tag, or (no tag) every tag
/// of the repository in the store, as dockerd pushes them. Errors with dockerd's words: no
/// image of that repository, or not that tag.
fn tags_to_push(store: &Store, name: &Reference, tag: &str) -> anyhow::Result<Vec<Reference>> {
    let repository = name.repository();
    let mut tags: Vec<Reference> = store
        .images()?
        .into_iter()
        .flat_map(|image| image.names)
        .filter(|n| n.repository() == repository && n.tag().is_some())
        .collect();
    tags.sort_by_key(Reference::familiar);
    tags.dedup();
    if tags.is_empty() {
        anyhow::bail!(
            "An image does not exist locally with the tag: {}",
            name.familiar_repository()
        );
    }
    if tag.is_empty() {
        return Ok(tags);
    }
    let wanted = name.with_tag(tag)?;
    if !tags.contains(&wanted) {
        anyhow::bail!("tag does not exist: {}", wanted.familiar());
    }
    Ok(vec![wanted])
}

// ANCHOR: push
/// `POST /images/NAME/push?tag=TAG`: `push`, streamed as Docker's progress JSON messages
/// ("The push refers to repository [...]", a `Pushed` or `Layer already exists` line per
/// blob, `TAG: digest: sha256:... size: N`), then the aux message `{"Tag","Digest","Size"}`
/// the CLI reads; an error ends the stream as `{"error": ...}`. The registry credentials are
/// the request's `X-Registry-Auth`.
pub async fn push(
    daemon: Shared,
    name: String,
    query: &Query,
    credentials: Option<Credentials>,
) -> ApiResult<Response<Body>> {
    let reference =
        Reference::parse(&name).map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let tag = query.get("tag").unwrap_or("").to_owned();
    let (response, tx) = streamed("application/json");
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            let store = Store::open(&daemon.paths.root)?;
            let tags = match tags_to_push(&store, &reference, &tag) {
                Ok(tags) => tags,
                Err(err) => {
                    let heading = format!(
                        "The push refers to repository [{}]",
                        reference.familiar_repository()
                    );
                    let _ = tx.blocking_send(status(&heading, None));
                    return Err(err);
                }
            };
            let options = crate::registry::PushOptions {
                client: super::auth::client_options(reference.domain(), credentials)?,
                jobs: 0,
            };
            let lines = tx.clone();
            let progress =
                crate::registry::progress::Progress::to_sink(Box::new(move |text, id| {
                    let _ = lines.blocking_send(status(text, id));
                }));
            for target in tags {
                let source = target.to_string();
                let pushed = crate::registry::push(&store, &source, &target, &options, &progress)?;
                let aux = object!({
                    "progressDetail": {},
                    "aux": {
                        "Tag": target.tag().unwrap_or("latest"),
                        "Digest": pushed.digest.to_string(),
                        "Size": pushed.size,
                    },
                });
                let _ = tx.blocking_send(line(aux));
            }
            anyhow::Ok(())
        })();
        if let Err(err) = result {
            let _ = tx.blocking_send(error_line(&err));
        }
    });
    Ok(response)
}
// ANCHOR_END: push

// ANCHOR: search
/// `GET /images/search?term=T&limit=N&filters=F`: `search`'s results as Docker's
/// `registry.SearchResult` list (`name`, `description`, `star_count`, `is_official`,
/// `is_automated`). A bad limit or filter is 400; a registry that cannot be searched 500.
pub async fn search(query: &Query, headers: &HeaderMap) -> ApiResult<Response<Body>> {
    let term = query.get("term").unwrap_or("").to_owned();
    let limit = query
        .int("limit")?
        .filter(|l| *l != 0)
        .unwrap_or(crate::registry::search::DEFAULT_LIMIT);
    let filters = crate::registry::search::SearchFilters::parse(&query.filters()?)
        .map_err(|e| ApiError::bad_parameter(crate::cli::one_line(&format!("{e:#}"))))?;
    if !(1..=crate::registry::search::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter(format!(
            "Limit {limit} is outside the range of [1, {}]",
            crate::registry::search::MAX_LIMIT
        )));
    }
    let credentials = super::auth::registry_auth(headers)?;
    let results = blocking(move || {
        let (registry, _) = crate::registry::search::split_term(&term);
        let options = super::auth::client_options(registry, credentials)?;
        crate::registry::search::search(&term, limit, &filters, &options)
    })
    .await
    .map_err(|mut err| {
        if err.message.contains("should not have a scheme") {
            err.status = StatusCode::BAD_REQUEST;
        }
        err
    })?;
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            object!({
                "name": r.name,
                "description": r.description,
                "star_count": r.star_count,
                "is_official": r.is_official,
                "is_automated": false,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &rows))
}
// ANCHOR_END: search

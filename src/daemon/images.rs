//! `/images/...`: the image endpoints, each a call of the library the CLI uses.

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, json, streamed};
use crate::image::reference::Reference;
use crate::image::store::{Image, Removed, Store};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json as object};

/// Routes `/images/REST`. An image name may hold slashes (`localhost:5000/team/app`): the
/// segments before the last word are the name.
pub async fn route(
    daemon: Shared,
    req: Request<Incoming>,
    rest: &[&str],
) -> ApiResult<Response<Body>> {
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let (name, last) = match rest {
        [] => (String::new(), ""),
        [.., last] => (rest[..rest.len() - 1].join("/"), *last),
    };
    match (method, rest, last) {
        (Method::GET, ["json"], _) => list(daemon, &query).await,
        (Method::POST, ["create"], _) if query.get("fromSrc").is_some() => {
            import(daemon, &query, req).await
        }
        (Method::POST, ["create"], _) => pull(daemon, &query, auth(&req)?).await,
        (Method::GET, ["search"], _) => super::registry::search(&query, req.headers()).await,
        (Method::POST, ["prune"], _) => prune(daemon, &query).await,
        (Method::GET, ["get"], _) => super::transfer::save(daemon, req.uri().query(), None).await,
        (Method::POST, ["load"], _) => super::transfer::load(daemon, req).await,
        (Method::GET, [_, _, ..], "get") => super::transfer::save(daemon, None, Some(name)).await,
        (Method::GET, [_, _, ..], "json") => inspect(daemon, name).await,
        (Method::GET, [_, _, ..], "history") => history(daemon, name).await,
        (Method::POST, [_, _, ..], "tag") => tag(daemon, name, &query).await,
        (Method::POST, [_, _, ..], "push") => {
            super::registry::push(daemon, name, &query, auth(&req)?).await
        }
        (Method::DELETE, [_, ..], _) => remove(daemon, rest.join("/"), &query).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// The registry credentials of the request's `X-Registry-Auth` header.
fn auth(req: &Request<Incoming>) -> ApiResult<Option<crate::registry::auth::Credentials>> {
    super::auth::registry_auth(req.headers())
}

/// A 404 names the image as Docker's daemon does: `busybox:latest` for `busybox`.
fn named_404(name: &str) -> impl Fn(ApiError) -> ApiError + '_ {
    move |err| {
        if err.status != StatusCode::NOT_FOUND || name.starts_with("sha256:") {
            return err;
        }
        match Reference::parse(name) {
            Ok(r) if r.tag().is_none() && r.digest().is_none() => match r.with_tag("latest") {
                Ok(tagged) => ApiError::no_such_image(&tagged.familiar()),
                Err(_) => err,
            },
            Ok(r) => ApiError::no_such_image(&r.familiar()),
            Err(_) => err,
        }
    }
}

fn unix_seconds(time: Option<std::time::SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// One image as the API's list shows it (moby's `image.Summary`).
/// `references`: the `reference` filter's patterns, which also choose the tags shown.
pub(super) fn summary(
    store: &Store,
    image: &Image,
    references: &[String],
) -> anyhow::Result<Value> {
    let record = crate::image::cli::inspect(store, image)?;
    let size = crate::image::size::image_size(store, image)?;
    let tags: Vec<String> = image
        .names
        .iter()
        .filter(|n| references.is_empty() || crate::image::cli::reference_matches(references, n))
        .map(Reference::familiar)
        .collect();
    // A digest per repository shown: the CLI makes a row of each repository it names.
    let shown: Vec<String> = image
        .names
        .iter()
        .filter(|n| references.is_empty() || crate::image::cli::reference_matches(references, n))
        .map(Reference::familiar_repository)
        .collect();
    let digests: Vec<&String> = record
        .repo_digests
        .iter()
        .filter(|d| {
            shown
                .iter()
                .any(|r| d.split('@').next() == Some(r.as_str()))
        })
        .collect();
    Ok(object!({
        "Containers": -1,
        "Created": unix_seconds(image.created()),
        "Id": image.id.to_string(),
        "Labels": record.config.labels,
        "ParentId": "",
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": -1,
        "Size": size,
        "VirtualSize": size,
    }))
}

// ANCHOR: list
/// `GET /images/json`: `images`' selection (`filters`), newest first.
async fn list(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let filters = query.filters()?;
    let rows = blocking(move || {
        let store = Store::open(&daemon.paths.root)?;
        let filters = crate::container::filter::Filters::parse(
            &filters,
            crate::image::cli::IMAGES_FILTER_KEYS,
        )?;
        let mut images = store.images()?;
        images.sort_by(|a, b| {
            b.created()
                .cmp(&a.created())
                .then_with(|| a.names.cmp(&b.names))
        });
        let images = crate::image::cli::filter_images(&store, images, &filters)?;
        let references = filters.get("reference");
        images
            .iter()
            .filter(|image| {
                references.is_empty()
                    || image
                        .names
                        .iter()
                        .any(|n| crate::image::cli::reference_matches(references, n))
            })
            .map(|image| summary(&store, image, references))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await?;
    Ok(json(StatusCode::OK, &rows))
}
// ANCHOR_END: list

async fn inspect(daemon: Shared, name: String) -> ApiResult<Response<Body>> {
    let wanted = name.clone();
    let record = blocking(move || {
        let store = Store::open(&daemon.paths.root)?;
        let image = store.resolve(&wanted)?;
        crate::image::cli::inspect(&store, &image)
    })
    .await
    .map_err(|err| {
        // Docker 20.10's words, which the CLI prints as they come.
        let named = named_404(&name)(err);
        if named.status == StatusCode::NOT_FOUND && !name.starts_with("sha256:") {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no such image: {name}: {}", named.message),
            );
        }
        named
    })?;
    Ok(json(StatusCode::OK, &record))
}

/// `GET /images/NAME/history`: `history`'s rows, newest first.
async fn history(daemon: Shared, name: String) -> ApiResult<Response<Body>> {
    let wanted = name.clone();
    let rows = blocking(move || {
        let store = Store::open(&daemon.paths.root)?;
        let image = store.resolve(&wanted)?;
        let sizes = crate::image::size::layer_sizes(&store, &image)?;
        let rows = crate::image::history::history_rows(&image, &sizes);
        let tags: Vec<String> = image.names.iter().map(Reference::familiar).collect();
        Ok(rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let id = if i == 0 {
                    image.id.to_string()
                } else {
                    "<missing>".to_owned()
                };
                object!({
                    "Id": id,
                    "Created": unix_seconds(row.created),
                    "CreatedBy": row.created_by,
                    "Tags": if i == 0 { Some(&tags) } else { None },
                    "Size": row.size,
                    "Comment": row.comment,
                })
            })
            .collect::<Vec<_>>())
    })
    .await
    .map_err(named_404(&name))?;
    Ok(json(StatusCode::OK, &rows))
}

/// `POST /images/NAME/tag?repo=REPO&tag=TAG`: 201.
async fn tag(daemon: Shared, name: String, query: &Query) -> ApiResult<Response<Body>> {
    let repo = query.get("repo").unwrap_or("");
    let target = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_owned(),
    };
    let target =
        Reference::parse(&target).map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let source = name.clone();
    blocking(move || Store::open(&daemon.paths.root)?.tag(&source, &target))
        .await
        .map_err(named_404(&name))?;
    Ok(super::empty(StatusCode::CREATED))
}

/// `DELETE /images/NAME?force=`: `rmi`, answering what was untagged and deleted.
async fn remove(daemon: Shared, name: String, query: &Query) -> ApiResult<Response<Body>> {
    let force = query.bool("force");
    let wanted = name.clone();
    let removed = blocking(move || {
        let root = daemon.paths.root.clone();
        let store = Store::open(&root)?;
        store.remove(&wanted, force, |_| {
            crate::image::store::containers_from_state(&root)
        })
    })
    .await
    .map_err(|mut err| {
        let conflict = ["must be forced", "cannot be forced", "is using"];
        if conflict.iter().any(|words| err.message.contains(words)) {
            err.status = StatusCode::CONFLICT;
        }
        named_404(&name)(err)
    })?;
    Ok(json(StatusCode::OK, &removed_list(&removed)))
}

/// What `rmi` and `image prune` untagged and deleted, as Docker's `DeleteResponse` list.
fn removed_list(removed: &[Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|event| match event {
            Removed::Untagged(reference) => object!({ "Untagged": reference.familiar() }),
            Removed::Deleted(id) => object!({ "Deleted": id.to_string() }),
        })
        .collect()
}

/// `POST /images/prune`: `image prune`, dangling images only unless the filter
/// `dangling=false` (`-a`). `{"ImagesDeleted": [...], "SpaceReclaimed": BYTES}`; other
/// filters (`until`, `label`) are not supported: 400.
async fn prune(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let mut all = false;
    for filter in query.filters()? {
        match filter.as_str() {
            "dangling=false" | "dangling=0" => all = true,
            "dangling=true" | "dangling=1" => all = false,
            other => {
                return Err(ApiError::bad_parameter(format!(
                    "filter {other:?} is not supported by image prune"
                )));
            }
        }
    }
    let pruned =
        blocking(move || crate::container::prune::prune_images(&daemon.paths, all)).await?;
    let deleted = removed_list(&pruned.images);
    Ok(json(
        StatusCode::OK,
        &object!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
            "SpaceReclaimed": pruned.reclaimed,
        }),
    ))
}

/// `POST /images/create?fromSrc=SOURCE&repo=NAME&tag=TAG&message=&changes=...`: `import` of
/// a root filesystem tarball (plain or compressed), the request's body when `SOURCE` is `-`,
/// else downloaded from the `http(s)://` URL. The answer is dockerd's JSON stream: the new
/// image's ID as `{"status":"sha256:..."}`, or `{"error": ...}`.
async fn import(
    daemon: Shared,
    query: &Query,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let source = query.get("fromSrc").unwrap_or("").to_owned();
    let name = match (query.get("repo").unwrap_or(""), query.get("tag")) {
        ("", _) => None,
        (repo, Some(tag)) if !tag.is_empty() => Some(format!("{repo}:{tag}")),
        (repo, _) => Some(repo.to_owned()),
    };
    let names = name
        .map(|n| Reference::parse(&n))
        .transpose()
        .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let text = |key: &str| query.get(key).filter(|v| !v.is_empty()).map(str::to_owned);
    let changes = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "changes")
        .map(|(_, value)| value.into_owned())
        .collect();
    let options = crate::image::import::ImportOptions {
        source: source.clone(),
        message: text("message"),
        changes,
        platform: text("platform"),
        created: None,
    };
    let body = if source == "-" {
        Some(super::spool_body(req).await?)
    } else if source.starts_with("http://") || source.starts_with("https://") {
        None
    } else {
        return Err(ApiError::bad_parameter(format!(
            "fromSrc {source:?} is not supported: give - (the request's body) or an http(s) URL"
        )));
    };
    let (response, tx) = streamed("application/json");
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            let input: Box<dyn std::io::Read> = match body {
                Some(file) => Box::new(file),
                None => crate::image::import::open_url(&options.source)?,
            };
            let store = Store::open(&daemon.paths.root)?;
            crate::image::import::import(&store, input, names.as_slice(), &options)
        })();
        let value = match result {
            Ok(image) => object!({ "status": image.id.to_string() }),
            Err(err) => {
                let text = crate::cli::one_line(&format!("{err:#}"));
                object!({ "errorDetail": { "message": text }, "error": text })
            }
        };
        let _ = tx.blocking_send(Bytes::from(format!("{value}\r\n")));
    });
    Ok(response)
}

/// A progress message as Docker's JSON stream carries it.
fn message(status: &str, id: Option<&str>) -> Bytes {
    let value = match id {
        Some(id) => object!({ "status": status, "progressDetail": {}, "id": id }),
        None => object!({ "status": status }),
    };
    Bytes::from(format!("{value}\r\n"))
}

// ANCHOR: pull
/// `POST /images/create?fromImage=NAME&tag=TAG`: `pull`, its lines streamed as Docker's
/// progress JSON messages; an error ends the stream as `{"error": ...}`. The registry
/// credentials are the request's `X-Registry-Auth`.
async fn pull(
    daemon: Shared,
    query: &Query,
    credentials: Option<crate::registry::auth::Credentials>,
) -> ApiResult<Response<Body>> {
    let from = query.get("fromImage").unwrap_or("");
    if from.is_empty() {
        return Err(ApiError::bad_parameter(
            "give fromImage (pull) or fromSrc (import)",
        ));
    }
    let wanted = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.starts_with("sha256:") => format!("{from}@{tag}"),
        Some(tag) => format!("{from}:{tag}"),
        None => from.to_owned(),
    };
    let reference =
        Reference::parse(&wanted).map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let platform = query
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(crate::registry::Platform::parse)
        .transpose()
        .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let (response, tx) = streamed("application/json");
    tokio::task::spawn_blocking(move || {
        let lines = tx.clone();
        let progress = crate::registry::progress::Progress::to_sink(Box::new(move |text, id| {
            let _ = lines.blocking_send(message(text, id));
        }));
        let result = (|| {
            let options = crate::registry::PullOptions {
                platform,
                client: super::auth::client_options(reference.domain(), credentials)?,
                jobs: 0,
                unpack: true,
            };
            let store = Store::open(&daemon.paths.root)?;
            crate::registry::pull(&store, &reference, &options, &progress)
        })();
        let _ = match result {
            Ok(pulled) => {
                progress.line(&format!("Digest: {}", pulled.digest));
                progress.line(&if pulled.changed {
                    format!(
                        "Status: Downloaded newer image for {}",
                        pulled.name.familiar()
                    )
                } else {
                    format!("Status: Image is up to date for {}", pulled.name.familiar())
                });
                Ok(())
            }
            Err(err) => {
                let text = crate::cli::one_line(&format!("{err:#}"));
                let value = object!({ "errorDetail": { "message": text }, "error": text });
                tx.blocking_send(Bytes::from(format!("{value}\r\n")))
            }
        };
    });
    Ok(response)
}
// ANCHOR_END: pull

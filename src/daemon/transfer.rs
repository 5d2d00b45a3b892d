//! `POST /commit`, `GET /images/get`, `GET /images/{name}/get` and `POST /images/load`: a
//! container into an image, and images into and out of a `docker save` archive, each through
//! the library functions `minidock commit`, `save` and `load` call.

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, json, streamed};
use crate::image::reference::Reference;
use crate::image::store::Store;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

/// Every value of `key` in a query string (`names=a&names=b`, `changes=...` repeated), in
/// order.
fn all_values(query: Option<&str>, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

// ANCHOR: commit
/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: `minidock commit`
/// ([`crate::image::commit::commit`]); answers `201 {"Id": "sha256:..."}`. `pause` is true
/// unless given false, as Docker's. The body (a container config to merge) is not read:
/// `changes` are the supported way to change the config. Errors: 404 for no such container,
/// 400 for a bad reference, the library's error otherwise (a bad change, a full disk).
pub async fn commit(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let raw = req.uri().query().map(str::to_owned);
    let query = Query::parse(raw.as_deref());
    let container = query
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_parameter("container is required"))?
        .to_owned();
    let names = match query.get("repo").filter(|r| !r.is_empty()) {
        None => Vec::new(),
        Some(repo) => {
            let text = match query.get("tag").filter(|t| !t.is_empty()) {
                Some(tag) => format!("{repo}:{tag}"),
                None => repo.to_owned(),
            };
            vec![Reference::parse(&text).map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?]
        }
    };
    let options = crate::image::commit::CommitOptions {
        message: query
            .get("comment")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        author: query
            .get("author")
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
        changes: all_values(raw.as_deref(), "changes"),
        created: None,
        pause: query.get("pause").is_none_or(|_| query.bool("pause")),
    };
    let d = daemon.clone();
    let wanted = container.clone();
    blocking(move || d.paths.resolve(&wanted))
        .await
        .map_err(|_| ApiError::no_such_container(&container))?;
    let image =
        blocking(move || crate::image::commit::commit(&daemon.paths, &container, &names, &options))
            .await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": image.id.to_string() }),
    ))
}
// ANCHOR_END: commit

// ANCHOR: save
/// `GET /images/get?names=A&names=B` (`name`: `None`) and `GET /images/{name}/get`: the
/// archive `minidock save` writes (Docker's format: an OCI layout with `manifest.json`),
/// streamed. Every name is resolved first, so a missing image is a 404 before any byte; a
/// failure later cuts the stream short.
pub async fn save(
    daemon: Shared,
    query: Option<&str>,
    name: Option<String>,
) -> ApiResult<Response<Body>> {
    let names = match name {
        Some(name) => vec![name],
        None => all_values(query, "names"),
    };
    if names.is_empty() {
        return Err(ApiError::bad_parameter("no images given (names)"));
    }
    let root = daemon.paths.root.clone();
    let checked = names.clone();
    blocking(move || {
        let store = Store::open(&root)?;
        for name in &checked {
            store.resolve(name)?;
        }
        Ok(())
    })
    .await?;
    let (response, tx) = streamed("application/x-tar");
    tokio::task::spawn_blocking(move || {
        let mut sink = super::ChannelWriter::new(tx, 256 << 10);
        let saved = Store::open(&daemon.paths.root).and_then(|store| {
            crate::image::archive::save(&store, &names, Default::default(), &mut sink)
        });
        if saved.is_ok() {
            let _ = std::io::Write::flush(&mut sink);
        }
    });
    Ok(response)
}
// ANCHOR_END: save

// ANCHOR: load
/// `POST /images/load?quiet=`: `minidock load` on the body (a docker or OCI archive, plain
/// or compressed); answers the lines `load` prints, each as `{"stream": "Loaded image:
/// NAME\n"}`. Errors: the library's (a body that is not an image archive).
pub async fn load(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let archive = super::spool_body(req).await?;
    let lines = blocking(move || {
        let store = Store::open(&daemon.paths.root)?;
        let loaded = crate::image::archive::load(&store, std::io::BufReader::new(archive))?;
        Ok(crate::image::cli::loaded_lines(&loaded))
    })
    .await?;
    let mut body = Vec::new();
    for line in lines {
        let message = serde_json::json!({ "stream": format!("{line}\n") });
        body.extend_from_slice(message.to_string().as_bytes());
        body.push(b'\n');
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(Body::Full(Some(Bytes::from(body))))
        .unwrap_or_else(|_| Response::new(Body::Full(None))))
}
// ANCHOR_END: load

//! `_ping`, `version` and `info`.

use super::error::ApiResult;
use super::{Body, Shared, json};
use hyper::{Method, Response, StatusCode};

// ANCHOR: ping
/// `GET`/`HEAD /_ping`: `OK`, with the headers the CLI negotiates from: the API version
/// (it uses the lower of its own and this), experimental features (none) and the OS.
pub fn ping(method: &Method) -> Response<Body> {
    let body = if method == Method::HEAD {
        None
    } else {
        Some(hyper::body::Bytes::from_static(b"OK"))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Docker-Experimental", "false")
        .header("OSType", "linux")
        .body(Body::Full(body))
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}
// ANCHOR_END: ping

/// `GET /version`: the `Server` part of `minidock version`'s record.
pub async fn version() -> ApiResult<Response<Body>> {
    let server = super::blocking(|| Ok(crate::system::version().server())).await?;
    Ok(json(StatusCode::OK, &server))
}

/// `GET /info`: `minidock info`'s record, which has Docker's keys.
pub async fn info(daemon: Shared) -> ApiResult<Response<Body>> {
    let info = super::blocking(move || crate::system::info::info(&daemon.paths)).await?;
    Ok(json(StatusCode::OK, &info))
}

/// `GET /system/df`: `system df`'s measures in Docker's `DiskUsage` shape: `LayersSize`,
/// the images (with `Size`, `SharedSize`, `Containers`), the containers (with `SizeRw`), the
/// volumes (with `UsageData`) and an empty `BuildCache` (minidock has none).
pub async fn df(daemon: Shared) -> ApiResult<Response<Body>> {
    let usage = super::blocking(move || {
        let usage = crate::system::df::usage(&daemon.paths)?;
        let store = crate::image::store::Store::open(&daemon.paths.root)?;
        let mut images = Vec::new();
        for (image, size, shared, containers) in usage.images() {
            let mut row = super::images::summary(&store, image, &[])?;
            row["Size"] = size.into();
            row["VirtualSize"] = size.into();
            row["SharedSize"] = shared.into();
            row["Containers"] = containers.into();
            images.push(row);
        }
        let now = std::time::SystemTime::now();
        let containers: Vec<_> = usage
            .containers()
            .map(|(state, size)| {
                let mut row = super::containers::summary(&daemon.paths, state, now);
                row.size_rw = Some(size);
                row
            })
            .collect();
        let volume_store = crate::volume::Store::new(&daemon.paths.root);
        let mut volumes = Vec::new();
        for (name, links, size) in usage.volumes() {
            let mut row = serde_json::to_value(volume_store.get(name)?)?;
            row["UsageData"] = serde_json::json!({ "Size": size, "RefCount": links });
            volumes.push(row);
        }
        Ok(serde_json::json!({
            "LayersSize": usage.layers_size(),
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }))
    })
    .await?;
    Ok(json(StatusCode::OK, &usage))
}

// ANCHOR: events
/// `GET /events`: the journal's events ([`crate::events`]) that pass `filters`, streamed as
/// JSON lines: those at or after `since` first, then the new ones as they are appended, until
/// `until` passes or the client goes away. Without `since` only new events come; the headers
/// go out at once. `since` and `until` are Unix seconds with an optional fraction (what the
/// CLI sends), or anything `--since` takes. Errors: 400 for a time or a filter that does not
/// parse.
pub async fn events(
    daemon: Shared,
    req: &hyper::Request<hyper::body::Incoming>,
) -> ApiResult<Response<Body>> {
    use super::error::ApiError;
    let query = super::Query::parse(req.uri().query());
    let (since, until) = window(&query)?;
    let filter = crate::events::Filter::parse(&query.filters()?)
        .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    let mut follower = crate::events::Follower::new(&daemon.paths.root, since, until);
    let (response, tx) = super::streamed("application/json");
    tokio::spawn(async move {
        loop {
            for event in follower.next_events().unwrap_or_default() {
                if !filter.includes(&event) {
                    continue;
                }
                let mut line = serde_json::to_vec(&event).unwrap_or_default();
                line.push(b'\n');
                if tx.send(line.into()).await.is_err() {
                    return;
                }
            }
            if follower.done() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(crate::events::POLL) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(response)
}
// ANCHOR_END: events

/// The `since` and `until` of an events request, each `None` when not given; 400 for a time
/// that does not parse or a `since` after the `until`.
fn window(
    query: &super::Query,
) -> ApiResult<(Option<std::time::SystemTime>, Option<std::time::SystemTime>)> {
    use super::error::ApiError;
    let now = std::time::SystemTime::now();
    let time = |key: &str| -> ApiResult<Option<std::time::SystemTime>> {
        match query.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => crate::container::logs::parse_log_time(key, v, now)
                .map(Some)
                .map_err(|e| ApiError::bad_parameter(format!("{e:#}"))),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    let text = |key: &str| query.get(key).unwrap_or_default();
    crate::events::check_window(
        since.map(|t| (t, text("since"))),
        until.map(|t| (t, text("until"))),
    )
    .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))?;
    Ok((since, until))
}

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
        let containers: Vec<serde_json::Value> = usage
            .containers()
            .map(|(state, size)| {
                let mut row = super::containers::summary(&daemon.paths, state, now);
                row["SizeRw"] = size.into();
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

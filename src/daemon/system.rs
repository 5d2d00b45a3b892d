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

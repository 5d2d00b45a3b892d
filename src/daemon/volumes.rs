//! `/volumes/...`: list, create, inspect, remove and prune, through `volume::cli`, as
//! `minidock volume` does.

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, empty, json};
use crate::volume::Store;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json as object;
use std::collections::BTreeMap;

/// Routes `/volumes/REST`.
pub async fn route(
    daemon: Shared,
    req: Request<Incoming>,
    rest: &[&str],
) -> ApiResult<Response<Body>> {
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    match (method, rest) {
        (Method::GET, []) => list(daemon, &query).await,
        (Method::POST, ["create"]) => create(daemon, req).await,
        (Method::POST, ["prune"]) => prune(daemon, &query).await,
        (Method::GET, [name]) => inspect(daemon, (*name).to_owned()).await,
        (Method::DELETE, [name]) => remove(daemon, (*name).to_owned(), &query).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// `GET /volumes`: `{"Volumes": [...], "Warnings": null}`, filtered as `volume ls -f`.
async fn list(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let filters = query.filters()?;
    let volumes = blocking(move || {
        let store = Store::new(&daemon.paths.root);
        crate::volume::cli::list(&daemon.paths, &store, &filters)
    })
    .await
    .map_err(|err| match err.status {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::bad_parameter(err.message),
        _ => err,
    })?;
    Ok(json(
        StatusCode::OK,
        &object!({ "Volumes": volumes, "Warnings": null }),
    ))
}

/// `POST /volumes/create`'s body (moby's `volume.CreateOptions`); the SDK for Python sends
/// `null` for a name or driver not given.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateOptions {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`: 201 and the volume (an existing one is returned as it is).
async fn create(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let options: Option<CreateOptions> = super::body_json(req).await?;
    let options = options.unwrap_or_default();
    let volume = blocking(move || {
        let store = Store::new(&daemon.paths.root);
        let driver = options
            .driver
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(crate::volume::DRIVER);
        crate::volume::cli::create(
            &daemon.paths,
            &store,
            options.name.as_deref(),
            driver,
            options.labels.unwrap_or_default(),
            options.driver_opts.unwrap_or_default(),
        )
    })
    .await?;
    Ok(json(StatusCode::CREATED, &volume))
}

/// `GET /volumes/{name}`: the volume, or 404 `get NAME: no such volume`.
async fn inspect(daemon: Shared, name: String) -> ApiResult<Response<Body>> {
    let volume = blocking(move || Store::new(&daemon.paths.root).get(&name)).await?;
    Ok(json(StatusCode::OK, &volume))
}

/// `DELETE /volumes/{name}?force=`: 204; 404 when there is none, 409 while in use.
async fn remove(daemon: Shared, name: String, query: &Query) -> ApiResult<Response<Body>> {
    let force = query.bool("force");
    blocking(move || {
        let store = Store::new(&daemon.paths.root);
        crate::volume::cli::remove(&daemon.paths, &store, &name, force)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`: removes every volume no container uses (API 1.41, the version this
/// daemon speaks, prunes named volumes too; 1.42 and later take `all=true` for that).
/// `{"VolumesDeleted": [...], "SpaceReclaimed": BYTES}`. Of the filters only `all` is
/// applied; `label` is refused ([`Query::prune_filters`]).
async fn prune(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let filters = query.prune_filters("volume prune", &["all"], &["label", "label!"])?;
    let all = !filters.iter().any(|f| f == "all=false" || f == "all=0");
    let (removed, reclaimed) = blocking(move || {
        let store = Store::new(&daemon.paths.root);
        crate::volume::cli::prune(&daemon.paths, &store, all)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &object!({ "VolumesDeleted": removed, "SpaceReclaimed": reclaimed }),
    ))
}

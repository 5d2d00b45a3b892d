//! `/networks/...`: list, create, inspect, remove and prune, through `net::cli`, and
//! connect and disconnect, through `container::network`, as `minidock network` does.

use super::error::{ApiError, ApiResult};
use super::{Body, Query, Shared, blocking, empty, json};
use crate::net::cli::state_dir;
use crate::net::network::{self, CreateRequest};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json as object;
use std::collections::BTreeMap;

/// Routes `/networks/REST`.
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
        (Method::POST, [term, "connect"]) => connect(daemon, (*term).to_owned(), req).await,
        (Method::POST, [term, "disconnect"]) => disconnect(daemon, (*term).to_owned(), req).await,
        (Method::GET, [term]) => inspect(daemon, (*term).to_owned()).await,
        (Method::DELETE, [term]) => remove(daemon, (*term).to_owned()).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// The network state, with the predefined networks made (as `minidock network` does).
fn state(daemon: &Shared) -> anyhow::Result<crate::net::StateDir> {
    let state = state_dir(&daemon.paths.root);
    network::ensure_default(&state)?;
    Ok(state)
}

/// `GET /networks`: every network (`Containers` empty, as dockerd's list), filtered as
/// `network ls -f`; a bad filter is a 400.
async fn list(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    let filters = query.filters()?;
    let networks = blocking(move || crate::net::cli::list(&state(&daemon)?, &filters))
        .await
        .map_err(|err| match err.status {
            StatusCode::INTERNAL_SERVER_ERROR => ApiError::bad_parameter(err.message),
            _ => err,
        })?;
    Ok(json(StatusCode::OK, &networks))
}

/// `POST /networks/create`'s body (moby's `network.CreateRequest`), the fields minidock uses;
/// the SDK for Python sends `null` for a driver or flag not given.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: Option<String>,
    internal: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    labels: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    config: Option<Vec<IpamConfigBody>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigBody {
    subnet: String,
    gateway: String,
}

/// The library's request from the API's body; 400 for what it cannot take.
fn request(body: &CreateBody) -> ApiResult<CreateRequest> {
    if body.enable_ipv6 == Some(true) {
        return Err(ApiError::bad_parameter("IPv6 networks are not supported"));
    }
    let configs = body
        .ipam
        .as_ref()
        .and_then(|i| i.config.as_deref())
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_parameter(
            "more than one IPAM config (subnet) is not supported",
        ));
    }
    let config = configs.first();
    let subnet = config
        .map(|c| c.subnet.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e| ApiError::bad_parameter(format!("{e:#}")))
        })
        .transpose()?;
    let gateway = config
        .map(|c| c.gateway.as_str())
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.parse()
                .map_err(|_| ApiError::bad_parameter(format!("invalid gateway address {g:?}")))
        })
        .transpose()?;
    Ok(CreateRequest {
        name: body.name.clone(),
        subnet,
        gateway,
        internal: body.internal.unwrap_or(false),
        labels: body.labels.clone().unwrap_or_default(),
        options: body.options.clone().unwrap_or_default(),
    })
}

/// `POST /networks/create`: 201 `{"Id": ..., "Warning": ""}`; 409 for a name in use.
async fn create(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let body: Option<CreateBody> = super::body_json(req).await?;
    let body = body.unwrap_or_default();
    let request = request(&body)?;
    let driver = body
        .driver
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "bridge".to_owned());
    let net =
        blocking(move || crate::net::cli::create_network(&state(&daemon)?, &driver, &request))
            .await?;
    Ok(json(
        StatusCode::CREATED,
        &object!({ "Id": net.id, "Warning": "" }),
    ))
}

/// `GET /networks/{id}`: the network with its attached containers' endpoints.
async fn inspect(daemon: Shared, term: String) -> ApiResult<Response<Body>> {
    let net = blocking(move || {
        let state = state(&daemon)?;
        crate::net::cli::inspect_one(&daemon.paths, &state, &term)
    })
    .await?;
    Ok(json(StatusCode::OK, &net))
}

/// `DELETE /networks/{id}`: 204; 404 when there is none, 403 for a predefined network or
/// one with containers attached (dockerd's codes).
async fn remove(daemon: Shared, term: String) -> ApiResult<Response<Body>> {
    blocking(move || crate::net::cli::remove_one(&state(&daemon)?, &term)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /networks/prune`: `{"NetworksDeleted": [NAME...]}`. Filters (`until`, `label`) are
/// not supported: 400 ([`Query::prune_filters`]).
async fn prune(daemon: Shared, query: &Query) -> ApiResult<Response<Body>> {
    query.prune_filters("network prune", &[], &["until", "label", "label!"])?;
    let deleted = blocking(move || crate::net::cli::prune_unused(&state(&daemon)?)).await?;
    Ok(json(
        StatusCode::OK,
        &object!({ "NetworksDeleted": deleted }),
    ))
}

/// `POST /networks/{id}/connect`'s body (moby's `network.ConnectOptions`), the fields minidock
/// uses: the container, its aliases on the network and its fixed IPv4 address.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointBody>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointBody {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpamBody>,
}

#[derive(Default, serde::Deserialize)]
struct EndpointIpamBody {
    #[serde(rename = "IPv4Address", default)]
    ipv4_address: Option<String>,
}

/// `POST /networks/{id}/disconnect`'s body (moby's `network.DisconnectOptions`).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
    force: bool,
}

/// The status dockerd gives a refused connect or disconnect: 404 for an unknown network or
/// container, 403 for an endpoint already there (libnetwork's `ForbiddenError`), 400 for a
/// mode or flag the network cannot take (moby's `runconfig` errors), else the library's.
fn connect_error(err: anyhow::Error) -> ApiError {
    let api = ApiError::from_library(&err);
    let lower = api.message.to_lowercase();
    if lower.contains("already exists in network") {
        return ApiError::new(StatusCode::FORBIDDEN, api.message);
    }
    const INVALID: [&str; 5] = [
        "cannot be connected",
        "cannot be disconnected",
        "supported only for containers in user defined networks",
        "supported on user defined networks only",
        "invalid ipv4 address",
    ];
    if INVALID.iter().any(|m| lower.contains(m)) {
        return ApiError::bad_parameter(api.message);
    }
    api
}

/// Runs a connect or disconnect on the blocking pool, its errors as dockerd answers them.
async fn change(work: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> ApiResult<()> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(connect_error),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("a worker failed: {e}"),
        )),
    }
}

// ANCHOR: connect
/// `POST /networks/{id}/connect`: 200 with no body once the container is on the network
/// (at once when it runs, at its next start otherwise), as `network connect`.
async fn connect(
    daemon: Shared,
    term: String,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let body: Option<ConnectBody> = super::body_json(req).await?;
    let body = body.unwrap_or_default();
    if body.container.is_empty() {
        return Err(ApiError::bad_parameter("no container given to connect"));
    }
    let endpoint = body.endpoint_config.unwrap_or_default();
    let aliases = endpoint.aliases.unwrap_or_default();
    let ip = endpoint
        .ipam_config
        .and_then(|c| c.ipv4_address)
        .filter(|ip| !ip.is_empty());
    change(move || {
        crate::container::network::connect_network(
            &daemon.paths,
            &term,
            &body.container,
            &aliases,
            ip.as_deref(),
        )
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
// ANCHOR_END: connect

/// `POST /networks/{id}/disconnect`: 200 with no body, as `network disconnect [-f]`.
async fn disconnect(
    daemon: Shared,
    term: String,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let body: Option<DisconnectBody> = super::body_json(req).await?;
    let body = body.unwrap_or_default();
    if body.container.is_empty() {
        return Err(ApiError::bad_parameter("no container given to disconnect"));
    }
    change(move || {
        crate::container::network::disconnect_network(
            &daemon.paths,
            &term,
            &body.container,
            body.force,
        )
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

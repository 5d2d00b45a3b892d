//! `/networks/...`: list, create, inspect, remove and prune, through `net::cli`, as
//! `minidock network` does. Connecting a created container to another network is not
//! supported (a minidock container has exactly one network): those routes answer 501.

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
        (Method::POST, ["prune"]) => prune(daemon).await,
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

/// `POST /networks/create`'s body (moby's `network.CreateRequest`), the fields minidock uses.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
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
        internal: body.internal,
        labels: body.labels.clone().unwrap_or_default(),
        options: body.options.clone().unwrap_or_default(),
    })
}

/// `POST /networks/create`: 201 `{"Id": ..., "Warning": ""}`; 409 for a name in use.
async fn create(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let body: Option<CreateBody> = super::body_json(req).await?;
    let body = body.unwrap_or_default();
    let request = request(&body)?;
    let driver = if body.driver.is_empty() {
        "bridge".to_owned()
    } else {
        body.driver
    };
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

/// `POST /networks/prune`: `{"NetworksDeleted": [NAME...]}`.
async fn prune(daemon: Shared) -> ApiResult<Response<Body>> {
    let deleted = blocking(move || crate::net::cli::prune_unused(&state(&daemon)?)).await?;
    Ok(json(
        StatusCode::OK,
        &object!({ "NetworksDeleted": deleted }),
    ))
}

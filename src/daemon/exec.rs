//! `/exec/...`: processes started in a running container (`docker exec`).

use super::error::{ApiError, ApiResult};
use super::{Body, Shared};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// One exec instance, as `POST /containers/ID/exec` made it.
#[derive(Debug, Clone, Default)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
}

/// Routes `/exec/REST`.
pub async fn route(
    _daemon: Shared,
    _req: Request<Incoming>,
    _rest: &[&str],
) -> ApiResult<Response<Body>> {
    Err(ApiError::not_found_route())
}

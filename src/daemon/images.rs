//! `/images/...`: the image endpoints, each a call of the library the CLI uses.

use super::error::{ApiError, ApiResult};
use super::{Body, Shared};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// Routes `/images/REST`.
pub async fn route(
    _daemon: Shared,
    _req: Request<Incoming>,
    _rest: &[&str],
) -> ApiResult<Response<Body>> {
    Err(ApiError::not_found_route())
}

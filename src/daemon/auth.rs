//! `POST /auth` and the `X-Registry-Auth` header: the daemon talks to registries with the
//! credentials the client sends, as dockerd does (the daemon keeps none of its own).
//!
//! `docker login` sends the credentials once to `POST /auth`, which checks them against the
//! registry ([`crate::registry::cli::verify_login`], what `minidock login` does) and answers
//! `{"Status":"Login Succeeded","IdentityToken":""}`; the CLI then stores them in its own
//! `config.json`. Every later pull and push carries them in `X-Registry-Auth`: base64url of
//! the JSON `{"username","password","serveraddress","identitytoken"}` (moby's
//! `registry.AuthConfig`).

use super::error::{ApiError, ApiResult};
use super::{Body, Shared, blocking, body_json, json};
use crate::registry::auth::Credentials;
use crate::registry::client::ClientOptions;
use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;

/// The JSON of `POST /auth` and of `X-Registry-Auth` (moby's `registry.AuthConfig`).
#[derive(Debug, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `base64(user:password)`, as `config.json` keeps it; used when no username is given.
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
}

impl AuthConfig {
    /// The username and password, from the fields or from `auth`; `None` when neither is
    /// given. Errors: an identity token (OAuth refresh tokens are not supported), an `auth`
    /// that is not `base64(user:password)`.
    pub fn credentials(&self) -> ApiResult<Option<Credentials>> {
        if !self.identitytoken.is_empty() {
            return Err(ApiError::bad_parameter(
                "identity tokens are not supported by minidock daemon: log in with a password",
            ));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Ok(Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            }));
        }
        if self.auth.is_empty() {
            return Ok(None);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|t| t.split_once(':')) {
            Some((user, password)) => Ok(Some(Credentials {
                username: user.to_owned(),
                password: password.to_owned(),
            })),
            None => Err(ApiError::bad_parameter(
                "invalid auth in the registry credentials: want base64(user:password)",
            )),
        }
    }
}

/// The credentials of a request's `X-Registry-Auth` header (base64url JSON, padded or not;
/// moby also takes standard base64). `None` when the header is absent, empty or `{}`.
/// Errors (400): a header that is not base64 of a JSON object.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<Credentials>> {
    let Some(value) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = URL_SAFE
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .or_else(|_| STANDARD.decode(text))
        .map_err(|_| ApiError::bad_parameter("invalid X-Registry-Auth header: not base64"))?;
    let config: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_parameter(format!("invalid X-Registry-Auth header: {e}")))?;
    config.credentials()
}

/// The client options for `registry` (its mirrors and insecure registries, as `minidock
/// pull` reads them) with the request's credentials only: as dockerd, the daemon never lends
/// the credentials `minidock login` stored to a client that sent none.
pub fn client_options(
    registry: &str,
    credentials: Option<Credentials>,
) -> anyhow::Result<ClientOptions> {
    let mut options = crate::registry::cli::client_options(registry, &[])?;
    options.credentials = credentials;
    Ok(options)
}

// ANCHOR: login
/// `POST /auth`: checks the credentials against the registry as `minidock login` does. 200
/// `{"Status":"Login Succeeded","IdentityToken":""}`; 401 with dockerd's words when the
/// registry refuses them; the daemon stores nothing.
pub async fn login(_daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let config: Option<AuthConfig> = body_json(req).await?;
    let config = config.unwrap_or_default();
    let credentials = config
        .credentials()?
        .ok_or_else(|| ApiError::bad_parameter("login needs a username and a password"))?;
    let registry = crate::registry::cli::registry_host(Some(config.serveraddress.as_str()))
        .trim()
        .to_owned();
    let outcome = blocking(move || {
        let mut options = crate::registry::cli::client_options(&registry, &[])?;
        options.credentials = Some(credentials);
        match crate::registry::cli::verify_login(&registry, &options) {
            Ok(()) => Ok(None),
            Err(err) if format!("{err:#}").contains("wrong username or password") => {
                Ok(Some(refused(&registry, &options)))
            }
            Err(err) => Err(err),
        }
    })
    .await?;
    if let Some(message) = outcome {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, message));
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}
// ANCHOR_END: login

/// dockerd's words for refused credentials: the status of `GET /v2/` for a Basic registry,
/// the token server's refusal for a Bearer one.
fn refused(registry: &str, options: &ClientOptions) -> String {
    use crate::registry::auth::Challenge;
    match crate::registry::client::Client::connect(registry, options) {
        Ok(client) if matches!(client.challenge(), Some(Challenge::Basic { .. })) => format!(
            "login attempt to {} failed with status: 401 Unauthorized",
            client.url("/v2/")
        ),
        _ => "unauthorized: incorrect username or password".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("X-Registry-Auth", value.parse().unwrap());
        headers
    }

    #[test]
    fn the_registry_auth_header_is_base64url_json() {
        use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
        let json = r#"{"username":"alice","password":"s3cret?>","serveraddress":"r:5000"}"#;
        for encoded in [URL_SAFE.encode(json), URL_SAFE_NO_PAD.encode(json)] {
            let got = registry_auth(&header(&encoded)).unwrap().unwrap();
            assert_eq!(
                (got.username.as_str(), got.password.as_str()),
                ("alice", "s3cret?>")
            );
        }
        let from_auth = URL_SAFE.encode(r#"{"auth":"YWxpY2U6czNjcmV0"}"#);
        let got = registry_auth(&header(&from_auth)).unwrap().unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(
            registry_auth(&header(&URL_SAFE.encode("{}")))
                .unwrap()
                .is_none()
        );
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_none());
        let err = registry_auth(&header("%%%")).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let token = URL_SAFE.encode(r#"{"identitytoken":"t"}"#);
        assert!(registry_auth(&header(&token)).is_err());
    }
}

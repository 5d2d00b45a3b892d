//! The HTTP side of the OCI distribution spec: one [`Client`] per registry, which decides
//! between HTTPS and plain HTTP, answers authentication challenges, and sends the few requests
//! a pull or a push needs.
//!
//! Everything is synchronous (ureq): a pull is a handful of requests plus one long download
//! per layer, and the layers run on plain threads, so an async runtime would add nothing here.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use ureq::config::RedirectAuthHeaders;
use ureq::http::{self, Response};
use ureq::{Agent, Body, ResponseExt, SendBody};

use super::auth::{Challenge, Credentials};
use super::config::RegistryConfig;
use crate::cli::Exit;
use crate::explain::{self, Chapter};

/// Docker's CLI exits 1 when a request to the daemon (here: the registry) fails.
const REQUEST_FAILED: u8 = 1;
/// Where Docker Hub's registry API is served; `docker.io` is only its name in references.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What the client needs besides the registry's name.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Docker Hub's mirrors and the insecure registries (`daemon.json`, `config.json`,
    /// `--insecure-registry`).
    pub registries: RegistryConfig,
    /// The user's credentials for this registry, from `config.json` or `login -u -p`.
    pub credentials: Option<Credentials>,
}

impl ClientOptions {
    /// Whether `registry` (`host[:port]`) may be spoken to over plain HTTP, or over TLS
    /// without verifying its certificate: loopback and the insecure registries.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_local(registry) || !self.registries.is_secure(registry)
    }
}

/// What a request is allowed to do in the repository: the scope of the Bearer token it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
    /// Listing the registry's repositories (`GET /v2/_catalog`).
    Catalog,
}

/// A request body: empty, in memory (retried after an auth challenge), or streamed (not
/// retried, so the client authorizes before sending it).
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(Box<dyn Read + Send + 'a>, u64),
}

/// A connection to one registry (see the module docs).
pub struct Client {
    agent: Agent,
    /// The registry as references name it: `docker.io`, `127.0.0.1:5000`.
    registry: String,
    /// `https://registry-1.docker.io` or `http://127.0.0.1:5000`.
    base: String,
    options: ClientOptions,
    credentials: Option<Credentials>,
    /// How the registry answered `GET /v2/` without credentials.
    challenge: Option<Challenge>,
    /// `Authorization` values by scope, so each repository's token is fetched once.
    tokens: Mutex<HashMap<String, String>>,
}

/// The JSON error body of the distribution spec: `{"errors":[{"code":..,"message":..}]}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// True for hosts that never leave this machine: plain HTTP is allowed there, as Docker allows
/// it for 127.0.0.0/8.
pub fn is_local(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// `host` of `host:port` (and of `[::1]:port`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// The HTTP agent for one registry: TLS verified unless the registry is insecure, bounded
/// waits for a connection and a response (never for a whole layer's body), and no
/// `Authorization` carried along a redirect, since Docker adds it only to requests for the
/// registry's own host.
fn agent(insecure: bool) -> Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(insecure)
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A registry that stops sending mid-layer must not hang the pull forever.
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_recv_body(None)
        // A redirect (a blob on a storage host, say) never carries the registry's
        // `Authorization` along: Docker adds it only to requests for the registry's host.
        .redirect_auth_headers(RedirectAuthHeaders::Never)
        .user_agent(concat!("minidock/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

// ANCHOR: read_token
/// The token server's answer, at most 1 MiB of JSON: `token`, or the OAuth2 name
/// `access_token` when `token` is empty. Returns the `Authorization` header value.
fn read_token(response: &mut Response<Body>, realm: &str) -> Result<String> {
    let bytes = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .with_context(|| format!("reading the token from {realm}"))?;
    let body: TokenResponse = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the token from {realm}"))?;
    let token = if body.token.is_empty() {
        body.access_token
    } else {
        body.token
    };
    if token.is_empty() {
        bail!("the token server {realm} answered without a token");
    }
    Ok(format!("Bearer {token}"))
}
// ANCHOR_END: read_token

impl Client {
    // ANCHOR: connect
    /// Connects to a registry: `GET /v2/`, the distribution spec's "API version check". The
    /// answer says whether the registry speaks the API (200 or 401) and, in a 401's
    /// `WWW-Authenticate`, how to authenticate.
    ///
    /// HTTPS with a verified certificate is the only way to a registry elsewhere: never a
    /// silent fallback to plain HTTP, which anyone on the path could read and rewrite. A
    /// registry on loopback, or an insecure one (`insecure-registries`, by name or network,
    /// as dockerd decides), is asked over plain HTTP first, then over HTTPS without
    /// certificate verification. No credentials travel in the version check.
    // ANCHOR: connect_bases
    pub fn connect(registry: &str, options: &ClientOptions) -> Result<Client> {
        let api_host = if registry == "docker.io" || registry == "index.docker.io" {
            DOCKER_HUB_API
        } else {
            registry
        };
        let insecure = options.is_insecure(registry);
        let bases: Vec<String> = if insecure {
            vec![format!("http://{api_host}"), format!("https://{api_host}")]
        } else {
            vec![format!("https://{api_host}")]
        };
        // ANCHOR_END: connect_bases
        Client::connect_to(registry, &bases, insecure, options.clone()).map_err(|failures| {
            let hint = if insecure {
                ""
            } else {
                " (plain HTTP is only used for loopback and insecure registries: --insecure-registry, or insecure-registries in daemon.json)"
            };
            anyhow!(
                "cannot reach registry {registry} over {}{hint}",
                failures.join(" or ")
            )
        })
    }
    // ANCHOR_END: connect

    // ANCHOR: connect_to
    /// `GET /v2/` at each base URL in turn; the first that answers as a registry wins.
    /// Returns why each failed otherwise.
    fn connect_to(
        registry: &str,
        bases: &[String],
        insecure: bool,
        options: ClientOptions,
    ) -> Result<Client, Vec<String>> {
        let mut client = Client {
            agent: agent(insecure),
            registry: registry.to_owned(),
            base: String::new(),
            credentials: options.credentials.clone(),
            options,
            challenge: None,
            tokens: Mutex::new(HashMap::new()),
        };
        let mut failures = Vec::new();
        for base in bases {
            client.base = base.clone();
            match client.version_check() {
                Ok(challenge) => {
                    client.challenge = challenge;
                    return Ok(client);
                }
                Err(failure) => failures.push(failure),
            }
        }
        Err(failures)
    }
    // ANCHOR_END: connect_to

    // ANCHOR: version_check
    /// `GET /v2/` at the client's base URL: `Ok(None)` when the registry answers 200 (no
    /// authentication), `Ok(Some(challenge))` for a 401 with a challenge it can parse, and
    /// otherwise why this base is not a registry, as a line of the final error.
    fn version_check(&self) -> Result<Option<Challenge>, String> {
        let scheme = self
            .base
            .split(':')
            .next()
            .unwrap_or(&self.base)
            .to_uppercase();
        explain::step(
            "ask the registry which API and auth it speaks",
            || format!("GET {}/v2/", self.base),
            Chapter::Images,
        );
        let response = match self.agent.get(format!("{}/v2/", self.base)).call() {
            Ok(response) => response,
            Err(err) => return Err(format!("{scheme} ({err})")),
        };
        match response.status().as_u16() {
            200 => Ok(None),
            401 => match challenge_of(&response) {
                Ok(challenge) => Ok(Some(challenge)),
                Err(err) => Err(format!("{scheme} ({err:#})")),
            },
            // A TLS registry answers plain HTTP with 400: try HTTPS next.
            status => Err(format!(
                "{scheme} (GET /v2/ answered HTTP {status}: not an OCI registry)"
            )),
        }
    }
    // ANCHOR_END: version_check

    // ANCHOR: connect_mirror
    /// Connects to a mirror of Docker Hub (`http(s)://host[:port][/path]/`, from
    /// `registry-mirrors`) with the scheme its URL gives, as dockerd does; TLS without
    /// verification if its host is insecure. Docker Hub credentials are not sent to mirrors.
    pub fn connect_mirror(mirror: &str, options: &ClientOptions) -> Result<Client> {
        let url = mirror.trim_end_matches('/');
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .with_context(|| format!("invalid mirror {}", crate::cli::quote(mirror)))?;
        let mut options = options.clone();
        options.credentials = None;
        let insecure = options.is_insecure(host);
        Client::connect_to(host, &[url.to_owned()], insecure, options)
            .map_err(|failures| anyhow!("cannot reach mirror {url}: {}", failures.join(" or ")))
    }
    // ANCHOR_END: connect_mirror

    /// `https://host` or `http://host`, as decided by [`Client::connect`].
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The challenge `GET /v2/` answered with, if the registry wants authentication.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// The full URL of an API path (`/v2/<name>/manifests/<ref>`) or of a `Location` header,
    /// which may be relative.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    // ANCHOR: authorization
    /// The `Authorization` header for requests in `repository` with `access`, fetching a
    /// Bearer token from the registry's token server the first time.
    fn authorization(&self, repository: &str, access: Access) -> Result<Option<String>> {
        let Some(challenge) = &self.challenge else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic { .. } => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Challenge::Bearer { realm, service, .. } => {
                let scope = scope_for(repository, access);
                if let Some(value) = self.tokens.lock().expect("token cache").get(&scope) {
                    return Ok(Some(value.clone()));
                }
                let value = self.fetch_token(realm, service.as_deref(), Some(&scope))?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope, value.clone());
                Ok(Some(value))
            }
        }
    }
    // ANCHOR_END: authorization

    // ANCHOR: fetch_token
    /// `GET realm?service=...&scope=...`, with the user's credentials as Basic auth if there
    /// are any (anonymous pulls get a token too, on public registries). Returns the
    /// `Authorization` header value.
    pub fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let url = self.token_url(realm, service, scope)?;
        explain::step(
            "get a Bearer token for this repository",
            || format!("GET {url}"),
            Chapter::Images,
        );
        let mut request = self.agent.get(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic_header());
        }
        let mut response = request
            .call()
            .with_context(|| format!("asking the token server {realm} for a token"))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Exit::new(
                REQUEST_FAILED,
                format!(
                    "the token server {realm} refused the credentials for {}: unauthorized (HTTP {status})",
                    self.registry
                ),
            )
            .into());
        }
        if status != 200 {
            bail!("the token server {realm} answered HTTP {status}");
        }
        read_token(&mut response, realm)
    }
    // ANCHOR_END: fetch_token

    // ANCHOR: token_url
    /// The token request's URL: the realm with `service` and `scope` added to its query. A
    /// realm must be an http(s) URL, and plain HTTP only on an insecure host, since the
    /// user's password travels with the request.
    fn token_url(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        let realm_host = realm
            .strip_prefix("https://")
            .or_else(|| realm.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .with_context(|| {
                format!(
                    "the token server {} is not an http(s) URL",
                    crate::cli::quote(realm)
                )
            })?;
        if realm.starts_with("http://") && !self.options.is_insecure(realm_host) {
            bail!("refusing to send credentials to the token server {realm} over plain HTTP");
        }
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", percent_encode(service)));
        }
        if let Some(scope) = scope {
            query.push(format!("scope={}", percent_encode(scope)));
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        Ok(if query.is_empty() {
            realm.to_owned()
        } else {
            format!("{realm}{separator}{}", query.join("&"))
        })
    }
    // ANCHOR_END: token_url

    /// Whether `url` is on the registry's own origin (scheme, host and port, RFC 6454): the
    /// only place its credentials and tokens are sent.
    pub fn is_own_origin(&self, url: &str) -> bool {
        origin_of_url(url).is_some_and(|origin| Some(origin) == origin_of_url(&self.base))
    }

    // ANCHOR: send
    /// Sends one request in `repository`. Credentials and tokens go only to the registry's own
    /// origin: a `Link` or `Location` elsewhere (a storage host) is asked without them, as is
    /// every redirect. If the registry answers 401 to a request whose body can be sent again,
    /// the client answers the new challenge (a token with another scope, say) and retries once.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        repository: &str,
        access: Access,
        headers: &[(&str, &str)],
        mut payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let own = self.is_own_origin(url);
        let mut authorization = if own {
            self.authorization(repository, access)?
        } else {
            None
        };
        for attempt in 0..2 {
            let retryable = !matches!(payload, Payload::Stream(..));
            let response =
                self.run(method, url, headers, authorization.as_deref(), &mut payload)?;
            // Only the registry's own challenge is answered, never one from where a redirect led.
            let answered_by_registry = origin_of(response.get_uri())
                .is_some_and(|origin| Some(origin) == origin_of_url(&self.base));
            if response.status().as_u16() != 401
                || attempt == 1
                || !retryable
                || !own
                || !answered_by_registry
            {
                return Ok(response);
            }
            // Refused: answer this response's own challenge, which names the scope it wants.
            let challenge = challenge_of(&response)?;
            authorization = match self.answer(&challenge, repository, access)? {
                Some(value) => Some(value),
                None => return Ok(response),
            };
        }
        unreachable!("the loop returns on its second attempt")
    }
    // ANCHOR_END: send

    // ANCHOR: run
    /// One attempt of a request: the headers, the `Authorization` if any, and the body. A
    /// slice is sent whole each attempt; a stream carries its length in `Content-Length`.
    fn run(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        payload: &mut Payload<'_>,
    ) -> Result<Response<Body>> {
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(value) = authorization {
            builder = builder.header("Authorization", value);
        }
        let sent = match payload {
            Payload::Empty => builder.body(()).map(|r| self.agent.run(r)),
            // A slice is sent whole each attempt (it knows its own length).
            Payload::Bytes(bytes) => builder.body(*bytes).map(|r| self.agent.run(r)),
            Payload::Stream(reader, length) => builder
                .header("Content-Length", *length)
                .body(SendBody::from_reader(reader.as_mut()))
                .map(|r| self.agent.run(r)),
        };
        sent.with_context(|| format!("building {method} {url}"))?
            .with_context(|| format!("{method} {url}"))
    }
    // ANCHOR_END: run

    // ANCHOR: answer
    /// The `Authorization` that answers a 401's challenge: the user's Basic credentials, or a
    /// token for the scope the challenge names (cached under the request's own scope, so the
    /// next request in this repository sends it at once). None: nothing to answer with.
    fn answer(
        &self,
        challenge: &Challenge,
        repository: &str,
        access: Access,
    ) -> Result<Option<String>> {
        match challenge {
            Challenge::Basic { .. } => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| scope_for(repository, access));
                let value = self.fetch_token(realm, service.as_deref(), Some(&scope))?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope_for(repository, access), value.clone());
                Ok(Some(value))
            }
        }
    }
    // ANCHOR_END: answer

    /// A registry error as one line, its body quoted: `HTTP 404 "MANIFEST_UNKNOWN: manifest unknown"`.
    pub fn error_of(&self, what: &str, mut response: Response<Body>) -> anyhow::Error {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|body| {
                body.errors
                    .iter()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .map(crate::cli::quote)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| {
                let body = body.trim_ascii();
                if body.is_empty() {
                    String::new()
                } else {
                    crate::cli::quote(body)
                }
            });
        let message = match status {
            401 => format!(
                "{what}: unauthorized: authentication required by {} (minidock login {}){}",
                self.registry,
                self.registry,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
            _ => format!("{what}: the registry answered HTTP {status} {detail}")
                .trim_end()
                .to_owned(),
        };
        Exit::new(REQUEST_FAILED, message).into()
    }
}

/// The token scope for a repository (distribution spec, "token scope"):
/// `repository:library/busybox:pull`.
pub fn scope_for(repository: &str, access: Access) -> String {
    match access {
        Access::Pull => format!("repository:{repository}:pull"),
        Access::Push => format!("repository:{repository}:pull,push"),
        Access::Catalog => "registry:catalog:*".to_owned(),
    }
}

/// `(scheme, host, port)` of an absolute URL, the port defaulted by scheme.
fn origin_of(uri: &http::Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = match (uri.port_u16(), scheme.as_str()) {
        (Some(port), _) => port,
        (None, "http") => 80,
        (None, "https") => 443,
        _ => return None,
    };
    Some((scheme, host, port))
}

/// [`origin_of`] a URL given as text; None for a relative or unparsable one.
fn origin_of_url(url: &str) -> Option<(String, String, u16)> {
    origin_of(&url.parse::<http::Uri>().ok()?)
}

fn challenge_of(response: &Response<Body>) -> Result<Challenge> {
    let header = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .context("the registry answered 401 without a WWW-Authenticate challenge")?;
    Challenge::parse(header)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_recognised() {
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("localhost"));
        assert!(is_local("[::1]:5000"));
        assert!(!is_local("registry.example.com"));
        assert!(!is_local("10.0.0.1:5000"));
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let origin = |url: &str| origin_of_url(url).unwrap();
        assert_eq!(
            origin("http://127.0.0.1:5000/v2/"),
            origin("HTTP://127.0.0.1:5000/x")
        );
        assert_eq!(
            origin("https://Registry.example/v2/"),
            origin("https://registry.example:443/")
        );
        assert_ne!(
            origin("http://127.0.0.1:5000/"),
            origin("http://127.0.0.1:5001/")
        );
        assert_ne!(
            origin("http://registry.example/"),
            origin("https://registry.example/")
        );
        assert_ne!(
            origin("http://[::1]:5000/"),
            origin("http://127.0.0.1:5000/")
        );
        assert_eq!(origin_of_url("/v2/_catalog"), None);
    }

    #[test]
    fn scopes_and_queries_are_encoded() {
        assert_eq!(
            scope_for("library/busybox", Access::Push),
            "repository:library/busybox:pull,push"
        );
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}

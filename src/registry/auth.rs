//! Registry authentication: the `WWW-Authenticate` challenge, and the credentials that
//! `minidock login` keeps in a Docker-compatible `config.json`.
//!
//! A registry says how it wants to be authenticated when it refuses a request (RFC 7235,
//! and the distribution spec's "token authentication"):
//!
//! ```text
//! HTTP/1.1 401 Unauthorized
//! WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"
//! ```
//!
//! - `Basic realm="..."`: send `Authorization: Basic base64(user:pass)` with every request.
//! - `Bearer realm=...,service=...,scope=...`: ask the token server at `realm` for a token
//!   (`GET realm?service=...&scope=...`, with the user's Basic credentials if there are any),
//!   then send `Authorization: Bearer <token>`. The token is scoped: one for pulling
//!   `library/busybox` cannot push, and cannot pull another repository.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::state;

/// The environment variable naming the directory of `config.json` (Docker's is
/// `DOCKER_CONFIG`).
pub const CONFIG_ENV: &str = "MINIDOCK_CONFIG";
/// The key Docker's CLI uses for Docker Hub in `auths`, for historical reasons.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

// ANCHOR: challenge_enum
/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}
// ANCHOR_END: challenge_enum

// ANCHOR: challenge_parse
impl Challenge {
    /// Parses a `WWW-Authenticate` value: a scheme, then `key="value"` (or `key=token`)
    /// parameters separated by commas. Quoted values may hold commas and `\"` escapes.
    pub fn parse(header: &str) -> Result<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest).with_context(|| {
            format!(
                "parsing the WWW-Authenticate header {}",
                crate::cli::quote(header)
            )
        })?;
        let param = |name: &str| params.get(name).cloned();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Challenge::Basic {
                realm: param("realm").unwrap_or_default(),
            }),
            "bearer" => {
                let Some(realm) = param("realm").filter(|r| !r.is_empty()) else {
                    bail!(
                        "the registry's Bearer challenge has no realm (token server): {}",
                        crate::cli::quote(header)
                    );
                };
                Ok(Challenge::Bearer {
                    realm,
                    service: param("service"),
                    scope: param("scope"),
                })
            }
            other => bail!(
                "unsupported authentication scheme {} in {}",
                crate::cli::quote(other),
                crate::cli::quote(header)
            ),
        }
    }
}
// ANCHOR_END: challenge_parse

// ANCHOR: parse_params
/// The parameters of a challenge (RFC 7235's `auth-param`s), by lowercase name: `key=token`
/// runs to the next comma, `key="value"` to the closing quote, so a quoted scope may hold
/// commas (`repository:a:pull,push`) and `\"` escapes. A key without `=` is an error.
fn parse_params(text: &str) -> Result<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            bail!("parameter {} has no value", crate::cli::quote(key));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => bail!("unterminated quoted value for {}", crate::cli::quote(key)),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}
// ANCHOR_END: parse_params

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never print a password, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic base64(user:pass)` (RFC 7617).
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

// ------------------------------------------------------------------------------------------
// config.json
// ------------------------------------------------------------------------------------------

/// The parts of Docker's `config.json` minidock uses. Unknown keys are kept as they are, so
/// minidock can share the file with Docker's CLI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auths: BTreeMap<String, AuthEntry>,
    /// minidock's own key: registries that may be spoken to over plain HTTP (Docker keeps
    /// this in the daemon's `daemon.json` as `insecure-registries`).
    #[serde(
        default,
        rename = "insecure-registries",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub insecure_registries: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One entry of `auths`: `{"auth": "base64(user:pass)"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The path of `config.json`: `$MINIDOCK_CONFIG/config.json`, else `~/.minidock/config.json`.
pub fn config_path() -> PathBuf {
    match std::env::var_os(CONFIG_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("config.json"),
        _ => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".minidock").join("config.json")
        }
    }
}

impl ConfigFile {
    /// Reads `config.json`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    // ANCHOR: save_config
    /// Writes `config.json` atomically with mode 0600: it holds passwords (base64 is an
    /// encoding, not encryption), so only its owner may read it.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut bytes = serde_json::to_vec_pretty(self).context("serialising config.json")?;
        bytes.push(b'\n');
        state::write_atomic_with_mode(path, &bytes, 0o600)
    }
    // ANCHOR_END: save_config

    /// The stored credentials for a registry host (`docker.io`, `127.0.0.1:5000`).
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some((key, entry)) = self
            .auths
            .iter()
            .find(|(key, _)| auth_key_matches(key, registry))
        else {
            return Ok(None);
        };
        if entry.auth.is_empty() {
            return Ok(None);
        }
        let decoded = BASE64
            .decode(entry.auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .with_context(|| format!("the stored credentials for {key} are not valid base64"))?;
        let Some((username, password)) = decoded.split_once(':') else {
            bail!("the stored credentials for {key} are not in the user:password form");
        };
        Ok(Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }))
    }

    /// Stores credentials for a registry, replacing any under an equivalent key.
    pub fn set_credentials(&mut self, registry: &str, credentials: &Credentials) {
        self.auths.retain(|key, _| !auth_key_matches(key, registry));
        let auth = BASE64.encode(format!("{}:{}", credentials.username, credentials.password));
        self.auths.insert(
            auth_key(registry),
            AuthEntry {
                auth,
                other: BTreeMap::new(),
            },
        );
    }

    /// Forgets a registry's credentials; false if there were none.
    pub fn remove_credentials(&mut self, registry: &str) -> bool {
        let before = self.auths.len();
        self.auths.retain(|key, _| !auth_key_matches(key, registry));
        self.auths.len() != before
    }
}

/// The `auths` key for a registry host, as Docker's CLI writes it.
pub fn auth_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// Docker's CLI also accepts keys written as URLs (`https://host/v1/`); compare hosts.
fn auth_key_matches(key: &str, registry: &str) -> bool {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or(host);
    host == registry || (is_docker_hub(host) && is_docker_hub(registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        assert_eq!(
            Challenge::parse(header).unwrap(),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="a \"quoted\" realm""#).unwrap(),
            Challenge::Basic {
                realm: "a \"quoted\" realm".into()
            }
        );
        assert!(Challenge::parse("Bearer service=x").is_err());
        assert!(Challenge::parse("Negotiate abc").is_err());
        assert!(Challenge::parse(r#"Bearer realm="open"#).is_err());
    }

    #[test]
    fn credentials_round_trip_through_docker_keys() {
        let mut config: ConfigFile = serde_json::from_str(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let hub = config.credentials("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let creds = Credentials {
            username: "alice".into(),
            password: "s:cret".into(),
        };
        config.set_credentials("127.0.0.1:5000", &creds);
        assert_eq!(config.credentials("127.0.0.1:5000").unwrap(), Some(creds));
        assert!(config.remove_credentials("127.0.0.1:5000"));
        assert!(!config.remove_credentials("127.0.0.1:5000"));
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("credsStore"), "unknown keys are kept: {text}");
        assert_eq!(
            Credentials {
                username: "u".into(),
                password: "p".into()
            }
            .basic_header(),
            "Basic dTpw"
        );
    }
}

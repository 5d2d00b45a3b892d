//! Image references, parsed and normalised exactly as Docker does.
//!
//! A reference names an image: `name[:tag][@digest]`. What people type is short (`busybox`);
//! what the store and the registry need is complete (`docker.io/library/busybox:latest`).
//! Docker fills in the gaps with three rules (the `distribution/reference` Go package,
//! `ParseNormalizedNamed`):
//!
//! 1. No registry host? Then it is Docker Hub, `docker.io`. The first path component is a host
//!    only when it looks like one: it contains a `.` or a `:` (a port), or it is `localhost`.
//!    So `myregistry:5000/app` has a host, while `user/app` is the Docker Hub user `user`.
//! 2. A Docker Hub name with a single component is an "official image" and lives under
//!    `library/`: `busybox` is `docker.io/library/busybox`.
//! 3. No tag and no digest? Then the tag is `latest`.
//!
//! So `busybox`, `busybox:latest` and `docker.io/library/busybox:latest` are the same image,
//! and the store keys its tag index by the normalised form. The short "familiar" form is only
//! for display (`images` shows `busybox`).
//!
//! The grammar (from `reference/regexp.go`):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component [ "/" path-component ]*
//! domain         := host [ ":" port ]       host := domain-component [ "." domain-component ]*
//! path-component := alpha-numeric [ separator alpha-numeric ]*
//! alpha-numeric  := /[a-z0-9]+/            separator := /[_.]|__|[-]+/
//! tag            := /[\w][\w.-]{0,127}/
//! digest         := "sha256:" /[a-f0-9]{64}/
//! ```

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

/// The registry that a reference without a host means.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old name, normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Where Docker Hub's single-component names live.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference gets when it names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name (domain and path) Docker accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    /// `sha256:<64 hex>`.
    digest: Option<String>,
}

// ANCHOR: parse
impl Reference {
    /// Parses and normalises a reference, as `docker pull`/`docker tag` do. Errors are one line
    /// and say what is wrong: `invalid reference "Busybox": repository name must be lowercase`.
    pub fn parse(text: &str) -> Result<Reference> {
        match parse_normalized(text) {
            Ok(reference) => Ok(reference),
            Err(why) => bail!("invalid reference {}: {why}", crate::cli::quote(text)),
        }
    }
}

fn parse_normalized(text: &str) -> Result<Reference, String> {
    if text.is_empty() {
        return Err("empty reference".into());
    }
    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{bad:?} is not allowed in a reference"));
    }
    // A bare 64-hex string is an image ID, never a repository name (Docker refuses it too,
    // so that `rmi <id>` can never be mistaken for a repository called like an ID).
    if is_sha256_hex(text) {
        return Err(
            "a 64-character hexadecimal string is an image ID, not a repository name".into(),
        );
    }

    // 1. name[:tag] @ digest
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((before, digest)) => (before, Some(parse_digest(digest)?)),
        None => (text, None),
    };
    // 2. name : tag. The tag's colon is the last one after the last slash: a colon before a
    //    slash is a port (`localhost:5000/app`).
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
        }
        None => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err("missing repository name".into());
    }
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }

    // 3. domain / path, with Docker's rule for telling a host from a Docker Hub user.
    let (mut domain, mut path) = split_domain(name);
    validate_domain(&domain)?;
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository name ({path}) must be lowercase"));
    }
    validate_path(&path)?;
    // 4. Official images live under library/.
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        ));
    }
    // 5. Neither tag nor digest: latest.
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_owned()),
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (None, Some(_)) => None,
    };
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

/// Docker's `splitDockerDomain`: the first component is a registry host only if it contains a
/// `.` or `:`, is `localhost`, or has an uppercase letter (a repository path cannot).
fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    }
}
// ANCHOR_END: parse

fn parse_digest(text: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return Err(format!(
            "digest {} must look like sha256:<64 hex digits>",
            crate::cli::quote(text)
        ));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "unsupported digest algorithm {} (only sha256)",
            crate::cli::quote(algorithm)
        ));
    }
    if !is_sha256_hex(hex) {
        return Err(format!(
            "digest {} must be sha256: followed by 64 lowercase hex digits",
            crate::cli::quote(text)
        ));
    }
    Ok(text.to_owned())
}

/// 64 lowercase hex digits: the encoded part of a sha256 digest.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = match chars.next() {
        Some(first) => word(first) && chars.all(|c| word(c) || c == '.' || c == '-'),
        None => false,
    };
    if !ok {
        return Err(format!(
            "tag {} must be letters, digits, '_', '.' or '-', and not start with '.' or '-'",
            crate::cli::quote(tag)
        ));
    }
    if tag.len() > 128 {
        return Err(format!(
            "tag {} is longer than 128 characters",
            crate::cli::quote(tag)
        ));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{} is not a valid registry host[:port]",
            crate::cli::quote(domain)
        ))
    };
    let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = domain.strip_prefix('[') {
        // An IPv6 literal, with an optional port: [::1]:5000
        let Some((inside, after)) = rest.split_once(']') else {
            return bad();
        };
        let literal_ok =
            !inside.is_empty() && inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        let after_ok = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
        return if literal_ok && after_ok {
            Ok(())
        } else {
            bad()
        };
    }
    let host = match domain.split_once(':') {
        Some((host, port)) if port_ok(port) => host,
        Some(_) => return bad(),
        None => domain,
    };
    // domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if !host.split('.').all(component_ok) {
        return bad();
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if !path_component_ok(component) {
            return Err(format!(
                "repository name component {} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes",
                crate::cli::quote(component)
            ));
        }
    }
    Ok(())
}

/// `alpha-numeric [separator alpha-numeric]*` with `separator := [_.]|__|[-]+`.
fn path_component_ok(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl Reference {
    /// The registry host, with its port if any: `docker.io`, `localhost:5000`. For Docker Hub,
    /// the registry API itself is served at `registry-1.docker.io`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as people write it: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            self.repository()
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// `sha256:<hex>` when the reference pins a manifest digest.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        if let Err(why) = validate_tag(tag) {
            bail!("invalid tag: {why}");
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a manifest digest, without a tag (`RepoDigests`).
    pub fn with_digest(&self, digest: &str) -> Result<Reference> {
        let digest =
            parse_digest(digest).map_err(|why| anyhow::anyhow!("invalid digest: {why}"))?;
        Ok(Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        })
    }

    /// The short form for display: `busybox:latest`, `user/app@sha256:...`.
    pub fn familiar(&self) -> String {
        self.format(&self.familiar_repository())
    }

    fn format(&self, repository: &str) -> String {
        let mut out = repository.to_owned();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// The normalised form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(&self.repository()))
    }
}

impl FromStr for Reference {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        Reference::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_three_spellings_of_busybox_are_one_reference() {
        let short = Reference::parse("busybox").unwrap();
        assert_eq!(short, Reference::parse("busybox:latest").unwrap());
        assert_eq!(
            short,
            Reference::parse("docker.io/library/busybox:latest").unwrap()
        );
        assert_eq!(short, Reference::parse("index.docker.io/busybox").unwrap());
        assert_eq!(short.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(short.familiar(), "busybox:latest");
    }

    #[test]
    fn hosts_ports_and_digests() {
        let r = Reference::parse(&format!("localhost:5000/team/app:v1.2@{DIGEST}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.digest(), Some(DIGEST));
        let pinned = Reference::parse(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(pinned.tag(), None);
        assert_eq!(pinned.familiar(), format!("busybox@{DIGEST}"));
        assert_eq!(
            Reference::parse("user/app").unwrap().familiar(),
            "user/app:latest"
        );
    }

    #[test]
    fn bad_references_say_why() {
        let err = |text: &str| format!("{:#}", Reference::parse(text).unwrap_err());
        assert!(err("Busybox").contains("must be lowercase"));
        assert!(err("").contains("empty"));
        assert!(err("busybox:").contains("tag"));
        assert!(err("busybox@sha256:abc").contains("64"));
        assert!(err("a//b").contains("component"));
    }
}

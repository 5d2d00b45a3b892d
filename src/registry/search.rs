//! `minidock search TERM`: Docker's `search`, with its flags (`--limit`, `--filter`,
//! `--format`, `--no-trunc`), columns and exit codes.
//!
//! Where dockerd sends a search (moby `registry/search.go`): a bare term (`busybox`,
//! `bitnami/redis`) to Docker Hub's search API, `GET https://index.docker.io/v1/search?q=TERM&n=LIMIT`;
//! a term that names a registry (`127.0.0.1:5000/busy`) to that registry's same API. The
//! distribution registry, like most private registries, has no `/v1/search` but lists its
//! repositories at `GET /v2/_catalog` (paginated with `Link: <...>; rel="next"`, as the
//! distribution spec says), so for those minidock searches the catalog: each repository whose
//! name contains the term is a result, named `REGISTRY/REPOSITORY` (so it can be pulled as
//! printed), with no description, 0 stars and not official.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use super::client::{Access, Client, ClientOptions, Payload};
use crate::cli::Exit;
use crate::explain::{self, Chapter};

const REQUEST_FAILED: u8 = 1;
/// Results when `--limit` is not given (moby's `defaultSearchLimit`).
pub const DEFAULT_LIMIT: i64 = 25;
/// The most results a search may ask for (moby refuses more).
pub const MAX_LIMIT: i64 = 100;
/// Docker's default `search` table (docker/cli `formatter_search.go`).
pub const SEARCH_TABLE: &str =
    r"table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";
/// The DESCRIPTION column's width unless `--no-trunc`.
const DESCRIPTION_WIDTH: usize = 45;
/// Where Docker Hub's search API is served.
const HUB_INDEX: &str = "https://index.docker.io";
/// The most catalog pages followed, and the most bytes read per answer, whatever the
/// registry says.
const MAX_CATALOG_PAGES: usize = 1000;
const MAX_BODY_BYTES: u64 = 4 << 20;

/// `minidock search [OPTIONS] TERM`
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// What to search for; `REGISTRY/TERM` searches that registry
    #[arg(value_name = "TERM")]
    pub term: String,
    /// Filter output based on conditions provided (is-official=BOOL, stars=N)
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(
        long,
        default_value_t = 0,
        hide_default_value = true,
        value_name = "int"
    )]
    pub limit: i64,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

/// One result, as Docker Hub's search API sends it (Docker's `registry.SearchResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
}

#[derive(Debug, Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

#[derive(Debug, Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

/// The `--filter`s a search takes, checked as dockerd checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    /// `is-official=BOOL`.
    pub is_official: Option<bool>,
    /// `is-automated=true` (deprecated: it matches nothing).
    pub is_automated: bool,
    /// `stars=N`: at least N stars (the largest N given).
    pub stars: Option<i64>,
}

// ANCHOR: search_filters
impl SearchFilters {
    /// Parses `KEY=VALUE` arguments: a malformed one exits 125 (the CLI's flag error), an
    /// unknown key or a bad value exits 1 with dockerd's words (`Invalid filter 'KEY'`, as
    /// dockerd 20.10 says them).
    pub fn parse(args: &[String]) -> Result<SearchFilters> {
        let mut values: Vec<(String, String)> = Vec::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(Exit::new(
                    crate::cli::code::FAILED,
                    format!(
                        "invalid argument {arg:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                    ),
                )
                .into());
            };
            values.push((key.trim().to_lowercase(), value.trim().to_owned()));
        }
        let invalid = |message: String| anyhow::Error::new(Exit::new(REQUEST_FAILED, message));
        if let Some((key, _)) = values
            .iter()
            .find(|(key, _)| !["is-automated", "is-official", "stars"].contains(&key.as_str()))
        {
            return Err(invalid(format!("Invalid filter '{key}'")));
        }
        let of = |wanted: &str| -> Vec<&str> {
            let mut found: Vec<&str> = Vec::new();
            for (key, value) in &values {
                if key == wanted && !found.contains(&value.as_str()) {
                    found.push(value);
                }
            }
            found
        };
        // moby's `GetBoolOrDefault`: true or false, never both nor anything else.
        let boolean = |key: &str| -> Result<Option<bool>> {
            let given = of(key);
            if given.is_empty() {
                return Ok(None);
            }
            let is_true = given.iter().any(|v| matches!(*v, "1" | "true"));
            let is_false = given.iter().any(|v| matches!(*v, "0" | "false"));
            if is_true == is_false {
                return Err(invalid(format!(
                    "Invalid filter '{key}=[{}]'",
                    given.join(" ")
                )));
            }
            Ok(Some(is_true))
        };
        let is_automated = boolean("is-automated")?.unwrap_or(false);
        let is_official = boolean("is-official")?;
        let mut stars = None;
        for value in of("stars") {
            let n: i64 = value
                .parse()
                .map_err(|_| invalid(format!("Invalid filter 'stars={value}'")))?;
            stars = Some(stars.map_or(n, |s: i64| s.max(n)));
        }
        Ok(SearchFilters {
            is_official,
            is_automated,
            stars,
        })
    }

    /// Whether a result passes the filters.
    pub fn keeps(&self, result: &SearchResult) -> bool {
        !self.is_automated
            && self.is_official.is_none_or(|o| o == result.is_official)
            && self.stars.is_none_or(|s| result.star_count >= s)
    }
}
// ANCHOR_END: search_filters

/// moby's `splitReposSearchTerm`: the registry a term names (`docker.io` unless its first
/// component has a `.` or a `:` or is `localhost`) and the term to search there.
pub fn split_term(term: &str) -> (&str, &str) {
    match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (crate::image::reference::DEFAULT_DOMAIN, term),
    }
}

// ANCHOR: search
/// Searches: `limit` (1 to [`MAX_LIMIT`]) results for `term`, then the filters, as dockerd
/// applies them (the limit counts results before filtering).
pub fn search(
    term: &str,
    limit: i64,
    filters: &SearchFilters,
    options: &ClientOptions,
) -> Result<Vec<SearchResult>> {
    // moby answers `is-automated=true` with nothing, before it asks any registry.
    if filters.is_automated {
        return Ok(Vec::new());
    }
    if term.contains("://") {
        bail!("invalid repository name: repository name ({term}) should not have a scheme");
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        bail!("Limit {limit} is outside the range of [1, {MAX_LIMIT}]");
    }
    let (registry, remote) = split_term(term);
    let results =
        if registry == crate::image::reference::DEFAULT_DOMAIN || registry == "index.docker.io" {
            search_hub(remote.strip_prefix("library/").unwrap_or(remote), limit)?
        } else {
            search_registry(registry, remote, limit, options)?
        };
    Ok(results.into_iter().filter(|r| filters.keeps(r)).collect())
}
// ANCHOR_END: search

/// Docker Hub's search API, which answers `{"results": [{"name", "description",
/// "star_count", "is_official"}, ...]}`.
fn search_hub(term: &str, limit: i64) -> Result<Vec<SearchResult>> {
    let url = format!("{HUB_INDEX}/v1/search?q={}&n={limit}", query_escape(term));
    explain::step(
        "ask Docker Hub's search API",
        || format!("GET {url}"),
        Chapter::Images,
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .user_agent(concat!("minidock/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|err| anyhow!("searching Docker Hub: GET {url}: {err}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        bail!("searching Docker Hub: GET {url} answered HTTP {status}");
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .with_context(|| format!("reading the answer to GET {url}"))?;
    let parsed: SearchResults = serde_json::from_slice(&bytes)
        .map_err(|err| crate::cli::untrusted_error("Docker Hub's search answer", err))?;
    Ok(parsed.results)
}

/// A registry named in the term: its `/v1/search` if it has one, else its catalog.
fn search_registry(
    registry: &str,
    term: &str,
    limit: i64,
    options: &ClientOptions,
) -> Result<Vec<SearchResult>> {
    let client = Client::connect(registry, options)?;
    let url = client.url(&format!("/v1/search?q={}&n={limit}", query_escape(term)));
    explain::step(
        "ask the registry's search API",
        || format!("GET {url}"),
        Chapter::Images,
    );
    let response = client.send("GET", &url, "", Access::Catalog, &[], Payload::Empty)?;
    if response.status().as_u16() == 200
        && let Ok(bytes) = read_body(response)
        && let Ok(parsed) = serde_json::from_slice::<SearchResults>(&bytes)
    {
        return Ok(parsed.results);
    }
    let wanted = term.to_lowercase();
    let results = catalog(&client)?
        .into_iter()
        .filter(|repository| repository.to_lowercase().contains(&wanted))
        .take(limit as usize)
        .map(|repository| SearchResult {
            name: format!("{registry}/{repository}"),
            ..SearchResult::default()
        })
        .collect();
    Ok(results)
}

// ANCHOR: catalog
/// Every repository the registry lists: `GET /v2/_catalog?n=100`, then each `Link: <URL>;
/// rel="next"` the answers give, until one gives none.
pub fn catalog(client: &Client) -> Result<Vec<String>> {
    let mut repositories = Vec::new();
    let mut next = Some(client.url("/v2/_catalog?n=100"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_CATALOG_PAGES {
            bail!("the registry's catalog has more than {MAX_CATALOG_PAGES} pages");
        }
        explain::step(
            "list the registry's repositories",
            || format!("GET {url}"),
            Chapter::Images,
        );
        let response = client.send("GET", &url, "", Access::Catalog, &[], Payload::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(client.error_of("listing the registry's catalog", response));
        }
        next = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
            .map(|link| client.url(&link));
        let bytes = read_body(response)?;
        let page: Catalog = serde_json::from_slice(&bytes)
            .map_err(|err| crate::cli::untrusted_error("the registry's catalog", err))?;
        repositories.extend(page.repositories);
    }
    Ok(repositories)
}
// ANCHOR_END: catalog

/// The URL of a `Link` header's `rel="next"` entry (RFC 8288): `<URL>; rel="next"`.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|param| {
            param
                .trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.trim() == "rel" && v.trim().trim_matches('"') == "next")
        });
        is_next.then(|| target.to_owned())
    })
}

fn read_body(mut response: ureq::http::Response<ureq::Body>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut bytes)
        .context("reading the registry's answer")?;
    Ok(bytes)
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// docker/cli's `formatter.Ellipsis` for text of one-column characters: at most `width`
/// characters, the last one `…` when cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// The row `--format` sees for one result: docker/cli's `searchContext` fields.
fn row(result: &SearchResult, no_trunc: bool) -> gotmpl::Value {
    let description = result.description.replace(['\n', '\r'], " ");
    let description = if no_trunc {
        description
    } else {
        ellipsis(&description, DESCRIPTION_WIDTH)
    };
    crate::format::row(vec![
        ("Name", result.name.clone()),
        ("Description", description),
        ("StarCount", result.star_count.to_string()),
        (
            "IsOfficial",
            if result.is_official { "[OK]" } else { "" }.to_owned(),
        ),
    ])
}

// ANCHOR: run_search
/// `minidock search`: prints the results as Docker's table (NAME, DESCRIPTION, STARS,
/// OFFICIAL) or through `--format`, in the order the registry gave them.
pub fn run_search(args: &SearchArgs) -> Result<u8> {
    let filters = SearchFilters::parse(&args.filters)?;
    if args.filters.iter().any(|f| {
        f.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("is-automated"))
    }) {
        eprintln!(
            "WARNING: the \"is-automated\" filter is deprecated, and searching for \"is-automated=true\" will not yield any results in future."
        );
    }
    let template = match args.format.as_deref() {
        None | Some("") | Some("table") => SEARCH_TABLE,
        Some(text) => text,
    };
    let format = crate::format::Format::list(template, SEARCH_TABLE)
        .map_err(|err| Exit::new(REQUEST_FAILED, format!("{err:#}")))?;
    let limit = if args.limit > 0 {
        args.limit
    } else {
        DEFAULT_LIMIT
    };
    let (registry, _) = split_term(&args.term);
    let options = super::cli::client_options(registry, &[])?;
    let results = search(&args.term, limit, &filters, &options).map_err(|err| {
        if err.chain().any(|cause| cause.is::<Exit>()) {
            return err;
        }
        Exit::new(
            REQUEST_FAILED,
            crate::cli::one_line(&format!("{err:#}")).replace('\n', " "),
        )
        .into()
    })?;
    let rows: Vec<gotmpl::Value> = results.iter().map(|r| row(r, args.no_trunc)).collect();
    let header = crate::format::header(&[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
    ]);
    let text = format
        .render_list(&rows, &header)
        .map_err(|err| Exit::new(REQUEST_FAILED, format!("{err:#}")))?;
    print!("{text}");
    Ok(0)
}
// ANCHOR_END: run_search

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(args: &[&str]) -> Result<SearchFilters> {
        SearchFilters::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_are_checked_with_dockerds_words() {
        let f = filters(&["is-official=true", "stars=3", "stars=10"]).unwrap();
        assert_eq!(f.is_official, Some(true));
        assert_eq!(f.stars, Some(10));
        assert_eq!(
            filters(&["foo=1"]).unwrap_err().to_string(),
            "Invalid filter 'foo'"
        );
        assert_eq!(
            filters(&["is-official=maybe"]).unwrap_err().to_string(),
            "Invalid filter 'is-official=[maybe]'"
        );
        assert_eq!(
            filters(&["stars=x"]).unwrap_err().to_string(),
            "Invalid filter 'stars=x'"
        );
        let err = filters(&["nonsense"]).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Exit>().unwrap().code,
            crate::cli::code::FAILED
        );
        let official = SearchResult {
            name: "busybox".into(),
            is_official: true,
            star_count: 3,
            ..SearchResult::default()
        };
        assert!(f.keeps(&SearchResult {
            star_count: 10,
            ..official.clone()
        }));
        assert!(!f.keeps(&official));
        assert!(!filters(&["is-automated=true"]).unwrap().keeps(&official));
    }

    #[test]
    fn terms_name_their_registry_as_moby_splits_them() {
        assert_eq!(split_term("busybox"), ("docker.io", "busybox"));
        assert_eq!(split_term("bitnami/redis"), ("docker.io", "bitnami/redis"));
        assert_eq!(
            split_term("127.0.0.1:5000/busy"),
            ("127.0.0.1:5000", "busy")
        );
        assert_eq!(split_term("localhost/x"), ("localhost", "x"));
        assert_eq!(split_term("ghcr.io/a/b"), ("ghcr.io", "a/b"));
    }

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/p1>; rel="prev", <https://x/p3>; rel=next"#).as_deref(),
            Some("https://x/p3")
        );
        assert_eq!(next_link(r#"<https://x/p1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn descriptions_are_cut_as_dockers_ellipsis_cuts() {
        let long = "a".repeat(50);
        assert_eq!(ellipsis(&long, 45).chars().count(), 45);
        assert!(ellipsis(&long, 45).ends_with('…'));
        assert_eq!(ellipsis("short", 45), "short");
        assert_eq!(query_escape("a b/c"), "a+b%2Fc");
    }
}

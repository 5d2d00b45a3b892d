//! `POST /build`: the classic builder behind the Engine API, as `DOCKER_BUILDKIT=0 docker
//! build` uses it. The body is the build context as a tar stream (plain or compressed); the
//! query carries `docker build`'s flags. The build is [`crate::build::builder::build`], what
//! `minidock build` runs; its lines (`Step 1/3 : FROM busybox`, ` ---> 1a2b3c4d5e6f`, the
//! `RUN` steps' output, `Successfully built ...`) go through one pipe, so they keep their
//! order, and come out as Docker's JSON messages: `{"stream":"Step 1/3 : FROM busybox\n"}`,
//! then `{"aux":{"ID":"sha256:..."}}` the CLI reads the image ID from; a failure ends the
//! stream as `{"errorDetail":{"code":N,"message":...},"error":...}` (N: a failed `RUN`'s
//! status, which the CLI exits with).

use super::error::{ApiError, ApiResult};
use super::{Body, Shared, streamed};
use crate::build::builder::{BuildOptions, RunFailed, TempDir};
use crate::image::reference::Reference;
use anyhow::Context;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json as object;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use tokio::sync::mpsc::Sender;

/// The query parameters of `POST /build`, every value of a repeated one (`t`).
struct BuildQuery(Vec<(String, String)>);

impl BuildQuery {
    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.all(key).last().filter(|v| !v.is_empty())
    }

    fn bool(&self, key: &str) -> bool {
        super::Query(self.0.iter().cloned().collect()).bool(key)
    }

    /// A JSON object parameter (`buildargs`, `labels`); absent is empty.
    fn object<T: serde::de::DeserializeOwned>(&self, key: &str) -> ApiResult<BTreeMap<String, T>> {
        match self.get(key) {
            None => Ok(BTreeMap::new()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::bad_parameter(format!("invalid {key}: {e}"))),
        }
    }
}

/// The build's options from the query; the context and the Dockerfile are read later.
fn options(query: &BuildQuery) -> ApiResult<BuildOptions> {
    match query.get("version").unwrap_or("1") {
        "1" => {}
        "2" => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "BuildKit (version=2) is not supported by minidock daemon: use the classic \
                 builder (DOCKER_BUILDKIT=0)",
            ));
        }
        other => {
            return Err(ApiError::bad_parameter(format!(
                "invalid version {other:?}: want 1 (the classic builder)"
            )));
        }
    }
    if query.get("remote").is_some() {
        return Err(ApiError::bad_parameter(
            "a remote build context is not supported by minidock daemon: send the context \
             as the request body",
        ));
    }
    let tags = query
        .all("t")
        .filter(|t| !t.is_empty())
        .map(|t| Reference::parse(t).map_err(|e| ApiError::bad_parameter(format!("{e:#}"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let build_args = query
        .object::<Option<String>>("buildargs")?
        .into_iter()
        .collect();
    let labels = query.object::<String>("labels")?.into_iter().collect();
    let network = match query.get("networkmode") {
        None | Some("default") => None,
        Some(mode) => Some(mode.to_owned()),
    };
    Ok(BuildOptions {
        tags,
        build_args,
        no_cache: query.bool("nocache"),
        target: query.get("target").map(str::to_owned),
        labels,
        quiet: query.bool("q"),
        network,
        pull: query.bool("pull"),
        ..BuildOptions::default()
    })
}

/// Writes the request body (the context tarball) to `file`.
async fn receive(req: Request<Incoming>, file: &Path) -> ApiResult<()> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let failed = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing the build context: {e}"),
        )
    };
    let mut out = tokio::fs::File::create(file).await.map_err(failed)?;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_parameter(format!("reading the build context: {e}")))?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data).await.map_err(failed)?;
        }
    }
    out.flush().await.map_err(failed)
}

/// Unpacks the context tarball into `dir` and reads the Dockerfile named `name` inside it.
/// Errors with dockerd's words: no such Dockerfile.
fn unpack(tarball: &Path, dir: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let file =
        std::fs::File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let (reader, _) = crate::image::archive::decompressed(file)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive
        .unpack(dir)
        .context("unpacking the build context tarball")?;
    let _ = std::fs::remove_file(tarball);
    let relative = Path::new(name);
    let path = dir.join(relative.strip_prefix("/").unwrap_or(relative));
    let shown = relative
        .file_name()
        .map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned());
    let fail = || anyhow::anyhow!("Cannot locate specified Dockerfile: {shown}");
    // The Dockerfile must be inside the context, not through a link out of it.
    let real = path.canonicalize().map_err(|_| fail())?;
    if !real.starts_with(dir.canonicalize()?) || !real.is_file() {
        return Err(fail());
    }
    let text = std::fs::read(&real).map_err(|_| fail())?;
    let text = String::from_utf8(text).context("the Dockerfile is not UTF-8")?;
    Ok((text, shown))
}

/// A `{"stream": ...}` message.
fn stream_line(text: &str) -> Bytes {
    Bytes::from(format!("{}\r\n", object!({ "stream": text })))
}

/// Reads the build's pipe to its end, sending whole lines (a long line in pieces) as
/// `{"stream": ...}` messages. A client that went away stops nothing: the pipe is still read.
fn forward(mut pipe: std::fs::File, tx: Sender<Bytes>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        let cut = match pending.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None if pending.len() >= 64 << 10 => pending.len(),
            None => continue,
        };
        let rest = pending.split_off(cut);
        let _ = tx.blocking_send(stream_line(&String::from_utf8_lossy(&pending)));
        pending = rest;
    }
    if !pending.is_empty() {
        let _ = tx.blocking_send(stream_line(&String::from_utf8_lossy(&pending)));
    }
}

/// The message that ends a failed build: with the failed `RUN`'s status as its `code`.
fn error_line(err: &anyhow::Error) -> Bytes {
    let text = crate::cli::one_line(&format!("{err:#}"));
    let detail = match err.downcast_ref::<RunFailed>() {
        Some(failed) => object!({ "code": failed.0.code, "message": failed.0.message }),
        None => object!({ "message": text }),
    };
    let text = detail["message"].as_str().unwrap_or_default().to_owned();
    Bytes::from(format!(
        "{}\r\n",
        object!({ "errorDetail": detail, "error": text })
    ))
}

/// Runs the build with its output into a pipe that [`forward`] turns into messages; then the
/// aux message with the image ID (the ID alone with `q`), or the error.
fn run(daemon: Shared, mut options: BuildOptions, tx: Sender<Bytes>) -> anyhow::Result<()> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2 for the build output")?;
    let mut out = std::fs::File::from(write);
    options.run_output = Some(std::sync::Arc::new(out.try_clone()?.into()));
    let reader = {
        let tx = tx.clone();
        std::thread::spawn(move || forward(std::fs::File::from(read), tx))
    };
    let quiet = options.quiet;
    let result = crate::build::builder::build(&daemon.paths, &options, &mut out);
    // Every write end closed: the reader sees the end of the output, then the last message.
    drop(out);
    drop(options);
    let _ = reader.join();
    let last = match &result {
        Ok(image) if quiet => stream_line(&format!("{}\n", image.id)),
        Ok(image) => Bytes::from(format!(
            "{}\r\n",
            object!({ "aux": { "ID": image.id.to_string() } })
        )),
        Err(err) => error_line(err),
    };
    let _ = tx.blocking_send(last);
    Ok(())
}

// ANCHOR: build
/// `POST /build?t=NAME&dockerfile=PATH&buildargs=JSON&...`: receives the context, then
/// streams the build. Errors before the build starts (a bad parameter, BuildKit asked for, a
/// context that does not unpack, no Dockerfile) are the response's status; the build's own
/// errors end the stream.
pub async fn build(daemon: Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let query = BuildQuery(
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
    );
    let mut options = options(&query)?;
    let name = query.get("dockerfile").unwrap_or("Dockerfile").to_owned();
    let root = daemon.paths.root.clone();
    let temp = super::blocking(move || {
        crate::state::private_dir(&root)?;
        TempDir::new(&root)
    })
    .await?;
    let tarball = temp.path.join("context.tar");
    receive(req, &tarball).await?;
    let dir = temp.path.join("context");
    let (text, shown) = super::blocking(move || {
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        unpack(&tarball, &dir, &name)
    })
    .await
    .map_err(|mut err| {
        if err.message.starts_with("Cannot locate") || err.message.contains("unpacking") {
            err.status = StatusCode::BAD_REQUEST;
        }
        err
    })?;
    options.context = Some(temp.path.join("context"));
    options.dockerfile = text;
    options.dockerfile_name = shown;
    let (response, tx) = streamed("application/json");
    tokio::task::spawn_blocking(move || {
        let result = run(daemon, options, tx.clone());
        drop(temp);
        if let Err(err) = result {
            let _ = tx.blocking_send(error_line(&err));
        }
    });
    Ok(response)
}
// ANCHOR_END: build

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> BuildQuery {
        BuildQuery(
            form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    #[test]
    fn the_query_gives_the_builds_options() {
        let o = options(&query(
            "t=a%3A1&t=b&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&nocache=1&q=1&\
             labels=%7B%22k%22%3A%22v%22%7D&networkmode=default&target=s",
        ))
        .unwrap();
        let tags: Vec<String> = o.tags.iter().map(Reference::familiar).collect();
        assert_eq!(tags, ["a:1", "b:latest"]);
        assert_eq!(
            o.build_args,
            [
                ("X".to_owned(), Some("1".to_owned())),
                ("Y".to_owned(), None)
            ]
        );
        assert_eq!(o.labels, [("k".to_owned(), "v".to_owned())]);
        assert!(o.no_cache && o.quiet && !o.pull);
        assert_eq!((o.network, o.target.as_deref()), (None, Some("s")));
        let err = options(&query("version=2")).err().unwrap();
        assert_eq!(err.status, StatusCode::NOT_IMPLEMENTED);
        assert!(err.message.contains("DOCKER_BUILDKIT=0"), "{}", err.message);
        assert_eq!(
            options(&query("t=Bad%20Name")).err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
    }
}

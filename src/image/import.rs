//! `minidock import`: a root filesystem tarball becomes a one-layer OCI image, as
//! `docker import` makes one.
//!
//! An OCI image is three kinds of JSON-and-tar blobs, each named by its sha256:
//!
//! ```text
//! manifest ──config──▶ config   {"os":"linux","architecture":"amd64",
//!    │                           "rootfs":{"type":"layers","diff_ids":["sha256:<tar>"]}, ...}
//!    └─layers[0]─────▶ layer    the tarball, gzip-compressed
//! ```
//!
//! A layer has two digests. The manifest names the *compressed* blob (what a registry stores
//! and sends); the config's `diff_ids` name the *uncompressed* tar (what the layer is, however
//! it was compressed). The importer computes both in one pass over the input: it reads the
//! tarball (decompressing it if it is gzip), hashes the tar for the DiffID, and compresses it
//! into the blob writer, which hashes the compressed bytes for the blob digest.

use std::io::{self, BufRead, Read, Write};
use std::path::Component;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{
    Arch, Config, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use super::reference::Reference;
use super::store::{Image, Store, finish_digest};
use crate::cli::{quote, untrusted_error};
use crate::state;

/// What `docker import` takes besides the tarball.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Where the tarball came from, for the history comment (`Imported from -`).
    pub source: String,
    /// `-m`: the history comment instead of `Imported from ...`.
    pub message: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`, ...).
    pub changes: Vec<String>,
    /// `--platform os/arch[/variant]`; the host's by default.
    pub platform: Option<String>,
    /// The creation time; now by default. Fixed in tests, for reproducible image IDs.
    pub created: Option<SystemTime>,
}

// ANCHOR: import
/// Imports a rootfs tarball (plain, or compressed with gzip, bzip2, xz or zstd) as a one-layer image named `names` (none: an
/// untagged image). Returns the new image.
pub fn import(
    store: &Store,
    input: impl Read,
    names: &[Reference],
    options: &ImportOptions,
) -> Result<Image> {
    let (os, arch, variant) = platform(options.platform.as_deref())?;
    let mut config = Config::default();
    for change in &options.changes {
        apply_change(&mut config, change)?;
    }
    // Hold off garbage collection until the image is in the index.
    let _lease = store.lease()?;

    // 1. The layer: tar in, gzip blob out, both digests computed on the way.
    let mut input = io::BufReader::with_capacity(256 << 10, input);
    if input.fill_buf().context("reading the tarball")?.is_empty() {
        bail!("the tarball is empty");
    }
    // Plain, gzip, bzip2, xz or zstd, as `docker import` takes.
    let (tar_stream, _) = super::archive::decompressed(input)?;
    // Fast compression: the CPU time of `import` is mostly this, and the size difference with
    // the default level is small for a root filesystem.
    let blob = GzEncoder::new(store.blob_writer()?, Compression::fast());
    let mut tee = Tee {
        inner: tar_stream,
        copy_to: blob,
        tar_hasher: Sha256::new(),
    };
    check_tar(&mut tee)?;
    // The archive may continue after its end-of-archive blocks (record padding): it is part
    // of the tar, and of its DiffID.
    io::copy(&mut tee, &mut io::sink()).context("reading the tarball")?;
    let diff_id = finish_digest(tee.tar_hasher);
    let layer = tee
        .copy_to
        .finish()
        .context("compressing the layer")?
        .commit(None)?;

    // 2. The config: platform, rootfs, history.
    let created = state::rfc3339(options.created.unwrap_or_else(SystemTime::now));
    let comment = options
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", options.source));
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("minidock import {}", options.source))
        .comment(comment)
        .build()
        .context("building the image history")?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_string()])
        .build()
        .context("building the image rootfs")?;
    let mut builder = ImageConfigurationBuilder::default()
        .created(created)
        .os(os)
        .architecture(arch)
        .config(config)
        .rootfs(rootfs)
        .history(vec![history]);
    if let Some(variant) = variant {
        builder = builder.variant(variant);
    }
    let image_config = builder.build().context("building the image config")?;
    let config_bytes = serde_json::to_vec(&image_config).context("serialising the image config")?;
    let config_blob = store.put_blob(&config_bytes, None)?;

    // 3. The manifest, and the name.
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_blob.descriptor(MediaType::ImageConfig))
        .layers(vec![layer.descriptor(MediaType::ImageLayerGzip)])
        .build()
        .context("building the image manifest")?;
    let manifest_bytes = serde_json::to_vec(&manifest).context("serialising the manifest")?;
    let manifest_blob = store.put_blob(&manifest_bytes, None)?;
    let manifest_descriptor = manifest_blob.descriptor(MediaType::ImageManifest);
    store.add_image(&manifest_descriptor, names)?;
    let image = store.resolve(&format!("sha256:{}", config_blob.digest.digest()))?;
    crate::events::image_by_id(store.state_root(), &image.id, "import");
    Ok(image)
}
// ANCHOR_END: import

// ANCHOR: open_url
/// Opens `http(s)://...` for `import URL`, as `docker import` does. The URL is the user's own
/// explicit choice, so plain HTTP is allowed here (unlike a registry name, where minidock
/// would be the one choosing the scheme). The body streams straight into the importer.
pub fn open_url(url: &str) -> Result<Box<dyn Read + Send>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(120)))
        .user_agent(concat!("minidock/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: the server answered {status}");
    }
    Ok(Box::new(response.into_body().into_reader()))
}
// ANCHOR_END: open_url

/// Reads through a tar stream, hashing it and copying it to a writer.
struct Tee<R, W> {
    inner: R,
    copy_to: W,
    tar_hasher: Sha256,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tar_hasher.update(&buf[..n]);
        self.copy_to.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Walks the archive's headers so that something that is not a tar fails here, with a clear
/// error, rather than when a container first starts. Paths climbing out with `..` are refused
/// now too; the unpacker refuses every other escape again when the layer is unpacked.
fn check_tar(stream: &mut impl Read) -> Result<()> {
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|err| untrusted_error("the input is not a tar archive", err))?;
    for entry in entries {
        let entry =
            entry.map_err(|err| untrusted_error("the input is not a valid tar archive", err))?;
        let path = entry.path().map_err(|err| {
            untrusted_error("the tarball has an entry with an unreadable path", err)
        })?;
        if path.components().any(|c| c == Component::ParentDir) {
            bail!(
                "the tarball has an entry {} that climbs out of the root with '..'",
                quote(path.as_os_str().as_encoded_bytes())
            );
        }
    }
    Ok(())
}

/// `os/arch[/variant]`, defaulting to the host.
fn platform(spec: Option<&str>) -> Result<(Os, Arch, Option<String>)> {
    let Some(spec) = spec else {
        return Ok((Os::Linux, Arch::default(), None));
    };
    let parts: Vec<&str> = spec.split('/').collect();
    match parts.as_slice() {
        ["linux", arch] if !arch.is_empty() => Ok((Os::Linux, Arch::from(*arch), None)),
        ["linux", arch, variant] if !arch.is_empty() && !variant.is_empty() => {
            Ok((Os::Linux, Arch::from(*arch), Some((*variant).to_owned())))
        }
        _ => bail!("invalid platform {spec:?}: expected linux/ARCH[/VARIANT], e.g. linux/amd64"),
    }
}

// ANCHOR: apply_change
/// Applies one `--change` instruction to an image config, as `docker import -c` and
/// `docker commit -c` do. Docker accepts these instructions there: CMD, ENTRYPOINT, ENV,
/// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR (minidock: all but ONBUILD).
pub fn apply_change(config: &mut Config, change: &str) -> Result<()> {
    let change = change.trim();
    let (instruction, rest) = change
        .split_once(char::is_whitespace)
        .map(|(i, r)| (i, r.trim()))
        .unwrap_or((change, ""));
    let bad = |why: &str| anyhow::anyhow!("invalid --change {change:?}: {why}");
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(command_form(rest).map_err(|why| bad(&why))?));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(command_form(rest).map_err(|why| bad(&why))?));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (key, value) in key_values(rest).map_err(|why| bad(&why))? {
                env.retain(|existing| existing.split('=').next() != Some(key.as_str()));
                env.push(format!("{key}={value}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels = config.labels().clone().unwrap_or_default();
            labels.extend(key_values(rest).map_err(|why| bad(&why))?);
            config.set_labels(Some(labels));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for port in words(rest).map_err(|why| bad(&why))? {
                let (number, protocol) = port.split_once('/').unwrap_or((&port, "tcp"));
                let valid =
                    number.parse::<u16>().is_ok() && matches!(protocol, "tcp" | "udp" | "sctp");
                if !valid {
                    return Err(bad(&format!("{port:?} is not PORT[/tcp|udp|sctp]")));
                }
                let port = format!("{number}/{protocol}");
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut volumes = config.volumes().clone().unwrap_or_default();
            let paths = if rest.starts_with('[') {
                json_array(rest).map_err(|why| bad(&why))?
            } else {
                words(rest).map_err(|why| bad(&why))?
            };
            for path in paths {
                if !volumes.contains(&path) {
                    volumes.push(path);
                }
            }
            config.set_volumes(Some(volumes));
        }
        "WORKDIR" if !rest.is_empty() => {
            // A relative WORKDIR is relative to the previous one (Dockerfile reference).
            let dir = match (rest.starts_with('/'), config.working_dir()) {
                (false, Some(previous)) => format!("{}/{rest}", previous.trim_end_matches('/')),
                (false, None) => format!("/{rest}"),
                (true, _) => rest.to_owned(),
            };
            config.set_working_dir(Some(dir));
        }
        "USER" if !rest.is_empty() => {
            config.set_user(Some(rest.to_owned()));
        }
        "STOPSIGNAL" if !rest.is_empty() => {
            config.set_stop_signal(Some(rest.to_owned()));
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" => return Err(bad("it needs an argument")),
        _ => {
            return Err(bad(
                "supported instructions are CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR",
            ));
        }
    }
    Ok(())
}
// ANCHOR_END: apply_change

/// `["exec", "form"]` as is, or a shell form wrapped in `/bin/sh -c` (Dockerfile reference).
fn command_form(rest: &str) -> Result<Vec<String>, String> {
    if rest.is_empty() {
        return Err("it needs a command".into());
    }
    if rest.starts_with('[') {
        return json_array(rest);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn json_array(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|err| format!("not a JSON array of strings: {err}"))
}

/// `KEY=VALUE KEY2="two words"`, or the legacy single `KEY VALUE...` form.
fn key_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or("it needs KEY=VALUE")?;
        return Ok(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    words(rest)?
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("{word:?} is not KEY=VALUE")),
        })
        .collect()
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                current.push(chars.next().ok_or("a trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an unterminated quote".into());
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_fill_the_config() {
        let mut config = Config::default();
        for change in [
            r#"CMD ["sh"]"#,
            "ENV PATH=/bin GREETING=\"hello world\"",
            "env PATH=/usr/bin",
            "WORKDIR /srv",
            "WORKDIR app",
            "EXPOSE 80 53/udp",
            "LABEL a=b",
            "ENTRYPOINT echo hi",
        ] {
            apply_change(&mut config, change).unwrap();
        }
        assert_eq!(config.cmd().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(
            config.env().as_deref().unwrap(),
            ["GREETING=hello world", "PATH=/usr/bin"]
        );
        assert_eq!(config.working_dir().as_deref(), Some("/srv/app"));
        assert_eq!(
            config.exposed_ports().as_deref().unwrap(),
            ["80/tcp", "53/udp"]
        );
        assert_eq!(
            config.entrypoint().as_deref().unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn bad_changes_are_refused() {
        let mut config = Config::default();
        for change in [
            "RUN rm -rf /",
            "CMD [sh]",
            "EXPOSE http",
            "ENV A=\"x",
            "USER",
        ] {
            let err = apply_change(&mut config, change).unwrap_err().to_string();
            assert!(err.starts_with("invalid --change"), "{err}");
        }
    }

    #[test]
    fn compressions_are_recognised() {
        use crate::image::archive::StreamCompression as C;
        assert_eq!(C::sniff(&[0x1f, 0x8b, 8]), C::Gzip);
        assert_eq!(C::sniff(b"BZh91AY"), C::Bzip2);
        assert_eq!(C::sniff(b"\xfd7zXZ\0rest"), C::Xz);
        assert_eq!(C::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), C::Zstd);
        assert_eq!(C::sniff(b"bin/\0\0\0"), C::Plain);
    }
}

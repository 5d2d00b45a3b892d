//! `minidock build`'s command line (`docker build`'s flags of the same names).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::builder::{BuildOptions, TempDir, build};
use crate::cli::Exit;
use crate::container::Paths;
use crate::image::reference::Reference;

/// `minidock build [OPTIONS] CONTEXT`
#[derive(Debug, Clone, clap::Args)]
pub struct BuildCommand {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: 'CONTEXT/Dockerfile')
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take this one's value)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Do not use the layer cache
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// The build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for the image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print nothing but the image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The network of RUN steps: none (default) or host
    #[arg(long, value_name = "none|host")]
    pub network: Option<String>,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// A directory, a git repository URL (REPO.git#REF:DIR, git://, git@, github.com/), an
    /// http(s) URL of a tarball or a Dockerfile, or - for a tarball or a Dockerfile on stdin
    pub context: String,
}

// ANCHOR: run_build
/// `minidock build`: builds, then prints `sha256:<id>` with `-q`, writes `--iidfile`.
pub fn run_build(paths: &Paths, args: &BuildCommand) -> Result<u8> {
    // A context from stdin or a URL is unpacked into a temp dir, removed when the build ends.
    let (options, _context) = options(paths, args)
        .map_err(|e| Exit::new(crate::container::REQUEST_FAILED, format!("{e:#}")))?;
    if let Some(file) = &args.iidfile {
        // Docker removes a stale ID file first, so a failed build leaves none.
        let _ = std::fs::remove_file(file);
    }
    let mut stdout = std::io::stdout();
    // A failed build exits 1 as Docker's does, a failed RUN with its command's status.
    let image =
        build(paths, &options, &mut stdout).map_err(|e| match e
            .downcast::<crate::build::builder::RunFailed>()
        {
            Ok(failed) => failed.0,
            Err(e) => Exit::new(crate::container::REQUEST_FAILED, format!("{e:#}")),
        })?;
    if args.quiet {
        println!("{}", image.id);
    }
    if let Some(file) = &args.iidfile {
        crate::state::write_atomic_unsynced(file, image.id.to_string().as_bytes())
            .with_context(|| format!("writing the image ID file {}", file.display()))?;
    }
    Ok(0)
}
// ANCHOR_END: run_build

/// The build's options from the flags: the Dockerfile read, the names and args checked.
fn options(paths: &Paths, args: &BuildCommand) -> Result<(BuildOptions, Option<TempDir>)> {
    let bad = |e: anyhow::Error| Exit::new(crate::container::REQUEST_FAILED, format!("{e:#}"));
    let tags = args
        .tags
        .iter()
        .map(|t| {
            Reference::parse(t)
                .with_context(|| format!("invalid argument {t:?} for \"-t, --tag\" flag"))
        })
        .collect::<Result<Vec<_>>>()
        .map_err(bad)?;
    let (context, dockerfile, name, temp) = dockerfile(paths, args)?;
    let build_args = args
        .build_args
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (a.clone(), std::env::var(a).ok()),
        })
        .collect();
    let labels = args
        .labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let options = BuildOptions {
        context,
        dockerfile,
        dockerfile_name: name,
        tags,
        build_args,
        no_cache: args.no_cache,
        target: args.target.clone(),
        labels,
        quiet: args.quiet,
        network: args.network.clone(),
        pull: args.pull,
        run_output: None,
    };
    Ok((options, temp))
}

/// The context directory (none for a Dockerfile alone), the Dockerfile's text and its name,
/// and the temp dir holding a context that came as a tarball (stdin or URL).
fn dockerfile(
    paths: &Paths,
    args: &BuildCommand,
) -> Result<(Option<PathBuf>, String, String, Option<TempDir>)> {
    if crate::build::git::is_git_url(&args.context) {
        if crate::doctor::which("git").is_none() {
            bail!(
                "unable to prepare context: unable to find 'git': exec: \"git\": executable \
                 file not found in $PATH"
            );
        }
        let temp = TempDir::new(&paths.root)?;
        let context = crate::build::git::parse_remote(&args.context)
            .and_then(|remote| crate::build::git::clone(&remote, &temp.path))
            .context(
                "unable to prepare context: unable to 'git clone' to temporary context directory",
            )?;
        let (text, name) = read_dockerfile(&context, args, true)?;
        return Ok((Some(context), text, name, Some(temp)));
    }
    let remote = args.context.starts_with("http://") || args.context.starts_with("https://");
    if args.context == "-" || remote {
        let bytes = if remote {
            fetch(&args.context)?
        } else {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the build context from stdin")?;
            bytes
        };
        if !is_archive(&bytes) {
            if args.file.is_some() && !remote {
                bail!("-f with a Dockerfile on stdin is not supported by minidock build");
            }
            let text = String::from_utf8(bytes).context("the Dockerfile is not UTF-8")?;
            return Ok((None, text, "Dockerfile".into(), None));
        }
        let temp = TempDir::new(&paths.root)?;
        unpack_context(&bytes, &temp.path)?;
        let (text, name) = read_dockerfile(&temp.path, args, true)?;
        return Ok((Some(temp.path.clone()), text, name, Some(temp)));
    }
    let context = PathBuf::from(&args.context);
    if !context.is_dir() {
        bail!(
            "unable to prepare context: path {:?} not found",
            args.context
        );
    }
    let (text, name) = read_dockerfile(&context, args, false)?;
    Ok((Some(context), text, name, None))
}

/// The Dockerfile `-f` names (default `CONTEXT/Dockerfile`) and its name; `-f` of a tarball
/// context (`inside`) is a path inside it, else a path on the host.
fn read_dockerfile(context: &Path, args: &BuildCommand, inside: bool) -> Result<(String, String)> {
    let file = match &args.file {
        Some(f) if inside => context.join(f.strip_prefix("/").unwrap_or(f)),
        Some(f) => f.clone(),
        None => context.join("Dockerfile"),
    };
    let text = std::fs::read(&file)
        .map_err(|_| anyhow::anyhow!("Cannot locate specified Dockerfile: {}", name_of(&file)))?;
    let text = String::from_utf8(text).context("the Dockerfile is not UTF-8")?;
    Ok((text, name_of(&file)))
}

/// The body of an http(s) context URL. Errors: unreachable, a status other than 2xx.
fn fetch(url: &str) -> Result<Vec<u8>> {
    let response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .with_context(|| {
            format!("unable to prepare context: unable to download remote context {url}")
        })?;
    let status = response.status();
    if !status.is_success() {
        bail!("unable to prepare context: unable to download remote context {url}: {status}");
    }
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    Ok(bytes)
}

/// Whether the bytes are a tar stream, plain or compressed (gzip, bzip2, xz, zstd), as
/// Docker's `archive.IsArchive` tells a context tarball from a Dockerfile.
fn is_archive(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
        || bytes.starts_with(b"BZh")
        || bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (bytes.len() >= 262 && &bytes[257..262] == b"ustar")
}

/// Unpacks a context tarball into `dir` (entries leaving `dir` are refused by the reader).
fn unpack_context(bytes: &[u8], dir: &Path) -> Result<()> {
    let (reader, _) = crate::image::archive::decompressed(std::io::Cursor::new(bytes))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive
        .unpack(dir)
        .context("unpacking the build context tarball")
}

fn name_of(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

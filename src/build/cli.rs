//! `minidock build`'s command line (`docker build`'s flags of the same names).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::builder::{BuildOptions, build};
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
    /// A directory, or - for a Dockerfile on stdin
    pub context: String,
}

// ANCHOR: run_build
/// `minidock build`: builds, then prints `sha256:<id>` with `-q`, writes `--iidfile`.
pub fn run_build(paths: &Paths, args: &BuildCommand) -> Result<u8> {
    let options =
        options(args).map_err(|e| Exit::new(crate::container::REQUEST_FAILED, format!("{e:#}")))?;
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
fn options(args: &BuildCommand) -> Result<BuildOptions> {
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
    let (context, dockerfile, name) = dockerfile(args)?;
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
    Ok(BuildOptions {
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
    })
}

/// The context directory (none for `-`), the Dockerfile's text and its name.
fn dockerfile(args: &BuildCommand) -> Result<(Option<PathBuf>, String, String)> {
    if args.context == "-" {
        if args.file.is_some() {
            bail!("-f with a Dockerfile on stdin is not supported by minidock build");
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Dockerfile from stdin")?;
        return Ok((None, text, "Dockerfile".into()));
    }
    if args.context.starts_with("http://") || args.context.starts_with("https://") {
        bail!("a URL as the build context is not supported by minidock build");
    }
    let context = PathBuf::from(&args.context);
    if !context.is_dir() {
        bail!(
            "unable to prepare context: path {:?} not found",
            args.context
        );
    }
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let text = std::fs::read(&file)
        .map_err(|_| anyhow::anyhow!("Cannot locate specified Dockerfile: {}", name_of(&file)))?;
    let text = String::from_utf8(text).context("the Dockerfile is not UTF-8")?;
    Ok((Some(context), text, name_of(&file)))
}

fn name_of(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

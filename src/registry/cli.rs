//! The registry subcommands of `minidock`, with Docker's flags and output: `pull`, `push`,
//! `login` and `logout`. `src/bin/minidock.rs` parses arguments into these clap structs and
//! calls the `run_*` functions.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::auth::{Challenge, ConfigFile, Credentials, config_path};
use super::client::{Client, ClientOptions};
use super::config::RegistryConfig;
use super::progress::Progress;
use super::{Platform, PullOptions, PushOptions, pull, push, request_failed};
use crate::cli::Exit;
use crate::image::reference::{DEFAULT_DOMAIN, Reference};
use crate::image::store::Store;
use crate::state::disk_full_at;

const REQUEST_FAILED: u8 = 1;

/// `minidock pull [OPTIONS] NAME[:TAG|@DIGEST]`
#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
    /// Pick this platform from a multi-platform image, as os/arch[/variant] (default: the
    /// host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Allow plain HTTP, or TLS without verification, to this registry (host[:port] or CIDR);
    /// loopback is always allowed
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

/// `minidock push [OPTIONS] NAME[:TAG]`
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: String,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Allow plain HTTP, or TLS without verification, to this registry (host[:port] or CIDR);
    /// loopback is always allowed
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

/// `minidock login [OPTIONS] [SERVER]`. Credentials are kept in
/// `$MINIDOCK_CONFIG/config.json`, else `~/.minidock/config.json` (mode 0600, Docker's format).
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (visible to other users in `ps`: prefer --password-stdin)
    #[arg(short = 'p', long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Allow plain HTTP, or TLS without verification, to this registry (host[:port] or CIDR);
    /// loopback is always allowed
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

/// `minidock logout [SERVER]`
#[derive(Debug, Clone, clap::Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The client options for a registry: the stored credentials, Docker Hub's mirrors, and the
/// insecure registries from `daemon.json`, `config.json` and the flags
/// ([`RegistryConfig::load`]).
pub fn client_options(registry: &str, flags: &[String]) -> Result<ClientOptions> {
    let config = ConfigFile::load(&config_path())?;
    let mut insecure = flags.to_vec();
    insecure.extend(config.insecure_registries.iter().cloned());
    Ok(ClientOptions {
        registries: RegistryConfig::load(&insecure)?,
        credentials: config.credentials(registry)?,
    })
}

// ANCHOR: run_pull
/// `minidock pull`: prints Docker's lines, then the full reference.
pub fn run_pull(root: &Path, args: &PullArgs) -> Result<u8> {
    let reference = Reference::parse(&args.reference).map_err(request_failed)?;
    let platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(request_failed)?;
    let options = PullOptions {
        platform,
        client: client_options(reference.domain(), &args.insecure_registries)?,
        jobs: 0,
        unpack: true,
    };
    let store = Store::open(root).map_err(|err| disk_full_at(err, root))?;
    let progress = Progress::new(args.quiet);
    let pulled = pull(&store, &reference, &options, &progress)
        .map_err(|err| request_failed(disk_full_at(err, store.dir())))?;
    // What was asked for, not another name the same content is stored under.
    let name = pulled.name;
    progress.line(&format!("Digest: {}", pulled.digest));
    progress.line(&if pulled.changed {
        format!("Status: Downloaded newer image for {}", name.familiar())
    } else {
        format!("Status: Image is up to date for {}", name.familiar())
    });
    println!("{name}");
    Ok(0)
}
// ANCHOR_END: run_pull

/// `minidock push`
pub fn run_push(root: &Path, args: &PushArgs) -> Result<u8> {
    let reference = Reference::parse(&args.reference).map_err(request_failed)?;
    let options = PushOptions {
        client: client_options(reference.domain(), &args.insecure_registries)?,
        jobs: 0,
    };
    let store = Store::open(root)?;
    let progress = Progress::new(args.quiet);
    push(&store, &args.reference, &reference, &options, &progress).map_err(request_failed)?;
    if args.quiet {
        println!("{}", reference.familiar());
    }
    Ok(0)
}

/// `SERVER` as `login`/`logout` take it: a host, or a URL Docker's CLI would accept.
pub fn registry_host(server: Option<&str>) -> String {
    let server = server.unwrap_or(DEFAULT_DOMAIN);
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => DEFAULT_DOMAIN.to_owned(),
        other => other.to_owned(),
    }
}

// ANCHOR: run_login
/// `minidock login`: checks the credentials against the registry (the token server, for a
/// Bearer registry), then stores them.
pub fn run_login(args: &LoginArgs) -> Result<u8> {
    let registry = registry_host(args.server.as_deref());
    let username = match &args.username {
        Some(name) => name.clone(),
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        match &args.password {
            Some(password) => {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                password.clone()
            }
            None => prompt_password("Password: ")?,
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(Exit::new(REQUEST_FAILED, "login needs a username and a password").into());
    }
    let credentials = Credentials { username, password };
    let mut options = client_options(&registry, &args.insecure_registries)?;
    options.credentials = Some(credentials.clone());
    verify_login(&registry, &options).map_err(request_failed)?;
    let path = config_path();
    let mut config = ConfigFile::load(&path)?;
    config.set_credentials(&registry, &credentials);
    config.save(&path)?;
    println!("Login Succeeded");
    Ok(0)
}
// ANCHOR_END: run_login

/// Asks the registry whether the credentials are good: Basic registries answer `GET /v2/`
/// with them; Bearer registries' token servers hand out a token or refuse.
pub fn verify_login(registry: &str, options: &ClientOptions) -> Result<()> {
    let client = Client::connect(registry, options)?;
    let wrong = || {
        anyhow::Error::new(Exit::new(
            REQUEST_FAILED,
            format!("login to {registry} failed: unauthorized: wrong username or password"),
        ))
    };
    match client.challenge() {
        // The registry wants no authentication: any credentials "work", as with Docker.
        None => Ok(()),
        Some(Challenge::Basic { .. }) => {
            let response = client.send(
                "GET",
                &client.url("/v2/"),
                "",
                super::client::Access::Pull,
                &[],
                super::client::Payload::Empty,
            )?;
            match response.status().as_u16() {
                200 => Ok(()),
                401 => Err(wrong()),
                status => bail!("login to {registry}: the registry answered HTTP {status}"),
            }
        }
        Some(Challenge::Bearer { realm, service, .. }) => client
            .fetch_token(realm, service.as_deref(), None)
            .map(|_| ())
            .map_err(|err| {
                if format!("{err}").contains("refused") {
                    wrong()
                } else {
                    err
                }
            }),
    }
}

/// `minidock logout`
pub fn run_logout(args: &LogoutArgs) -> Result<u8> {
    let registry = registry_host(args.server.as_deref());
    let path = config_path();
    let mut config = ConfigFile::load(&path)?;
    if !config.remove_credentials(&registry) {
        println!("Not logged in to {registry}");
        return Ok(0);
    }
    config.save(&path)?;
    println!("Removing login credentials for {registry}");
    Ok(0)
}

fn prompt(label: &str) -> Result<String> {
    if !io::stdin().is_terminal() {
        bail!("no username given: use -u USER (stdin is not a terminal to ask on)");
    }
    eprint!("{label}");
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from stdin")?;
    Ok(line.trim().to_owned())
}

/// Reads a password from the terminal with echo off (termios(3): clear ECHO), restoring the
/// terminal even on error.
fn prompt_password(label: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!("no password given: use --password-stdin or -p (stdin is not a terminal)");
    }
    let saved = tcgetattr(&stdin).context("tcgetattr(stdin)")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("tcsetattr(stdin)")?;
    eprint!("{label}");
    let _ = io::stderr().flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers_normalise_like_dockers() {
        assert_eq!(registry_host(None), "docker.io");
        assert_eq!(
            registry_host(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_host(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(
            registry_host(Some("http://localhost:5000/")),
            "localhost:5000"
        );
    }
}

//! TCP for `minidock daemon`, only with TLS and client certificates (dockerd's
//! `--tlsverify --tlscacert --tlscert --tlskey`).
//!
//! Whoever can talk to the Engine API is root on the host: `docker run -v /:/host` is one
//! request away. A unix socket is guarded by its mode and group; a TCP socket has no owner,
//! so the daemon serves TCP only when every client must show a certificate signed by the CA
//! it was given (mutual TLS, through rustls), as `dockerd --tlsverify` does. Without those
//! flags a `tcp://` host is refused, loopback included (another user on the host could
//! reach it).

use super::Shared;
use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The port of a `tcp://HOST` without one: Docker's TLS port.
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// `minidock daemon`'s TLS flags (dockerd's names).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve the tcp:// hosts with TLS, and accept only clients whose certificate
    /// --tlscacert signed
    #[arg(long)]
    pub tlsverify: bool,
    /// The CA certificate (PEM) client certificates must be signed by
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// The daemon's certificate (PEM, with its chain)
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// The daemon's private key (PEM)
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
}

/// The addresses of the `tcp://HOST[:PORT]` hosts among `-H` (port default
/// [`DEFAULT_TLS_PORT`]). Errors: a host that does not resolve.
pub fn tcp_addrs(hosts: &[String]) -> Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for host in hosts {
        let Some(rest) = host.strip_prefix("tcp://") else {
            continue;
        };
        let rest = rest.trim_end_matches('/');
        let with_port = if rest.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
            rest.to_owned()
        } else {
            format!("{rest}:{DEFAULT_TLS_PORT}")
        };
        let addr = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("invalid host {}", crate::cli::quote(host)))?;
        addrs.push(addr);
    }
    Ok(addrs)
}

/// The TLS acceptor for the TCP hosts: `None` when there are none. Errors: TCP without
/// `--tlsverify` and its three files, a file that does not read or parse.
pub fn acceptor(args: &TlsArgs, tcp: &[SocketAddr]) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    if tcp.is_empty() {
        return Ok(None);
    }
    let (true, Some(ca), Some(cert), Some(key)) =
        (args.tlsverify, &args.tlscacert, &args.tlscert, &args.tlskey)
    else {
        bail!(
            "refusing to listen on tcp://{} without TLS client certificates: an \
             unauthenticated TCP socket gives root to whoever reaches it; give --tlsverify \
             --tlscacert --tlscert --tlskey, or use unix:///PATH",
            tcp[0]
        );
    };
    let config = server_config(ca, cert, key)?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

// ANCHOR: server_config
/// rustls' server configuration: our certificate and key, and a verifier that requires a
/// client certificate chaining to `ca` (webpki's checks: signature, validity, client-auth
/// usage).
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("adding the CA certificate {}", ca.display()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .context("making the client certificate verifier")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing the TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(cert)?, key)
        .context("the daemon's certificate and key do not make a TLS identity")
}
// ANCHOR_END: server_config

/// Accepts TCP connections, completes each TLS handshake (a client without a good
/// certificate goes no further), then serves the API on it.
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    daemon: Shared,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let daemon = daemon.clone();
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                super::serve(tls, daemon).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_hosts_need_tls_client_certificates() {
        let hosts = vec!["unix:///x.sock".to_owned(), "tcp://127.0.0.1".to_owned()];
        let tcp = tcp_addrs(&hosts).unwrap();
        assert_eq!(tcp, ["127.0.0.1:2376".parse::<SocketAddr>().unwrap()]);
        assert_eq!(
            tcp_addrs(&["tcp://127.0.0.1:99".into()]).unwrap()[0].port(),
            99
        );
        let err = acceptor(&TlsArgs::default(), &tcp).err().unwrap();
        assert!(
            err.to_string().contains("without TLS client certificates"),
            "{err}"
        );
        let half = TlsArgs {
            tlsverify: true,
            tlscacert: Some("/nonexistent/ca.pem".into()),
            ..TlsArgs::default()
        };
        assert!(acceptor(&half, &tcp).is_err());
        assert!(acceptor(&TlsArgs::default(), &[]).unwrap().is_none());
    }
}

//! Lesson 19 solution: ask the daemon for its containers, as the docker CLI does.
//!
//! Usage: lesson19-solution SOCKET

use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

fn main() -> Result<()> {
    let socket = std::env::args().nth(1).context("usage: lesson19 SOCKET")?;
    // all=1: stopped and created containers too, as `docker ps -a` asks.
    let body = get(&socket, "/containers/json?all=1")?;
    let list: Value = serde_json::from_slice(&body).context("reading the daemon's JSON")?;
    for container in list
        .as_array()
        .context("the daemon's answer is not a list")?
    {
        let id = container["Id"].as_str().unwrap_or("");
        // The API keeps Docker's leading '/' on every name; `docker ps` drops it.
        let names: Vec<&str> = container["Names"]
            .as_array()
            .map(|n| n.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let names: Vec<&str> = names.iter().map(|n| n.trim_start_matches('/')).collect();
        println!("{id} {}", names.join(","));
    }
    Ok(())
}

/// The body of the daemon's answer to `GET path`.
fn get(socket: &str, path: &str) -> Result<Vec<u8>> {
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("connecting to {socket:?}"))?;
    // HTTP/1.1 requires Host (any name: the socket is the address); Connection: close makes
    // the daemon end the connection after its answer, so reading to the end reads it all.
    let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .context("sending the request")?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .context("reading the response")?;
    body_of(&response)
}

// ---- Given: the body of an HTTP/1.1 response.
#[path = "given.rs"]
mod given;
use given::*;

//! Lesson 19: ask the daemon for its containers, as the docker CLI does.
//!
//! Usage: lesson19 SOCKET
//!
//! SOCKET is the unix socket of a running `minidock daemon`. Print one line per container,
//! stopped ones too, as this prints them:
//!
//!     DOCKER_HOST=unix://SOCKET docker ps -a --no-trunc --format '{{.ID}} {{.Names}}'
//!
//! Read: book chapter "The client and the daemon", the Engine API's ContainerList
//! (https://docs.docker.com/reference/api/engine/), unix(7).
//!
//! Check your work: `workshop check 19` (as root).

use anyhow::{Context, Result, bail};
use serde_json::Value;

fn main() -> Result<()> {
    let socket = std::env::args().nth(1).context("usage: lesson19 SOCKET")?;
    // TODO 1: the path and query of the request that lists every container, stopped ones too.
    let body = get(&socket, "/")?;
    let list: Value = serde_json::from_slice(&body).context("reading the daemon's JSON")?;
    for container in list
        .as_array()
        .context("the daemon's answer is not a list")?
    {
        // TODO 4: print the container's full ID, a space, and its names as `docker ps`
        //         prints them.
        let _ = container;
    }
    Ok(())
}

/// The body of the daemon's answer to `GET path`.
fn get(socket: &str, path: &str) -> Result<Vec<u8>> {
    // TODO 2: connect to the daemon's unix socket.
    // TODO 3: send the request as HTTP/1.1 text, with the headers HTTP/1.1 requires, and read
    //         the whole response (it ends when the daemon closes the connection).
    let _ = (socket, path);
    let response: Vec<u8> = Vec::new();
    if response.is_empty() {
        bail!("nothing sent to the daemon yet (TODO 2 and 3)");
    }
    body_of(&response)
}

// ---- Given (in given.rs, shared by the starter, the solution and the wrong answers): the
// body of an HTTP/1.1 response.
#[path = "given.rs"]
mod given;
use given::*;

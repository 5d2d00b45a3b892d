//! `minidock build`: Dockerfiles.
//!
//! [`parser`] turns a Dockerfile's text into instruction nodes as Docker's parser does;
//! [`shell`] is Docker's variable substitution and word splitting for their arguments.

pub mod parser;
pub mod shell;

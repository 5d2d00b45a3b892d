//! `minidock build`: Dockerfiles, as Docker reads them.
//!
//! [`parser`] turns a Dockerfile's text into instruction nodes as Docker's parser does;
//! [`instructions`] checks and types them and groups them into stages; [`args`] keeps the
//! build args with Docker's scoping; [`shell`] is Docker's variable substitution and word
//! splitting for instruction arguments.

pub mod args;
pub mod instructions;
pub mod parser;
pub mod shell;

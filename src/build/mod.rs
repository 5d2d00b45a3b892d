//! `minidock build`: Dockerfiles, as Docker reads them.
//!
//! [`parser`] turns a Dockerfile's text into instruction nodes as Docker's parser does;
//! [`instructions`] checks and types them and groups them into stages; [`args`] keeps the
//! build args with Docker's scoping; [`shell`] is Docker's variable substitution and word
//! splitting for instruction arguments. [`builder`] runs the steps, each a commit of the
//! image, with [`copy`] for `COPY`/`ADD`; [`git`] clones a git context; [`cli`] is `minidock build`'s command line.

pub mod args;
pub mod builder;
pub mod cli;
pub mod copy;
pub mod git;
pub mod instructions;
pub mod parser;
pub mod shell;

//! OCI images: layers (safe unpack, diff), the content-addressed store, references, archives.

pub mod cli;
pub mod import;
pub mod layer;
pub mod reference;
pub mod store;

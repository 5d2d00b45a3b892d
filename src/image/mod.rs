//! OCI images: layers (safe unpack, diff), the content-addressed store, references, archives.

pub mod archive;
pub mod cli;
pub mod commit;
pub mod history;
pub mod import;
pub mod layer;
pub mod reference;
pub mod size;
pub mod store;

//! OCI images: layers (safe unpack, diff), the content-addressed store, references, archives.

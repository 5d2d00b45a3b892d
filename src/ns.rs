//! Namespaces: clone into new namespaces, uid/gid maps, hostname.

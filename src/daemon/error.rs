//! The Engine API's errors: a status code and Docker's `{"message": "..."}` body.

use hyper::StatusCode;

/// An error as the API answers it. Built from the library's errors by their words
/// ([`ApiError::from_library`]), or directly for what the API itself refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: a parameter or body the API cannot use.
    pub fn bad_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with Docker's words: `No such container: NAME`.
    pub fn no_such_container(name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("No such container: {name}"))
    }

    /// 404 with Docker's words: `No such image: NAME`.
    pub fn no_such_image(name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("No such image: {name}"))
    }

    /// 404 for a route the API does not have (Docker's words for an unknown path).
    pub fn not_found_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }

    /// A library error, by what it says: "no such ..." is 404; a container or name in the
    /// way (in use, running, not running, paused) is 409; anything else 500. The message is
    /// the library's one line, with Docker's capital for the 404s.
    pub fn from_library(err: &anyhow::Error) -> ApiError {
        let message = crate::cli::one_line(&format!("{err:#}"));
        let lower = message.to_lowercase();
        if let Some(at) = lower.find("no such container: ") {
            return ApiError::no_such_container(&message[at + "no such container: ".len()..]);
        }
        if let Some(at) = lower.find("no such image: ") {
            return ApiError::no_such_image(&message[at + "no such image: ".len()..]);
        }
        let network_missing = lower.starts_with("network ") && lower.ends_with(" not found");
        if lower.contains("no such volume") || network_missing {
            return ApiError::new(StatusCode::NOT_FOUND, message);
        }
        if lower.contains("is a pre-defined network") || lower.contains("has active endpoints") {
            return ApiError::new(StatusCode::FORBIDDEN, message);
        }
        // The caller's input, refused by the library before it did anything: Docker's 400.
        const BAD_INPUT: [&str; 4] = [
            "no command specified",
            "invalid container name",
            "it needs to be an absolute path",
            "must be a directory",
        ];
        if BAD_INPUT.iter().any(|c| lower.contains(c)) {
            return ApiError::bad_parameter(message);
        }
        const CONFLICTS: [&str; 10] = [
            "already exists",
            "volume is in use",
            "already in use",
            "is running",
            "is not running",
            "already running",
            "is paused",
            "is restarting",
            "is already paused",
            "conflict",
        ];
        if CONFLICTS.iter().any(|c| lower.contains(c)) {
            return ApiError::new(StatusCode::CONFLICT, message);
        }
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A library error that is the caller's input at fault unless it says otherwise (404,
    /// 409): 400 when its exit code is Docker's usage one (125), as `create`'s flags.
    pub fn from_input(err: &anyhow::Error) -> ApiError {
        let mapped = ApiError::from_library(err);
        if mapped.status == StatusCode::INTERNAL_SERVER_ERROR
            && crate::cli::exit_code_of(err) == crate::cli::code::FAILED
        {
            return ApiError::bad_parameter(mapped.message);
        }
        mapped
    }

    /// The body: `{"message":"..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        ApiError::from_library(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Exit;

    #[test]
    fn library_errors_map_to_dockers_status_codes() {
        let err = anyhow::Error::new(Exit::new(1, "no such container: web"));
        let api = ApiError::from_library(&err);
        assert_eq!(api.status, StatusCode::NOT_FOUND);
        assert_eq!(api.body(), r#"{"message":"No such container: web"}"#);
        let err = anyhow::anyhow!("the container name \"/a\" is already in use by container");
        assert_eq!(ApiError::from_library(&err).status, StatusCode::CONFLICT);
        let err = crate::container::restarting("abc");
        assert_eq!(ApiError::from_library(&err).status, StatusCode::CONFLICT);
        let err = anyhow::anyhow!("invalid container name \"a/b\": only [a-zA-Z0-9] are allowed");
        assert_eq!(ApiError::from_library(&err).status, StatusCode::BAD_REQUEST);
        let err = anyhow::anyhow!("destination \"c:/tmp/l\" must be a directory");
        assert_eq!(ApiError::from_library(&err).status, StatusCode::BAD_REQUEST);
        let err = anyhow::Error::new(Exit::new(1, "No command specified"));
        assert_eq!(ApiError::from_library(&err).status, StatusCode::BAD_REQUEST);
        let err = anyhow::Error::new(Exit::new(125, "invalid memory"));
        assert_eq!(ApiError::from_input(&err).status, StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::from_library(&anyhow::anyhow!("disk")).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

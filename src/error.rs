//! The one error type of the service and its two faces: a GraphQL error with
//! `extensions.code`, and (for the REST layer) an HTTP status for that code.

/// Every failure a request can meet. Client-facing variants carry a message that says
/// what was wrong and what is allowed; `Internal` carries the cause for the logs only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadUserInput(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InsufficientBalance(String),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("{0}")]
    Provider(String),
    /// The provider may have acted but gave no definite answer: the work is kept PENDING
    /// (a refund keeps its reservation) until the provider says what happened.
    #[error("{0}")]
    OutcomePending(String),
    /// The API key sent more requests than its rate allows; retry after this many seconds.
    #[error("too many requests for this API key; retry after {0} s")]
    RateLimited(u64),
    /// The database could not be reached (pool checkout failed or timed out).
    #[error("the service is temporarily unavailable, retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// The public error codes of SPEC §4, with the HTTP status the REST layer answers.
pub const ERROR_CODES: &[(&str, u16)] = &[
    ("BAD_USER_INPUT", 400),
    ("UNAUTHENTICATED", 401),
    ("FORBIDDEN", 403),
    ("NOT_FOUND", 404),
    ("CONFLICT", 409),
    ("IDEMPOTENCY_CONFLICT", 409),
    ("INSUFFICIENT_BALANCE", 422),
    ("RATE_LIMITED", 429),
    ("PROVIDER_ERROR", 502),
    ("OUTCOME_PENDING", 202),
    ("SERVICE_UNAVAILABLE", 503),
    ("INTERNAL", 500),
];

/// HTTP status for a public error code; unknown codes are treated as internal.
pub fn http_status_for_code(code: &str) -> u16 {
    ERROR_CODES.iter().find(|(c, _)| *c == code).map_or(500, |(_, status)| *status)
}

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The `extensions.code` of SPEC §4.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::InsufficientBalance(_) => "INSUFFICIENT_BALANCE",
            Self::IdempotencyConflict(_) => "IDEMPOTENCY_CONFLICT",
            Self::Provider(_) => "PROVIDER_ERROR",
            Self::OutcomePending(_) => "OUTCOME_PENDING",
            Self::RateLimited(_) => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Seconds the client should wait before retrying, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited(seconds) => Some(*seconds),
            _ => None,
        }
    }

    /// Logs the hidden cause of server-side failures; client errors are not logged as errors.
    pub fn log(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            _ => {}
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            // The database went away under us: retryable, not a bug.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager => Self::Unavailable(error.into()),
            Error::DatabaseError(_, info) if is_connection_loss(info.message()) => {
                Self::Unavailable(anyhow::anyhow!("database connection lost: {}", info.message()))
            }
            // PostgreSQL text cannot hold NUL: a client sent one somewhere we did not check.
            Error::DatabaseError(_, info) if is_unstorable_text(info.message()) => {
                Self::BadUserInput("text values must not contain NUL (\\u0000) characters".to_owned())
            }
            _ => Self::Internal(error.into()),
        }
    }
}

/// Messages of errors PostgreSQL gives for text it cannot store (NUL in text or JSON).
fn is_unstorable_text(message: &str) -> bool {
    message.contains("invalid byte sequence") || message.contains("unsupported Unicode escape sequence")
}

/// Messages of errors that mean the connection, not the statement, failed.
fn is_connection_loss(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "connection closed",
        "broken pipe",
        "connection reset",
        "unexpected eof",
        "error communicating",
        "timed out",
        "statement timeout",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

impl From<crate::db::PoolError> for AppError {
    fn from(error: crate::db::PoolError) -> Self {
        Self::Unavailable(anyhow::anyhow!("database pool: {error}"))
    }
}

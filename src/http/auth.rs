//! Bearer API keys.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::app::App;
use crate::domain::{Caller, access};
use crate::error::AppError;

/// Resolves `Authorization: Bearer <key>` to the caller. The bare form `Authorization:
/// <key>` (seed 001's) is accepted as well when the value is a key of ours (`bk_…`).
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, AppError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        AppError::Unauthenticated("an API key is required: send Authorization: Bearer <key>".to_owned())
    })?;
    let key = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .or_else(|| v.trim().starts_with(access::KEY_PREFIX).then_some(v))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "the Authorization header must be: Bearer <api key> (or the key alone)".to_owned(),
            )
        })?;
    let caller = access::authenticate(app.pool(), key).await?;
    tracing::Span::current().record("key", caller.name.as_str());
    app.rates().check(caller.key_id)?;
    Ok(caller)
}

//! JSON bodies of the REST faces that answer `ApiError`: an object with known keys, and
//! its string fields, with errors that name the field. (Seed 001's face has its own error
//! codes and keeps its own.)

use serde_json::{Map, Value, json};

use super::ApiError;

/// Answers the `ApiError` of a failed step at once.
macro_rules! try_api {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(error) => return $crate::rest::ApiError::from(error).into_response(),
        }
    };
}
pub(crate) use try_api;

/// A JSON object body (empty is `{}`) with only `allowed` keys; anything else is a 400
/// naming it.
pub fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_input(format!("the body must be a JSON object: {e}")))?
    };
    let Value::Object(map) = value else {
        return Err(ApiError::bad_input("the body must be a JSON object"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_input(format!("{} is not a field of this request", shown_key(unknown))));
    }
    if let Some(at) = crate::domain::json::nul_at(&Value::Object(map.clone()), "body") {
        return Err(ApiError::bad_input(format!("{at} must not contain NUL (\\u0000) characters")));
    }
    Ok(map)
}

/// A string field (null or absent: `None`).
pub fn text(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_input(format!("{field} must be a string"))),
    }
}

/// A client's key as an error may repeat it: at most 40 characters, digits masked (a card
/// number sent as a key is not echoed).
pub fn shown_key(key: &str) -> String {
    let masked: String = key.chars().take(40).map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    if key.chars().count() > 40 { format!("{masked}…") } else { masked }
}

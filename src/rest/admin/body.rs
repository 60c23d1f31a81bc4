//! POST bodies: JSON objects or `application/x-www-form-urlencoded`, read field by field
//! with errors that name the field.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::ApiError;

/// The fields of a request body.
pub struct Fields {
    map: Map<String, Value>,
    /// Form values are all strings; JSON values have their own types.
    form: bool,
}

impl Fields {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self { map: Map::new(), form: false });
        }
        let fields = Self::decode(content_type.as_deref(), body)?;
        // PostgreSQL cannot store NUL: refused here, naming the field, whatever it is.
        for (name, value) in &fields.map {
            if let Some(at) = crate::domain::json::nul_at(value, name) {
                return Err(ApiError::bad_input(format!("{at} must not contain NUL (\\u0000) characters")));
            }
        }
        Ok(fields)
    }

    fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        match content_type {
            Some("application/json") => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(Self { map, form: false }),
                Ok(_) => Err(ApiError::bad_input("the request body must be a JSON object")),
                Err(error) => Err(ApiError::bad_input(format!("the request body is not valid JSON: {error}"))),
            },
            Some("application/x-www-form-urlencoded") => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                    .map_err(|_| ApiError::bad_input("the request body is not valid URL-encoded form data"))?;
                Ok(Self { map: pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect(), form: true })
            }
            other => Err(ApiError::bad_input(format!(
                "Content-Type must be application/json or application/x-www-form-urlencoded (got {})",
                other.unwrap_or("none")
            ))),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_input(format!("{name} must be a string"))),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let wrong = || ApiError::bad_input(format!("{name} must be an integer"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(wrong),
            Some(Value::String(s)) if self.form => s.trim().parse().map(Some).map_err(|_| wrong()),
            Some(_) => Err(wrong()),
        }
    }

    /// A required integer id greater than zero.
    pub fn id(&self, name: &str) -> Result<i64, ApiError> {
        match self.int(name)? {
            Some(id) if id > 0 => Ok(id),
            Some(_) => Err(ApiError::bad_input(format!("{name} must be a positive integer"))),
            None => Err(ApiError::bad_input(format!("{name} is required"))),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        let wrong = || ApiError::bad_input(format!("{name} must be true or false"));
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if self.form => match s.trim() {
                "true" | "1" | "on" => Ok(true),
                "false" | "0" | "off" | "" => Ok(false),
                _ => Err(wrong()),
            },
            Some(_) => Err(wrong()),
        }
    }

    /// A JSON object (in a form: a JSON-encoded object).
    pub fn object(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let wrong = || ApiError::bad_input(format!("{name} must be a JSON object"));
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(Value::String(s)) if self.form => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => Ok(Some(v)),
                _ => Err(wrong()),
            },
            Some(_) => Err(wrong()),
        }
    }

    /// Unix seconds as an RFC 3339 time; `0` or absent is unset (the legacy zero value).
    pub fn unix_time(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.int(name)? {
            None | Some(0) => Ok(None),
            Some(seconds) if seconds < 0 => {
                Err(ApiError::bad_input(format!("{name} must be unix seconds (got {seconds})")))
            }
            Some(seconds) => DateTime::<Utc>::from_timestamp(seconds, 0)
                .map(|t| Some(t.to_rfc3339()))
                .ok_or_else(|| ApiError::bad_input(format!("{name} is out of range"))),
        }
    }
}

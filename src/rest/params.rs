//! Query-string parsing with errors that name the parameter.

use std::collections::HashMap;

use super::ApiError;

/// Query parameters by name; a repeated parameter keeps its last value.
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| ApiError::bad_input("the query string is not valid URL encoding"))?;
        Ok(Self(pairs.into_iter().collect()))
    }

    /// A parameter not among `known`, if any (a 400 should name it: a misspelt filter must
    /// not quietly list everything).
    pub fn unknown(&self, known: &[&str]) -> Option<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
        names.sort_unstable();
        names.first().copied()
    }

    /// A present, non-blank value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// An integer within `range`, or `default` when absent.
    pub fn int(&self, name: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, ApiError> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        raw.parse::<i64>().ok().filter(|v| range.contains(v)).ok_or_else(|| {
            ApiError::bad_input(format!(
                "{name} must be an integer between {} and {} (got {raw:?})",
                range.start(),
                range.end()
            ))
        })
    }

    /// One of `allowed`, or `default` when absent.
    pub fn choice<'a>(&'a self, name: &str, default: &'a str, allowed: &[&str]) -> Result<&'a str, ApiError> {
        match self.text(name) {
            None => Ok(default),
            Some(value) if allowed.contains(&value) => Ok(value),
            Some(value) => {
                Err(ApiError::bad_input(format!("{name} must be one of {} (got {value:?})", allowed.join(", "))))
            }
        }
    }
}

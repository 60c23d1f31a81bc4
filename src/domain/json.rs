//! Client-supplied JSON objects (`metadata`, `planSnapshot`): bounded, and storable.

use serde_json::Value;

use crate::error::{AppError, AppResult};

/// The largest JSON object one field may hold, serialised.
pub const MAX_OBJECT_BYTES: usize = 8 * 1024;
/// The deepest nesting of one such object.
pub const MAX_OBJECT_DEPTH: usize = 8;

/// The deepest nesting of arrays and objects in `value` (a scalar is 0). Iterative, so any
/// value serde_json accepted is measured without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// Where `value` holds a NUL character (in a key or a string), as a path; PostgreSQL text
/// and JSON cannot store it.
pub fn nul_at(value: &Value, path: &str) -> Option<String> {
    let mut stack = vec![(value, path.to_owned())];
    while let Some((value, path)) = stack.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return Some(path),
            Value::Array(items) => stack.extend(items.iter().enumerate().map(|(i, v)| (v, format!("{path}[{i}]")))),
            Value::Object(map) => {
                for (key, v) in map {
                    if key.contains('\0') {
                        return Some(path);
                    }
                    stack.push((v, format!("{path}.{key}")));
                }
            }
            _ => {}
        }
    }
    None
}

/// A client's JSON object for `field`: absent or null is `{}`; anything but an object, an
/// object over [`MAX_OBJECT_BYTES`] or deeper than [`MAX_OBJECT_DEPTH`], or one holding
/// NUL is refused, naming the field.
pub fn object(field: &str, value: Option<Value>) -> AppResult<Value> {
    let value = match value {
        None | Some(Value::Null) => return Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(AppError::bad_input(format!("{field} must be a JSON object"))),
    };
    if depth(&value) > MAX_OBJECT_DEPTH {
        return Err(AppError::bad_input(format!("{field} is nested deeper than {MAX_OBJECT_DEPTH} levels")));
    }
    if value.to_string().len() > MAX_OBJECT_BYTES {
        return Err(AppError::bad_input(format!("{field} is larger than {MAX_OBJECT_BYTES} bytes of JSON")));
    }
    if let Some(at) = nul_at(&value, field) {
        return Err(AppError::bad_input(format!("{at} must not contain NUL (\\u0000) characters")));
    }
    Ok(value)
}

//! Runs GraphQL operations in process for the REST handlers.

use async_graphql::{Request, Variables};
use serde::Deserialize;
use serde_json::Value;

use super::ApiError;
use crate::domain::Caller;
use crate::graphql::with_caller;
use crate::http::HttpState;

/// Runs one GraphQL operation for `caller` and returns its `data`, or the first error.
pub async fn run(
    state: &HttpState,
    caller: Caller,
    query: String,
    variables: Value,
) -> Result<async_graphql::Value, ApiError> {
    let request = Request::new(query).variables(Variables::from_json(variables));
    let response =
        crate::graphql::execute_detached(&state.schema, &state.app, with_caller(request, &state.app, caller))
            .await
            .map_err(ApiError::from)?;
    if let Some(error) = response.errors.first() {
        let code = error
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "INTERNAL".to_owned());
        // An error below a root field, or beside one that returned data, came after the
        // operation's change was made.
        let produced = match &response.data {
            async_graphql::Value::Object(fields) => fields.values().any(|v| *v != async_graphql::Value::Null),
            _ => false,
        };
        let mut api_error = ApiError::new(&code, error.message.clone());
        api_error.committed = produced || error.path.len() > 1;
        return Err(api_error);
    }
    Ok(response.data)
}

/// Reads the field `name` of GraphQL data into a REST-side struct, without an intermediate
/// JSON tree.
pub fn decode_field<T: for<'de> Deserialize<'de>>(data: async_graphql::Value, name: &str) -> Result<T, ApiError> {
    let field = match data {
        async_graphql::Value::Object(mut fields) => fields.swap_remove(name).unwrap_or(async_graphql::Value::Null),
        _ => async_graphql::Value::Null,
    };
    async_graphql::from_value(field).map_err(|e| {
        tracing::error!(error = %e, "GraphQL answer does not match the REST shape");
        ApiError::new("INTERNAL", "internal error")
    })
}

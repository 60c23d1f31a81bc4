//! Gives every GraphQL error an `extensions.code` (SPEC §4) and logs internal causes.
//!
//! Resolvers return `AppError` with `?`; async-graphql keeps it as the error's source, and
//! `assign_codes` reads it back after execution. Errors async-graphql raises itself (parse, validation,
//! limits, argument coercion) are the client's: `BAD_USER_INPUT`.

use std::sync::Arc;

use async_graphql::{Response, ServerError};

use crate::error::AppError;

fn app_error(error: &ServerError) -> Option<&AppError> {
    error.source::<AppError>().or_else(|| error.source::<Arc<AppError>>().map(Arc::as_ref))
}

/// async-graphql's own limit messages, completed with the setting that raises the limit.
fn name_the_limit(error: &mut ServerError) {
    if error.message == "Query is too complex." {
        error.message = "the query is too complex (GRAPHQL_MAX_COMPLEXITY)".to_owned();
    }
}

fn assign_code(error: &mut ServerError) {
    name_the_limit(error);
    let has_code = error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return;
    }
    let code = match app_error(error) {
        Some(app_error) => {
            app_error.log();
            app_error.code()
        }
        None if error.source.is_some() => {
            tracing::error!(message = %error.message, "unclassified resolver error");
            error.message = "internal error".to_owned();
            "INTERNAL"
        }
        None => "BAD_USER_INPUT",
    };
    error.extensions.get_or_insert_with(Default::default).set("code", code);
}

/// Gives every error of a response its code (and logs internal causes).
pub fn assign_codes(response: &mut Response) {
    response.errors.iter_mut().for_each(assign_code);
}

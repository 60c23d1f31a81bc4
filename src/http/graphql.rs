//! `POST /graphql` and `GET /graphql` following the GraphQL-over-HTTP specification.
//!
//! - `Accept: application/graphql-response+json`: request errors (bad JSON, bad parameters,
//!   parse and validation failures) are 400 without a `data` entry.
//! - `Accept: application/json`, `*/*` or none: request errors are 200 with `errors`.
//! - GET runs queries only (a mutation is 405); POST needs `Content-Type: application/json`.
//! - Batched (array) requests are refused.

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, Variables};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::HttpState;
use super::auth::authenticate;
use super::idempotency::{self, Outcome};
use super::observe::Operation;
use crate::domain::Caller;
use crate::graphql::documents::{DocumentCache, selected_operation};
use crate::graphql::limits::{self, ShapeLimits};
use crate::graphql::with_caller;

#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Json,
    GraphqlResponseJson,
}

impl MediaType {
    fn tag(self) -> &'static str {
        match self {
            MediaType::Json => "json",
            MediaType::GraphqlResponseJson => "graphql-response+json",
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::Json => "application/json; charset=utf-8",
            MediaType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
        })
    }
}

fn media_ranges(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| range.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|range| !range.is_empty())
        .collect()
}

/// Picks the response media type; `None` means nothing acceptable (406).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let ranges = media_ranges(headers);
    if ranges.is_empty() {
        return Some(MediaType::Json);
    }
    if ranges.iter().any(|r| r == "application/graphql-response+json") {
        return Some(MediaType::GraphqlResponseJson);
    }
    if ranges.iter().any(|r| r == "application/json" || r == "*/*" || r == "application/*") {
        return Some(MediaType::Json);
    }
    None
}

fn raw_response(status: StatusCode, media: MediaType, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(CONTENT_TYPE, media.content_type());
    response
}

fn json_response(status: StatusCode, media: MediaType, body: &Value) -> Response {
    raw_response(status, media, body.to_string())
}

fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// A request refused before it ran. One that is not a well-formed GraphQL-over-HTTP request
/// (no JSON, no query, wrong parameter types) is 400 whatever the media type; a well-formed
/// one whose document does not parse or breaks a limit is 200 for `application/json` (the
/// body says why) and 400 for `application/graphql-response+json`.
fn refusal_response(media: MediaType, refusal: Refusal) -> Response {
    let status = match media {
        MediaType::Json if !refusal.malformed => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    json_response(status, media, &refusal.body)
}

fn not_acceptable() -> Response {
    let body = error_body(
        "the Accept header allows no response type this endpoint produces: use application/graphql-response+json or application/json",
        "BAD_USER_INPUT",
    );
    json_response(StatusCode::NOT_ACCEPTABLE, MediaType::Json, &body)
}

/// The parameters of one GraphQL request, from a JSON body or a query string.
struct Params {
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    /// The query, parsed once here.
    document: Arc<ExecutableDocument>,
    /// Whether the document came from the cache (else it is kept once it has run).
    cached: bool,
}

/// A request refused before it ran: the body of errors to answer with, and whether the
/// request itself was malformed (rather than its document refused).
struct Refusal {
    body: Value,
    malformed: bool,
}

impl Refusal {
    /// The document does not parse or breaks a limit.
    fn document(body: Value) -> Self {
        Self { body, malformed: false }
    }
}

/// A malformed request, with a message saying what was wrong.
impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self { body: error_body(&message, "BAD_USER_INPUT"), malformed: true }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        Self::from(message.to_owned())
    }
}

/// The document of `query`: kept, or parsed here (never kept before it has passed
/// validation). Too deep a nesting is refused before the parser sees it.
fn document(query: &str, documents: &DocumentCache) -> Result<(Arc<ExecutableDocument>, bool), Refusal> {
    if let Some(document) = documents.get(query) {
        return Ok((document, true));
    }
    if limits::nesting_depth(query) > limits::MAX_NESTING {
        let message = format!("the query nests brackets deeper than {} levels", limits::MAX_NESTING);
        return Err(Refusal::document(error_body(&message, "BAD_USER_INPUT")));
    }
    match async_graphql::parser::parse_query(query) {
        Ok(document) => Ok((Arc::new(document), false)),
        Err(error) => {
            let mut error = async_graphql::ServerError::from(error);
            error.message = syntax_message(&error.message, &error.locations);
            error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
            Err(Refusal::document(json!({ "errors": [error] })))
        }
    }
}

/// A syntax error without the source line the parser quotes: a document can hold what must
/// never be echoed (a card number written inline). What was expected is kept.
fn syntax_message(parser_message: &str, locations: &[async_graphql::Pos]) -> String {
    let quoted_source = parser_message.lines().any(|l| l.trim_start().starts_with('|') || l.contains(" | "));
    if !quoted_source {
        return parser_message.to_owned();
    }
    let expected = parser_message
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("= "))
        .next_back()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    match locations.first() {
        Some(at) => format!("syntax error at line {}, column {}{expected}", at.line, at.column),
        None => format!("syntax error{expected}"),
    }
}

fn params_from_object(mut object: Map<String, Value>, documents: &DocumentCache) -> Result<Params, Refusal> {
    let query = match object.remove("query") {
        Some(Value::String(q)) => q,
        None | Some(Value::Null) => return Err("the request has no query parameter".into()),
        Some(_) => return Err("the query parameter must be a string".into()),
    };
    let operation_name = match object.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("the operationName parameter must be a string or null".into()),
    };
    let variables = match object.remove("variables") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err("the variables parameter must be an object or null".into()),
    };
    match object.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("the extensions parameter must be an object or null".into()),
    }
    // PostgreSQL cannot store NUL; refuse it here, naming where it is, whatever the field.
    let nul = |message: String| Refusal::document(error_body(&message, "BAD_USER_INPUT"));
    if query.contains('\0') || query.contains("\\u0000") {
        return Err(nul("string values in the query must not contain NUL (\\u0000) characters".to_owned()));
    }
    if let Some(variables) = &variables {
        for (name, value) in variables {
            if let Some(at) = crate::domain::json::nul_at(value, &format!("${name}")) {
                return Err(nul(format!("variable {at} must not contain NUL (\\u0000) characters")));
            }
        }
    }
    let (document, cached) = document(&query, documents)?;
    Ok(Params { query, operation_name, variables, document, cached })
}

fn params_from_query_string(raw: &str, documents: &DocumentCache) -> Result<Params, Refusal> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|_| Refusal::from("the query string is not valid URL encoding"))?;
    let mut object = Map::new();
    for (key, value) in pairs {
        let value = match key.as_str() {
            "variables" | "extensions" if !value.is_empty() => serde_json::from_str(&value)
                .map_err(|_| Refusal::from(format!("the {key} parameter must be a JSON-encoded object")))?,
            _ => Value::String(value),
        };
        object.insert(key, value);
    }
    params_from_object(object, documents)
}

/// The type of the operation that would run.
fn operation_type(params: &Params) -> Option<OperationType> {
    selected_operation(&params.document, params.operation_name.as_deref()).map(|(_, op)| op.ty)
}

fn error_response(media: MediaType, error: &crate::error::AppError) -> Response {
    error.log();
    let status = StatusCode::from_u16(crate::error::http_status_for_code(error.code()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, media, &error_body(&error.to_string(), error.code()));
    if let Some(seconds) = error.retry_after() {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Error codes that say the server, not the request, failed, or that the outcome is not
/// known yet: such an answer is not kept for idempotent replay (a retry acts again, and a
/// refund's retry reaches the same refund), as on the REST face.
const SERVER_FAILURES: &[&str] = &["PROVIDER_ERROR", "OUTCOME_PENDING", "SERVICE_UNAVAILABLE", "INTERNAL"];

fn is_server_failure(error: &async_graphql::ServerError) -> bool {
    error.extensions.as_ref().and_then(|ext| ext.get("code")).is_some_and(|code| match code {
        async_graphql::Value::String(code) => SERVER_FAILURES.contains(&code.as_str()),
        _ => false,
    })
}

/// Whether an answer may be forgotten so a retry with the same key acts again: only when
/// the server failed and no root field of the operation produced anything. A root field
/// that returned data committed its change; an error below a root field is a read after
/// the change (mutations load what they return lazily when their prefetch fails, so such
/// errors carry a nested path). Anything else is kept and replayed.
fn nothing_committed(response: &async_graphql::Response) -> bool {
    let all_failed_at_the_root =
        !response.errors.is_empty() && response.errors.iter().all(|e| is_server_failure(e) && e.path.len() <= 1);
    let no_data = match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(fields) => fields.values().all(|v| *v == async_graphql::Value::Null),
        _ => false,
    };
    all_failed_at_the_root && no_data
}

/// Runs one operation; returns the status, the serialised body and whether it failed on
/// the server's side.
async fn run(state: HttpState, caller: Caller, media: MediaType, params: Params) -> Outcome {
    let keep = (!params.cached).then(|| (params.query.clone(), params.document.clone()));
    let mut request = Request::new(params.query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    let request = with_caller(request, &state.app, caller);
    let internal =
        || Outcome::http(StatusCode::INTERNAL_SERVER_ERROR, error_body("internal error", "INTERNAL").to_string());
    let response = match crate::graphql::execute_parsed_detached(&state.schema, request, params.document).await {
        Ok(response) => response,
        Err(error) => {
            error.log();
            return internal();
        }
    };
    if crate::graphql::is_request_error(&response) {
        if media == MediaType::GraphqlResponseJson {
            // No `data` entry at all for a request that never executed.
            let body = json!({ "errors": response.errors });
            return Outcome::http(StatusCode::BAD_REQUEST, body.to_string());
        }
    } else if let Some((query, document)) = keep
        && !query.to_ascii_lowercase().contains("cvc")
    {
        // It passed validation: worth keeping parsed (not one that may hold a card inline).
        state.app.documents().keep(&query, document);
    }
    let retryable = nothing_committed(&response);
    match serde_json::to_string(&response) {
        Ok(body) => Outcome { status: StatusCode::OK, body, retryable },
        Err(error) => {
            tracing::error!(%error, "serialising a GraphQL response");
            internal()
        }
    }
}

/// The configured limits on a query's shape and cost.
pub(crate) fn shape_limits(config: &crate::config::Config) -> ShapeLimits {
    ShapeLimits {
        max_depth: config.graphql_max_depth,
        max_fields: config.graphql_max_fields,
        max_aliases: config.graphql_max_aliases,
        max_directives: config.graphql_max_directives,
        max_cost: config.graphql_max_cost,
        introspection: config.graphql_introspection,
    }
}

async fn execute(state: &HttpState, headers: &HeaderMap, media: MediaType, params: Params) -> Response {
    let operation = operation_of(&params);
    // Shape and cost first: an abusive query costs no SQL, not even the key lookup.
    let mut response = match limits::check(
        &params.document,
        params.operation_name.as_deref(),
        params.variables.as_ref(),
        shape_limits(state.app.config()),
    ) {
        Err(message) => refusal_response(media, Refusal::document(error_body(&message, "BAD_USER_INPUT"))),
        Ok(_) => {
            let is_mutation = operation_type(&params) == Some(OperationType::Mutation);
            execute_parsed(state, headers, media, params, is_mutation).await
        }
    };
    response.extensions_mut().insert(operation);
    response
}

/// The operation for logs and metrics: a label from a closed set, whatever the client sends
/// (the root fields of the operation that runs, at most three, only fields the schema has;
/// else `other`), and the operation's own name for the logs.
fn operation_of(params: &Params) -> Operation {
    let Some((name, operation)) = selected_operation(&params.document, params.operation_name.as_deref()) else {
        return Operation::new("other".to_owned(), None);
    };
    let mut fields: Vec<&str> = operation
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            async_graphql::parser::types::Selection::Field(f) => Some(f.node.name.node.as_str()),
            _ => None,
        })
        .filter(|name| limits::model().is_root_field(operation.ty, name))
        .collect();
    fields.sort_unstable();
    fields.dedup();
    fields.truncate(3);
    let label = if fields.is_empty() { "other".to_owned() } else { fields.join(",") };
    Operation::new(label, name)
}

async fn execute_parsed(
    state: &HttpState,
    headers: &HeaderMap,
    media: MediaType,
    params: Params,
    is_mutation: bool,
) -> Response {
    let caller = match authenticate(&state.app, headers).await {
        Ok(caller) => caller,
        Err(error) => return error_response(media, &error),
    };
    let key = match idempotency::key(headers) {
        Ok(key) => key.filter(|_| is_mutation),
        Err(error) => return error_response(media, &error),
    };
    let Some(key) = key else {
        let outcome = run(state.clone(), caller, media, params).await;
        return raw_response(outcome.status, media, outcome.body);
    };
    // Canonical JSON: the same variables in another key order are the same request. Card
    // data is left out of what is hashed (the fingerprint is stored).
    let variables = params
        .variables
        .as_ref()
        .map(|v| idempotency::canonical_json(&idempotency::without_card_data(&Value::Object(v.clone()))))
        .unwrap_or_default();
    let fingerprint = idempotency::fingerprint(
        &state.app,
        &[
            "graphql",
            &idempotency::document_without_card_data(&params.query),
            params.operation_name.as_deref().unwrap_or(""),
            &variables,
            media.tag(),
        ],
    );
    let scope = idempotency::scope(&caller);
    let caller = idempotency::with_request_key(caller, &scope, &key);
    match idempotency::run(&state.app, scope, key, fingerprint, run(state.clone(), caller, media, params)).await {
        Ok(stored) => {
            let mut response = raw_response(stored.status, media, stored.body);
            if stored.replayed {
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(error) => error_response(media, &error),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    media_ranges(headers).first().is_some_and(|r| r == "text/html")
}

pub async fn get(State(state): State<HttpState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    if raw.is_empty() && wants_html(&headers) {
        return super::graphiql::graphiql(State(state), headers).await.into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let params = match params_from_query_string(&raw, state.app.documents()) {
        Ok(params) => params,
        Err(refusal) => return refusal_response(media, refusal),
    };
    if operation_type(&params) == Some(OperationType::Mutation) {
        let body = error_body("mutations are only accepted with POST", "BAD_USER_INPUT");
        let mut response = json_response(StatusCode::METHOD_NOT_ALLOWED, media, &body);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &headers, media, params).await
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.split(';').map(|p| p.trim().to_ascii_lowercase());
    let essence_ok = parts.next().is_some_and(|essence| essence == "application/json");
    let charset_ok = parts.all(|param| match param.split_once('=') {
        Some(("charset", charset)) => charset.trim_matches('"') == "utf-8",
        _ => true,
    });
    essence_ok && charset_ok
}

pub async fn post(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    if !is_json_content_type(&headers) {
        let body = error_body("Content-Type must be application/json (UTF-8)", "BAD_USER_INPUT");
        return json_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, &body);
    }
    if body.is_empty() {
        return refusal_response(media, "the request body is empty: send a JSON object with a query".into());
    }
    let object = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => object,
        Ok(Value::Array(_)) => {
            return refusal_response(media, "batched requests are not supported: send one JSON object".into());
        }
        Ok(_) => return refusal_response(media, "the request body must be a JSON object".into()),
        Err(error) => {
            return refusal_response(media, format!("the request body is not valid JSON: {error}").into());
        }
    };
    match params_from_object(object, state.app.documents()) {
        Ok(params) => execute(&state, &headers, media, params).await,
        Err(refusal) => refusal_response(media, refusal),
    }
}

//! The GraphQL schema. It knows nothing of HTTP: the HTTP layer and the REST adapters hand it
//! requests that carry the caller (see [`with_caller`]).

pub mod documents;
mod errors;
pub mod inputs;
pub mod limits;
pub mod loaders;
pub mod merchants;
mod mutation;
mod ordering;
pub mod payments;
mod query;
pub mod refund_requests;
pub mod scalars;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Context, Data, MergedObject, Request, Schema};

use subscription::SubscriptionRoot;

use crate::app::App;
use crate::db::budget::Budget;
use crate::domain::Caller;
use crate::error::AppError;

/// Read operations.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::OrderQuery,
    merchants::MerchantQuery,
    refund_requests::RefundRequestQuery,
    payments::PaymentQuery,
);

/// Write operations. Every one honours an `Idempotency-Key` header.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::OrderMutation,
    merchants::MerchantMutation,
    refund_requests::RefundRequestMutation,
    payments::PaymentMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema with its limits from configuration and the app as shared data.
pub fn build_schema(app: App) -> AppSchema {
    let config = app.config().clone();
    let mut builder = schema_builder()
        .data(app)
        // Depth (and field/alias counts) are checked on the document before execution, with
        // introspection exempt (limits.rs); async-graphql's own depth limit would also refuse
        // the standard introspection query that GraphiQL and tools send.
        .limit_complexity(config.graphql_max_complexity)
        .limit_directives(config.graphql_max_directives)
        // "Did you mean …" answers would map the schema for someone probing it.
        .disable_suggestions();
    if !config.graphql_introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The types and their descriptions, before limits and data.
fn schema_builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(scalars::DATE_TIME_DESCRIPTION)
}

/// The SDL of the schema, as committed in `schema.graphql` (with `@specifiedBy`).
pub fn sdl() -> String {
    schema_builder().finish().sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

/// Attaches the per-request data: the caller and a fresh loader cache (never shared between
/// callers, so a batch never mixes what two keys may see).
pub fn with_caller(request: Request, app: &App, caller: Caller) -> Request {
    request.data(caller).data(loaders::Loaders::new(app.pool().clone())).data(
        async_graphql::dataloader::DataLoader::new(refund_requests::RequestLoader(app.pool().clone()), tokio::spawn),
    )
}

/// The data of a WebSocket connection's subscriptions: the caller of its `connection_init`
/// and loaders of its own.
pub fn connection_data(app: &App, caller: Caller) -> Data {
    let mut data = Data::default();
    data.insert(caller);
    data.insert(loaders::Loaders::new(app.pool().clone()));
    data.insert(async_graphql::dataloader::DataLoader::new(
        refund_requests::RequestLoader(app.pool().clone()),
        tokio::spawn,
    ));
    data
}

/// Gives every error of a response its `extensions.code` (for transports that do not run
/// through [`execute_detached`], such as subscriptions).
pub fn assign_codes(response: &mut async_graphql::Response) {
    errors::assign_codes(response);
}

/// Executes a request (a mutation in its own task, see [`spawn_execution`]). Errors get
/// their `extensions.code`.
///
/// This is for in-process callers that read the data by field name (the REST adapters):
/// the document comes from the cache, and the selection order of `data` is not restored.
pub async fn execute_detached(
    schema: &AppSchema,
    app: &App,
    mut request: Request,
) -> Result<async_graphql::Response, AppError> {
    if let Some(document) = app.documents().parse_trusted(&request.query) {
        request.set_parsed_query(ExecutableDocument::clone(&document));
    }
    let mut response = spawn_execution(schema, request).await?;
    errors::assign_codes(&mut response);
    Ok(response)
}

/// [`execute_detached`] for GraphQL clients, with the document the HTTP layer parsed (to
/// check its shape): the executor does not parse again, and `data` follows the selection
/// order. Ordering runs only on a response that executed, so never on a document that
/// failed validation.
pub async fn execute_parsed_detached(
    schema: &AppSchema,
    mut request: Request,
    document: Arc<ExecutableDocument>,
) -> Result<async_graphql::Response, AppError> {
    request.set_parsed_query(ExecutableDocument::clone(&document));
    let operation_name = request.operation_name.clone();
    let mut response = spawn_execution(schema, request).await?;
    errors::assign_codes(&mut response);
    if !is_request_error(&response) {
        ordering::order_response(&mut response, &document, operation_name.as_deref());
    }
    Ok(response)
}

/// A response to a request that never executed (parse, validation or limit errors): no
/// data and no error with a path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Whether the operation `name` selects in `document` is a mutation (unknown: treated as
/// one, the safe side).
fn is_mutation(document: &ExecutableDocument, name: Option<&str>) -> bool {
    use async_graphql::parser::types::OperationType;
    documents::selected_operation(document, name).is_none_or(|(_, op)| op.ty != OperationType::Query)
}

/// Executes a request. A mutation runs in its own task, so it completes whole even when
/// the HTTP request that started it is dropped (client gone, request timeout). A query runs
/// in the request's own future: when the client goes away or the request times out, it
/// stops and its statements are no longer awaited.
///
/// Either way it runs within a fresh [`Budget`] of statements and rows.
async fn spawn_execution(schema: &AppSchema, mut request: Request) -> Result<async_graphql::Response, AppError> {
    let name = request.operation_name.clone();
    let detach = request.parsed_query().map_or(true, |doc| is_mutation(doc, name.as_deref()));
    let config = schema.data::<App>().map(|app| app.config());
    let budget = Budget::new(
        config.map_or(u64::MAX, |c| c.graphql_max_statements),
        config.map_or(u64::MAX, |c| c.graphql_max_rows),
    );
    if !detach {
        return Ok(budget.scope(schema.execute(request)).await);
    }
    let work = {
        let schema = schema.clone();
        budget.scope(async move { schema.execute(request).await })
    };
    let task = match schema.data::<App>() {
        Some(app) => app.detached().spawn(work),
        None => tokio::spawn(work),
    };
    task.await.map_err(AppError::internal)
}

pub(crate) fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a App> {
    ctx.data::<App>()
}

/// The caller of this request; a request without one is unauthenticated.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller, AppError> {
    ctx.data_opt::<Caller>()
        .ok_or_else(|| AppError::Unauthenticated("an API key is required: send Authorization: Bearer <key>".into()))
}

pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a loaders::Loaders> {
    ctx.data::<loaders::Loaders>()
}

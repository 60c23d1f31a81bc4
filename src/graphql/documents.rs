//! Parsed queries, kept by their text.
//!
//! Clients send the same few query texts over and over with different variables, and
//! parsing was a tenth of the server's CPU on a page of orders. A parsed document is kept
//! by its exact text and cloned for each execution (async-graphql consumes it), which costs
//! a fraction of a parse.
//!
//! Only documents that passed the shape check and async-graphql's validation are kept
//! ([`DocumentCache::keep`]), so a client without a key cannot fill the cache. It is bounded
//! in the bytes of text it keeps and in the size of one query; when full it starts over,
//! so endless distinct queries only empty it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};

/// Queries longer than this are parsed every time and never kept.
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;
/// Bytes of query text kept at most (the parsed documents are a small multiple of it).
const CAPACITY_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct Entries {
    map: HashMap<Box<str>, Arc<ExecutableDocument>>,
    bytes: usize,
}

#[derive(Default)]
pub struct DocumentCache {
    entries: Mutex<Entries>,
}

impl DocumentCache {
    /// The kept document for `query`, if any.
    pub fn get(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        self.lock().map.get(query).cloned()
    }

    /// Keeps a document that has passed validation.
    pub fn keep(&self, query: &str, document: Arc<ExecutableDocument>) {
        if query.len() > MAX_CACHED_QUERY_BYTES {
            return;
        }
        let mut entries = self.lock();
        if entries.map.contains_key(query) {
            return;
        }
        if entries.bytes + query.len() > CAPACITY_BYTES {
            entries.map.clear();
            entries.bytes = 0;
        }
        entries.bytes += query.len();
        entries.map.insert(query.into(), document);
    }

    /// For the service's own fixed queries (the REST adapters): the kept document, else
    /// parsed and kept. `None` when it does not parse (the executor reports why).
    pub fn parse_trusted(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        if let Some(hit) = self.get(query) {
            return Some(hit);
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
        self.keep(query, document.clone());
        Some(document)
    }

    /// How many query texts are kept (for tests).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Bytes of query text kept (for tests).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Plain data: a panic elsewhere cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The operation a request runs, as the executor picks it: the one `name` names, or the
/// document's only one; with its name when it has one. `None` when there is no such
/// operation (the executor then refuses the request).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<&'a str>, &'a OperationDefinition)> {
    match &document.operations {
        DocumentOperations::Single(op) => Some((None, &op.node)),
        DocumentOperations::Multiple(ops) => {
            let (found, op) = match name {
                Some(name) => ops.iter().find(|(n, _)| n.as_str() == name)?,
                None if ops.len() == 1 => ops.iter().next()?,
                None => return None,
            };
            Some((Some(found.as_str()), &op.node))
        }
    }
}

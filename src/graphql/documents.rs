//! Parsed queries, kept by their text.
//!
//! Clients send the same few query texts over and over with different variables, and
//! parsing was a tenth of the server's CPU on a page of orders. A parsed document is kept
//! by its exact text and cloned for each execution (async-graphql consumes it), which costs
//! a fraction of a parse. The cache is bounded in entries and in query size; when it is
//! full it starts over, so an attacker sending endless distinct queries only empties it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

/// Queries longer than this are parsed every time and never kept.
const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;
/// Distinct query texts kept at most.
const CAPACITY: usize = 512;

#[derive(Default)]
pub struct DocumentCache {
    entries: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// The parsed `query`, or `None` when it does not parse (the executor then reports the
    /// syntax error in its own words).
    pub fn parse(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        if let Some(hit) = self.lock().get(query) {
            return Some(hit.clone());
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
        if query.len() <= MAX_CACHED_QUERY_BYTES {
            let mut entries = self.lock();
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(query.into(), document.clone());
        }
        Some(document)
    }

    /// How many query texts are kept (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        // Plain data: a panic elsewhere cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

//! Puts response fields in selection order.
//!
//! async-graphql 7 resolves the fields of an object concurrently and inserts each result as
//! it completes, so the keys of `data` follow completion order. The GraphQL specification
//! orders them like the selection set; clients and snapshots rely on a stable order. This
//! extension remembers the executed document and reorders `data` after execution.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use std::cell::OnceCell;
use std::collections::HashSet;

use async_graphql::indexmap::IndexMap;
use async_graphql::{Name, Response, Value};

/// The response keys of one selection (all its sets merged), in order, each with every
/// sub-selection that feeds it. Built once per field of the query, not once per object:
/// the 50 orders of a page share one plan, and so do all their items.
struct Plan<'a> {
    keys: Vec<Key<'a>>,
    /// Fragments already collected into this plan: a second spread of one adds nothing new,
    /// and a cycle (which validation refuses anyway) cannot recurse for ever.
    spread: HashSet<&'a Name>,
}

struct Key<'a> {
    name: Name,
    subs: Vec<&'a SelectionSet>,
    /// The plan of this key's own objects, made when the first one is met.
    plan: OnceCell<Plan<'a>>,
}

impl<'a> Plan<'a> {
    fn new(sets: &[&'a SelectionSet], doc: &'a ExecutableDocument) -> Self {
        let mut plan = Plan { keys: Vec::new(), spread: HashSet::new() };
        for set in sets {
            plan.collect(set, doc);
        }
        plan
    }

    fn collect(&mut self, set: &'a SelectionSet, doc: &'a ExecutableDocument) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.response_key().node.clone();
                    let sub = &field.node.selection_set.node;
                    match self.keys.iter_mut().find(|k| k.name == name) {
                        Some(key) => key.subs.push(sub),
                        None => self.keys.push(Key { name, subs: vec![sub], plan: OnceCell::new() }),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if !self.spread.insert(name) {
                        continue;
                    }
                    if let Some(fragment) = doc.fragments.get(name) {
                        self.collect(&fragment.node.selection_set.node, doc);
                    }
                }
                Selection::InlineFragment(inline) => self.collect(&inline.node.selection_set.node, doc),
            }
        }
    }

    /// Whether the map's keys already come in plan order (keys skipped by @skip/@include
    /// may be missing).
    fn matches(&self, map: &IndexMap<Name, Value>) -> bool {
        let mut keys = self.keys.iter();
        map.keys().all(|name| keys.any(|k| k.name == *name))
    }

    fn apply(&self, value: &mut Value, doc: &'a ExecutableDocument) {
        match value {
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item, doc)),
            Value::Object(map) => {
                if !self.matches(map) {
                    let mut unordered = std::mem::take(map);
                    for key in &self.keys {
                        // The rest is rebuilt anyway: swap_remove is O(1) where shift_remove is O(n).
                        if let Some(field) = unordered.swap_remove(&key.name) {
                            map.insert(key.name.clone(), field);
                        }
                    }
                    // Nothing should be left; if something is, it keeps its place at the end.
                    map.extend(unordered);
                }
                // Both are in plan order now, so one walk pairs each field with its key.
                let mut keys = self.keys.iter();
                for (name, field) in map.iter_mut() {
                    let Some(key) = keys.find(|k| k.name == *name) else { break };
                    // A leaf (a scalar, a JSON object among them) keeps its own order.
                    let leaf = key.subs.iter().all(|sub| sub.items.is_empty());
                    if !leaf && matches!(field, Value::Object(_) | Value::List(_)) {
                        key.plan.get_or_init(|| Plan::new(&key.subs, doc)).apply(field, doc);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Reorders `data` by the selection sets of the operation that ran.
pub fn order_response(response: &mut Response, document: &ExecutableDocument, operation_name: Option<&str>) {
    if let Some((_, operation)) = super::documents::selected_operation(document, operation_name) {
        Plan::new(&[&operation.selection_set.node], document).apply(&mut response.data, document);
    }
}

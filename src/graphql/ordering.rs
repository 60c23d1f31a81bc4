//! Puts response fields in selection order.
//!
//! async-graphql 7 resolves the fields of an object concurrently and inserts each result as
//! it completes, so the keys of `data` follow completion order. The GraphQL specification
//! orders them like the selection set; clients and snapshots rely on a stable order. This
//! extension remembers the executed document and reorders `data` after execution.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Response, Value};

/// The response keys of `set` in order, each with every sub-selection that feeds it.
fn collect<'a>(set: &'a SelectionSet, doc: &'a ExecutableDocument, order: &mut Vec<(Name, Vec<&'a SelectionSet>)>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let sub = &field.node.selection_set.node;
                match order.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subs)) => subs.push(sub),
                    None => order.push((key, vec![sub])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect(&fragment.node.selection_set.node, doc, order);
                }
            }
            Selection::InlineFragment(inline) => collect(&inline.node.selection_set.node, doc, order),
        }
    }
}

fn reorder(value: &mut Value, sets: &[&SelectionSet], doc: &ExecutableDocument) {
    match value {
        Value::List(items) => items.iter_mut().for_each(|item| reorder(item, sets, doc)),
        Value::Object(map) => {
            let mut order = Vec::new();
            for set in sets {
                collect(set, doc, &mut order);
            }
            let mut unordered = std::mem::take(map);
            for (key, subs) in order {
                // The rest is rebuilt anyway: swap_remove is O(1) where shift_remove is O(n).
                if let Some(mut field) = unordered.swap_remove(&key) {
                    reorder(&mut field, &subs, doc);
                    map.insert(key, field);
                }
            }
            // Nothing should be left; if something is, it keeps its place at the end.
            map.extend(unordered);
        }
        _ => {}
    }
}

fn operation_selection<'a>(doc: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a SelectionSet> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some(&op.node.selection_set.node),
        DocumentOperations::Multiple(ops) => {
            let op = match name {
                Some(name) => ops.iter().find(|(n, _)| n.as_str() == name).map(|(_, op)| op),
                None if ops.len() == 1 => ops.values().next(),
                None => None,
            }?;
            Some(&op.node.selection_set.node)
        }
    }
}

/// Reorders `data` by the selection sets of the operation that ran.
pub fn order_response(response: &mut Response, document: &ExecutableDocument, operation_name: Option<&str>) {
    if let Some(set) = operation_selection(document, operation_name) {
        reorder(&mut response.data, &[set], document);
    }
}

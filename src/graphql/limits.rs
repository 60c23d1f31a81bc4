//! Limits on the shape of a query, checked on the parsed document before anything runs
//! (not even the API-key lookup): depth, fields and aliases, with fragments expanded.
//! async-graphql's own depth and complexity limits stay on as a second line.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    /// When false, `__schema` and `__type` are refused.
    pub introspection: bool,
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    limits: ShapeLimits,
    fields: usize,
    aliases: usize,
}

impl Counter<'_> {
    fn walk(&mut self, set: &SelectionSet, depth: usize, fragments: &mut HashSet<String>) -> Result<(), String> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if depth > self.limits.max_depth {
                        return Err(format!(
                            "the query is nested deeper than {} levels (GRAPHQL_MAX_DEPTH)",
                            self.limits.max_depth
                        ));
                    }
                    let name = field.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        if !self.limits.introspection {
                            return Err("introspection is disabled on this server (GRAPHQL_INTROSPECTION)".to_owned());
                        }
                        // Introspection is bounded by the schema itself, and the standard
                        // introspection query nests deeper than any data query needs.
                        continue;
                    }
                    self.fields += 1;
                    if self.fields > self.limits.max_fields {
                        return Err(format!(
                            "the query selects more than {} fields (GRAPHQL_MAX_FIELDS)",
                            self.limits.max_fields
                        ));
                    }
                    if field.alias.is_some() {
                        self.aliases += 1;
                        if self.aliases > self.limits.max_aliases {
                            return Err(format!(
                                "the query uses more than {} aliases (GRAPHQL_MAX_ALIASES)",
                                self.limits.max_aliases
                            ));
                        }
                    }
                    self.walk(&field.selection_set.node, depth + 1, fragments)?;
                }
                Selection::InlineFragment(inline) => self.walk(&inline.node.selection_set.node, depth, fragments)?,
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A fragment inside itself is a validation error; do not loop on it here.
                    if !fragments.insert(name.to_owned()) {
                        continue;
                    }
                    if let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node) {
                        self.walk(&fragment.node.selection_set.node, depth, fragments)?;
                    }
                    fragments.remove(name);
                }
            }
        }
        Ok(())
    }
}

/// Checks every operation of the document; the error names the limit that was exceeded.
pub fn check(doc: &ExecutableDocument, limits: ShapeLimits) -> Result<(), String> {
    let mut counter = Counter { doc, limits, fields: 0, aliases: 0 };
    for (_, operation) in doc.operations.iter() {
        counter.walk(&operation.node.selection_set.node, 1, &mut HashSet::new())?;
    }
    Ok(())
}

//! What a query may cost, decided on the parsed document before anything runs (not even the
//! API-key lookup), in time linear in the document:
//!
//! - fragments: every spread names a fragment the document defines, and no fragment
//!   spreads itself, directly or through others (a cycle is refused, never walked);
//! - shape: depth, fields and aliases with fragments expanded, and directives as written;
//! - cost: how many values the response may hold. A field costs 1 plus the cost of its
//!   selection, times its multiplier: a paging field (`perPage`, `first`, `last`) multiplies
//!   by its page size (a literal, a variable's value, or the default), a list without a
//!   paging argument by the bound in [`LIST_BOUNDS`], anything else by 1.
//!
//! Each fragment is summarised once, in dependency order, and a spread adds its summary:
//! a document of fragments that spread the next one twice costs its true (exponential)
//! value in one linear pass, and that value is refused.
//!
//! async-graphql's own complexity, depth and directive limits stay on as a second line.

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;

use async_graphql::Name;
use async_graphql::Value as ConstValue;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use serde_json::Map;

use crate::domain::paging::{DEFAULT_PER_PAGE, MAX_PER_PAGE};

/// The limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_directives: usize,
    /// The most values one response may hold (see the module documentation).
    pub max_cost: u64,
    /// When false, `__schema` and `__type` are refused.
    pub introspection: bool,
}

/// The size of a list that has no paging argument: what the domain guarantees where it
/// guarantees something (100 items per order), an estimate elsewhere. An estimate is only
/// the first line: the per-request row ceiling stops what it underestimates.
pub const LIST_BOUNDS: &[(&str, &str, u64)] = &[
    // A page's nodes: the paging field above them multiplies by the page size.
    ("OrderPage", "nodes", 1),
    ("OrderPage", "edges", 1),
    ("PaymentPage", "nodes", 1),
    ("PaymentPage", "edges", 1),
    ("Order", "items", 100),
    ("Order", "payments", 10),
    ("Order", "refunds", 10),
    ("Order", "events", 20),
    ("WebhookDeliveryPage", "nodes", 1),
    ("RefundRequestPage", "nodes", 1),
    // A request moves PENDING → PROCESSING → ISSUED, with a reopen or two at most.
    ("RefundRequest", "history", 8),
    // One open request per order at a time; an estimate of all it ever had.
    ("Order", "refundRequests", 10),
    // Attempts of one delivery: the retry schedule has ten; redeliveries add more.
    ("WebhookDelivery", "attemptLog", 30),
    // Estimates: merchants have a handful of stores and endpoints.
    ("Merchant", "stores", 50),
    ("Merchant", "webhookEndpoints", 20),
    // At most 1,000 ids (MAX_REDELIVER).
    ("Mutation", "redeliverWebhooks", 1_000),
    // One payment per order paid, at most MAX_ORDERS (20).
    ("Mutation", "payOrders", 20),
    // Admin reports: a check reports at most 100 rows each; `limit` is at most 500 per kind.
    ("Query", "audit", 1_000),
    ("Query", "unresolvedWork", 1_000),
];

/// A list field the table does not name (a test keeps the table complete).
const DEFAULT_LIST_BOUND: u64 = 100;

/// Arguments that set how many elements a field returns.
const PAGE_ARGUMENTS: &[&str] = &["perPage", "first", "last"];

/// What the cost model knows of one field of the schema.
#[derive(Debug, Clone)]
struct FieldInfo {
    /// The named type the field returns, lists and non-null unwrapped.
    ty: Name,
    /// How many elements a list without a paging argument may hold; 1 for a single value.
    bound: u64,
    /// The paging arguments and their defaults (`perPage`, or `first` and `last`), when the
    /// field has any: the largest given (or default) sets the size.
    page: Vec<(Name, u64)>,
}

/// The fields of every object and interface type of the schema, read from its SDL.
#[derive(Debug, Default)]
pub struct CostModel {
    fields: HashMap<(Name, Name), FieldInfo>,
}

fn named_type(ty: &Type) -> (&Name, bool) {
    match &ty.base {
        BaseType::Named(name) => (name, false),
        BaseType::List(inner) => (named_type(inner).0, true),
    }
}

impl CostModel {
    pub fn from_sdl(sdl: &str) -> anyhow::Result<Self> {
        let document = async_graphql::parser::parse_schema(sdl)?;
        let mut fields = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let type_name = ty.node.name.node.clone();
            let defined = match ty.node.kind {
                TypeKind::Object(object) => object.fields,
                TypeKind::Interface(interface) => interface.fields,
                _ => continue,
            };
            for field in defined {
                let field = field.node;
                let (returns, is_list) = named_type(&field.ty.node);
                let bound = if is_list {
                    LIST_BOUNDS
                        .iter()
                        .find(|(t, f, _)| *t == type_name.as_str() && *f == field.name.node.as_str())
                        .map_or(DEFAULT_LIST_BOUND, |(_, _, bound)| *bound)
                } else {
                    1
                };
                let page = field
                    .arguments
                    .iter()
                    .filter(|arg| PAGE_ARGUMENTS.contains(&arg.node.name.node.as_str()))
                    .map(|arg| {
                        let default = match arg.node.default_value.as_ref().map(|v| &v.node) {
                            Some(ConstValue::Number(n)) => n.as_u64().unwrap_or(MAX_PER_PAGE as u64),
                            _ => DEFAULT_PER_PAGE as u64,
                        };
                        (arg.node.name.node.clone(), default)
                    })
                    .collect();
                let info = FieldInfo { ty: returns.clone(), bound, page };
                fields.insert((type_name.clone(), field.name.node), info);
            }
        }
        Ok(Self { fields })
    }

    fn field(&self, parent: Option<&Name>, name: &Name) -> Option<&FieldInfo> {
        self.fields.get(&(parent?.clone(), name.clone()))
    }

    /// Whether `name` is a root field of operations of type `ty`.
    pub fn is_root_field(&self, ty: async_graphql::parser::types::OperationType, name: &str) -> bool {
        let root = Name::new(root_type(ty));
        self.fields.contains_key(&(root, Name::new(name)))
    }

    /// List fields of the schema that [`LIST_BOUNDS`] does not name (for a test).
    pub fn unbounded_lists(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .fields
            .iter()
            .filter(|((t, f), info)| {
                info.bound == DEFAULT_LIST_BOUND
                    && info.page.is_empty()
                    && !LIST_BOUNDS.iter().any(|(bt, bf, _)| *bt == t.as_str() && *bf == f.as_str())
            })
            .map(|((t, f), _)| format!("{t}.{f}"))
            .collect();
        out.sort();
        out
    }
}

fn root_type(ty: async_graphql::parser::types::OperationType) -> &'static str {
    match ty {
        async_graphql::parser::types::OperationType::Query => "Query",
        async_graphql::parser::types::OperationType::Mutation => "Mutation",
        async_graphql::parser::types::OperationType::Subscription => "Subscription",
    }
}

/// The cost model of this service's schema, built once from its SDL.
pub fn model() -> &'static CostModel {
    static MODEL: LazyLock<CostModel> = LazyLock::new(|| {
        CostModel::from_sdl(&super::sdl()).unwrap_or_else(|error| {
            // The SDL is generated by async-graphql from our own types; it always parses.
            tracing::error!(%error, "the schema's own SDL does not parse; costing every field as 1");
            CostModel::default()
        })
    });
    &MODEL
}

/// What a selection set adds up to, fragments expanded. Saturating: a value at `u64::MAX`
/// is simply over every limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub depth: u64,
    pub fields: u64,
    pub aliases: u64,
    pub cost: u64,
}

impl Summary {
    fn merge(&mut self, other: Summary) {
        self.depth = self.depth.max(other.depth);
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.cost = self.cost.saturating_add(other.cost);
    }
}

/// Deepest bracket nesting accepted before parsing (the parser recurses on nesting).
pub const MAX_NESTING: usize = 64;
/// Fragment definitions one document may hold.
pub const MAX_FRAGMENTS: usize = 100;
/// Longest chain of fragments spreading fragments (validation and execution recurse on it).
pub const MAX_SPREAD_DEPTH: usize = 16;

/// The deepest nesting of `{`, `[` and `(` in a query text, outside strings and comments;
/// linear and without recursion, so it runs safely before the parser does.
pub fn nesting_depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

struct Analysis<'a> {
    doc: &'a ExecutableDocument,
    model: &'a CostModel,
    variables: Option<&'a Map<String, serde_json::Value>>,
    /// The default values of the variables of the operation that runs.
    defaults: HashMap<&'a str, &'a ConstValue>,
    limits: ShapeLimits,
    /// Summaries of the fragments done so far (all a fragment spreads come before it).
    fragments: HashMap<&'a Name, Summary>,
    directives: usize,
}

impl<'a> Analysis<'a> {
    fn count_directives(&mut self, n: usize) -> Result<(), String> {
        self.directives += n;
        if self.directives > self.limits.max_directives {
            return Err(format!(
                "the query uses more than {} directives (GRAPHQL_MAX_DIRECTIVES)",
                self.limits.max_directives
            ));
        }
        Ok(())
    }

    /// The fragments a selection set spreads, directly or in nested fields (not through
    /// other fragments). The parser caps selection nesting, so this recursion is bounded.
    fn spreads(&self, set: &'a SelectionSet, into: &mut Vec<&'a Name>) -> Result<(), String> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => self.spreads(&field.node.selection_set.node, into)?,
                Selection::InlineFragment(inline) => self.spreads(&inline.node.selection_set.node, into)?,
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if !self.doc.fragments.contains_key(name) {
                        return Err(format!("the query spreads fragment {name}, which it does not define"));
                    }
                    into.push(name);
                }
            }
        }
        Ok(())
    }

    /// Summarises every fragment once, each after the fragments it spreads (Kahn's order);
    /// a fragment left over sits on a cycle. Each summary must fit the limits on its own, and
    /// so must the number of fragments and the longest chain of spreads.
    fn fragments(&mut self) -> Result<(), String> {
        if self.doc.fragments.len() > MAX_FRAGMENTS {
            return Err(format!("the query defines more than {MAX_FRAGMENTS} fragments"));
        }
        let mut waiting_on: HashMap<&'a Name, usize> = HashMap::new();
        let mut dependents: HashMap<&'a Name, Vec<&'a Name>> = HashMap::new();
        let mut dependencies: HashMap<&'a Name, Vec<&'a Name>> = HashMap::new();
        for (name, fragment) in &self.doc.fragments {
            let mut spread = Vec::new();
            self.spreads(&fragment.node.selection_set.node, &mut spread)?;
            spread.sort();
            spread.dedup();
            waiting_on.insert(name, spread.len());
            for dependency in &spread {
                dependents.entry(dependency).or_default().push(name);
            }
            dependencies.insert(name, spread);
        }
        let mut ready: VecDeque<&'a Name> =
            waiting_on.iter().filter(|(_, waiting)| **waiting == 0).map(|(name, _)| *name).collect();
        let mut chain: HashMap<&'a Name, usize> = HashMap::new();
        while let Some(name) = ready.pop_front() {
            let Some(fragment) = self.doc.fragments.get(name) else { continue };
            let longest = dependencies.get(name).into_iter().flatten().filter_map(|d| chain.get(d)).max();
            let length = 1 + longest.copied().unwrap_or(0);
            if length > MAX_SPREAD_DEPTH {
                return Err(format!(
                    "fragment {name} starts a chain of more than {MAX_SPREAD_DEPTH} fragments spreading fragments"
                ));
            }
            chain.insert(name, length);
            self.count_directives(fragment.node.directives.len())?;
            let on = &fragment.node.type_condition.node.on.node;
            let mut summary = self.set(&fragment.node.selection_set.node, Some(on))?;
            if on.starts_with("__") {
                // A fragment of the introspection types (a tool's `TypeRef` nests deep).
                summary.depth = 0;
            }
            self.within_limits(summary)?;
            self.fragments.insert(name, summary);
            for dependent in dependents.get(name).into_iter().flatten() {
                if let Some(waiting) = waiting_on.get_mut(dependent) {
                    *waiting -= 1;
                    if *waiting == 0 {
                        ready.push_back(dependent);
                    }
                }
            }
        }
        let mut cyclic: Vec<&&Name> = waiting_on.iter().filter(|(_, w)| **w > 0).map(|(name, _)| name).collect();
        cyclic.sort();
        if let Some(name) = cyclic.first() {
            return Err(format!(
                "fragment {name} spreads itself, directly or through other fragments: fragment cycles are not allowed"
            ));
        }
        Ok(())
    }

    /// A field's page size: its paging argument's literal or variable value, else its default,
    /// capped at the largest page any list serves.
    fn page_size(&self, field: &Field, name: &Name, default: u64) -> u64 {
        let given = field.get_argument(name).map(|value| {
            value.node.clone().into_const_with(|var| {
                let given = self.variables.and_then(|vars| vars.get(var.as_str()));
                Ok::<_, std::convert::Infallible>(match given {
                    Some(json) => ConstValue::from_json(json.clone()).unwrap_or(ConstValue::Null),
                    None => self.variable_default(&var).unwrap_or(ConstValue::Null),
                })
            })
        });
        let size = match given {
            None | Some(Ok(ConstValue::Null)) => default,
            Some(Ok(ConstValue::Number(n))) => n.as_u64().unwrap_or(0),
            // Not a page size: execution refuses it; cost it as the largest page meanwhile.
            Some(_) => MAX_PER_PAGE as u64,
        };
        size.min(MAX_PER_PAGE as u64)
    }

    fn variable_default(&self, var: &Name) -> Option<ConstValue> {
        self.defaults.get(var.as_str()).map(|v| (*v).clone())
    }

    fn set(&mut self, set: &'a SelectionSet, parent: Option<&'a Name>) -> Result<Summary, String> {
        let mut summary = Summary::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.count_directives(field.directives.len())?;
                    let name = &field.name.node;
                    if name == "__schema" || name == "__type" {
                        if !self.limits.introspection {
                            return Err("introspection is disabled on this server (GRAPHQL_INTROSPECTION)".to_owned());
                        }
                        // The standard introspection query nests deeper than any data query,
                        // so depth is exempt; its fields, aliases and spreads count like any.
                        let child = self.set(&field.selection_set.node, None)?;
                        summary.merge(Summary {
                            depth: 1,
                            fields: child.fields.saturating_add(1),
                            aliases: child.aliases.saturating_add(u64::from(field.alias.is_some())),
                            cost: child.cost.saturating_add(1),
                        });
                        continue;
                    }
                    let info = self.model.field(parent, name);
                    let child = self.set(&field.selection_set.node, info.map(|i| &i.ty))?;
                    let multiplier = match info {
                        Some(info) if !info.page.is_empty() => {
                            // The paging arguments given set the size (the largest, should a
                            // query send several); with none, the largest default.
                            let given: Vec<_> =
                                info.page.iter().filter(|(arg, _)| field.get_argument(arg).is_some()).collect();
                            let sizes = if given.is_empty() { info.page.iter().collect() } else { given };
                            sizes.iter().map(|(arg, default)| self.page_size(field, arg, *default)).max().unwrap_or(1)
                        }
                        Some(info) => info.bound,
                        None => 1,
                    };
                    summary.merge(Summary {
                        depth: child.depth + 1,
                        fields: child.fields.saturating_add(1),
                        aliases: child.aliases.saturating_add(u64::from(field.alias.is_some())),
                        cost: multiplier.saturating_mul(child.cost.saturating_add(1)),
                    });
                }
                Selection::InlineFragment(inline) => {
                    self.count_directives(inline.node.directives.len())?;
                    let on = inline.node.type_condition.as_ref().map(|c| &c.node.on.node).or(parent);
                    let child = self.set(&inline.node.selection_set.node, on)?;
                    summary.merge(child);
                }
                Selection::FragmentSpread(spread) => {
                    self.count_directives(spread.node.directives.len())?;
                    let name = &spread.node.fragment_name.node;
                    let fragment = self
                        .fragments
                        .get(name)
                        .copied()
                        .ok_or_else(|| format!("the query spreads fragment {name}, which it does not define"))?;
                    summary.merge(fragment);
                }
            }
        }
        Ok(summary)
    }

    fn operation(&mut self, op: &'a OperationDefinition) -> Result<Summary, String> {
        self.count_directives(op.directives.len())?;
        let directives = op.variable_definitions.iter().map(|v| v.node.directives.len()).sum();
        self.count_directives(directives)?;
        let root = Name::new(root_type(op.ty));
        // `set` borrows the parent name for 'a; a root name lives only here, so look it up
        // in the model, whose keys live long enough.
        let parent = self.model.fields.keys().find(|(t, _)| *t == root).map(|(t, _)| t);
        self.set(&op.selection_set.node, parent)
    }

    fn within_limits(&self, summary: Summary) -> Result<(), String> {
        let limits = self.limits;
        if summary.depth > limits.max_depth as u64 {
            return Err(format!("the query is nested deeper than {} levels (GRAPHQL_MAX_DEPTH)", limits.max_depth));
        }
        if summary.fields > limits.max_fields as u64 {
            return Err(format!(
                "the query selects more than {} fields, fragments expanded (GRAPHQL_MAX_FIELDS)",
                limits.max_fields
            ));
        }
        if summary.aliases > limits.max_aliases as u64 {
            return Err(format!(
                "the query uses more than {} aliases, fragments expanded (GRAPHQL_MAX_ALIASES)",
                limits.max_aliases
            ));
        }
        if summary.cost > limits.max_cost {
            return Err(format!(
                "the query may produce {} values, more than {} (GRAPHQL_MAX_COST): select fewer fields, smaller pages or fewer nested lists",
                display_cost(summary.cost),
                limits.max_cost
            ));
        }
        Ok(())
    }
}

fn display_cost(cost: u64) -> String {
    if cost == u64::MAX { "more than 18446744073709551614".to_owned() } else { cost.to_string() }
}

/// The operation that would run: the one `name` names, or the only one.
fn selected<'a>(doc: &'a ExecutableDocument, name: Option<&str>) -> Result<&'a OperationDefinition, String> {
    match super::documents::selected_operation(doc, name) {
        Some((_, op)) => Ok(op),
        None => Err(match name {
            Some(name) => format!("the document has no operation named {name}"),
            None => "the document has several operations: name the one to run with operationName".to_owned(),
        }),
    }
}

/// Checks the operation that would run (and every fragment of the document); the error
/// names the limit that was exceeded.
pub fn check(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: Option<&Map<String, serde_json::Value>>,
    limits: ShapeLimits,
) -> Result<Summary, String> {
    check_with(model(), doc, operation_name, variables, limits)
}

/// [`check`] with a given cost model.
pub fn check_with(
    model: &CostModel,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: Option<&Map<String, serde_json::Value>>,
    limits: ShapeLimits,
) -> Result<Summary, String> {
    let operation = selected(doc, operation_name)?;
    let defaults = operation
        .variable_definitions
        .iter()
        .filter_map(|def| def.node.default_value.as_ref().map(|v| (def.node.name.node.as_str(), &v.node)))
        .collect();
    let mut analysis = Analysis { doc, model, variables, defaults, limits, fragments: HashMap::new(), directives: 0 };
    analysis.fragments()?;
    let summary = analysis.operation(operation)?;
    analysis.within_limits(summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ShapeLimits = ShapeLimits {
        max_depth: 12,
        max_fields: 500,
        max_aliases: 30,
        max_directives: 50,
        max_cost: 100_000,
        introspection: true,
    };

    fn cost(query: &str) -> Result<Summary, String> {
        check(&async_graphql::parser::parse_query(query).unwrap(), None, None, LIMITS)
    }

    #[test]
    fn every_list_field_has_a_deliberate_bound() {
        assert_eq!(model().unbounded_lists(), Vec::<String>::new());
    }

    #[test]
    fn pages_multiply_their_selection() {
        let one = cost("{ orders(perPage: 1) { nodes { id } } }").unwrap().cost;
        let fifty = cost("{ orders(perPage: 50) { nodes { id } } }").unwrap().cost;
        assert_eq!(one, 3);
        assert_eq!(fifty, 50 * 3);
        assert_eq!(cost("{ orders { nodes { id } } }").unwrap().cost, 20 * 3, "the default page is 20");
        assert_eq!(cost("{ orders(first: 50) { nodes { id } } }").unwrap().cost, 50 * 3, "first sizes a page too");
        assert_eq!(cost("{ orders(last: 100) { edges { node { id } } } }").unwrap().cost, 100 * 4);
        assert_eq!(cost("{ order(id: 1) { items { id } } }").unwrap().cost, 1 + 100 * 2);
    }

    /// The figures the README gives to client authors.
    #[test]
    fn the_readme_examples_cost_what_it_says() {
        assert_eq!(cost("{ orders(perPage: 50) { nodes { id items { id name } } } }").unwrap().cost, 15_150);
        let every = "id number userId status paymentStatus paymentIntentId paymentReference paymentFailureCode
            paymentFailureMessage totalCents currency paymentMethod planId planSnapshot metadata paidAt cancelledAt
            refundedCents refundedAt createdAt updatedAt
            items { id name sku quantity unitPriceCents totalCents metadata createdAt }
            refunds { id orderId paymentId status amountCents currency reason metadata creditBalance refundedAt createdAt }
            payments { id orderId status provider paymentMethod amountCents currency reference paymentIntentId failureCode
                       failureMessage paidAt createdAt updatedAt }
            user { id email name balanceCents createdAt }";
        let page = cost(&format!("{{ orders(perPage: 50) {{ nodes {{ {every} }} }} }}")).unwrap().cost;
        assert_eq!(page, 59_950);
        let nested = "{ orders(perPage: 100) { nodes { user { orders(perPage: 100) { nodes { items { id } } } } } } }";
        let error = cost(nested).unwrap_err();
        assert!(error.contains("may produce 2020300 values"), "{error}");
    }

    #[test]
    fn nested_pages_are_refused_by_their_product() {
        let query = "{ orders(perPage:100){nodes{user{orders(perPage:100){nodes{user{orders(perPage:100){nodes{id items{id} payments{id}}}}}}}}} }";
        let error = cost(query).unwrap_err();
        assert!(error.contains("GRAPHQL_MAX_COST"), "{error}");
    }

    #[test]
    fn fragment_fan_out_is_costed_in_one_pass() {
        let mut query = String::from("{ ...F0 }\n");
        for i in 0..60 {
            query.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        query.push_str("fragment F60 on Query { orders { nodes { id } } }\n");
        let error = cost(&query).unwrap_err();
        assert!(error.contains("GRAPHQL_MAX_FIELDS"), "{error}");
    }

    #[test]
    fn cycles_and_unknown_fragments_are_refused() {
        assert!(cost("{ ...A } fragment A on Query { ...A }").unwrap_err().contains("cycles"));
        assert!(
            cost("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").unwrap_err().contains("cycles")
        );
        assert!(cost("{ ...A } fragment A on Query { ...Nope }").unwrap_err().contains("does not define"));
    }

    #[test]
    fn introspection_counts_its_fields_aliases_and_spreads() {
        let mut fan_out = String::from("{ __schema { ...F0 } }\n");
        for i in 0..60 {
            fan_out.push_str(&format!("fragment F{i} on __Schema {{ ...F{n} ...F{n} }}\n", n = i + 1));
        }
        fan_out.push_str("fragment F60 on __Schema { description }\n");
        assert!(cost(&fan_out).unwrap_err().contains("GRAPHQL_MAX_FIELDS"));
        let aliases: String = (0..40).map(|i| format!("a{i}: __schema {{ description }} ")).collect();
        assert!(cost(&format!("{{ {aliases} }}")).unwrap_err().contains("GRAPHQL_MAX_ALIASES"));
        // The introspection a tool sends still fits: deep, but small.
        let deep = "{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } } } }";
        assert!(cost(deep).is_ok());
    }

    #[test]
    fn fragment_count_and_chains_are_bounded() {
        let many: String = (0..101).map(|i| format!("fragment F{i} on Query {{ __typename }}\n")).collect();
        let uses: String = (0..101).map(|i| format!(" ...F{i}")).collect();
        assert!(cost(&format!("{{{uses} }}\n{many}")).unwrap_err().contains("more than 100 fragments"));
        let mut chain = String::from("{ ...F0 }\n");
        for i in 0..17 {
            chain.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        chain.push_str("fragment F17 on Query { __typename }\n");
        assert!(cost(&chain).unwrap_err().contains("chain of more than 16"));
    }

    #[test]
    fn only_the_operation_that_runs_is_costed_with_its_own_defaults() {
        let doc = "query A($n: Int = 1) { orders(perPage: $n) { nodes { id } } } \
                   query B($n: Int = 100) { orders(perPage: $n) { nodes { user { orders(perPage: $n) { nodes { items { id } } } } } } }";
        let parsed = async_graphql::parser::parse_query(doc).unwrap();
        for _ in 0..20 {
            assert!(check(&parsed, Some("A"), None, LIMITS).is_ok());
            assert!(check(&parsed, Some("B"), None, LIMITS).unwrap_err().contains("GRAPHQL_MAX_COST"));
        }
        assert!(check(&parsed, None, None, LIMITS).unwrap_err().contains("operationName"));
        assert!(check(&parsed, Some("C"), None, LIMITS).unwrap_err().contains("no operation named C"));
    }

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert_eq!(nesting_depth("{ a(x: \"{{{{\") { b } } # {{{{"), 2);
        assert_eq!(nesting_depth("{ a(x: \"\"\"{{ \\\"\"\" {{\"\"\") }"), 2);
        assert_eq!(nesting_depth(&"{".repeat(10_000)), 10_000);
    }
}

//! What a GraphQL request costs, checked against `api.max_complexity` before anything runs.
//!
//! async-graphql's own count gives every field 1 plus what is under it, whatever its arguments:
//! its dynamic schema has no per-field complexity (in 7.2.1 every `dynamic::Field` becomes a
//! `MetaField` with `compute_complexity: None`, `dynamic/object.rs`), so 1,000 aliases of a
//! 999-point `contactGrowth { newContacts }` counted 2,000 and ran for seconds. [`CostLimit`]
//! is an async-graphql extension: when the document is parsed it walks the root fields whose
//! answer grows with their arguments ([`sized`]), and when validation has counted the rest it
//! adds their cost and applies the limit to the sum, with the error code `QUERY_TOO_COMPLEX`.
//!
//! A sized field costs, on top of async-graphql's count, its `base` (a report aggregates a
//! table in the database: 50, so a request holds at most about 40 of them) plus the items its
//! arguments let it return times the cost of one item: 1, plus 1 for each object selected in it
//! (nested objects are values the answer builds; scalar fields are already counted once by
//! async-graphql and are not multiplied, so `auditLog(first: 500)` with every field still fits).
//! Items: `contactGrowth`'s points (days, weeks or months of the range), the `first` of
//! `auditLog`, `search` and `contactDuplicates` as their resolvers clamp it. A growth range that
//! cannot be counted (a bad date, over [`MAX_BUCKETS`]) costs its base only: its resolver
//! refuses it before reading anything, with the exact reason.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, ServerError, ServerResult, ValidationResult, Value, Variables};

use crate::domain::code::Code;
use crate::service::reports::{MAX_BUCKETS, growth_points};

/// The base cost of a field that aggregates or searches a whole table.
pub const REPORT_COST: usize = 50;

/// `auditLog(first)`: the default and the most entries.
pub const AUDIT_LOG_FIRST: (i64, i64) = (50, 500);
/// `search(first)`: the default and the most hits.
pub const SEARCH_FIRST: (i64, i64) = (20, 100);
/// `contactDuplicates(first)`: the default and the most candidates.
pub const DUPLICATES_FIRST: (i64, i64) = (10, 50);

/// Selections visited at most while costing one document. Fragments spread several times are
/// walked each time (as async-graphql's own count does); a document built to make that walk
/// long is refused rather than walked.
const MAX_WALK: usize = 100_000;

/// A root field whose answer grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sized {
    /// `contactGrowth(from, to, interval)`: one item per point.
    Growth,
    /// A list of at most `first` items, clamped as its resolver does: (default, most).
    First { default: i64, most: i64, base: usize },
    /// A report that aggregates a table into one answer.
    Report,
}

/// The sized root fields of `Query`.
fn sized(name: &str) -> Option<Sized> {
    Some(match name {
        "contactGrowth" => Sized::Growth,
        "ticketReport" | "pipelineReport" => Sized::Report,
        "auditLog" => Sized::First { default: AUDIT_LOG_FIRST.0, most: AUDIT_LOG_FIRST.1, base: 0 },
        "search" => Sized::First { default: SEARCH_FIRST.0, most: SEARCH_FIRST.1, base: REPORT_COST },
        "contactDuplicates" => Sized::First { default: DUPLICATES_FIRST.0, most: DUPLICATES_FIRST.1, base: 0 },
        _ => return None,
    })
}

/// The extension factory: installed by `build_schema` with the configured limit.
#[derive(Debug, Clone, Copy)]
pub struct CostLimit {
    max: usize,
}

impl CostLimit {
    /// A limit of `max` (`api.max_complexity`).
    pub fn new(max: usize) -> CostLimit {
        CostLimit { max }
    }
}

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostCheck { max: self.max, walked: Mutex::new(Cost::default()) })
    }
}

/// One request's check: the sized fields' cost is found when the document is parsed (the only
/// hook that sees it) and applied after validation (the only hook that sees async-graphql's
/// count), so an invalid document gets its validation errors first.
struct CostCheck {
    max: usize,
    walked: Mutex<Cost>,
}

/// What the walk found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cost {
    /// The sized fields' cost on top of async-graphql's count.
    pub extra: usize,
    /// The costliest sized field: its response key, field name, cost and items.
    pub costliest: Option<(String, String, usize, i64)>,
}

#[async_trait::async_trait]
impl Extension for CostCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.walked.lock().unwrap_or_else(PoisonError::into_inner) = cost(&document, variables);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let walked = std::mem::take(&mut *self.walked.lock().unwrap_or_else(PoisonError::into_inner));
        if walked.extra == usize::MAX {
            // Too long to walk: async-graphql's count would walk it as long again.
            return Err(vec![too_complex(usize::MAX, self.max, None)]);
        }
        let mut result = next.run(ctx).await?;
        let total = result.complexity.saturating_add(walked.extra);
        if total > self.max {
            return Err(vec![too_complex(total, self.max, walked.costliest.as_ref())]);
        }
        result.complexity = total;
        Ok(result)
    }
}

fn too_complex(total: usize, max: usize, costliest: Option<&(String, String, usize, i64)>) -> ServerError {
    let total = if total == usize::MAX { "too much to count".to_owned() } else { total.to_string() };
    let mut message = format!("Query is too complex: it costs {total}, more than the limit of {max}");
    if let Some((key, name, cost, items)) = costliest {
        let field = if key == name { format!("`{name}`") } else { format!("`{key}: {name}`") };
        message.push_str(&format!(
            "; {field} alone costs {cost} ({items} items): ask for a shorter range, fewer items or fewer fields, \
             or split the request"
        ));
    }
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Code::QueryTooComplex.as_str());
    error.extensions = Some(extensions);
    error
}

/// The cost of `document`'s sized fields, with `variables` (or their defaults) for arguments.
pub fn cost(document: &ExecutableDocument, variables: &Variables) -> Cost {
    let mut walk = Walk { document, variables, defaults: Vec::new(), budget: MAX_WALK, cost: Cost::default() };
    for (_, operation) in document.operations.iter() {
        if operation.node.ty != OperationType::Query {
            continue;
        }
        walk.defaults = operation
            .node
            .variable_definitions
            .iter()
            .filter_map(|v| Some((v.node.name.node.clone(), v.node.default_value.as_ref()?.node.clone())))
            .collect();
        walk.root(&operation.node.selection_set.node, &mut Vec::new());
    }
    if walk.budget == 0 {
        walk.cost.extra = usize::MAX;
    }
    walk.cost
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// The current operation's variable defaults.
    defaults: Vec<(Name, Value)>,
    budget: usize,
    cost: Cost,
}

impl<'a> Walk<'a> {
    /// Whether the walk may visit one more selection.
    fn step(&mut self) -> bool {
        self.budget = self.budget.saturating_sub(1);
        self.budget > 0
    }

    /// The root selection set, through fragments (`stack`: the fragments being walked, so a
    /// cycle, which validation refuses later, is not followed).
    fn root(&mut self, set: &'a SelectionSet, stack: &mut Vec<&'a Name>) {
        for selection in &set.items {
            if !self.step() {
                return;
            }
            match &selection.node {
                Selection::Field(field) => self.field(&field.node, stack),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(fragment) = self.document.fragments.get(name)
                        && !stack.contains(&name)
                    {
                        stack.push(name);
                        self.root(&fragment.node.selection_set.node, stack);
                        stack.pop();
                    }
                }
                Selection::InlineFragment(inline) => self.root(&inline.node.selection_set.node, stack),
            }
        }
    }

    fn field(&mut self, field: &'a Field, stack: &mut Vec<&'a Name>) {
        let name = field.name.node.as_str();
        let Some(sized) = sized(name) else { return };
        let item = 1 + self.objects(&field.selection_set.node, stack);
        let (base, items) = match sized {
            Sized::Report => (REPORT_COST, 0),
            Sized::Growth => {
                let date = |arg: &str| {
                    self.argument(field, arg).and_then(|v| match v {
                        Value::String(text) => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok(),
                        _ => None,
                    })
                };
                let interval = match self.argument(field, "interval") {
                    Some(Value::Enum(name)) => Some(name.to_string()),
                    Some(Value::String(text)) => Some(text),
                    _ => None,
                };
                let points = match (date("from"), date("to"), interval) {
                    (Some(from), Some(to), Some(interval)) => growth_points(from, to, &interval).unwrap_or(0),
                    _ => 0,
                };
                (REPORT_COST, if points > MAX_BUCKETS { 0 } else { points })
            }
            Sized::First { default, most, base } => {
                let first = match self.argument(field, "first") {
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(most),
                    _ => default,
                };
                (base, first.clamp(1, most))
            }
        };
        let cost = usize::try_from(items).unwrap_or(usize::MAX).saturating_mul(item).saturating_add(base);
        self.cost.extra = self.cost.extra.saturating_add(cost);
        if self.cost.costliest.as_ref().is_none_or(|c| c.2 < cost) {
            let key = field.alias.as_ref().map_or(name, |alias| alias.node.as_str());
            self.cost.costliest = Some((key.to_owned(), name.to_owned(), cost, items));
        }
    }

    /// The objects selected in `set` (fields with a selection of their own), nested ones too.
    fn objects(&mut self, set: &'a SelectionSet, stack: &mut Vec<&'a Name>) -> usize {
        let mut n = 0usize;
        for selection in &set.items {
            if !self.step() {
                return n;
            }
            n = n.saturating_add(match &selection.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => 0,
                Selection::Field(field) => 1usize.saturating_add(self.objects(&field.node.selection_set.node, stack)),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match self.document.fragments.get(name) {
                        Some(fragment) if !stack.contains(&name) => {
                            stack.push(name);
                            let inner = self.objects(&fragment.node.selection_set.node, stack);
                            stack.pop();
                            inner
                        }
                        _ => 0,
                    }
                }
                Selection::InlineFragment(inline) => self.objects(&inline.node.selection_set.node, stack),
            });
        }
        n
    }

    /// An argument's value, with variables replaced; `None` when absent or unresolvable
    /// (validation reports those).
    fn argument(&self, field: &Field, name: &str) -> Option<Value> {
        let value = field.get_argument(name)?.node.clone();
        value
            .into_const_with(|variable: Name| {
                self.variables
                    .get(&variable)
                    .or_else(|| self.defaults.iter().find(|(n, _)| *n == variable).map(|(_, v)| v))
                    .cloned()
                    .ok_or(())
            })
            .ok()
    }
}

#[cfg(test)]
mod tests;

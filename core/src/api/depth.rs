//! How deep a request may nest: the data it asks for, and the schema it introspects, each with
//! its own bound.
//!
//! async-graphql's `limit_depth` counts every field of the document, introspection included, so
//! `api.max_depth` = 12 refused graphql-js's standard introspection query (its `TypeRef`
//! fragment nests `ofType` eight levels inside `__schema { types { fields { type … } } }`), and
//! with it GraphiQL's docs, graphql-codegen and Python `gql`. [`DepthLimit`] counts instead:
//!
//! - **data**: the fields outside `__schema` / `__type`, through fragments, against
//!   `api.max_depth` (a document over it is refused with `QUERY_TOO_DEEP`, located at the first
//!   field past the limit);
//! - **introspection**: below `__schema` / `__type`, at most [`INTROSPECTION_MAX_DEPTH`] levels
//!   (the standard query needs 13; `ofType` chains are single objects, cheap at any depth) and at
//!   most [`INTROSPECTION_MAX_LISTS`] list fields nested in one another (`types { fields { args
//!   } }` is the standard query's deepest: three). The lists are what a hostile introspection
//!   multiplies (`types { fields { type { fields { type { fields … } } } } }` is the "circular
//!   introspection" attack); bounding their nesting bounds the answer to types × fields ×
//!   fields, whatever the document's depth.
//!
//! The walk runs once per request when the document is parsed (an async-graphql extension
//! hook), before validation. `api.introspection = false` still turns introspection off.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, Pos, ServerError, ServerResult, Variables};

use crate::domain::code::Code;

/// The most levels below `__schema` / `__type` (the standard introspection query needs 13).
pub const INTROSPECTION_MAX_DEPTH: usize = 32;
/// The most introspection list fields nested in one another.
pub const INTROSPECTION_MAX_LISTS: usize = 3;

/// Selections visited at most while measuring one document (fragments are walked where they
/// are spread, so a document built to make that walk long is refused rather than walked).
const MAX_WALK: usize = 100_000;

/// The introspection fields that answer a list.
fn is_list(name: &str) -> bool {
    matches!(
        name,
        "types" | "fields" | "inputFields" | "args" | "interfaces" | "possibleTypes" | "enumValues" | "directives"
    )
}

/// The extension factory, installed by `build_schema` with `api.max_depth`.
#[derive(Debug, Clone, Copy)]
pub struct DepthLimit {
    max: usize,
}

impl DepthLimit {
    /// Data may nest `max` fields deep.
    pub fn new(max: usize) -> DepthLimit {
        DepthLimit { max }
    }
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for DepthLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document, self.max)?;
        Ok(document)
    }
}

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooDeep {
    /// Data nested deeper than the limit, first at this field.
    Data { depth: usize, at: Pos },
    /// Introspection nested deeper than [`INTROSPECTION_MAX_DEPTH`].
    Introspection { at: Pos },
    /// Introspection lists nested more than [`INTROSPECTION_MAX_LISTS`] times.
    IntrospectionLists { at: Pos },
    /// Too many selections to walk.
    TooLong,
}

/// Checks `document` against a data depth of `max`.
pub fn check(document: &ExecutableDocument, max: usize) -> ServerResult<()> {
    match measure(document, max) {
        Ok(()) => Ok(()),
        Err(refusal) => Err(error(refusal, max)),
    }
}

/// Walks every operation of `document`; the first refusal found.
pub fn measure(document: &ExecutableDocument, max: usize) -> Result<(), TooDeep> {
    let mut walk = Walk { document, max, budget: MAX_WALK, stack: Vec::new() };
    for (_, operation) in document.operations.iter() {
        walk.data(&operation.node.selection_set.node, 1)?;
    }
    Ok(())
}

fn error(refusal: TooDeep, max: usize) -> ServerError {
    let (code, message, at) = match refusal {
        TooDeep::Data { depth, at } => (
            Code::QueryTooDeep,
            format!("Query is nested too deep: {depth} levels, more than the limit of {max}"),
            Some(at),
        ),
        TooDeep::Introspection { at } => (
            Code::QueryTooDeep,
            format!("Introspection is nested too deep: more than {INTROSPECTION_MAX_DEPTH} levels"),
            Some(at),
        ),
        TooDeep::IntrospectionLists { at } => (
            Code::QueryTooDeep,
            format!(
                "Introspection nests more than {INTROSPECTION_MAX_LISTS} lists (such as `types {{ fields {{ args }} }}`) in one another"
            ),
            Some(at),
        ),
        TooDeep::TooLong => {
            (Code::QueryTooComplex, "Query is too complex: too many selections to measure".to_owned(), None)
        }
    };
    let mut error = ServerError::new(message, at);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    error
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    max: usize,
    budget: usize,
    /// The fragments being walked: a cycle (which validation refuses) is not followed.
    stack: Vec<&'a Name>,
}

impl<'a> Walk<'a> {
    fn step(&mut self) -> Result<(), TooDeep> {
        self.budget = self.budget.checked_sub(1).ok_or(TooDeep::TooLong)?;
        Ok(())
    }

    /// The fields of `set` at data depth `depth`, each spread fragment walked where it is.
    fn data(&mut self, set: &'a SelectionSet, depth: usize) -> Result<(), TooDeep> {
        for selection in &set.items {
            self.step()?;
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if matches!(name, "__schema" | "__type") {
                        self.introspection(&field.node.selection_set.node, 1, 0)?;
                        continue;
                    }
                    if depth > self.max {
                        return Err(TooDeep::Data { depth: self.deepest(set, depth), at: field.pos });
                    }
                    self.data(&field.node.selection_set.node, depth + 1)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(fragment) = self.document.fragments.get(name)
                        && !self.stack.contains(&name)
                    {
                        self.stack.push(name);
                        self.data(&fragment.node.selection_set.node, depth)?;
                        self.stack.pop();
                    }
                }
                Selection::InlineFragment(inline) => self.data(&inline.node.selection_set.node, depth)?,
            }
        }
        Ok(())
    }

    /// How deep the data under `set` (entered at `depth`) goes, for the message; bounded by the
    /// remaining walk budget.
    fn deepest(&mut self, set: &'a SelectionSet, depth: usize) -> usize {
        let mut deepest = depth;
        for selection in &set.items {
            if self.step().is_err() {
                break;
            }
            let (inner, next) = match &selection.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => continue,
                Selection::Field(field) => (&field.node.selection_set.node, depth + 1),
                Selection::InlineFragment(inline) => (&inline.node.selection_set.node, depth),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match self.document.fragments.get(name) {
                        Some(fragment) if !self.stack.contains(&name) => {
                            self.stack.push(name);
                            let d = self.deepest(&fragment.node.selection_set.node, depth);
                            self.stack.pop();
                            deepest = deepest.max(d);
                            continue;
                        }
                        _ => continue,
                    }
                }
            };
            deepest = deepest.max(self.deepest(inner, next));
        }
        deepest
    }

    /// The selections of an introspection field, `depth` levels below `__schema` / `__type`,
    /// inside `lists` list fields.
    fn introspection(&mut self, set: &'a SelectionSet, depth: usize, lists: usize) -> Result<(), TooDeep> {
        for selection in &set.items {
            self.step()?;
            match &selection.node {
                Selection::Field(field) => {
                    if depth > INTROSPECTION_MAX_DEPTH {
                        return Err(TooDeep::Introspection { at: field.pos });
                    }
                    let lists = lists + usize::from(is_list(field.node.name.node.as_str()));
                    if lists > INTROSPECTION_MAX_LISTS {
                        return Err(TooDeep::IntrospectionLists { at: field.pos });
                    }
                    self.introspection(&field.node.selection_set.node, depth + 1, lists)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(fragment) = self.document.fragments.get(name)
                        && !self.stack.contains(&name)
                    {
                        self.stack.push(name);
                        self.introspection(&fragment.node.selection_set.node, depth, lists)?;
                        self.stack.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.introspection(&inline.node.selection_set.node, depth, lists)?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

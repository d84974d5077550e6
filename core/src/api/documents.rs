//! Parsed GraphQL documents, kept by query text. Apps send the same few queries over and over
//! with different variables; parsing one with async-graphql's parser costs more than copying
//! the parsed document. Only parsing is skipped: every request is still checked for
//! recursion depth, validated against the current schema (depth, complexity, types) and
//! executed as usual.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

/// Longest query text kept (longer ones are parsed every time).
const MAX_QUERY_LEN: usize = 16 * 1024;

/// A bounded map from query text to its parsed document.
#[derive(Debug)]
pub struct DocumentCache {
    capacity: usize,
    documents: Mutex<HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    /// A cache of at most `capacity` documents (0: none kept).
    pub fn new(capacity: usize) -> DocumentCache {
        DocumentCache { capacity, documents: Mutex::new(HashMap::new()) }
    }

    /// Gives `request` its parsed document, from the cache or parsed now. A query that does
    /// not parse is left alone, for async-graphql to answer with its own parse error.
    pub fn prepare(&self, mut request: async_graphql::Request) -> async_graphql::Request {
        if self.capacity == 0 || request.query.len() > MAX_QUERY_LEN {
            return request;
        }
        let cached = self.lock().get(&request.query).cloned();
        if let Some(document) = cached {
            request.set_parsed_query(document);
            return request;
        }
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else { return request };
        {
            let mut documents = self.lock();
            if documents.len() >= self.capacity {
                // Full: forget one document. An app's working set fits; a stream of distinct
                // queries only costs their own parsing.
                if let Some(key) = documents.keys().next().cloned() {
                    documents.remove(&key);
                }
            }
            documents.insert(request.query.clone(), document.clone());
        }
        request.set_parsed_query(document);
        request
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_the_cache_stays_bounded() {
        let cache = DocumentCache::new(2);
        let mut first = cache.prepare(async_graphql::Request::new("{ a }"));
        assert_eq!(cache.len(), 1);
        let mut again = cache.prepare(async_graphql::Request::new("{ a }"));
        assert_eq!(cache.len(), 1);
        let (Ok(a), Ok(b)) = (first.parsed_query(), again.parsed_query()) else { panic!("parsed") };
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        cache.prepare(async_graphql::Request::new("{ b }"));
        cache.prepare(async_graphql::Request::new("{ c }"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_query_that_does_not_parse_is_not_kept_and_still_fails_on_execution() {
        let cache = DocumentCache::new(4);
        let mut request = cache.prepare(async_graphql::Request::new("{ a "));
        assert!(cache.is_empty());
        assert!(request.parsed_query().is_err());
        let long = format!("{{ {} }}", "a ".repeat(MAX_QUERY_LEN));
        cache.prepare(async_graphql::Request::new(long));
        assert!(cache.is_empty());
    }
}

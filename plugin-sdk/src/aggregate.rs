//! Aggregates computed by Kith's database (SDK 1.2): counts, exact sums, minimums and maximums
//! over records matching a filter, grouped by fields or date buckets. A report reads a few
//! rows instead of every record.
//!
//! ```
//! use kith_plugin_sdk::aggregate::{self, Aggregate, Bucket};
//! use kith_plugin_sdk::testing::TestHost;
//!
//! let host = TestHost::new().own("gift");
//! host.insert("gift", serde_json::json!({"donorId": "a", "amount": "10.50", "day": "2026-03-02"}));
//! host.insert("gift", serde_json::json!({"donorId": "a", "amount": "5", "day": "2026-04-09"}));
//! let rows = host
//!     .run(|| aggregate::run("gift", &Aggregate::new().group_by("donorId").count().sum("amount").max("day")))
//!     .unwrap();
//! assert_eq!(rows[0].key(0), Some("a"));
//! assert_eq!(rows[0].int(0), Some(2));
//! assert_eq!(rows[0].value(1), Some("15.5"));
//! assert_eq!(rows[0].value(2), Some("2026-04-09"));
//! # let by_month = host.run(|| aggregate::run("gift", &Aggregate::new().group_by_bucket("day", Bucket::Month).count())).unwrap();
//! # assert_eq!(by_month.len(), 2);
//! ```

use serde_json::Value as Json;

use crate::types::Result;

/// What to compute. A minor version may add metrics: a `match` on it needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// How many records.
    Count,
    /// The exact sum of a number or decimal field.
    Sum,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// How many different values (`count_distinct("contactId")`: donors).
    CountDistinct,
}

/// Date buckets (weeks start on Monday; UTC). A bucket's key is its first day (`2026-03-01`).
/// A minor version may add buckets: a `match` on it needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bucket {
    /// A day.
    Day,
    /// A week, by its Monday.
    Week,
    /// A month, by its first day.
    Month,
    /// A year, by January 1st.
    Year,
}

/// An aggregate query, built step by step from [`Aggregate::new`] (a minor version may add
/// fields).
///
/// ```
/// use kith_plugin_sdk::aggregate::Aggregate;
/// let query = Aggregate::new().filter(serde_json::json!({"status": {"eq": "RECEIVED"}})).count().limit(10);
/// assert_eq!(query.metrics.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Aggregate {
    /// A filter in the GraphQL filter language; `None` matches every live record.
    pub filter: Option<Json>,
    /// Up to 3 grouping keys: a field, bucketed when it is a date.
    pub group_by: Vec<(String, Option<Bucket>)>,
    /// 1 to 10 metrics, each on a field (none for a plain count).
    pub metrics: Vec<(Metric, Option<String>)>,
    /// Most groups returned (default 10,000, at most 100,000), ordered by their keys (missing
    /// keys first).
    pub limit: u32,
    /// Order by metric `.0` instead (descending when `.1`): with `limit`, the top N groups.
    pub order: Option<(u32, bool)>,
}

impl Default for Aggregate {
    fn default() -> Aggregate {
        Aggregate::new()
    }
}

impl Aggregate {
    /// An aggregate over every live record, computing nothing yet.
    ///
    /// ```
    /// assert!(kith_plugin_sdk::aggregate::Aggregate::new().metrics.is_empty());
    /// ```
    pub fn new() -> Aggregate {
        Aggregate { filter: None, group_by: Vec::new(), metrics: Vec::new(), limit: 10_000, order: None }
    }

    /// Only records matching `filter`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().filter(serde_json::json!({"fund": {"eq": "General"}}));
    /// assert!(q.filter.is_some());
    /// ```
    pub fn filter(mut self, filter: Json) -> Aggregate {
        self.filter = Some(filter);
        self
    }

    /// One group per value of `field`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().group_by("contactId");
    /// assert_eq!(q.group_by[0].0, "contactId");
    /// ```
    pub fn group_by(mut self, field: &str) -> Aggregate {
        self.group_by.push((field.to_owned(), None));
        self
    }

    /// One group per `bucket` of the date or datetime `field`.
    ///
    /// ```
    /// use kith_plugin_sdk::aggregate::{Aggregate, Bucket};
    /// let q = Aggregate::new().group_by_bucket("receivedDate", Bucket::Year);
    /// assert_eq!(q.group_by[0].1, Some(Bucket::Year));
    /// ```
    pub fn group_by_bucket(mut self, field: &str, bucket: Bucket) -> Aggregate {
        self.group_by.push((field.to_owned(), Some(bucket)));
        self
    }

    /// Counts the records of each group.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().count();
    /// assert_eq!(q.metrics[0].0, kith_plugin_sdk::aggregate::Metric::Count);
    /// ```
    pub fn count(mut self) -> Aggregate {
        self.metrics.push((Metric::Count, None));
        self
    }

    /// Sums `field` (exactly, for decimals and money).
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().sum("amount");
    /// assert_eq!(q.metrics[0].1.as_deref(), Some("amount"));
    /// ```
    pub fn sum(mut self, field: &str) -> Aggregate {
        self.metrics.push((Metric::Sum, Some(field.to_owned())));
        self
    }

    /// The smallest value of `field`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().min("receivedDate");
    /// assert_eq!(q.metrics[0].0, kith_plugin_sdk::aggregate::Metric::Min);
    /// ```
    pub fn min(mut self, field: &str) -> Aggregate {
        self.metrics.push((Metric::Min, Some(field.to_owned())));
        self
    }

    /// The largest value of `field`.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().max("receivedDate");
    /// assert_eq!(q.metrics[0].0, kith_plugin_sdk::aggregate::Metric::Max);
    /// ```
    pub fn max(mut self, field: &str) -> Aggregate {
        self.metrics.push((Metric::Max, Some(field.to_owned())));
        self
    }

    /// How many different values `field` has in each group.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().count_distinct("contactId");
    /// assert_eq!(q.metrics[0].0, kith_plugin_sdk::aggregate::Metric::CountDistinct);
    /// ```
    pub fn count_distinct(mut self, field: &str) -> Aggregate {
        self.metrics.push((Metric::CountDistinct, Some(field.to_owned())));
        self
    }

    /// Orders the groups by metric `index` (its position among the metrics), largest first when
    /// `descending`: with [`Aggregate::limit`], the top N groups.
    ///
    /// ```
    /// let q = kith_plugin_sdk::aggregate::Aggregate::new().group_by("contactId").sum("amount").order_by_metric(0, true).limit(10);
    /// assert_eq!(q.order, Some((0, true)));
    /// ```
    pub fn order_by_metric(mut self, index: u32, descending: bool) -> Aggregate {
        self.order = Some((index, descending));
        self
    }

    /// At most `limit` groups.
    ///
    /// ```
    /// assert_eq!(kith_plugin_sdk::aggregate::Aggregate::new().limit(5).limit, 5);
    /// ```
    pub fn limit(mut self, limit: u32) -> Aggregate {
        self.limit = limit;
        self
    }
}

/// One group of an aggregate's answer. Kith makes rows; tests make one with [`Row::new`].
///
/// ```
/// let row = kith_plugin_sdk::aggregate::Row::new(vec![Some("GOLD".into())], vec![Some("3".into())]);
/// assert_eq!((row.key(0), row.int(0)), (Some("GOLD"), Some(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Row {
    /// The group's keys as text, in `group_by` order (`None`: the records have no value).
    pub keys: Vec<Option<String>>,
    /// The metrics as text, in request order: counts and sums exactly (`"1234.5"`), minimums
    /// and maximums in the field's GraphQL form (`None`: no value).
    pub values: Vec<Option<String>>,
}

impl Row {
    /// A group with these keys and metric values, for tests.
    ///
    /// ```
    /// let row = kith_plugin_sdk::aggregate::Row::new(vec![None], vec![Some("7".into())]);
    /// assert_eq!(row.values.len(), 1);
    /// ```
    pub fn new(keys: Vec<Option<String>>, values: Vec<Option<String>>) -> Row {
        Row { keys, values }
    }

    /// Key `index`.
    ///
    /// ```
    /// let row = kith_plugin_sdk::aggregate::Row::new(vec![None], vec![]);
    /// assert_eq!(row.key(0), None);
    /// ```
    pub fn key(&self, index: usize) -> Option<&str> {
        self.keys.get(index)?.as_deref()
    }

    /// Metric `index` as text.
    ///
    /// ```
    /// let row = kith_plugin_sdk::aggregate::Row::new(vec![], vec![Some("12.5".into())]);
    /// assert_eq!(row.value(0), Some("12.5"));
    /// ```
    pub fn value(&self, index: usize) -> Option<&str> {
        self.values.get(index)?.as_deref()
    }

    /// Metric `index` as a whole number (counts).
    ///
    /// ```
    /// let row = kith_plugin_sdk::aggregate::Row::new(vec![], vec![Some("7".into())]);
    /// assert_eq!(row.int(0), Some(7));
    /// ```
    pub fn int(&self, index: usize) -> Option<i64> {
        self.value(index)?.parse().ok()
    }
}

/// Computes `query` over the live records of `object`. Needs `OBJECTS:read` (nothing for the
/// plugin's own objects).
///
/// ```
/// use kith_plugin_sdk::aggregate::{self, Aggregate};
/// let host = kith_plugin_sdk::testing::TestHost::new();
/// let err = host.run(|| aggregate::run("contact", &Aggregate::new().count())).unwrap_err();
/// assert_eq!(err.code, kith_plugin_sdk::ErrorCode::Denied);
/// ```
pub fn run(object: &str, query: &Aggregate) -> Result<Vec<Row>> {
    crate::host::aggregate(object, query)
}

//! The gifts that count and what each is worth. Every total adds up received gifts in the
//! organisation's currency: their base amount. Gifts stored before version 1.2.0 have none
//! until `applyExchangeRates` or the daily `exchange-rates` job gives them one; meanwhile those
//! in the organisation's currency count at their amount, so an upgrade changes no total.
//! Those in other currencies count once a rate is known (they never did before).
//!
//! Sums over such old gifts need a second aggregate (over `amount`): [`Counted::aggregate`] runs
//! it only while there are any, which one count over the reports' index tells, and merges the
//! two answers per group.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::str::FromStr;

use kith_plugin_sdk::aggregate::{self, Aggregate, Metric, Row};
use kith_plugin_sdk::{Error, Record, Result};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::rates::to_cents;
use crate::util::{base_currency, decimal};

/// Counted gifts, as the organisation's currency setting and the stored gifts have them now.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    /// The organisation's currency.
    pub org: String,
    /// Whether some received gifts in it have no base amount yet.
    legacy: bool,
}

/// `extra` and `part`, both.
fn both(extra: Json, part: Json) -> Json {
    match extra {
        Json::Object(map) if map.is_empty() => part,
        Json::Null => part,
        extra => json!({"and": [extra, part]}),
    }
}

impl Counted {
    /// Reads the currency setting and whether old gifts are left.
    pub(crate) fn new() -> Result<Counted> {
        let org = base_currency()?;
        let mut counted = Counted { org, legacy: false };
        let rows = aggregate::run("donation", &Aggregate::new().filter(counted.legacy_part()).count())?;
        counted.legacy = rows.first().and_then(|row| row.int(0)).unwrap_or(0) > 0;
        Ok(counted)
    }

    fn converted_part(&self) -> Json {
        json!({"status": {"eq": "RECEIVED"}, "baseAmountCurrency": {"eq": self.org}})
    }

    fn legacy_part(&self) -> Json {
        json!({"status": {"eq": "RECEIVED"}, "baseAmountCurrency": {"isNull": true}, "amountCurrency": {"eq": self.org}})
    }

    /// Counted gifts that also match `extra`: for counts and lists, not sums (see
    /// [`Counted::aggregate`]).
    pub(crate) fn filter(&self, extra: Json) -> Json {
        if self.legacy {
            both(extra, json!({"or": [self.converted_part(), self.legacy_part()]}))
        } else {
            both(extra, self.converted_part())
        }
    }

    /// The aggregate `build(amount)` over counted gifts that also match `extra`, where `amount`
    /// is the field to sum or compare as money (`baseAmount`; `amount` for old gifts), merged
    /// per group. Distinct counts cannot be merged: count with [`Counted::filter`].
    pub(crate) fn aggregate(&self, extra: Json, build: impl Fn(&str) -> Aggregate) -> Result<Vec<Row>> {
        let query = build("baseAmount").filter(both(extra.clone(), self.converted_part()));
        if !self.legacy {
            return aggregate::run("donation", &query);
        }
        if query.metrics.iter().any(|(metric, _)| *metric == Metric::CountDistinct) {
            return Err(Error::msg("a distinct count over counted gifts is one aggregate over Counted::filter"));
        }
        let mut legacy = build("amount").filter(both(extra, self.legacy_part()));
        let (order, limit) = (query.order, query.limit);
        // Ranked groups (the top N) are ranked after merging: both sides answer every group.
        let mut converted = query;
        if order.is_some() {
            converted.order = None;
            converted.limit = 100_000;
            legacy.order = None;
            legacy.limit = 100_000;
        }
        let metrics: Vec<Metric> = converted.metrics.iter().map(|(metric, _)| *metric).collect();
        let mut merged: BTreeMap<Vec<Option<String>>, Vec<Option<String>>> = BTreeMap::new();
        for row in aggregate::run("donation", &converted)?.into_iter().chain(aggregate::run("donation", &legacy)?) {
            match merged.get_mut(&row.keys) {
                None => {
                    merged.insert(row.keys, row.values);
                }
                Some(values) => {
                    for (index, metric) in metrics.iter().enumerate() {
                        let (Some(slot), Some(other)) = (values.get_mut(index), row.values.get(index)) else {
                            continue;
                        };
                        *slot = combine(*metric, slot.take(), other.clone());
                    }
                }
            }
        }
        let mut rows: Vec<Row> = merged.into_iter().map(|(keys, values)| Row::new(keys, values)).collect();
        if let Some((index, descending)) = order {
            rows.sort_by(|a, b| {
                let ordering = compare(a.value(index as usize), b.value(index as usize));
                if descending { ordering.reverse() } else { ordering }
            });
        }
        rows.truncate(limit as usize);
        Ok(rows)
    }

    /// A gift's value in the organisation's currency; `None` when it is not counted.
    pub(crate) fn value(&self, gift: &Json) -> Option<Decimal> {
        if gift.get("status").and_then(Json::as_str) != Some("RECEIVED") {
            return None;
        }
        match gift.get("baseAmountCurrency").and_then(Json::as_str) {
            Some(currency) if currency == self.org => decimal(gift.get("baseAmount")),
            Some(_) => None,
            None if gift.get("amountCurrency").and_then(Json::as_str) == Some(self.org.as_str()) => {
                decimal(gift.get("amount"))
            }
            None => None,
        }
    }

    /// A soft credit's value in the organisation's currency: its share of the gift's value
    /// (all of it when it credits the whole amount); `None` when the gift is not counted.
    pub(crate) fn credit_value(&self, credit: &Record, gift: &Record) -> Option<Decimal> {
        let value = self.value(&gift.fields)?;
        let amount = decimal(credit.fields.get("amount"))?;
        let gift_amount = decimal(gift.fields.get("amount")).filter(|a| *a > Decimal::ZERO)?;
        if credit.str("amountCurrency") == gift.str("amountCurrency") {
            Some(if amount >= gift_amount { value } else { to_cents(amount / gift_amount * value) })
        } else if credit.str("amountCurrency") == Some(self.org.as_str()) {
            Some(amount.min(value))
        } else {
            None
        }
    }
}

/// Numbers as numbers, anything else (dates) as text; missing values first.
fn compare(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a.and_then(|a| Decimal::from_str(a).ok()), b.and_then(|b| Decimal::from_str(b).ok())) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => a.cmp(&b),
    }
}

/// One metric of a group answered by both aggregates.
fn combine(metric: Metric, a: Option<String>, b: Option<String>) -> Option<String> {
    let (a, b) = match (a, b) {
        (None, b) => return b,
        (a, None) => return a,
        (Some(a), Some(b)) => (a, b),
    };
    Some(match metric {
        Metric::Count | Metric::Sum => {
            let sum = Decimal::from_str(&a).unwrap_or_default() + Decimal::from_str(&b).unwrap_or_default();
            sum.normalize().to_string()
        }
        Metric::Min => {
            if compare(Some(&a), Some(&b)) == Ordering::Greater {
                b
            } else {
                a
            }
        }
        Metric::Max => {
            if compare(Some(&a), Some(&b)) == Ordering::Less {
                b
            } else {
                a
            }
        }
        // Refused by `Counted::aggregate` (distinct counts), or a metric of a later SDK.
        _ => a,
    })
}

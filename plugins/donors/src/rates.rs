//! Exchange rates. A gift keeps its amount and currency as given, plus its rate and its value in
//! the organisation's currency (`baseAmount`), which every total adds up. The rate is 1 in the
//! organisation's currency; otherwise the one entered with the gift (`exchangeRate`, or the
//! `baseAmount` the bank credited), or the latest rate of the rates table (`exchangeRate`
//! records) valid on the gift's received date.
//!
//! A received gift in another currency with no rate is refused, naming the currency and date:
//! accepting it would leave it out of every total (or count it at a made-up value) without
//! anyone noticing, and the person recording a gift is the one who has the bank statement.
//! Expected gifts (PLEDGED) and failed or refunded ones count nowhere, so they are stored
//! without a base amount when no rate is known, and get one when they are received.
//!
//! Rates are exact text: Kith's decimal fields keep 4 places, and one rupiah is 0.000061 dollars.

use std::collections::BTreeMap;
use std::str::FromStr;

use kith_plugin_sdk::aggregate::{self, Aggregate};
use kith_plugin_sdk::{Error, ErrorCode, Query, Result, records};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value as Json, json};

use crate::util::{Date, all, base_currency, decimal, money};

/// The rate is 1: the gift is in the organisation's currency.
pub(crate) const SAME_CURRENCY: &str = "SAME_CURRENCY";
/// Entered with the gift (its rate, or the base amount credited).
pub(crate) const ENTERED: &str = "ENTERED";
/// From the rates table.
pub(crate) const TABLE: &str = "TABLE";

/// Most decimal places a rate may have.
const RATE_PLACES: u32 = 12;

/// A gift's rate and value in the organisation's currency.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conversion {
    pub rate: Decimal,
    pub base: Decimal,
    pub source: &'static str,
}

impl Conversion {
    /// The donation fields that record it.
    pub(crate) fn fields(&self, org: &str) -> Map<String, Json> {
        let mut fields = Map::new();
        fields.insert("exchangeRate".into(), json!(self.rate.normalize().to_string()));
        fields.insert("baseAmount".into(), money(self.base));
        fields.insert("baseAmountCurrency".into(), json!(org));
        fields.insert("exchangeRateSource".into(), json!(self.source));
        fields
    }
}

/// An amount in the organisation's currency, to the cent (half away from zero, as banks do).
pub(crate) fn to_cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A rate from text or a JSON number: more than 0, at most 12 decimal places.
pub(crate) fn parse_rate(value: Option<&Json>) -> Option<Decimal> {
    let rate = match value? {
        Json::String(s) => Decimal::from_str(s.trim()).ok()?,
        Json::Number(n) => Decimal::from_str(&n.to_string()).ok()?,
        _ => return None,
    };
    (rate > Decimal::ZERO && rate.normalize().scale() <= RATE_PLACES).then(|| rate.normalize())
}

/// The rates table's rate from `currency` to `base` valid on `date`: the one with the latest
/// `validFrom` on or before it.
pub(crate) fn table_rate(currency: &str, base: &str, date: Date) -> Result<Option<Decimal>> {
    let page = records::query(
        "exchangeRate",
        &Query::new()
            .filter(json!({"currency": {"eq": currency}, "baseCurrency": {"eq": base}, "validFrom": {"lte": date.to_string()}}))
            .order_by(json!([{"field": "validFrom", "direction": "DESC"}]))
            .first(1),
    )?;
    Ok(page.records.first().and_then(|r| parse_rate(r.fields.get("rate"))))
}

/// Why a received gift cannot be stored: no rate for its currency on its date.
pub(crate) fn no_rate(currency: &str, org: &str, date: Date) -> String {
    format!(
        "no exchange rate from {currency} to {org} valid on {date}: enter the gift's exchangeRate (or the \
         baseAmount credited in {org}), or add a rate for {currency} valid from {date} or earlier to the rates table \
         (createExchangeRate)"
    )
}

/// What a donation, as it would be stored (`after`; `before` for an update), converts to:
/// `Ok(None)` when no rate is known, `Err` when what was entered does not add up.
pub(crate) fn conversion(
    after: &Json,
    before: Option<&Json>,
    org: &str,
) -> std::result::Result<Option<Conversion>, String> {
    let changed = |field: &str| before.is_none_or(|before| before.get(field) != after.get(field));
    let Some(amount) = decimal(after.get("amount")).filter(|a| *a > Decimal::ZERO) else {
        return Err("a donation's amount must be more than 0".into());
    };
    let currency = after.get("amountCurrency").and_then(Json::as_str).unwrap_or(org).to_ascii_uppercase();
    if currency == org {
        return Ok(Some(Conversion { rate: Decimal::ONE, base: amount, source: SAME_CURRENCY }));
    }
    let source = after.get("exchangeRateSource").and_then(Json::as_str);
    // Setting the source to TABLE asks for the table's rate, whatever was entered before.
    let from_table = source == Some(TABLE) && changed("exchangeRateSource");
    let rate_text = after.get("exchangeRate").filter(|v| !v.is_null());
    let rate = match rate_text {
        Some(text) if !from_table && (changed("exchangeRate") || source == Some(ENTERED)) => {
            Some(parse_rate(Some(text)).ok_or_else(|| {
                format!("exchangeRate `{text}` is not a rate: a number more than 0, such as \"1.0823\"")
            })?)
        }
        _ => None,
    };
    let base = match decimal(after.get("baseAmount")) {
        Some(base) if !from_table && changed("baseAmount") => {
            let base_currency = after.get("baseAmountCurrency").and_then(Json::as_str).unwrap_or(org);
            if !base_currency.eq_ignore_ascii_case(org) {
                return Err(format!("baseAmount must be in the organisation's currency, {org}, not {base_currency}"));
            }
            if base <= Decimal::ZERO {
                return Err("baseAmount must be more than 0".into());
            }
            Some(base)
        }
        _ => None,
    };
    match (rate, base) {
        (Some(rate), Some(base)) if changed("exchangeRate") => {
            let expected = to_cents(amount * rate);
            if (expected - base).abs() > Decimal::new(1, 2) {
                return Err(format!(
                    "baseAmount {} {org} disagrees with exchangeRate: {} {currency} at {rate} is {expected} {org}",
                    base.normalize(),
                    amount.normalize(),
                ));
            }
            Ok(Some(Conversion { rate, base, source: ENTERED }))
        }
        // The amount credited decides; the rate follows from it.
        (_, Some(base)) => {
            let rate = (base / amount).round_dp(RATE_PLACES).normalize();
            Ok(Some(Conversion { rate, base, source: ENTERED }))
        }
        (Some(rate), None) => Ok(Some(Conversion { rate, base: to_cents(amount * rate), source: ENTERED })),
        (None, None) => {
            let date = received_date(after);
            match table_rate(&currency, org, date) {
                Ok(Some(rate)) => Ok(Some(Conversion { rate, base: to_cents(amount * rate), source: TABLE })),
                Ok(None) => Ok(None),
                // Kith checks the code as it reads the table (as it would as it writes the gift).
                Err(err) if err.code == ErrorCode::InvalidInput => {
                    Err(format!("amountCurrency `{currency}` is not an ISO 4217 currency code"))
                }
                Err(err) => Err(format!("cannot read the rates table: {}", err.message)),
            }
        }
    }
}

/// A gift's received date (today when it has none).
pub(crate) fn received_date(gift: &Json) -> Date {
    gift.get("receivedDate").and_then(Json::as_str).and_then(Date::parse).unwrap_or_else(Date::today)
}

/// The fields the before-write hook sets on a donation write: `Ok(None)` to store it as it
/// is, `Err` to refuse it. A write that leaves the gift's money alone is never refused for a
/// missing rate (a merge re-pointing old gifts must go through).
pub(crate) fn donation_fields(
    after: &Json,
    before: Option<&Json>,
    org: &str,
) -> std::result::Result<Option<Map<String, Json>>, String> {
    const MONEY: [&str; 8] = [
        "amount",
        "amountCurrency",
        "receivedDate",
        "status",
        "exchangeRate",
        "baseAmount",
        "baseAmountCurrency",
        "exchangeRateSource",
    ];
    let money_changed = before.is_none_or(|before| MONEY.iter().any(|f| before.get(*f) != after.get(*f)));
    let stale = after.get("baseAmount").is_none_or(Json::is_null)
        || after.get("baseAmountCurrency").and_then(Json::as_str) != Some(org);
    if !money_changed && !stale {
        return Ok(None);
    }
    match conversion(after, before, org) {
        Ok(Some(conversion)) => {
            let mut fields = conversion.fields(org);
            fields.retain(|key, value| after.get(key) != Some(value));
            Ok((!fields.is_empty()).then_some(fields))
        }
        Ok(None) if !money_changed => Ok(None),
        Ok(None) if after.get("status").and_then(Json::as_str) == Some("RECEIVED") => {
            let currency = after.get("amountCurrency").and_then(Json::as_str).unwrap_or("?");
            Err(no_rate(currency, org, received_date(after)))
        }
        // Not counted anywhere: no base amount until it is received.
        Ok(None) => {
            let mut fields = Map::new();
            for field in ["exchangeRate", "baseAmount", "baseAmountCurrency", "exchangeRateSource"] {
                if after.get(field).is_some_and(|v| !v.is_null()) {
                    fields.insert(field.into(), Json::Null);
                }
            }
            Ok((!fields.is_empty()).then_some(fields))
        }
        Err(reason) if money_changed => Err(reason),
        Err(_) => Ok(None),
    }
}

/// The fields the before-write hook sets on a rate of the rates table.
pub(crate) fn rate_fields(after: &Json, org: &str) -> std::result::Result<Map<String, Json>, String> {
    let rate = parse_rate(after.get("rate")).ok_or_else(|| {
        format!(
            "rate `{}` is not a rate: a number more than 0 with at most {RATE_PLACES} decimal places, such as \"1.0823\"",
            after.get("rate").and_then(Json::as_str).unwrap_or("")
        )
    })?;
    let currency = after.get("currency").and_then(Json::as_str).unwrap_or("").to_ascii_uppercase();
    let base = after.get("baseCurrency").and_then(Json::as_str).unwrap_or(org).to_ascii_uppercase();
    if currency == base {
        return Err(format!("a rate from {currency} to {base} is always 1: rates are for other currencies"));
    }
    let valid_from = after.get("validFrom").and_then(Json::as_str).unwrap_or("");
    let mut fields = Map::new();
    fields.insert("currency".into(), json!(currency));
    fields.insert("rate".into(), json!(rate.to_string()));
    fields.insert("baseCurrency".into(), json!(base));
    fields.insert("key".into(), json!(format!("{currency}:{base}:{valid_from}")));
    Ok(fields)
}

/// The rates table of one currency to the organisation's, oldest first, read once per run.
#[derive(Default)]
struct Rates(BTreeMap<String, Vec<(Date, Decimal)>>);

impl Rates {
    fn on(&mut self, currency: &str, org: &str, date: Date) -> Result<Option<Decimal>> {
        if !self.0.contains_key(currency) {
            let mut rates: Vec<(Date, Decimal)> =
                all("exchangeRate", json!({"currency": {"eq": currency}, "baseCurrency": {"eq": org}}), 100_000)?
                    .iter()
                    .filter_map(|r| {
                        Some((r.str("validFrom").and_then(Date::parse)?, parse_rate(r.fields.get("rate"))?))
                    })
                    .collect();
            rates.sort_by_key(|(from, _)| *from);
            self.0.insert(currency.to_owned(), rates);
        }
        Ok(self.0[currency].iter().rev().find(|(from, _)| *from <= date).map(|(_, rate)| *rate))
    }
}

/// `applyExchangeRates(first)` and the daily `exchange-rates` job: up to `first` gifts without a
/// base amount in the organisation's currency get one; received gifts in a currency with no
/// rate on their date are listed (per currency, with their first and last dates), not changed.
/// `remaining`: the gifts a next call has left to look at.
pub(crate) fn apply(first: usize) -> Result<Json> {
    let org = base_currency()?;
    let stale = json!({"or": [{"baseAmountCurrency": {"isNull": true}}, {"baseAmountCurrency": {"neq": org}}]});
    let total = aggregate::run("donation", &Aggregate::new().filter(stale.clone()).count())?
        .first()
        .and_then(|row| row.int(0))
        .unwrap_or(0);
    let mut rates = Rates::default();
    let (mut updated, mut unconvertible) = (0, 0);
    let mut missing: BTreeMap<String, (Date, Date, i64)> = BTreeMap::new();
    let mut after: Option<String> = None;
    'pages: loop {
        let mut query = Query::new().filter(stale.clone()).first(200);
        if let Some(cursor) = &after {
            query = query.after(cursor);
        }
        let page = records::query("donation", &query)?;
        for gift in page.records {
            if updated == first {
                break 'pages;
            }
            let amount = decimal(gift.fields.get("amount")).filter(|a| *a > Decimal::ZERO);
            let currency = gift.str("amountCurrency").unwrap_or(&org).to_ascii_uppercase();
            let date = received_date(&gift.fields);
            let conversion = match amount {
                None => None,
                Some(amount) if currency == org => {
                    Some(Conversion { rate: Decimal::ONE, base: amount, source: SAME_CURRENCY })
                }
                Some(amount) => rates.on(&currency, &org, date)?.map(|rate| Conversion {
                    rate,
                    base: to_cents(amount * rate),
                    source: TABLE,
                }),
            };
            let Some(conversion) = conversion else {
                unconvertible += 1;
                // Only received gifts count: the others get their rate when they are paid.
                if gift.str("status") == Some("RECEIVED") {
                    let entry = missing.entry(currency).or_insert((date, date, 0));
                    entry.0 = entry.0.min(date);
                    entry.1 = entry.1.max(date);
                    entry.2 += 1;
                }
                continue;
            };
            // The before-write hook comes to the same fields (TABLE asks it for the table's rate).
            records::update("donation", &gift.id, &Json::Object(conversion.fields(&org)), Some(gift.version))?;
            updated += 1;
        }
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    let missing: Vec<Json> = missing
        .into_iter()
        .map(|(currency, (from, to, gifts))| {
            json!({"currency": currency, "from": from.to_string(), "to": to.to_string(), "gifts": gifts})
        })
        .collect();
    let remaining = (total - updated as i64 - unconvertible).max(0);
    Ok(json!({"updated": updated, "remaining": remaining, "missing": missing}))
}

/// `applyExchangeRates(first)`.
pub(crate) fn apply_call(arguments: &Json) -> Result<Json> {
    let first = match arguments.get("first").and_then(Json::as_i64) {
        None => 500,
        Some(n) if (1..=2_000).contains(&n) => n as usize,
        Some(_) => return Err(Error::invalid("first", "between 1 and 2000")),
    };
    apply(first)
}

/// Completes a new gift's fields with its rate and base amount, as the before-write hook would
/// (which then finds nothing to change), or says which argument keeps it from being stored.
pub(crate) fn complete(gift: &mut Json, org: &str) -> std::result::Result<(), (&'static str, String)> {
    match conversion(gift, None, org) {
        Ok(Some(conversion)) => {
            for (field, value) in conversion.fields(org) {
                gift[field] = value;
            }
            Ok(())
        }
        Ok(None) if gift.get("status").and_then(Json::as_str) == Some("RECEIVED") => {
            let currency = gift.get("amountCurrency").and_then(Json::as_str).unwrap_or("?");
            Err(("exchangeRate", no_rate(currency, org, received_date(gift))))
        }
        Ok(None) => Ok(()),
        Err(reason) if reason.starts_with("baseAmount") => Err(("baseAmount", reason)),
        Err(reason) if reason.starts_with("a donation's amount") => Err(("amount", reason)),
        Err(reason) if reason.starts_with("amountCurrency") => Err(("currency", reason)),
        Err(reason) => Err(("exchangeRate", reason)),
    }
}

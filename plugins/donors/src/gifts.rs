//! Gifts: recording and refunding them, standing orders and pledges, the checks every donation,
//! soft credit and exchange rate write passes, and the thank-you task for a received gift.

use kith_plugin_sdk::{Change, Error, ErrorCode, Event, Operation, Result, Verdict, kv, log, records};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::rates;
use crate::util::{Date, amount_arg, base_currency, date_arg, decimal, frequency_months, int_setting, money};

/// Gifts older than this (by received date) get no thank-you task: they are history (imports).
const THANK_WITHIN_DAYS: i64 = 30;

/// Maps a host error about `field` (as Kith names it) to a caller's argument.
fn as_argument(err: Error, field: &str, argument: &str) -> Error {
    if err.code == ErrorCode::InvalidInput && err.message.starts_with(field) {
        Error::invalid(argument, err.message)
    } else {
        err
    }
}

fn str_arg<'a>(arguments: &'a Json, name: &str) -> Option<&'a str> {
    arguments.get(name).and_then(Json::as_str).filter(|s| !s.trim().is_empty())
}

/// The record `id` of `object`, or a BAD_USER_INPUT naming `argument`.
fn existing(object: &str, id: &str, argument: &str) -> Result<kith_plugin_sdk::Record> {
    match records::get(object, id) {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(Error::invalid(argument, format!("no {object} `{id}`"))),
        Err(err) if err.code == ErrorCode::InvalidInput => Err(Error::invalid(argument, err.message)),
        Err(err) => Err(err),
    }
}

fn currency_arg(arguments: &Json) -> Result<String> {
    match str_arg(arguments, "currency") {
        Some(code) => {
            let code = code.trim().to_ascii_uppercase();
            if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(Error::invalid("currency", format!("`{code}` is not an ISO 4217 currency code")));
            }
            Ok(code)
        }
        None => base_currency(),
    }
}

/// `recordDonation`: checks everything first, then writes the gift and its soft credits.
pub(crate) fn record(arguments: &Json) -> Result<Json> {
    let contact = str_arg(arguments, "contactId");
    let company = str_arg(arguments, "companyId");
    if contact.is_none() && company.is_none() {
        return Err(Error::invalid("contactId", "a donation needs a donor: contactId or companyId"));
    }
    if let Some(id) = contact {
        existing("contact", id, "contactId")?;
    }
    if let Some(id) = company {
        existing("company", id, "companyId")?;
    }
    let amount = amount_arg(arguments, "amount")?;
    let currency = currency_arg(arguments)?;
    let received = date_arg(arguments, "receivedDate")?.unwrap_or_else(Date::today);
    let status = str_arg(arguments, "status").unwrap_or("RECEIVED");
    let rate = match arguments.get("exchangeRate").filter(|v| !v.is_null()) {
        None => None,
        Some(value) => Some(rates::parse_rate(Some(value)).ok_or_else(|| {
            Error::invalid("exchangeRate", "a rate more than 0 with at most 12 decimal places, such as \"1.0823\"")
        })?),
    };
    let base = match arguments.get("baseAmount").filter(|v| !v.is_null()) {
        None => None,
        Some(_) => Some(amount_arg(arguments, "baseAmount")?),
    };
    let mut credits = Vec::new();
    match arguments.get("softCredits") {
        None | Some(Json::Null) => {}
        Some(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("softCredits[{i}]");
                let id = item
                    .get("contactId")
                    .and_then(Json::as_str)
                    .ok_or_else(|| Error::invalid(&at, "needs a contactId"))?;
                // Recognition counts each gift once per person: the donor has it as giving.
                if contact == Some(id) {
                    return Err(Error::invalid(&at, "the donor is credited with the gift already (their giving)"));
                }
                if credits.iter().any(|(credited, _, _)| credited == id) {
                    return Err(Error::invalid(&at, "credits the same contact twice"));
                }
                existing("contact", id, &at)?;
                let credit = decimal(item.get("amount")).unwrap_or(amount);
                if credit <= Decimal::ZERO || credit > amount {
                    return Err(Error::invalid(&at, "the credited amount must be more than 0 and at most the gift"));
                }
                let role = item.get("role").and_then(Json::as_str).unwrap_or("OTHER").to_ascii_uppercase();
                credits.push((id.to_owned(), credit, role));
            }
        }
        Some(_) => return Err(Error::invalid("softCredits", "a list of {contactId, amount, role}")),
    }
    let mut fields = json!({
        "amount": money(amount),
        "amountCurrency": currency,
        "receivedDate": received.to_string(),
        "status": status,
    });
    if let Some(rate) = rate {
        fields["exchangeRate"] = json!(rate.to_string());
    }
    if let Some(base) = base {
        fields["baseAmount"] = money(base);
        fields["baseAmountCurrency"] = json!(base_currency()?);
    }
    // Its rate and base amount, or why there is none, before anything is written.
    rates::complete(&mut fields, &base_currency()?).map_err(|(field, reason)| Error::invalid(field, reason))?;
    for (argument, field) in [
        ("contactId", "contactId"),
        ("companyId", "companyId"),
        ("paymentMethod", "paymentMethod"),
        ("fundId", "fundId"),
        ("campaignId", "campaignId"),
        ("tributeType", "tributeType"),
        ("tributeName", "tributeName"),
        ("note", "note"),
        ("sourceCode", "sourceCode"),
    ] {
        if let Some(value) = str_arg(arguments, argument) {
            fields[field] = json!(value);
        }
    }
    let gift = records::create("donation", &fields).map_err(|err| {
        let err = as_argument(err, "amountCurrency", "currency");
        let err = as_argument(err, "fundId", "fundId");
        as_argument(err, "campaignId", "campaignId")
    })?;
    for (contact, credit, role) in credits {
        let role = if ["SPOUSE", "FUNDRAISER", "EMPLOYER", "HOUSEHOLD"].contains(&role.as_str()) {
            role
        } else {
            "OTHER".into()
        };
        records::create(
            "softCredit",
            &json!({"donationId": gift.id, "contactId": contact, "amount": money(credit), "amountCurrency": currency, "role": role}),
        )?;
    }
    Ok(json!(gift.id))
}

/// `refundDonation`.
pub(crate) fn refund(arguments: &Json) -> Result<Json> {
    let id = str_arg(arguments, "id").unwrap_or_default();
    let gift = match records::get("donation", id) {
        Ok(Some(gift)) => gift,
        Ok(None) => return Err(Error::new(ErrorCode::NotFound, format!("no donation `{id}`"))),
        Err(err) if err.code == ErrorCode::InvalidInput => return Err(Error::invalid("id", err.message)),
        Err(err) => return Err(err),
    };
    match gift.str("status") {
        Some("RECEIVED") => {}
        Some("REFUNDED") => {
            return Err(Error::new(ErrorCode::Conflict, format!("donation `{id}` was refunded already")));
        }
        other => {
            return Err(Error::invalid(
                "id",
                format!("only received gifts can be refunded; this one is {}", other.unwrap_or("?")),
            ));
        }
    }
    let reason = str_arg(arguments, "reason").unwrap_or("refunded");
    records::update("donation", id, &json!({"status": "REFUNDED", "refundReason": reason}), Some(gift.version))?;
    Ok(json!(id))
}

/// `pauseRecurringDonation` (resume = false) and `resumeRecurringDonation`.
pub(crate) fn set_recurring_active(arguments: &Json, resume: bool) -> Result<Json> {
    let id = str_arg(arguments, "id").unwrap_or_default();
    let plan = existing("recurringDonation", id, "id")?;
    let status = plan.str("status").unwrap_or_default();
    if !resume {
        if status != "ACTIVE" {
            return Err(Error::invalid("id", format!("only an ACTIVE plan can be paused; this one is {status}")));
        }
        records::update("recurringDonation", id, &json!({"status": "PAUSED"}), Some(plan.version))?;
        return Ok(json!(id));
    }
    if !matches!(status, "PAUSED" | "LAPSED") {
        return Err(Error::invalid("id", format!("only a PAUSED or LAPSED plan can be resumed; this one is {status}")));
    }
    // The next due date on the plan's rhythm that is not in the past.
    let months = frequency_months(plan.str("frequency").unwrap_or_default()).unwrap_or(1);
    let today = Date::today();
    let start = plan.str("startDate").and_then(Date::parse).unwrap_or(today);
    let mut step = 0u32;
    let mut next = start;
    while next < today && step < 12_000 {
        step += 1;
        next = start.add_months(months * step);
    }
    if let Some(due) = plan.str("nextDueDate").and_then(Date::parse) {
        next = next.max(due);
    }
    records::update(
        "recurringDonation",
        id,
        &json!({"status": "ACTIVE", "nextDueDate": next.to_string()}),
        Some(plan.version),
    )?;
    Ok(json!(id))
}

/// On `pledge.created`: one expected (PLEDGED) gift per installment, keyed so that a
/// redelivered event creates none twice.
pub(crate) fn on_pledge(event: &Event) -> Result<()> {
    let Some(id) = event.record_id.as_deref() else { return Ok(()) };
    let pledge = event.record();
    let total = decimal(pledge.get("total")).unwrap_or_default();
    let installments = pledge.get("installments").and_then(Json::as_i64).unwrap_or(1).clamp(1, 120);
    let months = frequency_months(pledge.get("frequency").and_then(Json::as_str).unwrap_or_default()).unwrap_or(1);
    let Some(start) = pledge.get("startDate").and_then(Json::as_str).and_then(Date::parse) else { return Ok(()) };
    // Equal installments to the cent; the last one takes the remainder.
    let each = (total / Decimal::from(installments)).round_dp(2);
    let mut left = total;
    for i in 0..installments {
        let amount = if i == installments - 1 { left } else { each };
        left -= amount;
        let mut gift = json!({
            "amount": money(amount), "amountCurrency": pledge.get("totalCurrency"), "status": "PLEDGED",
            "receivedDate": start.add_months(months * i as u32).to_string(), "pledgeId": id,
            "expectedKey": format!("pledge:{id}:{}", i + 1),
        });
        for field in ["contactId", "fundId", "campaignId"] {
            if let Some(value) = pledge.get(field).filter(|v| !v.is_null()) {
                gift[field] = value.clone();
            }
        }
        match records::create("donation", &gift) {
            Ok(_) => {}
            Err(err) if err.code == ErrorCode::Conflict => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Every write of a donation, standing order or pledge: a donor and positive amounts; a new
/// standing order starts ACTIVE and falls due on its start date.
pub(crate) fn check(change: &Change) -> Verdict {
    if change.operation == Operation::Delete {
        return Verdict::Allow;
    }
    let after = &change.after;
    let has = |field: &str| after.get(field).and_then(Json::as_str).is_some_and(|s| !s.is_empty());
    let positive = |field: &str| decimal(after.get(field)).is_some_and(|amount| amount > Decimal::ZERO);
    let org = || base_currency().map_err(|err| format!("cannot read the currency setting: {}", err.message));
    match change.object.as_str() {
        "donation" => {
            if !has("contactId") && !has("companyId") {
                return Verdict::Deny("a donation needs a donor: contactId or companyId".into());
            }
            if !positive("amount") {
                return Verdict::Deny("a donation's amount must be more than 0".into());
            }
            match org().and_then(|org| rates::donation_fields(after, change.before.as_ref(), &org)) {
                Ok(None) => Verdict::Allow,
                Ok(Some(fields)) => Verdict::Modify(fields),
                Err(reason) => Verdict::Deny(reason),
            }
        }
        "softCredit" => check_soft_credit(change),
        "exchangeRate" => match org().and_then(|org| rates::rate_fields(after, &org)) {
            Ok(fields) => Verdict::Modify(fields),
            Err(reason) => Verdict::Deny(reason),
        },
        "recurringDonation" => {
            if !positive("amount") {
                return Verdict::Deny("a recurring donation's amount must be more than 0".into());
            }
            let mut defaults = serde_json::Map::new();
            if !has("status") {
                defaults.insert("status".into(), json!("ACTIVE"));
            }
            if !has("nextDueDate") && change.operation == Operation::Create {
                defaults.insert("nextDueDate".into(), after.get("startDate").cloned().unwrap_or(Json::Null));
            }
            if defaults.is_empty() { Verdict::Allow } else { Verdict::Modify(defaults) }
        }
        "pledge" => {
            if !positive("total") {
                return Verdict::Deny("a pledge's total must be more than 0".into());
            }
            match after.get("installments").and_then(Json::as_i64) {
                Some(n) if (1..=120).contains(&n) => Verdict::Allow,
                _ => Verdict::Deny("a pledge has 1 to 120 installments".into()),
            }
        }
        _ => Verdict::Allow,
    }
}

/// A soft credit: in its gift's currency, for at most its amount; a new one never for the gift's
/// own donor (their giving counts the gift already). Updates that only move a credit to another
/// contact go through, even to the donor (a merge of the two): reports ignore such a credit.
fn check_soft_credit(change: &Change) -> Verdict {
    let after = &change.after;
    let changed = |field: &str| change.before.as_ref().is_none_or(|before| before.get(field) != after.get(field));
    if change.operation != Operation::Create && !["donationId", "amount", "amountCurrency"].into_iter().any(changed) {
        return Verdict::Allow;
    }
    let Some(gift_id) = after.get("donationId").and_then(Json::as_str) else {
        return Verdict::Deny("a soft credit needs a donationId".into());
    };
    // A gift written in the same transaction (by `recordDonation`) is not visible here: Kith
    // checks that it exists, and `recordDonation` checked the rest.
    let gift = match records::get("donation", gift_id) {
        Ok(Some(gift)) => gift,
        Ok(None) => return Verdict::Allow,
        Err(err) => return Verdict::Deny(err.message),
    };
    let amount = decimal(after.get("amount")).unwrap_or_default();
    let gift_amount = decimal(gift.fields.get("amount")).unwrap_or_default();
    if amount <= Decimal::ZERO || amount > gift_amount {
        return Verdict::Deny("a soft credit's amount must be more than 0 and at most the gift's".into());
    }
    if after.get("amountCurrency").and_then(Json::as_str) != gift.str("amountCurrency") {
        return Verdict::Deny(format!(
            "a soft credit is in its gift's currency, {}",
            gift.str("amountCurrency").unwrap_or("?")
        ));
    }
    if change.operation == Operation::Create && after.get("contactId").and_then(Json::as_str) == gift.str("contactId") {
        return Verdict::Deny(
            "the gift's donor is credited with it already (their giving): a soft credit is for someone else".into(),
        );
    }
    Verdict::Allow
}

/// On a received gift: a thank-you task for the donor's owner, once per gift.
pub(crate) fn on_event(event: &Event) -> Result<()> {
    let gift = event.record();
    if gift.get("status").and_then(Json::as_str) != Some("RECEIVED") {
        return Ok(());
    }
    let Some(id) = event.record_id.as_deref() else { return Ok(()) };
    let received = gift.get("receivedDate").and_then(Json::as_str).and_then(Date::parse);
    if received.is_some_and(|d| d < Date::today().add_days(-THANK_WITHIN_DAYS)) {
        return Ok(());
    }
    let key = format!("thanked:{id}");
    if kv::get(&key)?.is_some() {
        return Ok(());
    }
    let (object, donor_id) =
        match (gift.get("contactId").and_then(Json::as_str), gift.get("companyId").and_then(Json::as_str)) {
            (Some(contact), _) => ("contact", contact),
            (None, Some(company)) => ("company", company),
            (None, None) => return Ok(()),
        };
    let Some(donor) = records::get(object, donor_id)? else { return Ok(()) };
    let name = match object {
        "contact" => {
            let part = |f: &str| donor.str(f).unwrap_or("").trim().to_owned();
            let name = format!("{} {}", part("firstName"), part("lastName")).trim().to_owned();
            if name.is_empty() { donor.str("email").unwrap_or("the donor").to_owned() } else { name }
        }
        _ => donor.str("name").unwrap_or("the donor").to_owned(),
    };
    let amount = gift.get("amount").and_then(Json::as_str).unwrap_or("?");
    let currency = gift.get("amountCurrency").and_then(Json::as_str).unwrap_or("");
    let days = int_setting("thank_you_days", 3)?;
    let due = Date::today().add_days(days);
    let mut task = json!({
        "kind": "TASK",
        "subject": format!("Thank {name} for their gift of {amount} {currency}"),
        "body": format!("Gift {id} received on {}.", gift.get("receivedDate").and_then(Json::as_str).unwrap_or("?")),
        "dueAt": format!("{due}T09:00:00.000000Z"),
    });
    task[format!("{object}Id")] = json!(donor_id);
    if let Some(owner) = donor.str("ownerId") {
        task["ownerId"] = json!(owner);
    }
    let created = records::create("activity", &task)?;
    kv::set(&key, created.id.as_bytes())?;
    log::info(&format!("thank-you task {} for gift {id}", created.id));
    Ok(())
}

/// The daily job: the expected gifts of due standing orders, and lapsing after missed payments.
pub(crate) fn run_recurring(scheduled_for: &str) -> Result<()> {
    let today = Date::parse(scheduled_for).unwrap_or_else(Date::today);
    let lapse_after = int_setting("lapse_after_missed", 3)?.max(1) as usize;
    let due = crate::util::all(
        "recurringDonation",
        json!({"status": {"eq": "ACTIVE"}, "nextDueDate": {"lte": today.to_string()}}),
        100_000,
    )?;
    let mut created = 0;
    for plan in due {
        let months = frequency_months(plan.str("frequency").unwrap_or_default()).unwrap_or(1);
        let Some(mut next) = plan.str("nextDueDate").and_then(Date::parse) else { continue };
        // Due dates count from the start (the 31st stays the 31st where the month has one).
        let start = plan.str("startDate").and_then(Date::parse).unwrap_or(next);
        let mut step = 0u32;
        while start.add_months(months * step) < next && step < 12_000 {
            step += 1;
        }
        while next <= today {
            let mut gift = json!({
                "contactId": plan.str("contactId"), "amount": plan.fields["amount"], "amountCurrency": plan.fields["amountCurrency"],
                "status": "PLEDGED", "receivedDate": next.to_string(), "recurringDonationId": plan.id,
                "expectedKey": format!("recurring:{}:{next}", plan.id), "paymentMethod": "DIRECT_DEBIT",
            });
            for field in ["fundId", "campaignId"] {
                if let Some(value) = plan.str(field) {
                    gift[field] = json!(value);
                }
            }
            match records::create("donation", &gift) {
                Ok(_) => created += 1,
                // Made already (a run that did not finish): expected gifts are keyed by due date.
                Err(err) if err.code == ErrorCode::Conflict => {}
                Err(err) => return Err(err),
            }
            step += 1;
            next = start.add_months(months * step);
        }
        // Expected gifts still unpaid after their due date are missed payments.
        let missed = crate::util::all(
            "donation",
            json!({"recurringDonationId": {"eq": plan.id}, "status": {"eq": "PLEDGED"}, "receivedDate": {"lt": today.to_string()}}),
            1_000,
        )?
        .len();
        let status = if missed >= lapse_after { "LAPSED" } else { "ACTIVE" };
        records::update(
            "recurringDonation",
            &plan.id,
            &json!({"nextDueDate": next.to_string(), "status": status}),
            Some(plan.version),
        )?;
        if status == "LAPSED" {
            log::info(&format!("recurring donation {} lapsed after {missed} missed payments", plan.id));
        }
    }
    log::info(&format!("recurring job for {today}: {created} expected gifts"));
    Ok(())
}

//! The sync engine, ERP-neutral: what an ERP must offer ([`Erp`]), the records as both sides
//! see them ([`Fields`], named by Kith's fields), who owns which field, and the three-way merge
//! that decides what goes where. The engine's operations are in `push` (Kith → ERP, on events
//! and retries) and `pull` (ERP → Kith, by the `sync` job); a second ERP is a second `Erp`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// Field values by Kith's field name (`name`, `addressCity`, `taxIdentifier`...), as text;
/// `None` is empty.
pub(crate) type Fields = BTreeMap<String, Option<String>>;

/// A failure to synchronise: retried with backoff, or not (the data is at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncError {
    pub(crate) message: String,
    /// Network, 5xx, 429, a lock: the `sync` job tries again later.
    pub(crate) retryable: bool,
    /// The HTTP status, when the ERP answered one.
    pub(crate) status: Option<u16>,
}

impl SyncError {
    pub(crate) fn retry(message: impl Into<String>) -> SyncError {
        SyncError { message: message.into(), retryable: true, status: None }
    }

    pub(crate) fn fatal(message: impl Into<String>) -> SyncError {
        SyncError { message: message.into(), retryable: false, status: None }
    }

    pub(crate) fn status(status: u16, retryable: bool, message: impl Into<String>) -> SyncError {
        SyncError { message: message.into(), retryable, status: Some(status) }
    }

    /// The same error, saying where it happened.
    pub(crate) fn context(mut self, what: &str) -> SyncError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<kith_plugin_sdk::Error> for SyncError {
    /// A Kith-side failure (a record refused, a conflict): Kith's data, not the network.
    fn from(err: kith_plugin_sdk::Error) -> SyncError {
        let retryable =
            matches!(err.code, kith_plugin_sdk::ErrorCode::Conflict | kith_plugin_sdk::ErrorCode::Unavailable);
        SyncError { message: err.to_string(), retryable, status: None }
    }
}

impl From<SyncError> for kith_plugin_sdk::Error {
    fn from(err: SyncError) -> kith_plugin_sdk::Error {
        let code = if err.retryable {
            kith_plugin_sdk::ErrorCode::Unavailable
        } else {
            kith_plugin_sdk::ErrorCode::InvalidInput
        };
        kith_plugin_sdk::Error::new(code, err.message)
    }
}

pub(crate) type SyncResult<T> = Result<T, SyncError>;

/// Which side owns a field: on a conflict (both changed it since the last sync) the owner's
/// value wins on both sides, and the conflict is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Crm,
    Erp,
}

impl Owner {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Owner::Crm => "CRM",
            Owner::Erp => "ERP",
        }
    }
}

/// The company fields synchronised with the ERP, by Kith name, and their owners: the ERP keeps
/// the billing address and the tax identifier, the CRM the rest. A field under `customFields`
/// is one of the custom fields the plugin defines.
pub(crate) const COMPANY_FIELDS: &[(&str, Owner)] = &[
    ("name", Owner::Crm),
    ("domain", Owner::Crm),
    ("email", Owner::Crm),
    ("phone", Owner::Crm),
    ("addressStreet", Owner::Erp),
    ("addressCity", Owner::Erp),
    ("addressPostalCode", Owner::Erp),
    ("addressCountry", Owner::Erp),
    ("taxIdentifier", Owner::Erp),
];

/// The company fields kept as custom fields.
pub(crate) const COMPANY_CUSTOM: &[&str] = &["taxIdentifier", "email", "phone"];

/// A field both sides changed differently since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) field: String,
    pub(crate) crm: Option<String>,
    pub(crate) erp: Option<String>,
    pub(crate) winner: Owner,
}

/// What a three-way merge decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Merge {
    /// Fields to write in Kith.
    pub(crate) to_kith: Fields,
    /// Fields to write in the ERP.
    pub(crate) to_erp: Fields,
    pub(crate) conflicts: Vec<Conflict>,
    /// The values both sides hold once the writes are done: the next merge's base.
    pub(crate) agreed: Fields,
}

/// Trimmed, empty as `None`.
pub(crate) fn clean(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Merges a record's fields: `base` is what both sides held at the last sync (a field missing
/// from it was never synced), `kith` and `erp` what they hold now. A field changed on one
/// side only goes to the other; changed on both, differently, the owner wins and it is a
/// conflict; never synced and different, the side that has a value gives it (the owner's when
/// both do).
pub(crate) fn merge(fields: &[(&str, Owner)], base: &Fields, kith: &Fields, erp: &Fields) -> Merge {
    let mut out = Merge::default();
    for &(field, owner) in fields {
        let k = clean(kith.get(field).and_then(Option::as_deref));
        let e = clean(erp.get(field).and_then(Option::as_deref));
        let agreed = if k == e {
            k
        } else {
            match base.get(field) {
                None => match (&k, &e, owner) {
                    (Some(_), None, _) | (Some(_), Some(_), Owner::Crm) => {
                        out.to_erp.insert(field.to_owned(), k.clone());
                        k
                    }
                    _ => {
                        out.to_kith.insert(field.to_owned(), e.clone());
                        e
                    }
                },
                Some(b) => {
                    let b = clean(b.as_deref());
                    if k == b {
                        out.to_kith.insert(field.to_owned(), e.clone());
                        e
                    } else if e == b {
                        out.to_erp.insert(field.to_owned(), k.clone());
                        k
                    } else {
                        out.conflicts.push(Conflict {
                            field: field.to_owned(),
                            crm: k.clone(),
                            erp: e.clone(),
                            winner: owner,
                        });
                        match owner {
                            Owner::Crm => {
                                out.to_erp.insert(field.to_owned(), k.clone());
                                k
                            }
                            Owner::Erp => {
                                out.to_kith.insert(field.to_owned(), e.clone());
                                e
                            }
                        }
                    }
                }
            }
        };
        out.agreed.insert(field.to_owned(), agreed);
    }
    out
}

/// A record of the ERP: its id and its fields in Kith's names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErpRecord {
    pub(crate) id: String,
    pub(crate) fields: Fields,
}

impl ErpRecord {
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Option::as_deref)
    }
}

/// What the ERP's records a pull reads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Products: `code`, `name`, `listPrice`, `currency`, `unit`, `productType`, `salable`,
    /// `active`.
    Products,
    /// Parties as companies: [`COMPANY_FIELDS`], plus `key` (the Kith key the party carries,
    /// if Kith made it), `internal` (the ERP's own company: never imported), `active`.
    Parties,
    /// Sales Kith made: `key`, `number`, `state`.
    Sales,
    /// Customer invoices: `party`, `number`, `invoiceDate`, `total`, `amountDue`,
    /// `currency`, `state` (Kith's enum), `reference`.
    Invoices,
}

impl Stream {
    pub(crate) const ALL: [Stream; 4] = [Stream::Products, Stream::Parties, Stream::Sales, Stream::Invoices];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Products => "products",
            Stream::Parties => "parties",
            Stream::Sales => "sales",
            Stream::Invoices => "invoices",
        }
    }
}

/// A page of a pull.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Changes {
    pub(crate) records: Vec<ErpRecord>,
    /// Where the next page starts (opaque to the engine, kept in kv).
    pub(crate) position: serde_json::Value,
    /// Whether this was the last page for now.
    pub(crate) done: bool,
}

/// A sale line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// The ERP product's id.
    pub(crate) product: String,
    pub(crate) quantity: Decimal,
    pub(crate) unit_price: Decimal,
    pub(crate) description: String,
}

/// A sale to make for a deal won.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    /// `kith:deal:ID`: how the ERP's sale is found again after a crash.
    pub(crate) key: String,
    /// The ERP party's id.
    pub(crate) party: String,
    pub(crate) currency: Option<String>,
    pub(crate) description: String,
    pub(crate) lines: Vec<Line>,
}

/// A sale of the ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sale {
    pub(crate) id: String,
    pub(crate) number: Option<String>,
    /// The ERP's state (`draft`, `quotation`, `confirmed`, `processing`, `done`...).
    pub(crate) state: String,
}

/// How far a deal won's sale goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaleTarget {
    Draft,
    Quotation,
    Confirmed,
}

/// What the engine needs of an ERP. Creates are found again by a key the ERP record carries,
/// so a retry after a crash links instead of creating twice.
pub(crate) trait Erp {
    /// The party carrying `key` (`kith:company:ID`), if any.
    fn find_party(&mut self, key: &str) -> SyncResult<Option<String>>;
    /// Parties by id, as [`Stream::Parties`] records; missing ones are left out.
    fn read_parties(&mut self, ids: &[String]) -> SyncResult<Vec<ErpRecord>>;
    /// Creates a party carrying `key` with `fields`; answers its id and the fields the ERP
    /// could not hold (a country it does not know).
    fn create_party(&mut self, key: &str, fields: &Fields) -> SyncResult<(String, Vec<String>)>;
    /// Writes `changes` to a party; answers the fields the ERP could not hold.
    fn update_party(&mut self, id: &str, changes: &Fields) -> SyncResult<Vec<String>>;
    /// Deactivates (or reactivates) a party.
    fn set_party_active(&mut self, id: &str, active: bool) -> SyncResult<()>;
    /// Creates or updates a person of a party (`name`, `email`, `phone`), found by `existing`
    /// or by `key`; answers its id.
    fn upsert_person(&mut self, party: &str, existing: Option<&str>, key: &str, person: &Fields) -> SyncResult<String>;
    /// Removes a person from its party.
    fn remove_person(&mut self, id: &str) -> SyncResult<()>;
    /// The product with `code`, if any.
    fn find_product(&mut self, code: &str) -> SyncResult<Option<ErpRecord>>;
    /// The sale carrying `key`, if any.
    fn find_sale(&mut self, key: &str) -> SyncResult<Option<Sale>>;
    /// Creates a sale (a draft).
    fn create_sale(&mut self, order: &Order) -> SyncResult<Sale>;
    /// Moves a sale on to `target` (a no-op when it is there or past it).
    fn advance_sale(&mut self, sale: &Sale, target: SaleTarget) -> SyncResult<Sale>;
    /// A page of what changed in `stream` from `position` (`None`: from the start); a new
    /// cycle (`rewind`) starts a little before the position, for writes committed late.
    fn changes(
        &mut self,
        stream: Stream,
        position: Option<&serde_json::Value>,
        rewind: bool,
        limit: u32,
    ) -> SyncResult<Changes>;
    /// Requests sent so far.
    fn requests(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, Option<&str>)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned))).collect()
    }

    const SPEC: &[(&str, Owner)] = &[("name", Owner::Crm), ("addressCity", Owner::Erp)];

    #[test]
    fn a_change_on_one_side_goes_to_the_other() {
        let base = fields(&[("name", Some("Acme")), ("addressCity", Some("Paris"))]);
        let kith = fields(&[("name", Some("Acme Ltd")), ("addressCity", Some("Paris"))]);
        let erp = fields(&[("name", Some("Acme")), ("addressCity", Some("Lyon"))]);
        let m = merge(SPEC, &base, &kith, &erp);
        assert_eq!(m.to_erp, fields(&[("name", Some("Acme Ltd"))]));
        assert_eq!(m.to_kith, fields(&[("addressCity", Some("Lyon"))]));
        assert!(m.conflicts.is_empty());
        assert_eq!(m.agreed, fields(&[("name", Some("Acme Ltd")), ("addressCity", Some("Lyon"))]));
    }

    #[test]
    fn a_conflict_goes_to_the_owner_and_is_reported() {
        let base = fields(&[("name", Some("Acme")), ("addressCity", Some("Paris"))]);
        let kith = fields(&[("name", Some("Acme CRM")), ("addressCity", Some("Nice"))]);
        let erp = fields(&[("name", Some("Acme ERP")), ("addressCity", Some("Lyon"))]);
        let m = merge(SPEC, &base, &kith, &erp);
        assert_eq!(m.to_erp, fields(&[("name", Some("Acme CRM"))]));
        assert_eq!(m.to_kith, fields(&[("addressCity", Some("Lyon"))]));
        assert_eq!(m.conflicts.len(), 2);
        assert_eq!(m.conflicts[0].winner, Owner::Crm);
        assert_eq!(m.conflicts[1].winner, Owner::Erp);
        assert_eq!(m.conflicts[1].crm.as_deref(), Some("Nice"));
    }

    #[test]
    fn never_synced_fields_take_the_value_there_is() {
        let kith = fields(&[("name", Some("Acme")), ("addressCity", Some("Paris"))]);
        let erp = fields(&[("name", None), ("addressCity", Some("  "))]);
        let m = merge(SPEC, &Fields::new(), &kith, &erp);
        assert_eq!(m.to_erp, fields(&[("name", Some("Acme")), ("addressCity", Some("Paris"))]));
        assert!(m.to_kith.is_empty() && m.conflicts.is_empty());
        // Both set: the owner's, without a conflict (there was no common past).
        let erp = fields(&[("name", Some("ACME")), ("addressCity", Some("Lyon"))]);
        let m = merge(SPEC, &Fields::new(), &kith, &erp);
        assert_eq!(m.to_erp, fields(&[("name", Some("Acme"))]));
        assert_eq!(m.to_kith, fields(&[("addressCity", Some("Lyon"))]));
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn equal_sides_change_nothing_and_whitespace_is_not_a_change() {
        let base = fields(&[("name", Some("Acme")), ("addressCity", None)]);
        let kith = fields(&[("name", Some(" Acme ")), ("addressCity", Some(""))]);
        let erp = fields(&[("name", Some("Acme"))]);
        let m = merge(SPEC, &base, &kith, &erp);
        assert_eq!(m, Merge { agreed: fields(&[("name", Some("Acme")), ("addressCity", None)]), ..Merge::default() });
    }
}

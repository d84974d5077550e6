//! Table-driven tests of the pure domain rules.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::domain::currency::validate_amount;
use crate::domain::custom_field::{CustomFieldDef, validate_values};
use crate::domain::filter::Filter;
use crate::domain::object::Registry;
use crate::domain::rules::{self, Mode};
use crate::domain::ticket::{SlaPolicy, check_transition, sla_due};
use crate::domain::value::{FieldKind, Fields, Value, normalize_domain, normalize_email};

#[track_caller]
fn check_transitions(from: &str, allowed: &[&str]) {
    for to in crate::domain::ticket::STATUSES {
        let ok = check_transition(from, to).is_ok();
        assert_eq!(ok, allowed.contains(to), "{from} -> {to}");
    }
}

#[test]
fn ticket_transitions() {
    check_transitions("NEW", &["OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"]);
    check_transitions("OPEN", &["PENDING", "ON_HOLD", "SOLVED"]);
    check_transitions("PENDING", &["OPEN", "ON_HOLD", "SOLVED"]);
    check_transitions("ON_HOLD", &["OPEN", "PENDING", "SOLVED"]);
    check_transitions("SOLVED", &["OPEN", "CLOSED"]);
    check_transitions("CLOSED", &[]);
    let err = check_transition("CLOSED", "OPEN").unwrap_err().to_string();
    assert!(err.contains("none: it is final"), "{err}");
}

#[test]
fn sla_due_times() {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let (first, resolution) = sla_due(t, SlaPolicy { first_response_minutes: 90, resolution_minutes: 24 * 60 });
    assert_eq!(first, Utc.with_ymd_and_hms(2026, 1, 1, 13, 30, 0).unwrap());
    assert_eq!(resolution, Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap());
}

#[test]
fn amounts_respect_their_currency() {
    let cases: &[(&str, &str, Result<(), &str>)] = &[
        ("10.25", "EUR", Ok(())),
        ("10.255", "EUR", Err("2 decimal places")),
        ("10", "JPY", Ok(())),
        ("10.5", "JPY", Err("0 decimal places")),
        ("1.234", "BHD", Ok(())),
        ("-1", "USD", Err("negative")),
        ("1", "XYZ", Err("ISO 4217")),
        ("100000000000000", "USD", Err("too large")),
        ("10.50", "USD", Ok(())),
    ];
    for (amount, currency, expected) in cases {
        let res = validate_amount("amount", amount.parse::<Decimal>().unwrap(), currency);
        match (res, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{amount} {currency}: {e}"),
            (res, expected) => panic!("{amount} {currency}: got {res:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn emails_and_domains() {
    for (input, ok) in [
        ("ada@example.org", true),
        (" Ada@Example.ORG ", true),
        ("a.b+c@sub.example.co.uk", true),
        ("no-at.example.org", false),
        ("a@b", false),
        ("a@@b.org", false),
        ("a b@c.org", false),
        ("@c.org", false),
        ("a@.c.org", false),
        ("a@c..org", false),
    ] {
        assert_eq!(normalize_email("email", input).is_ok(), ok, "{input}");
    }
    for (input, expected) in [
        ("Example.org", Some("example.org")),
        ("https://www.example.org/", Some("example.org")),
        ("http://shop.example.org", Some("shop.example.org")),
        ("not a domain", None),
        ("localhost", None),
    ] {
        assert_eq!(normalize_domain("domain", input).ok().as_deref(), expected, "{input}");
    }
}

#[test]
fn values_parse_by_kind() {
    let cases: Vec<(FieldKind, &str, Option<Value>)> = vec![
        (FieldKind::Int, "42", Some(Value::Int(42))),
        (FieldKind::Int, "4.2", None),
        (FieldKind::Decimal, "12.50", Some(Value::Decimal(Decimal::new(1250, 2)))),
        (FieldKind::Decimal, "1e3", None),
        (FieldKind::Bool, "Yes", Some(Value::Bool(true))),
        (FieldKind::Bool, "maybe", None),
        (FieldKind::Date, "2026-02-28", Some(Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()))),
        (FieldKind::Date, "2026-02-30", None),
        (FieldKind::Currency, "eur", Some(Value::Text("EUR".into()))),
        (FieldKind::enumeration(&["LOW", "HIGH"]), "high", Some(Value::Text("HIGH".into()))),
        (FieldKind::enumeration(&["LOW", "HIGH"]), "mid", None),
        (FieldKind::Url, "https://x.org/a", Some(Value::Text("https://x.org/a".into()))),
        (FieldKind::Url, "javascript:alert(1)", None),
        (FieldKind::Text, "   ", Some(Value::Null)),
        (
            FieldKind::DateTime,
            "2026-01-01T10:00:00+02:00",
            Some(Value::DateTime(Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap())),
        ),
    ];
    for (kind, text, expected) in cases {
        assert_eq!(Value::parse("f", &kind, text).ok(), expected, "{kind:?} {text:?}");
    }
    // JSON numbers become decimals through their text, never through a float.
    let v = Value::from_json("amount", &FieldKind::Decimal, &json!(0.1)).unwrap();
    assert_eq!(v, Value::Decimal(Decimal::new(1, 1)));
}

#[test]
fn custom_field_values() {
    let defs = vec![
        CustomFieldDef {
            object: "contact".into(),
            key: "tier".into(),
            label: "Tier".into(),
            kind: "SELECT".into(),
            required: true,
            options: vec!["gold".into()],
        },
        CustomFieldDef {
            object: "contact".into(),
            key: "langs".into(),
            label: "Languages".into(),
            kind: "MULTI_SELECT".into(),
            required: false,
            options: vec!["en".into(), "fr".into()],
        },
        CustomFieldDef {
            object: "contact".into(),
            key: "budget".into(),
            label: "Budget".into(),
            kind: "DECIMAL".into(),
            required: false,
            options: vec![],
        },
    ];
    for def in &defs {
        def.validate(&Registry::core()).unwrap();
    }
    let ok = validate_values(&defs, None, Some(&json!({"tier": "gold", "langs": ["fr", "en", "fr"], "budget": 10.10})))
        .unwrap();
    assert_eq!(ok, json!({"tier": "gold", "langs": ["fr", "en"], "budget": "10.1"}));
    let err = validate_values(&defs, None, Some(&json!({"langs": ["en"]}))).unwrap_err().to_string();
    assert!(err.contains("customFields.tier") && err.contains("required"), "{err}");
    let err = validate_values(&defs, None, Some(&json!({"tier": "gold", "langs": ["de"]}))).unwrap_err().to_string();
    assert!(err.contains("`de` is not one of en, fr"), "{err}");
    let bad_defs = [
        CustomFieldDef { kind: "SELECT".into(), options: vec![], ..defs[0].clone() },
        CustomFieldDef { key: "Bad Key".into(), ..defs[2].clone() },
        CustomFieldDef { object: "pipeline".into(), ..defs[2].clone() },
        CustomFieldDef { kind: "COLOUR".into(), ..defs[2].clone() },
    ];
    for def in bad_defs {
        assert!(def.validate(&Registry::core()).is_err(), "{def:?}");
    }
}

#[test]
fn input_checks_and_contact_rules() {
    let registry = Registry::core();
    let contact = registry.get("contact").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let mut fields = Fields::new();
    fields.insert("firstName".into(), Value::Text("  Ada ".into()));
    fields.insert("emailOptIn".into(), Value::Bool(true));
    rules::check_input(contact, &fields, Mode::Create).unwrap();
    rules::prepare(contact, None, &mut fields, now).unwrap();
    assert_eq!(fields["firstName"], Value::Text("Ada".into()), "trimmed");
    assert_eq!(fields["emailOptInAt"], Value::DateTime(now), "consent stamped");
    assert_eq!(fields["lifecycleStage"], Value::Text("LEAD".into()));
    let mut wrong = Fields::new();
    wrong.insert("firstName".into(), Value::Int(3));
    assert!(rules::check_input(contact, &wrong, Mode::Create).is_err());
    let mut read_only = Fields::new();
    read_only.insert("createdAt".into(), Value::DateTime(now));
    assert!(rules::check_input(contact, &read_only, Mode::Create).is_err());
    let stage = registry.get("stage").unwrap();
    let mut create_only = Fields::new();
    create_only.insert("pipelineId".into(), Value::Uuid(uuid::Uuid::now_v7()));
    assert!(rules::check_input(stage, &create_only, Mode::Update).is_err());
}

#[test]
fn filters_are_type_checked() {
    let registry = Registry::core();
    let contact = registry.get("contact").unwrap();
    let ok = [
        json!({"firstName": {"eq": "Ada"}}),
        json!({"and": [{"createdAt": {"gte": "2026-01-01T00:00:00Z"}}, {"not": {"lifecycleStage": {"in": ["lead", "CUSTOMER"]}}}]}),
        json!({"tags": {"in": ["vip"]}}),
        json!(null),
    ];
    for filter in ok {
        Filter::from_json(contact, &[], &filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    }
    let mut deep = json!({"firstName": {"eq": "x"}});
    for _ in 0..12 {
        deep = json!({"not": deep});
    }
    let too_many: Vec<_> = (0..150).map(|i| json!({"firstName": {"eq": format!("{i}")}})).collect();
    for (filter, fragment) in [
        (json!({"lifecycleStage": {"eq": "ALIEN"}}), "not one of"),
        (json!({"createdAt": {"gt": 5}}), "expected a string"),
        (json!({"firstName": {"eq": null}}), "isNull"),
        (json!({"customFields": {"tier": {"eq": "x"}}}), "no such custom field"),
        (json!({"firstName": "Ada"}), "operators"),
        (deep, "deeper"),
        (json!({"or": too_many}), "conditions"),
    ] {
        let err = Filter::from_json(contact, &[], &filter).unwrap_err().to_string();
        assert!(err.contains(fragment), "{filter}: {err}");
    }
}

/// A plugin object `name` of `plugin` with references `(field, target, on_delete)`.
fn plugin_object(
    plugin: &str,
    name: &str,
    refs: &[(&str, &str, crate::domain::object::OnDelete)],
) -> crate::domain::object::ObjectDef {
    use crate::domain::object::{FieldDef, ObjectDef};
    let mut def = ObjectDef::new(name, &format!("{name}s"), "");
    def.plugin = Some(plugin.to_owned());
    def.table = format!("p_{plugin}_{name}");
    for (field, target, on_delete) in refs {
        let mut field = FieldDef::new(field, FieldKind::Ref((*target).to_owned()));
        field.on_delete = *on_delete;
        def = def.field(field);
    }
    def.finish()
}

#[test]
fn referrers_reach_live_and_dormant_objects() {
    use crate::domain::object::OnDelete::{Cascade, Keep, Restrict, SetNull};
    let mut registry = Registry::core();
    registry.extend(vec![plugin_object("live", "gift", &[("contactId", "contact", Cascade)])]).unwrap();
    let mut same = registry.clone();
    // A disabled plugin: its `deal` is its own object, not the core one; `pledge` references both.
    registry.set_dormant(vec![
        plugin_object("off", "pledge", &[("contactId", "contact", Restrict), ("dealId", "deal", SetNull)]),
        plugin_object("off", "deal", &[("ownerId", "contact", Keep)]),
    ]);
    assert!(!registry.same_as(&same), "dormant objects count");
    assert!(registry.objects().all(|d| d.plugin.as_deref() != Some("off")), "dormant objects are not in the API");
    same.set_dormant(registry.dormant().map(|d| (**d).clone()).collect());
    assert!(registry.same_as(&same));

    #[track_caller]
    fn check(registry: &Registry, target: &crate::domain::object::ObjectDef, expect: &[(&str, bool, &str)]) {
        let got: Vec<(String, bool, String)> = registry
            .referrers(target)
            .into_iter()
            .flat_map(|r| {
                r.fields
                    .iter()
                    .map(|f| (r.object.name.clone(), r.dormant, format!("{}:{:?}", f.name, f.on_delete)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let expect: Vec<(String, bool, String)> =
            expect.iter().map(|(o, d, f)| ((*o).to_owned(), *d, (*f).to_owned())).collect();
        assert_eq!(got, expect, "referrers of {}", target.name);
    }
    let core = |name: &str| registry.get(name).unwrap().clone();
    check(
        &registry,
        &core("contact"),
        &[
            ("deal", false, "contactId:Keep"),
            ("ticket", false, "contactId:Keep"),
            ("activity", false, "contactId:Keep"),
            ("consent", false, "contactId:Keep"),
            ("gift", false, "contactId:Cascade"),
            ("deal", true, "ownerId:Keep"),
            ("pledge", true, "contactId:Restrict"),
        ],
    );
    // The core deal: the dormant plugin's `dealId` is to its own deal.
    check(&registry, &core("deal"), &[("activity", false, "dealId:Keep")]);
    let dormant_deal = registry.dormant().find(|d| d.name == "deal").unwrap().clone();
    check(&registry, &dormant_deal, &[("pledge", true, "dealId:SetNull")]);
    check(&registry, &core("gift"), &[]);
}

#[test]
fn fields_some_roles_may_not_read() {
    use crate::domain::actor::Role;
    use crate::domain::object::{FieldDef, ObjectDef};
    let mut ssn = FieldDef::new("ssn", FieldKind::Text);
    ssn.read_role = Role::Agent;
    let mut salary = FieldDef::new("salary", FieldKind::Decimal);
    salary.read_role = Role::Manager;
    let member = ObjectDef::new("member", "members", "A member.")
        .field(FieldDef::new("name", FieldKind::Text))
        .field(ssn)
        .field(salary)
        .titled(&["{name} ({ssn})", "{salary}"], "ssn")
        .finish();
    let get = |field: &str| match field {
        "name" => "Ada".to_owned(),
        "ssn" => "078-05-1120".to_owned(),
        "salary" => "10".to_owned(),
        _ => String::new(),
    };
    // A template that shows a field the role may not read is skipped whole, and so is the
    // naming field.
    for (role, title, fields) in [
        (Role::Viewer, "", vec![]),
        (Role::Agent, "Ada (078-05-1120)", vec!["name", "ssn"]),
        (Role::Manager, "Ada (078-05-1120)", vec!["name", "ssn", "salary"]),
    ] {
        assert_eq!(member.title_of(role, get), title, "{role}");
        assert_eq!(member.title_fields(role), fields, "{role}");
    }
    let blank_name = |field: &str| if field == "name" { String::new() } else { get(field) };
    assert_eq!(member.title_of(Role::Manager, blank_name), "(078-05-1120)");

    let filter = Filter::from_json(
        &member,
        &[],
        &json!({"name": {"eq": "Ada"}, "or": [{"id": {"isNull": true}}, {"not": {"salary": {"gt": 5}}}]}),
    )
    .unwrap();
    assert_eq!(filter.fields(), ["name", "id", "salary"]);
    let err = filter.check_readable(&member, Role::Agent).unwrap_err().to_string();
    assert!(err.contains("filtering on `Member.salary` needs the MANAGER role; you have AGENT"), "{err}");
    assert!(filter.check_readable(&member, Role::Manager).is_ok());

    let mut values = json!({"name": "Ada", "ssn": "x", "salary": "1", "other": 2});
    if let serde_json::Value::Object(map) = &mut values {
        member.redact(Role::Agent, map);
    }
    assert_eq!(values, json!({"name": "Ada", "ssn": "x", "other": 2}));
}

/// A filter evaluated on a record in memory (webhooks do, on the record after a change) agrees
/// with what each operator means in SQL.
#[test]
fn filters_match_records_in_memory() {
    let registry = Registry::core();
    let contact = registry.get("contact").unwrap();
    let custom = [CustomFieldDef {
        object: "contact".into(),
        key: "tier".into(),
        label: "Tier".into(),
        kind: "NUMBER".into(),
        required: false,
        options: vec![],
    }];
    let record = json!({
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "lifecycleStage": "CUSTOMER",
        "createdAt": "2026-03-01T10:00:00.000000Z", "addressCity": null, "customFields": {"tier": 3}
    });
    let record = record.as_object().unwrap();
    let cases = [
        (json!({"firstName": {"eq": "Ada"}}), true),
        (json!({"firstName": {"eq": "ada"}}), false),
        (json!({"firstName": {"neq": "Ada"}}), false),
        (json!({"lifecycleStage": {"in": ["lead", "customer"]}}), true),
        (json!({"lifecycleStage": {"notIn": ["CUSTOMER"]}}), false),
        (json!({"lastName": {"startsWith": "lov"}}), true),
        (json!({"lastName": {"like": "L%e_ace"}}), true),
        (json!({"lastName": {"like": "l%"}}), false),
        (json!({"lastName": {"ilike": "l%"}}), true),
        (json!({"email": {"eq": "ada@example.org"}}), true),
        (json!({"createdAt": {"gte": "2026-01-01T00:00:00Z"}}), true),
        (json!({"createdAt": {"lt": "2026-01-01T00:00:00Z"}}), false),
        (json!({"addressCity": {"isNull": true}}), true),
        (json!({"addressCity": {"eq": "London"}}), false),
        (json!({"addressCity": {"neq": "London"}}), false),
        (json!({"customFields": {"tier": {"gt": 2}}}), true),
        (json!({"customFields": {"tier": {"lte": 2.5}}}), false),
        (json!({"or": [{"firstName": {"eq": "Bob"}}, {"not": {"lastName": {"eq": "Byron"}}}]}), true),
        (json!({"and": [{"firstName": {"eq": "Ada"}}, {"lastName": {"eq": "Byron"}}]}), false),
        (json!({"tags": {"eq": "vip"}}), false),
        (json!(null), true),
    ];
    for (filter, expected) in cases {
        let parsed = Filter::from_json(contact, &custom, &filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(parsed.matches(record), expected, "{filter}");
    }
}

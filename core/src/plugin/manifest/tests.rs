//! Tests of manifest parsing and validation: good manifests, and each key refused with a message naming it.

use super::*;

const GOOD: &str = r#"
manifest_version = 1
id = "welcome"
name = "Welcome"
version = "1.2.3"
sdk_version = "1.0.0"
capabilities = ["contacts:read", "deals:read", "activities:write", "kv"]
events = ["contact.created", "deal.*"]
[before_write]
objects = ["contact"]
on_failure = "deny"
[settings.blocked]
type = "string_list"
default = ["spam.test"]
[settings.api_key]
type = "string"
secret = true
"#;

#[test]
fn a_good_manifest_parses() {
    let m = Manifest::parse(GOOD).unwrap();
    assert_eq!(m.id, "welcome");
    assert_eq!(m.before_write.as_ref().unwrap().timeout_ms, 20);
    assert_eq!(m.before_write.as_ref().unwrap().on_failure, FailurePolicy::Deny);
    assert_eq!(m.limits, Limits::default());
    assert_eq!(m.delivery.partitions, 1, "one partition unless asked: outbox order");
    assert!(m.subscribes("deal.stage_changed"));
    assert!(m.subscribes("contact.created"));
    assert!(!m.subscribes("contact.updated"));
    let grants: std::collections::BTreeSet<String> = ["contacts:read".to_owned()].into();
    assert!(m.receives("contact.created", "contact", &grants));
    assert!(!m.receives("deal.updated", "deal", &grants), "no deals:read granted");
    let settings = m.effective_settings(&serde_json::json!({}));
    assert_eq!(settings["blocked"], serde_json::json!(["spam.test"]));
    assert!(!settings.contains_key("api_key"), "secrets are never handed out");
}

#[test]
fn bad_manifests_name_the_key() {
    let cases = [
        (GOOD.replace("name = \"Welcome\"", "name = \"Welcome\"\ncolour = \"red\""), "colour"),
        (GOOD.replace("\"kv\"", "\"rockets:launch\""), "capabilities"),
        (GOOD.replace("\"deals:read\", ", ""), "deals:read"),
        (GOOD.replace("id = \"welcome\"", "id = \"Welcome!\""), "id"),
        (GOOD.replace("version = \"1.2.3\"", "version = \"1.2\""), "version"),
        (GOOD.replace("\"deal.*\"", "\"spaceship.landed\""), "events"),
        (GOOD.replace("on_failure = \"deny\"", ""), "on_failure"),
        (
            GOOD.replace("on_failure = \"deny\"", "on_failure = \"maybe\""),
            "`before_write.on_failure`: unknown variant `maybe`",
        ),
        (format!("{GOOD}\n[limits]\nmemory_mib = \"lots\"\n"), "`limits.memory_mib`: invalid type"),
        (GOOD.replace("default = [\"spam.test\"]", "default = 3"), "settings.blocked.default"),
        (GOOD.replace("manifest_version = 1", "manifest_version = 2"), "manifest_version"),
        (GOOD.replace("objects = [\"contact\"]", "objects = [\"user\"]"), "before_write.objects"),
        (format!("{GOOD}\n[limits]\nmemory_mib = 4096\n"), "limits.memory_mib"),
        (format!("{GOOD}\n[delivery]\npartitions = 0\n"), "delivery.partitions"),
        (format!("{GOOD}\n[delivery]\npartitions = 65\n"), "delivery.partitions"),
        (format!("{GOOD}\n[delivery]\npartitions = -1\n"), "delivery.partitions"),
        (format!("{GOOD}\n[delivery]\norder = \"global\"\n"), "order"),
    ];
    for (text, key) in cases {
        let err = Manifest::parse(&text).unwrap_err().to_string();
        assert!(err.contains(key), "`{err}` should name `{key}`");
    }
}

#[test]
fn settings_are_typed() {
    assert_eq!(
        SettingKind::StringList.parse_text("k", "a.test, b.test").unwrap(),
        serde_json::json!(["a.test", "b.test"])
    );
    assert_eq!(SettingKind::Integer.parse_text("k", "42").unwrap(), serde_json::json!(42));
    assert!(SettingKind::Integer.parse_text("k", "forty").is_err());
    assert!(SettingKind::Boolean.check("k", &serde_json::json!("yes")).is_err());
}

#[test]
fn an_object_title_names_fields_a_title_can_show() {
    let object = |title: &str| {
        format!(
            "{GOOD}\n[[objects]]\nname = \"gift\"\nplural = \"gifts\"\ntitle = \"{title}\"\n\
             [[objects.fields]]\nname = \"amount\"\ntype = \"money\"\n\
             [[objects.fields]]\nname = \"extra\"\ntype = \"json\"\n"
        )
    };
    let parsed = Manifest::parse(&object("{amount} {amountCurrency} on {createdAt}")).unwrap();
    assert_eq!(parsed.objects[0].title.as_deref(), Some("{amount} {amountCurrency} on {createdAt}"));
    let def = crate::plugin::objects::object_def("welcome", &parsed.objects[0]);
    let title = def.title_of(crate::domain::actor::Role::Viewer, |field| match field {
        "amount" => "25".into(),
        "amountCurrency" => "USD".into(),
        "createdAt" => "2026-12-06".into(),
        _ => String::new(),
    });
    assert_eq!(title, "25 USD on 2026-12-06");
    for (title, why) in [("{shoeSize}", "`{shoeSize}`"), ("{extra}", "`{extra}`"), ("a gift", "at least one")] {
        let err = Manifest::parse(&object(title)).unwrap_err().to_string();
        assert!(err.contains("objects[0].title") && err.contains(why), "{title}: {err}");
    }
}

#[test]
fn a_reference_says_what_deleting_its_target_does() {
    let object = |field: &str| {
        format!(
            "{GOOD}\n[[objects]]\nname = \"gift\"\nplural = \"gifts\"\n\
             [[objects.fields]]\nname = \"note\"\ntype = \"text\"\n\
             [[objects.fields]]\n{field}\n"
        )
    };
    let reference = "name = \"contactId\"\ntype = \"ref\"\ntarget = \"contact\"";
    for (extra, expected) in [
        ("", OnDelete::Keep),
        ("on_delete = \"keep\"", OnDelete::Keep),
        ("on_delete = \"restrict\"", OnDelete::Restrict),
        ("on_delete = \"set_null\"", OnDelete::SetNull),
        ("on_delete = \"cascade\"", OnDelete::Cascade),
        ("required = true\non_delete = \"cascade\"", OnDelete::Cascade),
    ] {
        let parsed = Manifest::parse(&object(&format!("{reference}\n{extra}"))).unwrap();
        let def = crate::plugin::objects::object_def("welcome", &parsed.objects[0]);
        assert_eq!(def.field_def("contactId").map(|f| f.on_delete), Some(expected), "{extra}");
        assert_eq!(def.field_def("note").map(|f| f.on_delete), Some(OnDelete::Keep));
    }
    for (field, why) in [
        (format!("{reference}\non_delete = \"explode\""), "unknown variant `explode`"),
        (format!("{reference}\nrequired = true\non_delete = \"set_null\""), "a required reference cannot be cleared"),
        ("name = \"amount\"\ntype = \"integer\"\non_delete = \"cascade\"".to_owned(), "only `ref` fields"),
    ] {
        let err = Manifest::parse(&object(&field)).unwrap_err().to_string();
        assert!(err.contains("on_delete") && err.contains(why), "{field}: {err}");
    }
}

#[test]
fn a_field_says_which_roles_may_read_it() {
    use crate::domain::actor::Role;
    let object = |extra: &str| {
        format!(
            "{GOOD}\n[[objects]]\nname = \"member\"\nplural = \"members\"\n\
             [[objects.fields]]\nname = \"ssn\"\ntype = \"text\"\n{extra}\n\
             [[objects.fields]]\nname = \"pay\"\ntype = \"money\"\npersonal = true\nread_role = \"MANAGER\"\n"
        )
    };
    for (extra, expected) in [
        ("", Role::Viewer),
        ("personal = true", Role::Agent),
        ("personal = true\nread_role = \"VIEWER\"", Role::Viewer),
        ("read_role = \"ADMIN\"", Role::Admin),
    ] {
        let parsed = Manifest::parse(&object(extra)).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let def = crate::plugin::objects::object_def("welcome", &parsed.objects[0]);
        let role = |name: &str| def.field_def(name).map(|f| f.read_role);
        assert_eq!(role("ssn"), Some(expected), "{extra}");
        // A money field's currency goes with its amount.
        assert_eq!((role("pay"), role("payCurrency")), (Some(Role::Manager), Some(Role::Manager)));
    }
    let err = Manifest::parse(&object("read_role = \"BOSS\"")).unwrap_err().to_string();
    assert!(err.contains("objects[0].fields[0].read_role") && err.contains("`BOSS` is not VIEWER"), "{err}");
    // The grant that lets aggregates use personal fields is a capability like the others.
    let granted = GOOD.replace("\"kv\"]", "\"kv\", \"personal:aggregate\"]");
    assert!(Manifest::parse(&granted).unwrap().capabilities.contains(&"personal:aggregate".to_owned()));
    let err = Manifest::parse(&GOOD.replace("\"kv\"]", "\"personal:read\"]")).unwrap_err().to_string();
    assert!(err.contains("personal:aggregate"), "the known capabilities are listed: {err}");
}

#[test]
fn an_origin_granted_as_a_setting_names_a_plain_string_setting() {
    let with = |capability: &str, extra: &str| {
        Manifest::parse(
            &GOOD
                .replace("\"kv\"]", &format!("\"kv\", \"{capability}\"]"))
                .replace("[settings.blocked]", &format!("{extra}[settings.blocked]")),
        )
    };
    let url = "[settings.url]\ntype = \"string\"\n\n";
    assert!(with("http-private:setting:url", url).is_ok());
    assert!(with("http:setting:url", url).is_ok());
    let missing = with("http:setting:url", "").unwrap_err().to_string();
    assert!(missing.contains("names the setting `url`"), "{missing}");
    let secret = with("http:setting:api_key", "").unwrap_err().to_string();
    assert!(secret.contains("not secret"), "a secret setting cannot grant an origin: {secret}");
    let list = with("http:setting:blocked", "").unwrap_err().to_string();
    assert!(list.contains("string setting"), "{list}");
}

#[test]
fn another_plugins_records_are_granted_read_only() {
    assert!(check_capability("donors/donations:read").is_ok());
    assert!(check_capability("segments:read").is_ok(), "segments are core objects plugins may read");
    assert!(check_capability("consents:write").is_ok());
    let write = check_capability("donors/donations:write").unwrap_err().to_string();
    assert!(write.contains("read, not written"), "{write}");
    for bad in
        ["Donors/donations:read", "donors/:read", "donors/donations", "/donations:read", "donors/dona-tions:read"]
    {
        assert!(check_capability(bad).is_err(), "{bad}");
    }
}

#[test]
fn kept_custom_fields_need_a_known_kind_a_core_object_and_its_write_grant() {
    let field = |object: &str, kind: &str| {
        format!(
            "{GOOD}\n[[custom_fields]]\nobject = \"{object}\"\nkey = \"tier\"\nlabel = \"Tier\"\nkind = \"{kind}\"\n"
        )
    };
    let granted = |text: String| {
        text.replace("\"contacts:read\", \"deals:read\"", "\"contacts:read\", \"contacts:write\", \"deals:read\"")
    };
    let ok = Manifest::parse(&granted(field("contact", "NUMBER"))).unwrap();
    assert_eq!(ok.custom_fields[0].definition().kind, "NUMBER");
    for (text, key, words) in [
        (granted(field("contact", "FLOAT")), "custom_fields[0].kind", "not one of"),
        (granted(field("donation", "NUMBER")), "custom_fields[0].object", "not a core object"),
        (field("contact", "NUMBER"), "custom_fields[0].object", "contacts:write"),
    ] {
        match Manifest::parse(&text) {
            Err(PluginError::Manifest { key: got, reason }) => {
                assert_eq!(got, key, "{reason}");
                assert!(reason.contains(words), "{reason}");
            }
            other => panic!("{key}: {other:?}"),
        }
    }
}

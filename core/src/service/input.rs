//! Caller input for a write: typed fields, custom field values and tags.

use serde_json::Value as Json;

use crate::domain::DomainError;
use crate::domain::object::ObjectDef;
use crate::domain::value::{Fields, Value};
use crate::error::Result;

/// What a caller asks to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// Field values by API name (`customFields` excluded).
    pub fields: Fields,
    /// Custom field values to set (`null` removes one); merged with the stored ones on update.
    pub custom_fields: Option<Json>,
    /// The record's full tag list, replacing the stored one.
    pub tags: Option<Vec<String>>,
    /// Tags to add and to remove, the others kept (`addTags`, `removeTags`, as plugins write
    /// them): made into the full list against the stored tags before the write
    /// ([`TagEdit::apply`]).
    pub tag_edit: Option<TagEdit>,
}

/// Tags to add and remove (names compare case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagEdit {
    /// Added when missing.
    pub add: Vec<String>,
    /// Removed when present.
    pub remove: Vec<String>,
}

impl TagEdit {
    /// The tag list `stored` becomes: the added names appended when missing, then the removed
    /// ones taken out.
    pub fn apply(&self, stored: Vec<String>) -> Vec<String> {
        let mut names = stored;
        for add in &self.add {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(add)) {
                names.push(add.clone());
            }
        }
        names.retain(|n| !self.remove.iter().any(|r| r.eq_ignore_ascii_case(n)));
        names
    }
}

fn names(field: &str, value: &Json) -> Result<Vec<String>> {
    let bad = || DomainError::invalid(field, "expected a list of names");
    let items = value.as_array().ok_or_else(bad)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(item.as_str().ok_or_else(bad)?.to_owned());
    }
    Ok(out)
}

impl Input {
    /// Input with the given fields.
    pub fn fields(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Input {
        Input { fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), ..Input::default() }
    }

    /// Reads input from a JSON object, typing each value by its field's kind.
    pub fn from_json(object: &ObjectDef, json: &Json) -> Result<Input> {
        let map = json.as_object().ok_or_else(|| DomainError::invalid("input", "expected an object"))?;
        let mut input = Input::default();
        for (name, value) in map {
            match name.as_str() {
                "customFields" if object.custom_fields => input.custom_fields = Some(value.clone()),
                "tags" if object.taggable => input.tags = Some(names("tags", value)?),
                "addTags" if object.taggable => {
                    input.tag_edit.get_or_insert_with(TagEdit::default).add = names(name, value)?
                }
                "removeTags" if object.taggable => {
                    input.tag_edit.get_or_insert_with(TagEdit::default).remove = names(name, value)?;
                }
                _ => {
                    let def = object.field_def(name).ok_or_else(|| {
                        DomainError::invalid(name, format!("{} has no field `{name}`", object.type_name))
                    })?;
                    input.fields.insert(name.clone(), Value::from_json(name, &def.kind, value)?);
                }
            }
        }
        if input.tags.is_some() && input.tag_edit.is_some() {
            return Err(DomainError::invalid("tags", "give either `tags` or `addTags` / `removeTags`, not both").into());
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::TagEdit;

    #[test]
    fn a_tag_edit_keeps_the_other_tags() {
        let edit = TagEdit { add: vec!["Newcomer".into(), "donor".into()], remove: vec!["LAPSED".into()] };
        let stored = vec!["Donor".into(), "lapsed".into(), "board".into()];
        assert_eq!(edit.apply(stored), ["Donor", "board", "Newcomer"]);
    }
}

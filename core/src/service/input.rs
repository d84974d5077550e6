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
                "tags" if object.taggable => {
                    let items =
                        value.as_array().ok_or_else(|| DomainError::invalid("tags", "expected a list of names"))?;
                    let mut tags = Vec::with_capacity(items.len());
                    for item in items {
                        tags.push(
                            item.as_str()
                                .ok_or_else(|| DomainError::invalid("tags", "expected a list of names"))?
                                .to_owned(),
                        );
                    }
                    input.tags = Some(tags);
                }
                _ => {
                    let def = object.field_def(name).ok_or_else(|| {
                        DomainError::invalid(name, format!("{} has no field `{name}`", object.type_name))
                    })?;
                    input.fields.insert(name.clone(), Value::from_json(name, &def.kind, value)?);
                }
            }
        }
        Ok(input)
    }
}

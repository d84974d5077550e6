//! Storage of custom field definitions.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::custom_field::CustomFieldDef;
use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::Tx;
use crate::store::codec::{decode, encode};

/// The definitions for `object`, in display order.
pub async fn for_object<C: ConnectionTrait>(db: &C, object: &str) -> Result<Vec<CustomFieldDef>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .from(Alias::new("custom_field_def"))
        .columns(["object", "key", "label", "kind", "required", "options"].map(Alias::new))
        .and_where(Expr::col(Alias::new("object")).eq(object))
        .order_by(Alias::new("position"), Order::Asc);
    let mut out = Vec::new();
    for row in db.query_all(&select).await? {
        let options = match decode(backend, &FieldKind::Json, &row, 5)? {
            Value::Json(Json::Array(items)) => {
                items.into_iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        out.push(CustomFieldDef {
            object: row.try_get_by_index(0)?,
            key: row.try_get_by_index(1)?,
            label: row.try_get_by_index(2)?,
            kind: row.try_get_by_index(3)?,
            required: row.try_get_by_index(4)?,
            options,
        });
    }
    Ok(out)
}

/// Stores a new definition (already validated) at the end of its object's list.
pub async fn insert(tx: &Tx, def: &CustomFieldDef) -> Result<Uuid> {
    tx.forget_custom_fields();
    let backend = tx.backend();
    let position = for_object(tx.conn(), &def.object).await?.len() as i64;
    let id = Uuid::now_v7();
    let options = Json::Array(def.options.iter().cloned().map(Json::String).collect());
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("custom_field_def"))
        .columns(
            ["id", "object", "key", "label", "kind", "required", "options", "position", "created_at"].map(Alias::new),
        )
        .values(
            [
                encode(backend, &FieldKind::Id, &Value::Uuid(id))?,
                def.object.clone().into(),
                def.key.clone().into(),
                def.label.clone().into(),
                def.kind.clone().into(),
                def.required.into(),
                encode(backend, &FieldKind::Json, &Value::Json(options))?,
                position.into(),
                encode(backend, &FieldKind::DateTime, &Value::DateTime(tx.now))?,
            ]
            .into_iter()
            .map(Expr::val),
        )
        .map_err(|e| Error::internal(format!("custom field insert: {e}")))?;
    tx.conn().execute(&insert).await?;
    Ok(id)
}

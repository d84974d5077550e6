//! SQL of plugin-declared objects: the `plugin_object` bookkeeping and the DDL that
//! materialises objects as tables. Identifiers come from validated manifests (lowercase
//! letters, digits and `_`), never from callers of the API; values are bound parameters.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::object::{FieldDef, ObjectDef};
use crate::domain::value::{FieldKind, Fields, Value};
use crate::error::{Error, Result};
use crate::store::codec::encode;

/// One materialised object as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The object's name.
    pub name: String,
    /// Its table.
    pub table: String,
    /// Its declaration (the manifest's `[[objects]]` entry as JSON).
    pub definition: String,
}

fn ident_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks an identifier before it is spliced into DDL.
pub fn check_ident(name: &str) -> Result<()> {
    if ident_ok(name) { Ok(()) } else { Err(Error::internal(format!("`{name}` is not a usable SQL identifier"))) }
}

fn stmt<C: ConnectionTrait>(db: &C, sql: String, values: Vec<DbValue>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

fn params(backend: DbBackend, n: usize) -> Vec<String> {
    (1..=n).map(|i| if backend == DbBackend::Postgres { format!("${i}") } else { "?".to_owned() }).collect()
}

/// The objects recorded for `plugin`.
pub async fn stored<C: ConnectionTrait>(db: &C, plugin: &str) -> Result<Vec<StoredObject>> {
    let p = params(db.get_database_backend(), 1);
    let sql =
        format!("SELECT name, table_name, definition FROM plugin_object WHERE plugin_id = {} ORDER BY name", p[0]);
    let rows = db.query_all_raw(stmt(db, sql, vec![plugin.into()])).await?;
    rows.iter()
        .map(|row| {
            Ok(StoredObject {
                name: row.try_get("", "name")?,
                table: row.try_get("", "table_name")?,
                definition: row.try_get("", "definition")?,
            })
        })
        .collect()
}

/// Records (or re-records) an object's declaration.
pub async fn save<C: ConnectionTrait>(db: &C, plugin: &str, object: &StoredObject, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    let now = encode(backend, &FieldKind::DateTime, &crate::domain::value::Value::DateTime(now))?;
    let p = params(backend, 6);
    let sql = format!(
        "INSERT INTO plugin_object (plugin_id, name, table_name, definition, created_at, updated_at) \
         VALUES ({}, {}, {}, {}, {}, {}) \
         ON CONFLICT (plugin_id, name) DO UPDATE SET table_name = excluded.table_name, \
         definition = excluded.definition, updated_at = excluded.updated_at",
        p[0], p[1], p[2], p[3], p[4], p[5]
    );
    let values = vec![
        plugin.into(),
        object.name.clone().into(),
        object.table.clone().into(),
        object.definition.clone().into(),
        now.clone(),
        now,
    ];
    db.execute_raw(stmt(db, sql, values)).await?;
    Ok(())
}

/// Forgets one object's record.
pub async fn forget<C: ConnectionTrait>(db: &C, plugin: &str, name: &str) -> Result<()> {
    let p = params(db.get_database_backend(), 2);
    let sql = format!("DELETE FROM plugin_object WHERE plugin_id = {} AND name = {}", p[0], p[1]);
    db.execute_raw(stmt(db, sql, vec![plugin.into(), name.into()])).await?;
    Ok(())
}

/// The SQL type of a field of `kind`, per backend (the same representation `codec` expects).
pub(crate) fn column_type(backend: DbBackend, kind: &FieldKind) -> &'static str {
    let pg = backend == DbBackend::Postgres;
    match kind {
        FieldKind::Id | FieldKind::Ref(_) => {
            if pg {
                "uuid"
            } else {
                "text"
            }
        }
        FieldKind::Text | FieldKind::Email | FieldKind::Url | FieldKind::Currency | FieldKind::Enum(_) => "text",
        FieldKind::Int => "bigint",
        FieldKind::Decimal => {
            if pg {
                "numeric(24,4)"
            } else {
                "bigint"
            }
        }
        FieldKind::Bool => "boolean",
        FieldKind::Date => {
            if pg {
                "date"
            } else {
                "text"
            }
        }
        FieldKind::DateTime => {
            if pg {
                "timestamptz"
            } else {
                "text"
            }
        }
        FieldKind::Json => {
            if pg {
                "jsonb"
            } else {
                "text"
            }
        }
    }
}

fn column_sql(backend: DbBackend, field: &FieldDef) -> Result<String> {
    check_ident(&field.column)?;
    let ty = column_type(backend, &field.kind);
    Ok(match field.name.as_str() {
        "id" => format!("\"id\" {ty} NOT NULL PRIMARY KEY"),
        "createdAt" | "updatedAt" => format!("\"{}\" {ty} NOT NULL", field.column),
        "version" => format!("\"version\" {ty} NOT NULL DEFAULT 1"),
        _ => format!("\"{}\" {ty}", field.column),
    })
}

/// The name of the index on `table.column` (`ux_` unique, `ix_` plain); hashed when the
/// readable name would pass PostgreSQL's 63-byte limit.
pub fn index_name(table: &str, column: &str, unique: bool) -> String {
    let prefix = if unique { "ux" } else { "ix" };
    let name = format!("{prefix}_{table}__{column}");
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(format!("{table}.{column}").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// Creates the table of `def` with the indexes its fields ask for.
pub async fn create_table<C: ConnectionTrait>(db: &C, def: &ObjectDef) -> Result<()> {
    check_ident(&def.table)?;
    let backend = db.get_database_backend();
    let columns = def.fields.iter().map(|f| column_sql(backend, f)).collect::<Result<Vec<_>>>()?;
    let sql = format!("CREATE TABLE \"{}\" ({})", def.table, columns.join(", "));
    db.execute_unprepared(&sql).await?;
    // Lists page in id order (UUIDv7, so creation order); live records are what lists show.
    for field in &def.fields {
        create_indexes(db, &def.table, field).await?;
    }
    for columns in &def.indexes {
        create_composite_index(db, &def.table, columns).await?;
    }
    Ok(())
}

/// Creates an index over several columns of `table`.
pub async fn create_composite_index<C: ConnectionTrait>(db: &C, table: &str, columns: &[String]) -> Result<()> {
    db.execute_unprepared(&composite_index_sql(table, columns)?).await?;
    Ok(())
}

/// The `CREATE INDEX` of [`create_composite_index`].
fn composite_index_sql(table: &str, columns: &[String]) -> Result<String> {
    check_ident(table)?;
    for column in columns {
        check_ident(column)?;
    }
    let name = index_name(table, &columns.join("__"), false);
    // Ends with `id`, the keyset tie-break, so a page filtered or sorted by the columns is read
    // in order from the index (as migration 10 does for the core tables).
    let mut list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    if columns.last().is_none_or(|c| c != "id") {
        list.push("\"id\"".to_owned());
    }
    Ok(format!("CREATE INDEX \"{name}\" ON \"{table}\" ({})", list.join(", ")))
}

/// Drops an index over several columns of `table` if it exists.
pub async fn drop_composite_index<C: ConnectionTrait>(db: &C, table: &str, columns: &[String]) -> Result<()> {
    check_ident(table)?;
    for column in columns {
        check_ident(column)?;
    }
    let name = index_name(table, &columns.join("__"), false);
    db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{name}\"")).await?;
    Ok(())
}

/// Rebuilds the plain and composite indexes of `def` that were made before indexes ended with
/// `id` (2026-12-03), so its pages are read in index order; returns how many. Run when a
/// process loads the plugin; an index that is current or missing is left alone, so it is
/// cheap once done. Each index is dropped and made again in one batch on one connection
/// (SQLite checks a new index's name against the schema the connection last read; PostgreSQL
/// runs the batch as one transaction). Two processes may race: the loser's batch fails
/// harmlessly, or rebuilds the index once more.
pub async fn upgrade_indexes<C: ConnectionTrait>(db: &C, def: &ObjectDef) -> Result<usize> {
    let mut rebuilt = 0;
    for field in def.fields.iter().filter(|f| plain_index(f) && f.column != "id") {
        let name = index_name(&def.table, &field.column, false);
        if lacks_id(db, &name).await? {
            let create = index_sql(&def.table, &field.column, false)?;
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{name}\"; {create}")).await?;
            rebuilt += 1;
        }
    }
    for columns in &def.indexes {
        let name = index_name(&def.table, &columns.join("__"), false);
        if lacks_id(db, &name).await? {
            let create = composite_index_sql(&def.table, columns)?;
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{name}\"; {create}")).await?;
            rebuilt += 1;
        }
    }
    Ok(rebuilt)
}

/// Whether index `name` exists and does not end with `id`, from its definition as the database
/// keeps it.
async fn lacks_id<C: ConnectionTrait>(db: &C, name: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
    } else {
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?"
    };
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()])).await?;
    let Some(row) = row else { return Ok(false) };
    let definition: String = row.try_get_by_index(0)?;
    let columns = definition.trim_end().trim_end_matches(')').rsplit_once('(').map(|(_, c)| c).unwrap_or_default();
    let last = columns.rsplit(',').next().unwrap_or_default().trim().trim_matches('"');
    Ok(last != "id")
}

/// Whether `field` gets a plain index: when declared, and always for references (reverse
/// relations look them up).
pub fn plain_index(field: &FieldDef) -> bool {
    field.indexed || matches!(field.kind, FieldKind::Ref(_))
}

/// Creates the indexes `field` asks for: unique among live records, and/or plain.
pub async fn create_indexes<C: ConnectionTrait>(db: &C, table: &str, field: &FieldDef) -> Result<()> {
    if field.unique {
        create_index(db, table, &field.column, true).await?;
    }
    if plain_index(field) {
        create_index(db, table, &field.column, false).await?;
    }
    Ok(())
}

/// Creates one index on `table.column`; a unique one covers live records only.
pub async fn create_index<C: ConnectionTrait>(db: &C, table: &str, column: &str, unique: bool) -> Result<()> {
    db.execute_unprepared(&index_sql(table, column, unique)?).await?;
    Ok(())
}

/// The `CREATE INDEX` of [`create_index`].
fn index_sql(table: &str, column: &str, unique: bool) -> Result<String> {
    check_ident(table)?;
    check_ident(column)?;
    let name = index_name(table, column, unique);
    let sql = if unique {
        format!("CREATE UNIQUE INDEX \"{name}\" ON \"{table}\" (\"{column}\") WHERE \"deleted_at\" IS NULL")
    } else {
        // Ends with `id` (see `create_composite_index`).
        let id = if column == "id" { "" } else { ", \"id\"" };
        format!("CREATE INDEX \"{name}\" ON \"{table}\" (\"{column}\"{id})")
    };
    Ok(sql)
}

/// Drops one index on `table.column` if it exists.
pub async fn drop_index<C: ConnectionTrait>(db: &C, table: &str, column: &str, unique: bool) -> Result<()> {
    check_ident(table)?;
    check_ident(column)?;
    let sql = format!("DROP INDEX IF EXISTS \"{}\"", index_name(table, column, unique));
    db.execute_unprepared(&sql).await?;
    Ok(())
}

/// Adds a column for `field` (nullable: existing rows have no value) and its indexes.
pub async fn add_column<C: ConnectionTrait>(db: &C, table: &str, field: &FieldDef) -> Result<()> {
    check_ident(table)?;
    let sql = format!("ALTER TABLE \"{table}\" ADD COLUMN {}", column_sql(db.get_database_backend(), field)?);
    db.execute_unprepared(&sql).await?;
    create_indexes(db, table, field).await
}

/// Drops `field`'s column and its indexes (SQLite refuses to drop an indexed column).
pub async fn drop_column<C: ConnectionTrait>(db: &C, table: &str, field: &FieldDef) -> Result<()> {
    check_ident(table)?;
    check_ident(&field.column)?;
    drop_index(db, table, &field.column, true).await?;
    drop_index(db, table, &field.column, false).await?;
    let sql = format!("ALTER TABLE \"{table}\" DROP COLUMN \"{}\"", field.column);
    db.execute_unprepared(&sql).await?;
    Ok(())
}

/// Drops a plugin object's table with its data.
pub async fn drop_table<C: ConnectionTrait>(db: &C, table: &str) -> Result<()> {
    check_ident(table)?;
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS \"{table}\"")).await?;
    Ok(())
}

/// Live and deleted records in `table` (to tell the admin what a destructive change costs).
pub async fn count_rows<C: ConnectionTrait>(db: &C, table: &str) -> Result<i64> {
    check_ident(table)?;
    let row = db
        .query_one_raw(stmt(db, format!("SELECT COUNT(*) AS n FROM \"{table}\""), Vec::new()))
        .await?
        .ok_or_else(|| Error::internal("COUNT returned no row"))?;
    Ok(row.try_get("", "n")?)
}

/// Most rows one [`update_rows`] statement sets.
const UPDATE_ROWS: usize = 500;

/// Writes the changes of many records of a plugin object, each only while its row still has the
/// expected version (`None`: any): one `UPDATE … FROM (VALUES …)` per group of rows that set the
/// same columns, at most [`UPDATE_ROWS`] rows a statement (PostgreSQL's values cast to the
/// columns' types). Returns the ids it wrote; the others had moved on (or are gone).
pub async fn update_rows<C: ConnectionTrait>(
    db: &C,
    object: &ObjectDef,
    rows: &[(Uuid, Option<i64>, &Fields)],
) -> Result<std::collections::HashSet<Uuid>> {
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    check_ident(&object.table)?;
    let mut groups: std::collections::BTreeMap<Vec<&str>, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, (_, _, changes)) in rows.iter().enumerate() {
        groups.entry(changes.keys().map(String::as_str).collect()).or_default().push(i);
    }
    let mut written = std::collections::HashSet::with_capacity(rows.len());
    for (names, members) in groups {
        if names.is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(names.len());
        for name in &names {
            let field =
                object.field_def(name).ok_or_else(|| Error::internal(format!("update of unknown field {name}")))?;
            check_ident(&field.column)?;
            fields.push(field);
        }
        let cast = |kind: &FieldKind| if pg { format!("?::{}", column_type(backend, kind)) } else { "?".to_owned() };
        let mut row_sql = vec![cast(&FieldKind::Id), if pg { "?::bigint".to_owned() } else { "?".to_owned() }];
        row_sql.extend(fields.iter().map(|f| cast(&f.kind)));
        let row_sql = format!("({})", row_sql.join(", "));
        let aliases: Vec<String> = (0..fields.len()).map(|i| format!("\"c{i}\"")).collect();
        let sets: Vec<String> =
            fields.iter().zip(&aliases).map(|(f, a)| format!("\"{}\" = \"v\".{a}", f.column)).collect();
        let per = (30_000 / (fields.len() + 2)).clamp(1, UPDATE_ROWS);
        for chunk in members.chunks(per) {
            let mut values = Vec::with_capacity(chunk.len() * (fields.len() + 2));
            for &i in chunk {
                let (id, version, changes) = &rows[i];
                values.push(encode(backend, &FieldKind::Id, &Value::Uuid(*id))?);
                values.push(sea_orm::Value::BigInt(*version));
                for field in &fields {
                    values.push(encode(backend, &field.kind, changes.get(&field.name).unwrap_or(&Value::Null))?);
                }
            }
            let table = &object.table;
            let sql = format!(
                "WITH \"v\"(\"id\", \"ver\", {}) AS (VALUES {}) UPDATE \"{table}\" SET {} FROM \"v\" \
                 WHERE \"{table}\".\"id\" = \"v\".\"id\" AND (\"v\".\"ver\" IS NULL OR \"{table}\".\"version\" = \"v\".\"ver\") \
                 RETURNING \"{table}\".\"id\"",
                aliases.join(", "),
                vec![row_sql.as_str(); chunk.len()].join(", "),
                sets.join(", "),
            );
            for row in db.query_all_raw(crate::store::plugins::stmt(backend, &sql, values)).await? {
                if let Value::Uuid(id) = crate::store::codec::decode(backend, &FieldKind::Id, &row, 0)? {
                    written.insert(id);
                }
            }
        }
    }
    Ok(written)
}

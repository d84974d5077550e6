//! Filters, sort orders and keyset cursors translated to SQL.

use sea_orm::sea_query::{Alias, Cond, Condition, Expr, ExprTrait, NullOrdering, Order, SelectStatement, SimpleExpr};
use sea_orm::{DbBackend, Value as DbValue};

use crate::domain::DomainError;
use crate::domain::filter::{Condition as FilterCond, Filter, Op, OrderBy, Target};
use crate::domain::object::ObjectDef;
use crate::domain::value::{FieldKind, Value};
use crate::error::{Error, Result};
use crate::store::codec::encode;

/// The SQL expression a target reads, and the kind its values are encoded as.
fn target_expr(backend: DbBackend, object: &ObjectDef, target: &Target) -> Result<(SimpleExpr, FieldKind)> {
    match target {
        Target::Field(name) => {
            let def = object.field_def(name).ok_or_else(|| DomainError::invalid(name, "unknown field"))?;
            Ok((Expr::col((Alias::new(object.table.as_str()), Alias::new(def.column.as_str()))), def.kind.clone()))
        }
        Target::Custom { key, kind } => {
            // Keys are checked to be alphanumeric when defined; check again before they reach SQL.
            if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::internal("custom field key with unexpected characters"));
            }
            let numeric = matches!(kind.as_str(), "NUMBER" | "DECIMAL");
            // Qualified, like every column here, so a page may join other tables.
            let column = format!("\"{}\".custom_fields", object.table);
            let sql = match (backend, numeric, kind.as_str()) {
                (DbBackend::Postgres, true, _) => format!("(({column}->>'{key}')::numeric)"),
                (DbBackend::Postgres, false, "BOOLEAN") => format!("(({column}->>'{key}')::boolean)"),
                (DbBackend::Postgres, false, _) => format!("({column}->>'{key}')"),
                (_, true, _) => format!("CAST(json_extract({column}, '$.{key}') AS REAL)"),
                (_, false, _) => format!("json_extract({column}, '$.{key}')"),
            };
            let kind = match kind.as_str() {
                "BOOLEAN" => FieldKind::Bool,
                _ if numeric => FieldKind::Decimal,
                _ => FieldKind::Text,
            };
            Ok((Expr::cust(sql), kind))
        }
        Target::Tag => Err(Error::internal("tags are not a column")),
    }
}

/// A custom SQL expression with `?` placeholders for `exprs`, written for either backend
/// (sea-query substitutes `?` on SQLite and `$n` on PostgreSQL).
fn custom(backend: DbBackend, sql: &str, exprs: Vec<SimpleExpr>) -> SimpleExpr {
    if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        Expr::cust_with_exprs(out, exprs)
    } else {
        Expr::cust_with_exprs(sql.to_owned(), exprs)
    }
}

/// Encodes a comparison value. Custom numeric fields compare as numbers: on SQLite as REAL.
fn encode_cmp(backend: DbBackend, target: &Target, kind: &FieldKind, value: &Value) -> Result<DbValue> {
    if let (Target::Custom { .. }, Value::Decimal(d), DbBackend::Sqlite) = (target, value, backend) {
        let f: f64 = d.to_string().parse().map_err(|_| Error::internal("decimal to float"))?;
        return Ok(DbValue::Double(Some(f)));
    }
    if let (Target::Custom { .. }, Value::Date(d)) = (target, value) {
        return Ok(DbValue::String(Some(d.format("%Y-%m-%d").to_string())));
    }
    if let (Target::Custom { .. }, Value::Bool(b), DbBackend::Sqlite) = (target, value, backend) {
        return Ok(DbValue::BigInt(Some(i64::from(*b))));
    }
    encode(backend, kind, value)
}

/// Escapes `%`, `_` and `\` so text matches literally inside a LIKE pattern (with `ESCAPE '\'`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The least string above every string that starts with `prefix`, in code point order (which
/// is UTF-8's byte order): the last character that can grow, grown by one, with what follows it
/// dropped. `None` when there is none (an empty prefix, or only U+10FFFF).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Translates a filter into a SQL condition over `object`'s table (every column qualified with
/// the table's name, so the statement may join others).
pub fn condition(backend: DbBackend, object: &ObjectDef, filter: &Filter) -> Result<Condition> {
    condition_planned(backend, object, filter, &[])
}

/// [`condition`], comparing the columns in `unindexed` as `+column` on SQLite, which then reads
/// no index for them (`store::stats` chooses them).
pub fn condition_planned(
    backend: DbBackend,
    object: &ObjectDef,
    filter: &Filter,
    unindexed: &[String],
) -> Result<Condition> {
    Ok(match filter {
        Filter::And(parts) => {
            let mut cond = Cond::all();
            for part in parts {
                cond = cond.add(condition_planned(backend, object, part, unindexed)?);
            }
            cond
        }
        Filter::Or(parts) => {
            let mut cond = Cond::any();
            for part in parts {
                cond = cond.add(condition_planned(backend, object, part, unindexed)?);
            }
            cond
        }
        Filter::Not(inner) => condition_planned(backend, object, inner, unindexed)?.not(),
        Filter::Cond(cond) => Cond::all().add(comparison(backend, object, cond, unindexed)?),
    })
}

fn comparison(backend: DbBackend, object: &ObjectDef, cond: &FilterCond, unindexed: &[String]) -> Result<SimpleExpr> {
    if cond.target == Target::Tag {
        return tag_comparison(backend, object, &cond.op);
    }
    let (mut expr, kind) = target_expr(backend, object, &cond.target)?;
    if backend == DbBackend::Sqlite
        && let Target::Field(name) = &cond.target
        && object.field_def(name).is_some_and(|f| unindexed.contains(&f.column))
    {
        expr = custom(backend, "+?", vec![expr]);
    }
    // E-mail equality ignores case (and uses the `lower(email)` index).
    let case_insensitive = cond.kind == FieldKind::Email;
    let lhs = if case_insensitive { custom(backend, "lower(?)", vec![expr.clone()]) } else { expr.clone() };
    let val = |v: &Value| -> Result<SimpleExpr> {
        let encoded = encode_cmp(backend, &cond.target, &kind, v)?;
        Ok(if case_insensitive { custom(backend, "lower(?)", vec![Expr::val(encoded)]) } else { Expr::val(encoded) })
    };
    let vals = |vs: &[Value]| -> Result<Vec<SimpleExpr>> { vs.iter().map(val).collect() };
    // `lower(email)` is indexed only where the column is not null: say so, so both databases
    // can use the partial index.
    let indexed = |cmp: SimpleExpr| -> SimpleExpr {
        if case_insensitive { Cond::all().add(expr.clone().is_not_null()).add(cmp).into() } else { cmp }
    };
    Ok(match &cond.op {
        Op::Eq(v) => indexed(lhs.eq(val(v)?)),
        Op::Neq(v) => lhs.ne(val(v)?),
        Op::In(vs) if vs.is_empty() => Expr::cust("1 = 0"),
        Op::In(vs) => indexed(lhs.is_in(vals(vs)?)),
        Op::NotIn(vs) if vs.is_empty() => expr.is_not_null(),
        Op::NotIn(vs) => lhs.is_not_in(vals(vs)?),
        Op::Lt(v) => lhs.lt(val(v)?),
        Op::Lte(v) => lhs.lte(val(v)?),
        Op::Gt(v) => lhs.gt(val(v)?),
        Op::Gte(v) => lhs.gte(val(v)?),
        Op::Like(pattern) => custom(backend, "? LIKE ? ESCAPE '\\'", vec![expr, Expr::val(pattern.clone())]),
        Op::Ilike(pattern) => match backend {
            DbBackend::Postgres => custom(backend, "? ILIKE ? ESCAPE '\\'", vec![expr, Expr::val(pattern.clone())]),
            _ => custom(backend, "lower(?) LIKE lower(?) ESCAPE '\\'", vec![expr, Expr::val(pattern.clone())]),
        },
        Op::StartsWith(prefix) => {
            let lowered = prefix.to_lowercase();
            let pattern = format!("{}%", escape_like(&lowered));
            let like = custom(backend, "lower(?) LIKE ? ESCAPE '\\'", vec![expr.clone(), Expr::val(pattern)]);
            if !matches!(cond.target, Target::Field(_)) {
                return Ok(like);
            }
            // The same condition as a range of `lower(column)` in byte order, which the column's
            // prefix index (migration 12) serves with bound values, in a generic plan too.
            // PostgreSQL compares bytes with its pattern operators, whatever the collation;
            // SQLite's default collation already does.
            let (from, below) = if backend == DbBackend::Postgres { ("~>=~", "~<~") } else { (">=", "<") };
            let mut range = Cond::all().add(like).add(custom(
                backend,
                &format!("lower(?) {from} ?"),
                vec![expr.clone(), Expr::val(lowered.clone())],
            ));
            if let Some(end) = prefix_end(&lowered) {
                range = range.add(custom(backend, &format!("lower(?) {below} ?"), vec![expr, Expr::val(end)]));
            }
            range.into()
        }
        Op::IsNull(true) => expr.is_null(),
        Op::IsNull(false) => expr.is_not_null(),
    })
}

fn tag_comparison(backend: DbBackend, object: &ObjectDef, op: &Op) -> Result<SimpleExpr> {
    let names = |vs: &[Value]| -> Vec<String> { vs.iter().map(|v| v.to_string().to_lowercase()).collect() };
    let (negate, names) = match op {
        Op::Eq(v) => (false, names(std::slice::from_ref(v))),
        Op::Neq(v) => (true, names(std::slice::from_ref(v))),
        Op::In(vs) => (false, names(vs)),
        Op::NotIn(vs) => (true, names(vs)),
        Op::IsNull(is_null) => {
            let sub = format!("EXISTS (SELECT 1 FROM record_tag rt WHERE rt.record_id = \"{}\".id)", object.table);
            return Ok(Expr::cust(if *is_null { format!("NOT {sub}") } else { sub }));
        }
        _ => {
            return Err(Error::Domain(DomainError::invalid(
                "filter.tags",
                "tags support eq, neq, in, notIn and isNull",
            )));
        }
    };
    if names.is_empty() {
        return Ok(Expr::cust(if negate { "1 = 1" } else { "1 = 0" }));
    }
    let placeholders = vec!["?"; names.len()].join(", ");
    let values: Vec<SimpleExpr> = names.into_iter().map(Expr::val).collect();
    let table = object.table.as_str();
    let sql = format!(
        "{}\"{table}\".id IN (SELECT rt.record_id FROM record_tag rt JOIN tag t ON t.id = rt.tag_id WHERE lower(t.name) IN ({placeholders}))",
        if negate { "NOT " } else { "" }
    );
    Ok(custom(backend, &sql, values))
}

/// Whether the `id` that ends every order (making it total) runs descending: it follows the
/// last sort key's direction, so an index on `(keys…, id)` read forwards or backwards serves
/// the whole order (`createdAt DESC` is read backwards from `(created_at, id)`, no sort).
pub fn id_descending(order: &[OrderBy]) -> bool {
    order.last().is_some_and(|key| key.desc)
}

/// Whether field `name` is a column every table declares `NOT NULL` (the id and the
/// timestamps every record has).
fn never_null(name: &str) -> bool {
    matches!(name, "id" | "createdAt" | "updatedAt")
}

/// Adds `ORDER BY` for `order` (then `id`, so the order is total; see [`id_descending`]).
pub fn apply_order(
    backend: DbBackend,
    object: &ObjectDef,
    select: &mut SelectStatement,
    order: &[OrderBy],
    reverse: bool,
) -> Result<()> {
    for key in order {
        let (expr, _) = target_expr(backend, object, &key.target)?;
        let desc = key.desc != reverse;
        let direction = if desc { Order::Desc } else { Order::Asc };
        match &key.target {
            // A column that is never NULL gets no NULLS clause: SQLite cannot read an index in
            // the order `… NULLS LAST` asks of an ascending key, and would sort every row the
            // filter matches to find the first page. The id is unique: nothing after it counts.
            Target::Field(name) if name == "id" => {
                select.order_by_expr(expr, direction);
                return Ok(());
            }
            Target::Field(name) if never_null(name) => {
                select.order_by_expr(expr, direction);
            }
            _ => {
                let nulls_first = key.nulls_first != reverse;
                select.order_by_expr_with_nulls(
                    expr,
                    direction,
                    if nulls_first { NullOrdering::First } else { NullOrdering::Last },
                );
            }
        }
    }
    let id_desc = id_descending(order) != reverse;
    select.order_by(
        (Alias::new(object.table.as_str()), Alias::new("id")),
        if id_desc { Order::Desc } else { Order::Asc },
    );
    Ok(())
}

/// The condition "strictly after the row whose sort values are `cursor`" (or before, when
/// `reverse`), for the keyset order `order` + `id`.
pub fn keyset_condition(
    backend: DbBackend,
    object: &ObjectDef,
    order: &[OrderBy],
    cursor: &[Value],
    id: &Value,
    reverse: bool,
) -> Result<Condition> {
    if cursor.len() != order.len() {
        return Err(Error::Domain(DomainError::invalid("after", "cursor does not match the sort order")));
    }
    let mut any = Cond::any();
    let mut equal_so_far = Cond::all();
    for (key, value) in order.iter().zip(cursor) {
        let (expr, kind) = target_expr(backend, object, &key.target)?;
        let desc = key.desc != reverse;
        let nulls_first = key.nulls_first != reverse;
        let after: Option<SimpleExpr> = match (value.is_null(), nulls_first) {
            (true, false) => None,
            (true, true) => Some(expr.clone().is_not_null()),
            (false, nulls_first) => {
                let v: SimpleExpr = Expr::val(encode_cmp(backend, &key.target, &kind, value)?);
                let beyond = if desc { expr.clone().lt(v) } else { expr.clone().gt(v) };
                Some(if nulls_first { beyond } else { Cond::any().add(beyond).add(expr.clone().is_null()).into() })
            }
        };
        if let Some(after) = after {
            any = any.add(equal_so_far.clone().add(after));
        }
        let eq: SimpleExpr = if value.is_null() {
            expr.is_null()
        } else {
            expr.eq(Expr::val(encode_cmp(backend, &key.target, &kind, value)?))
        };
        equal_so_far = equal_so_far.add(eq);
    }
    let id_expr = Expr::col((Alias::new(object.table.as_str()), Alias::new("id")));
    let id_val = encode(backend, &FieldKind::Id, id)?;
    let id_after = if id_descending(order) != reverse { id_expr.lt(id_val) } else { id_expr.gt(id_val) };
    Ok(any.add(equal_so_far.add(id_after)))
}

/// `select` with `LIMIT n` written into the SQL rather than bound. SQLite's planner reads a
/// bound LIMIT's value, which marks the statement as depending on that binding: every
/// execution then re-binds it and SQLite re-prepares the statement (a tenth of the CPU of a
/// page of 50 went to re-parsing). `n` is a number Kith computed, never caller text.
pub fn with_limit(backend: DbBackend, select: &SelectStatement, n: u64) -> sea_orm::Statement {
    let mut stmt = backend.build(select);
    stmt.sql.push_str(&format!(" LIMIT {n}"));
    stmt
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_where_its_last_growable_character_grows() {
        assert_eq!(prefix_end("last42").as_deref(), Some("last43"));
        assert_eq!(prefix_end("az").as_deref(), Some("a{"));
        assert_eq!(prefix_end("é").as_deref(), Some("ê"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        // Every string that starts with the prefix sorts below the end, byte by byte.
        for s in ["last42", "last42zzz", "last42\u{10FFFF}x", "last429"] {
            assert!(s.as_bytes() < prefix_end("last42").unwrap().as_bytes(), "{s}");
        }
    }
}

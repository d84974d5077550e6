//! Export of live records to CSV or JSON, streamed page by page.

use std::io::Write;

use serde_json::Value as Json;

use crate::domain::DomainError;
use crate::domain::actor::Role;
use crate::domain::filter::Filter;
use crate::domain::value::Value;
use crate::error::{Error, Result};
use crate::service::Kith;
use crate::store::records::{ListQuery, PageRequest, Record, list};
use crate::store::tags;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A header row, then a row per record; tags `;`-separated, custom fields as one JSON cell.
    Csv,
    /// One JSON array of record objects (with `tags` where the object has them).
    Json,
}

const PAGE: u64 = 1_000;

fn io(err: impl std::fmt::Display) -> Error {
    Error::internal(format!("writing the export: {err}"))
}

enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Json { out: W, first: bool },
}

impl<W: Write> Sink<W> {
    fn write(&mut self, columns: &[String], record: &Record, tag_list: Option<Vec<String>>) -> Result<()> {
        match self {
            Sink::Csv(w) => {
                let mut row: Vec<String> = columns
                    .iter()
                    .filter(|c| *c != "tags")
                    .map(|name| match record.get(name) {
                        Value::Json(Json::Object(map)) if map.is_empty() => String::new(),
                        Value::Json(j) => j.to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                if let Some(tag_list) = tag_list {
                    row.push(tag_list.join(";"));
                }
                w.write_record(&row).map_err(io)
            }
            Sink::Json { out, first } => {
                let mut json = record.to_json();
                if let Json::Object(map) = &mut json {
                    map.retain(|name, _| columns.contains(name));
                }
                if let (Some(tag_list), Json::Object(map)) = (tag_list, &mut json) {
                    map.insert("tags".into(), Json::from(tag_list));
                }
                let sep = if *first { "[\n" } else { ",\n" };
                *first = false;
                out.write_all(sep.as_bytes()).map_err(io)?;
                serde_json::to_writer(&mut *out, &json).map_err(io)
            }
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Csv(mut w) => w.flush().map_err(io),
            Sink::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" }).map_err(io)?;
                out.flush().map_err(io)
            }
        }
    }
}

/// Writes every live record of `object` to `out`, with the fields `reader` may read (the
/// others are left out, columns and all); returns how many.
pub async fn export<W: Write>(kith: &Kith, object: &str, reader: Role, format: Format, out: W) -> Result<u64> {
    let registry = kith.registry();
    let Some(def) = registry.get(object).filter(|def| def.exportable).cloned() else {
        let exportable: Vec<&str> = registry.objects().filter(|d| d.exportable).map(|d| d.name.as_str()).collect();
        return Err(DomainError::invalid(
            "object",
            format!("`{object}` cannot be exported (one of {})", exportable.join(", ")),
        )
        .into());
    };
    let db = kith.store.conn();
    let mut columns: Vec<String> =
        def.fields.iter().filter(|f| f.readable_by(reader)).map(|f| f.name.clone()).collect();
    if def.taggable {
        columns.push("tags".into());
    }
    let mut sink = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&columns).map_err(io)?;
            Sink::Csv(Box::new(w))
        }
        Format::Json => Sink::Json { out, first: true },
    };
    let mut n = 0u64;
    let mut after = None;
    loop {
        let query = ListQuery {
            filter: Filter::all(),
            order: Vec::new(),
            page: PageRequest::Forward { first: PAGE, after: after.clone() },
            include_deleted: false,
        };
        let page = list(db, &def, &query).await?;
        let ids: Vec<_> = page.records.iter().map(|(_, r)| r.id()).collect();
        let mut record_tags = if def.taggable { tags::for_records(db, &ids).await? } else { Default::default() };
        for (cursor, record) in &page.records {
            after = Some(cursor.clone());
            n += 1;
            let tag_list = def.taggable.then(|| record_tags.remove(&record.id()).unwrap_or_default());
            sink.write(&columns, record, tag_list)?;
        }
        if !page.has_next {
            break;
        }
    }
    sink.finish()?;
    Ok(n)
}

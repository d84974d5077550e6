//! The portable column vocabulary: each helper yields the right type on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Column constructors bound to one backend.
#[derive(Clone, Copy)]
pub(crate) struct Cols(pub(crate) DbBackend);

impl Cols {
    pub(crate) fn of(manager: &SchemaManager<'_>) -> Cols {
        Cols(manager.get_database_backend())
    }

    /// The UUIDv7 primary key.
    pub(crate) fn id(self) -> ColumnDef {
        ColumnDef::new(Alias::new("id")).uuid().not_null().primary_key().to_owned()
    }

    pub(crate) fn uuid(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).uuid().null().to_owned()
    }

    pub(crate) fn uuid_nn(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).uuid().not_null().to_owned()
    }

    pub(crate) fn text(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).text().null().to_owned()
    }

    pub(crate) fn text_nn(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).text().not_null().to_owned()
    }

    pub(crate) fn int(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).big_integer().null().to_owned()
    }

    pub(crate) fn int_nn(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).big_integer().not_null().to_owned()
    }

    pub(crate) fn bool_nn(self, name: &str, default: bool) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).boolean().not_null().default(default).to_owned()
    }

    pub(crate) fn ts(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).timestamp_with_time_zone().null().to_owned()
    }

    pub(crate) fn ts_nn(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).timestamp_with_time_zone().not_null().to_owned()
    }

    pub(crate) fn date(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).date().null().to_owned()
    }

    /// An exact decimal amount (see the crate docs for the SQLite representation).
    pub(crate) fn money(self, name: &str) -> ColumnDef {
        let mut col = ColumnDef::new(Alias::new(name));
        match self.0 {
            DbBackend::Postgres => col.decimal_len(24, 4),
            _ => col.big_integer(),
        };
        col.null().to_owned()
    }

    pub(crate) fn json_nn(self, name: &str) -> ColumnDef {
        ColumnDef::new(Alias::new(name)).json_binary().not_null().to_owned()
    }

    /// `version`, the optimistic-concurrency counter every mutable record carries.
    pub(crate) fn version(self) -> ColumnDef {
        ColumnDef::new(Alias::new("version")).big_integer().not_null().default(1).to_owned()
    }
}

/// A foreign key from `table.column` to `target.id`.
pub(crate) fn fk(table: &str, column: &str, target: &str, on_delete: ForeignKeyAction) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(Alias::new(table), Alias::new(column))
        .to(Alias::new(target), Alias::new("id"))
        .on_delete(on_delete)
        .to_owned()
}

/// A plain index on the given columns.
pub(crate) fn index(table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(index_name(table, columns)).table(Alias::new(table));
    for column in columns {
        stmt.col(Alias::new(*column));
    }
    stmt.to_owned()
}

/// The name [`index`] gives the index on `columns` of `table`.
pub(crate) fn index_name(table: &str, columns: &[&str]) -> String {
    format!("ix_{table}_{}", columns.join("_"))
}

/// `created_at`, `updated_at`, `deleted_at` and `version`: the bookkeeping of a mutable record.
pub(crate) fn record_bookkeeping(c: Cols, table: &mut TableCreateStatement) {
    table.col(c.ts_nn("created_at")).col(c.ts_nn("updated_at")).col(c.ts("deleted_at")).col(c.version());
}

/// The five address columns shared by contacts and companies.
pub(crate) fn address(c: Cols, table: &mut TableCreateStatement) {
    for part in ["street", "city", "region", "postal_code", "country"] {
        table.col(c.text(&format!("address_{part}")));
    }
}

/// Drops tables in the given order.
pub(crate) async fn drop_all(manager: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    for table in tables {
        manager.drop_table(Table::drop().table(Alias::new(*table)).if_exists().to_owned()).await?;
    }
    Ok(())
}

//! The connection of a [`super::Tx`]: a database transaction, begun at once or at its first
//! statement.
//!
//! A grouped write on PostgreSQL begins lazily: a group whose writes run no statement of their
//! own (creates whose rows are held back) never begins one, and its held rows go out as one
//! statement, which PostgreSQL runs as its own transaction (see `store::flush`). That saves the
//! BEGIN and COMMIT round trips on the path where every statement counts.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement,
    TransactionOptions, TransactionTrait,
};
use tokio::sync::OnceCell;

use super::autocommit::Autocommit;

/// A transaction begun on first use. Dropping it rolls back what it began.
#[derive(Debug)]
pub struct TxConn {
    db: Autocommit,
    options: TransactionOptions,
    txn: OnceCell<DatabaseTransaction>,
    /// SQLite: this transaction's turn as the process's writer (see `Store::writers`), given
    /// up when it commits, rolls back or is dropped. Declared after `txn`, so a dropped
    /// transaction's rollback is queued before the next writer begins.
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl TxConn {
    /// A transaction on `db`, begun at its first statement.
    pub(crate) fn lazy(db: Autocommit, options: TransactionOptions) -> TxConn {
        TxConn { db, options, txn: OnceCell::new(), turn: None }
    }

    /// The transaction, holding `turn` as the process's writer until it ends.
    pub(crate) fn holding(mut self, turn: Option<tokio::sync::OwnedMutexGuard<()>>) -> TxConn {
        self.turn = turn;
        self
    }

    /// A transaction on `db`, begun now.
    pub(crate) async fn begun(db: Autocommit, options: TransactionOptions) -> Result<TxConn, DbErr> {
        let conn = TxConn::lazy(db, options);
        conn.txn().await?;
        Ok(conn)
    }

    async fn txn(&self) -> Result<&DatabaseTransaction, DbErr> {
        self.txn
            .get_or_try_init(|| {
                self.db.note_transaction_wait();
                self.db.transaction_pool().begin_with_options(self.options)
            })
            .await
    }

    /// Whether the transaction has begun.
    pub(crate) fn has_begun(&self) -> bool {
        self.txn.initialized()
    }

    /// Statements outside the transaction: one that is its own transaction, or a read that
    /// needs none, while none has begun.
    pub(crate) fn autocommit(&self) -> &Autocommit {
        &self.db
    }

    /// Commits what began (nothing began: nothing to do).
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let TxConn { txn, turn, .. } = self;
        let done = match txn.into_inner() {
            Some(txn) => txn.commit().await,
            None => Ok(()),
        };
        drop(turn);
        done
    }

    /// Rolls back what began.
    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        let TxConn { txn, turn, .. } = self;
        let done = match txn.into_inner() {
            Some(txn) => txn.rollback().await,
            None => Ok(()),
        };
        drop(turn);
        done
    }
}

impl super::stats::Planned for TxConn {
    fn planner_stats(&self) -> Option<&super::stats::PlannerStats> {
        self.db.planner_stats()
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for TxConn {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn().await?.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn().await?.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn().await?.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn().await?.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }
}

/// Where a unit of work reads: its transaction once it has one, so it sees its own writes, or
/// the autocommit connections before that (see [`super::Store::reader`]).
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    /// No transaction yet.
    Autocommit(&'a Autocommit),
    /// Inside the unit's transaction.
    Tx(&'a TxConn),
}

impl super::stats::Planned for Reader<'_> {
    fn planner_stats(&self) -> Option<&super::stats::PlannerStats> {
        match self {
            Reader::Autocommit(db) => db.planner_stats(),
            Reader::Tx(tx) => tx.planner_stats(),
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Reader::Autocommit(db) => db.get_database_backend(),
            Reader::Tx(tx) => tx.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Reader::Autocommit(db) => db.execute_raw(stmt).await,
            Reader::Tx(tx) => tx.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Reader::Autocommit(db) => db.execute_unprepared(sql).await,
            Reader::Tx(tx) => tx.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Reader::Autocommit(db) => db.query_one_raw(stmt).await,
            Reader::Tx(tx) => tx.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Reader::Autocommit(db) => db.query_all_raw(stmt).await,
            Reader::Tx(tx) => tx.query_all_raw(stmt).await,
        }
    }

    fn support_returning(&self) -> bool {
        match self {
            Reader::Autocommit(db) => db.support_returning(),
            Reader::Tx(tx) => tx.support_returning(),
        }
    }
}

/// Whether a failed statement certainly changed nothing: the database refused it (an error it
/// answered), or it was never sent. A lost connection leaves a statement's fate unknown.
pub(crate) fn refused(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_database_error().is_some()
        }
        _ => false,
    }
}

//! `kith:plugin/bulk` (since 1.4): records created and updated, and messages queued, many per
//! call. The grant is checked once for the call; budgets (bytes, writes, the mail rate) per
//! item, as the single-item calls count them. Items fail one by one (`service::bulk`).

use crate::error::Error;
use crate::service::bulk::{self, MAX_ITEMS, Update};
use crate::service::input::Input;

use super::{host_error, parse_id, parse_json, to_wit};
use crate::plugin::host::v1::kith::plugin::bulk::Update as WitUpdate;
use crate::plugin::host::v1::kith::plugin::mail::Message;
use crate::plugin::host::v1::kith::plugin::types::{CrmRecord, HostError};
use crate::plugin::host::{HostState, v1};

type Items<T> = Result<Vec<Result<T, HostError>>, HostError>;

fn too_many(items: usize) -> Result<(), HostError> {
    if items > MAX_ITEMS {
        return Err(HostError {
            code: v1::kith::plugin::types::ErrorCode::LimitExceeded,
            message: format!("a bulk call takes at most {MAX_ITEMS} items; this one has {items}"),
        });
    }
    Ok(())
}

/// The service's results laid back at their items' places, after the items refused before it.
fn merge<T>(
    mut early: Vec<Option<Result<T, HostError>>>,
    written: Vec<crate::error::Result<T>>,
) -> Vec<Result<T, HostError>> {
    let mut written = written.into_iter();
    early
        .iter_mut()
        .map(|slot| match slot.take() {
            Some(result) => result,
            None => {
                written.next().unwrap_or_else(|| Err(Error::internal("a bulk result is missing"))).map_err(host_error)
            }
        })
        .collect()
}

impl v1::kith::plugin::bulk::Host for HostState {
    async fn create_records(&mut self, object: String, items: Vec<String>) -> wasmtime::Result<Items<CrmRecord>> {
        Ok(self.create_many(object, items).await)
    }

    async fn update_records(&mut self, object: String, updates: Vec<WitUpdate>) -> wasmtime::Result<Items<CrmRecord>> {
        Ok(self.update_many(object, updates).await)
    }

    async fn send_mails(&mut self, messages: Vec<Message>) -> wasmtime::Result<Items<String>> {
        Ok(self.send_many(messages).await)
    }
}

impl HostState {
    async fn create_many(&mut self, object: String, items: Vec<String>) -> Items<CrmRecord> {
        self.check_object(&object, true, "create-records")?;
        too_many(items.len())?;
        let kith = self.plugin.kith.clone();
        let def = kith.object(&object).map_err(host_error)?;
        let mut early = Vec::with_capacity(items.len());
        let mut inputs = Vec::with_capacity(items.len());
        for item in &items {
            let input = self
                .spend(item.len())
                .and_then(|()| self.count_write())
                .and_then(|()| parse_json("fields", item))
                .and_then(|fields| Input::from_json(&def, &fields).map_err(host_error));
            match input {
                Ok(input) => {
                    inputs.push(input);
                    early.push(None);
                }
                Err(err) => early.push(Some(Err(err))),
            }
        }
        let tx = self.write_tx().await.map_err(host_error)?;
        let written = bulk::create_many(tx, &kith.registry(), &object, inputs).await.map_err(host_error)?;
        let written = written.into_iter().map(|r| r.map(|record| to_wit(&object, &record))).collect();
        Ok(merge(early, written))
    }

    async fn update_many(&mut self, object: String, updates: Vec<WitUpdate>) -> Items<CrmRecord> {
        self.check_object(&object, true, "update-records")?;
        too_many(updates.len())?;
        let kith = self.plugin.kith.clone();
        let def = kith.object(&object).map_err(host_error)?;
        let mut early = Vec::with_capacity(updates.len());
        let mut inputs = Vec::with_capacity(updates.len());
        for update in &updates {
            let parsed = self
                .spend(update.fields.len())
                .and_then(|()| self.count_write())
                .and_then(|()| Ok((parse_id(&update.id)?, parse_json("fields", &update.fields)?)))
                .and_then(|(id, fields)| {
                    let input = Input::from_json(&def, &fields).map_err(host_error)?;
                    let expected_version = update.expected_version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                    Ok(Update { id, input, expected_version })
                });
            match parsed {
                Ok(update) => {
                    inputs.push(update);
                    early.push(None);
                }
                Err(err) => early.push(Some(Err(err))),
            }
        }
        let tx = self.write_tx().await.map_err(host_error)?;
        let written = bulk::update_many(tx, &kith.registry(), &object, inputs).await.map_err(host_error)?;
        let written = written.into_iter().map(|r| r.map(|record| to_wit(&object, &record))).collect();
        Ok(merge(early, written))
    }

    async fn send_many(&mut self, messages: Vec<Message>) -> Items<String> {
        self.mail_ready()?;
        too_many(messages.len())?;
        let mut results = Vec::with_capacity(messages.len());
        let mut rows = Vec::with_capacity(messages.len());
        for built in self.build_mails(messages) {
            match built {
                Ok(row) => {
                    results.push(Ok(row.message_id.clone()));
                    rows.push(row);
                }
                Err(err) => results.push(Err(err)),
            }
        }
        let tx = self.write_tx().await.map_err(host_error)?;
        tx.step(crate::store::mail::queue_many(tx, &rows)).await.map_err(host_error)?;
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(message: &str) -> HostError {
        super::super::invalid(message)
    }

    #[test]
    fn results_keep_their_items_places() {
        let early = vec![None, Some(Err(err("bad"))), None, Some(Err(err("worse")))];
        let written = vec![Ok(1), Err(Error::internal("boom"))];
        let merged = merge(early, written);
        assert_eq!(merged.len(), 4);
        assert_eq!(merged[0].as_ref().ok(), Some(&1));
        assert_eq!(merged[1].as_ref().err().map(|e| e.message.as_str()), Some("bad"));
        assert_eq!(merged[2].as_ref().err().map(|e| e.message.as_str()), Some("internal error"));
        assert_eq!(merged[3].as_ref().err().map(|e| e.message.as_str()), Some("worse"));
        assert!(too_many(MAX_ITEMS).is_ok() && too_many(MAX_ITEMS + 1).is_err());
    }
}

//! The host functions of `kith:plugin@1` (log, clock, records, key–value store, settings,
//! outbound HTTP, aggregates), each checking the plugin's grant and budgets through
//! `HostState` before it does anything.

use chrono::Utc;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domain::DomainError;
use crate::domain::filter::{Filter, OrderBy};
use crate::domain::value::format_datetime;
use crate::error::Error;
use crate::service::input::Input;
use crate::store::records::{ListQuery, PageRequest, Record};
use crate::store::{custom_fields, plugins, records};

use crate::plugin::host::v1::kith::plugin::types::{CrmRecord, ErrorCode, HostError, LogLevel, Page, Query};
use crate::plugin::host::{CallMode, HostState, MAX_KV_KEY, MAX_KV_VALUE, MAX_LOG_BYTES, MAX_LOG_LINES, v1};
use crate::plugin::manifest::PERSONAL_AGGREGATE;

mod bulk;

pub(crate) fn invalid(message: impl Into<String>) -> HostError {
    HostError { code: ErrorCode::InvalidInput, message: message.into() }
}

pub(crate) fn host_error(err: Error) -> HostError {
    match err {
        Error::Domain(DomainError::Validation { field, reason }) => invalid(format!("{field}: {reason}")),
        Error::Domain(e @ DomainError::NotFound { .. }) => {
            HostError { code: ErrorCode::NotFound, message: e.to_string() }
        }
        Error::Domain(e @ (DomainError::Conflict(_) | DomainError::Rejected { .. })) => {
            HostError { code: ErrorCode::Conflict, message: e.to_string() }
        }
        Error::Domain(e @ DomainError::Forbidden(_)) => HostError { code: ErrorCode::Denied, message: e.to_string() },
        other => {
            tracing::error!(error = %other, "plugin host call failed");
            HostError { code: ErrorCode::Internal, message: "internal error".into() }
        }
    }
}

/// The custom field definitions a filter or sort order needs: none (and no query) unless the
/// object has custom fields and they are mentioned.
async fn custom_defs(
    reader: &crate::store::txn::Reader<'_>,
    def: &crate::domain::object::ObjectDef,
    json: [Option<&Json>; 2],
) -> Result<Vec<crate::domain::custom_field::CustomFieldDef>, Error> {
    let mentioned = json.iter().flatten().any(|j| j.to_string().contains("customField"));
    if !def.custom_fields || !mentioned {
        return Ok(Vec::new());
    }
    custom_fields::for_object(reader, &def.name).await
}

pub(crate) fn to_wit(object: &str, record: &Record) -> CrmRecord {
    CrmRecord {
        object: object.to_owned(),
        id: record.id().to_string(),
        version: record.get("version").as_int().unwrap_or(1).max(0) as u64,
        fields: record.to_json().to_string(),
    }
}

pub(crate) fn parse_json(what: &str, text: &str) -> Result<Json, HostError> {
    serde_json::from_str(text).map_err(|e| invalid(format!("{what} is not valid JSON: {e}")))
}

pub(crate) fn parse_id(id: &str) -> Result<Uuid, HostError> {
    Uuid::parse_str(id).map_err(|_| invalid(format!("`{id}` is not a record id")))
}

impl v1::kith::plugin::types::Host for HostState {}

impl v1::kith::plugin::http::Host for HostState {
    async fn send(
        &mut self,
        request: v1::kith::plugin::http::Request,
    ) -> wasmtime::Result<Result<v1::kith::plugin::http::Response, HostError>> {
        if self.call.mode == CallMode::BeforeWrite {
            return Ok(Err(HostError {
                code: ErrorCode::Unavailable,
                message: "HTTP is not available inside before-write".into(),
            }));
        }
        let size = request.body.as_ref().map_or(0, Vec::len)
            + request.url.len()
            + request.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
        if let Err(err) = self.spend(size) {
            return Ok(Err(err));
        }
        let result = crate::plugin::http::send(&self.plugin.http, request).await;
        if let Err(err) = &result
            && err.code == ErrorCode::Denied
        {
            self.call.denied.push(("http".into(), format!("http.send: {}", err.message)));
        }
        Ok(result)
    }
}

impl v1::kith::plugin::host::Host for HostState {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        if self.call.log_lines >= MAX_LOG_LINES {
            self.call.dropped_logs += 1;
            return Ok(());
        }
        self.call.log_lines += 1;
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let message = crate::plugin::output::escape_controls(&message);
        let plugin = self.plugin.id.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(target: "kith::plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "kith::plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "kith::plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "kith::plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "kith::plugin", plugin, "{message}"),
        }
        Ok(())
    }

    async fn now(&mut self) -> wasmtime::Result<String> {
        Ok(format_datetime(Utc::now()))
    }

    async fn get_record(
        &mut self,
        object: String,
        id: String,
    ) -> wasmtime::Result<Result<Option<CrmRecord>, HostError>> {
        if let Err(err) = self.check_object(&object, false, "get-record") {
            return Ok(Err(err));
        }
        let id = match parse_id(&id) {
            Ok(id) => id,
            Err(err) => return Ok(Err(err)),
        };
        let kith = &self.plugin.kith;
        let reader = self.reader();
        let result = async {
            let def = kith.object(&object)?;
            let record = records::get(&reader, &def, id).await?;
            Ok::<_, Error>(record.filter(|r| r.get("deletedAt").is_null()).map(|r| to_wit(&object, &r)))
        }
        .await;
        Ok(result.map_err(host_error))
    }

    async fn query_records(&mut self, object: String, query: Query) -> wasmtime::Result<Result<Page, HostError>> {
        if let Err(err) = self.check_object(&object, false, "query-records") {
            return Ok(Err(err));
        }
        if !(1..=200).contains(&query.first) {
            return Ok(Err(invalid("query.first must be between 1 and 200")));
        }
        let filter = match query.filter.as_deref().map(|f| parse_json("query.filter", f)).transpose() {
            Ok(f) => f,
            Err(err) => return Ok(Err(err)),
        };
        let order_by = match query.order_by.as_deref().map(|o| parse_json("query.order-by", o)).transpose() {
            Ok(o) => o,
            Err(err) => return Ok(Err(err)),
        };
        let kith = &self.plugin.kith;
        let reader = self.reader();
        let result = async {
            let def = kith.object(&object)?;
            let custom = custom_defs(&reader, &def, [filter.as_ref(), order_by.as_ref()]).await?;
            let filter = match &filter {
                Some(json) => Filter::from_json(&def, &custom, json)?,
                None => Filter::all(),
            };
            let mut order = Vec::new();
            match &order_by {
                Some(Json::Array(items)) if items.len() <= 5 => {
                    for item in items {
                        order.push(OrderBy::from_json(&def, &custom, item)?);
                    }
                }
                Some(_) => return Err(DomainError::invalid("order-by", "a list of at most 5 sort keys").into()),
                None => {}
            }
            let list = ListQuery {
                filter,
                order,
                page: PageRequest::Forward { first: u64::from(query.first), after: query.after.clone() },
                include_deleted: false,
            };
            let page = records::list(&reader, &def, &list).await?;
            let next_cursor = if page.has_next { page.records.last().map(|(c, _)| c.clone()) } else { None };
            Ok::<_, Error>(Page {
                records: page.records.iter().map(|(_, r)| to_wit(&object, r)).collect(),
                next_cursor,
            })
        }
        .await;
        Ok(result.map_err(host_error))
    }

    async fn create_record(
        &mut self,
        object: String,
        fields: String,
    ) -> wasmtime::Result<Result<CrmRecord, HostError>> {
        if let Err(err) = self
            .check_object(&object, true, "create-record")
            .and_then(|()| self.spend(fields.len()))
            .and_then(|()| self.count_write())
        {
            return Ok(Err(err));
        }
        let fields = match parse_json("fields", &fields) {
            Ok(f) => f,
            Err(err) => return Ok(Err(err)),
        };
        let kith = self.plugin.kith.clone();
        let result = async {
            let def = kith.object(&object)?;
            let input = Input::from_json(&def, &fields)?;
            let tx = self.write_tx().await?;
            let record = tx.step(crate::service::records::create(tx, &kith.registry(), &object, input)).await?;
            Ok::<_, Error>(to_wit(&object, &record))
        }
        .await;
        Ok(result.map_err(host_error))
    }

    async fn update_record(
        &mut self,
        object: String,
        id: String,
        fields: String,
        expected_version: Option<u64>,
    ) -> wasmtime::Result<Result<CrmRecord, HostError>> {
        if let Err(err) = self
            .check_object(&object, true, "update-record")
            .and_then(|()| self.spend(fields.len()))
            .and_then(|()| self.count_write())
        {
            return Ok(Err(err));
        }
        let (id, fields) = match (parse_id(&id), parse_json("fields", &fields)) {
            (Ok(id), Ok(fields)) => (id, fields),
            (Err(err), _) | (_, Err(err)) => return Ok(Err(err)),
        };
        let kith = self.plugin.kith.clone();
        let result = async {
            let def = kith.object(&object)?;
            let input = Input::from_json(&def, &fields)?;
            let tx = self.write_tx().await?;
            let expected = expected_version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
            let record =
                tx.step(crate::service::records::update(tx, &kith.registry(), &object, id, input, expected)).await?;
            Ok::<_, Error>(to_wit(&object, &record))
        }
        .await;
        Ok(result.map_err(host_error))
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, HostError>> {
        if let Err(err) = self.check("kv", "kv-get") {
            return Ok(Err(err));
        }
        Ok(plugins::kv_get(&self.reader(), &self.plugin.id, &key).await.map_err(host_error))
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), HostError>> {
        if let Err(err) = self.check("kv", "kv-set") {
            return Ok(Err(err));
        }
        if let Err(err) = self.writable() {
            return Ok(Err(err));
        }
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Ok(Err(invalid(format!("keys are 1 to {MAX_KV_KEY} bytes"))));
        }
        if value.len() > MAX_KV_VALUE {
            return Ok(Err(HostError {
                code: ErrorCode::LimitExceeded,
                message: format!("values are at most {} KiB", MAX_KV_VALUE >> 10),
            }));
        }
        if let Err(err) = self.spend(key.len() + value.len()) {
            return Ok(Err(err));
        }
        let quota = self.plugin.kv_quota;
        let plugin = self.plugin.clone();
        let known = plugin.kv_usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).known();
        let result = match self.write_tx().await {
            Ok(tx) => tx.step(plugins::kv_set(tx.conn(), &plugin.id, &key, &value, quota, known, Utc::now())).await,
            Err(err) => Err(err),
        };
        if let Ok(Ok(usage)) = &result {
            plugin.kv_usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).update(*usage, known.is_none());
        }
        Ok(match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(plugins::KvRefusal::Keys)) => Err(HostError {
                code: ErrorCode::LimitExceeded,
                message: format!("a plugin may keep at most {} keys", quota.max_keys),
            }),
            Ok(Err(plugins::KvRefusal::Bytes)) => Err(HostError {
                code: ErrorCode::LimitExceeded,
                message: format!(
                    "the plugin's key-value store is full: it may hold {} MiB (`[limits] kv_mib`)",
                    quota.max_bytes >> 20
                ),
            }),
            Err(err) => Err(host_error(err)),
        })
    }

    async fn kv_delete(&mut self, key: String) -> wasmtime::Result<Result<bool, HostError>> {
        if let Err(err) = self.check("kv", "kv-delete") {
            return Ok(Err(err));
        }
        if let Err(err) = self.writable() {
            return Ok(Err(err));
        }
        let plugin = self.plugin.clone();
        Ok(match self.write_tx().await {
            Ok(tx) => plugins::kv_delete(tx.conn(), &plugin.id, &key).await,
            Err(err) => Err(err),
        }
        .map_err(host_error))
    }

    async fn kv_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, HostError>> {
        if let Err(err) = self.check("kv", "kv-keys") {
            return Ok(Err(err));
        }
        Ok(plugins::kv_keys(&self.reader(), &self.plugin.id, &prefix, 1_000).await.map_err(host_error))
    }

    async fn setting(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.plugin.settings.get(&key).map(Json::to_string))
    }
}

pub(crate) fn aggregate_text(value: &crate::domain::value::Value) -> Option<String> {
    match value.to_json() {
        Json::Null => None,
        Json::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

impl v1::kith::plugin::aggregate::Host for HostState {
    async fn aggregate(
        &mut self,
        object: String,
        request: v1::kith::plugin::aggregate::Request,
    ) -> wasmtime::Result<Result<Vec<v1::kith::plugin::aggregate::Row>, HostError>> {
        use crate::store::aggregate::{Bucket, GroupBy, Metric, MetricKind};
        use v1::kith::plugin::aggregate as wit;
        if let Err(err) = self.check_object(&object, false, "aggregate") {
            return Ok(Err(err));
        }
        let filter = match request.filter.as_deref().map(|f| parse_json("request.filter", f)).transpose() {
            Ok(f) => f,
            Err(err) => return Ok(Err(err)),
        };
        let group_by: Vec<GroupBy> = request
            .group_by
            .iter()
            .map(|g| GroupBy {
                field: g.field.clone(),
                bucket: g.bucket.map(|b| match b {
                    wit::DateBucket::Day => Bucket::Day,
                    wit::DateBucket::Week => Bucket::Week,
                    wit::DateBucket::Month => Bucket::Month,
                    wit::DateBucket::Year => Bucket::Year,
                }),
            })
            .collect();
        let metrics: Vec<Metric> = request
            .metrics
            .iter()
            .map(|m| Metric {
                kind: match m.kind {
                    wit::MetricKind::Count => MetricKind::Count,
                    wit::MetricKind::Sum => MetricKind::Sum,
                    wit::MetricKind::Min => MetricKind::Min,
                    wit::MetricKind::Max => MetricKind::Max,
                    wit::MetricKind::CountDistinct => MetricKind::CountDistinct,
                },
                field: m.field.clone(),
            })
            .collect();
        // Personal data stays out of aggregates (they feed reports) without its own grant.
        if let Ok(def) = self.plugin.kith.object(&object) {
            let named =
                group_by.iter().map(|g| g.field.as_str()).chain(metrics.iter().filter_map(|m| m.field.as_deref()));
            let personal: Vec<&str> = named.filter(|name| def.field_def(name).is_some_and(|f| f.personal)).collect();
            if let Some(name) = personal.first() {
                let function = format!("aggregate over the personal field `{object}.{name}`");
                if let Err(err) = self.check(PERSONAL_AGGREGATE, &function) {
                    return Ok(Err(err));
                }
            }
        }
        let kith = &self.plugin.kith;
        let reader = self.reader();
        let result = async {
            let def = kith.object(&object)?;
            let custom = custom_defs(&reader, &def, [filter.as_ref(), None]).await?;
            let filter = match &filter {
                Some(json) => Filter::from_json(&def, &custom, json)?,
                None => Filter::all(),
            };
            let rows = crate::store::aggregate::aggregate(
                &reader,
                &def,
                &filter,
                &group_by,
                &metrics,
                request.limit,
                request.order.map(|o| (o.metric as usize, o.descending)),
            )
            .await?;
            Ok::<_, Error>(
                rows.iter()
                    .map(|row| wit::Row {
                        keys: row.keys.iter().map(aggregate_text).collect(),
                        values: row.values.iter().map(aggregate_text).collect(),
                    })
                    .collect(),
            )
        }
        .await;
        Ok(result.map_err(host_error))
    }
}

impl v1::kith::plugin::mail::Host for HostState {
    async fn send(&mut self, message: v1::kith::plugin::mail::Message) -> wasmtime::Result<Result<String, HostError>> {
        Ok(self.mail_send(message).await)
    }
}

impl HostState {
    async fn mail_send(&mut self, message: v1::kith::plugin::mail::Message) -> Result<String, HostError> {
        self.mail_ready()?;
        let row = self.build_mail(message)?;
        let tx = self.write_tx().await.map_err(host_error)?;
        tx.step(crate::store::mail::queue(tx, &row)).await.map_err(host_error)?;
        Ok(row.message_id)
    }

    /// Whether this call may queue e-mail at all: the grant, a call that may write, a relay.
    pub(crate) fn mail_ready(&mut self) -> Result<(), HostError> {
        self.check(crate::plugin::manifest::MAIL_SEND, "mail.send")?;
        if let Err(err) = self.writable() {
            return Err(HostError {
                code: ErrorCode::Unavailable,
                message: err.message.replace("writes are", "e-mail is"),
            });
        }
        if self.plugin.kith.mailer().is_none() {
            return Err(HostError {
                code: ErrorCode::Unavailable,
                message: "e-mail is not configured on this Kith (`[mail] relay`)".into(),
            });
        }
        Ok(())
    }

    /// One message built by Kith from the plugin's parts, counted against the call's bytes and
    /// the plugin's mail rate, ready for the queue.
    pub(crate) fn build_mail(
        &mut self,
        message: v1::kith::plugin::mail::Message,
    ) -> Result<crate::store::mail::NewMessage, HostError> {
        let (mailer, parts) = self.admit_mail(message)?;
        let built = mailer.build(&parts, Utc::now());
        self.built_mail(parts, built)
    }

    /// Many messages, as [`HostState::build_mail`] each, built on up to as many threads as
    /// the machine has cores (building a message is most of what queueing one costs).
    pub(crate) fn build_mails(
        &mut self,
        messages: Vec<v1::kith::plugin::mail::Message>,
    ) -> Vec<Result<crate::store::mail::NewMessage, HostError>> {
        let admitted: Vec<_> = messages.into_iter().map(|m| self.admit_mail(m)).collect();
        let now = Utc::now();
        let work: Vec<(usize, &std::sync::Arc<crate::service::mail::Mailer>, &crate::service::mail::message::Parts)> =
            admitted
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.as_ref().ok().map(|(mailer, parts)| (i, mailer, parts)))
                .collect();
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(work.len() / 32).max(1);
        let mut built: Vec<Option<Result<crate::service::mail::message::Built, crate::service::mail::MailError>>> =
            (0..admitted.len()).map(|_| None).collect();
        if threads == 1 {
            for (i, mailer, parts) in &work {
                built[*i] = Some(mailer.build(parts, now));
            }
        } else {
            let per = work.len().div_ceil(threads);
            let results: Vec<Vec<(usize, Result<_, _>)>> = std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .chunks(per)
                    .skip(1)
                    .map(|chunk| {
                        scope.spawn(move || chunk.iter().map(|(i, m, p)| (*i, m.build(p, now))).collect::<Vec<_>>())
                    })
                    .collect();
                let mut all = vec![work[..per].iter().map(|(i, m, p)| (*i, m.build(p, now))).collect::<Vec<_>>()];
                for handle in handles {
                    // A panic while building is a bug; it surfaces here as in a single thread.
                    all.push(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                }
                all
            });
            for (i, result) in results.into_iter().flatten() {
                built[i] = Some(result);
            }
        }
        admitted
            .into_iter()
            .zip(built)
            .map(|(admitted, built)| {
                let (_, parts) = admitted?;
                let built = built.ok_or_else(|| invalid("the message was not built".to_owned()))?;
                self.built_mail(parts, built)
            })
            .collect()
    }

    /// The checks before a message is built: its size against the call's bytes, the mail
    /// rate, a mailer configured.
    fn admit_mail(
        &mut self,
        message: v1::kith::plugin::mail::Message,
    ) -> Result<(std::sync::Arc<crate::service::mail::Mailer>, crate::service::mail::message::Parts), HostError> {
        let size = message.subject.len()
            + message.text.as_ref().map_or(0, String::len)
            + message.html.as_ref().map_or(0, String::len)
            + message.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
        self.spend(size)?;
        let Some(mailer) = self.plugin.kith.mailer() else {
            return Err(HostError {
                code: ErrorCode::Unavailable,
                message: "e-mail is not configured on this Kith (`[mail] relay`)".into(),
            });
        };
        if !self.plugin.mail_rate.take() {
            return Err(HostError {
                code: ErrorCode::LimitExceeded,
                message: "the plugin queued more messages this minute than `[limits] mail_per_minute` allows".into(),
            });
        }
        let parts = crate::service::mail::message::Parts {
            from: message.from,
            to: message.to,
            reply_to: message.reply_to,
            subject: message.subject,
            text: message.text,
            html: message.html,
            headers: message.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            reference: message.reference,
        };
        Ok((mailer, parts))
    }

    /// The queue row of a built message, or why it was not built (a sender Kith does not
    /// allow is a denied call, recorded).
    fn built_mail(
        &mut self,
        parts: crate::service::mail::message::Parts,
        built: Result<crate::service::mail::message::Built, crate::service::mail::MailError>,
    ) -> Result<crate::store::mail::NewMessage, HostError> {
        let built = match built {
            Ok(built) => built,
            Err(crate::service::mail::MailError::SenderNotAllowed(sender)) => {
                self.call.denied.push((format!("mail sender {sender}"), "mail.send".into()));
                return Err(HostError {
                    code: ErrorCode::Denied,
                    message: format!("`{sender}` is not a sender this Kith allows (`[mail] senders`)"),
                });
            }
            Err(err) => return Err(invalid(err.to_string())),
        };
        Ok(crate::store::mail::NewMessage {
            id: Uuid::now_v7(),
            plugin_id: self.plugin.id.clone(),
            message_id: built.message_id,
            sender: built.sender,
            recipient: built.recipient,
            subject: built.subject,
            message: built.message,
            reference: parts.reference,
        })
    }
}

/// The plugin's link key: read from its row, or made there at first use (one for every
/// process: the first writer wins).
async fn link_key(plugin: std::sync::Arc<crate::plugin::host::PluginContext>) -> Result<[u8; 32], HostError> {
    plugin
        .link_key
        .get_or_try_init(|| async { plugins::link_key(plugin.kith.store.conn(), &plugin.id).await.map_err(host_error) })
        .await
        .copied()
}

impl v1::kith::plugin::links::Host for HostState {
    async fn sign_url(
        &mut self,
        path: String,
        params: Vec<(String, String)>,
        expires_in_seconds: Option<u32>,
    ) -> wasmtime::Result<Result<String, HostError>> {
        let key = match link_key(self.plugin.clone()).await {
            Ok(key) => key,
            Err(err) => return Ok(Err(err)),
        };
        let expires = expires_in_seconds.map(|s| Utc::now().timestamp() + i64::from(s));
        let base = self.plugin.kith.public_url();
        Ok(crate::plugin::links::sign(&key, &base, &self.plugin.id, &path, &params, expires).map_err(invalid))
    }

    async fn verify_url(&mut self, url: String) -> wasmtime::Result<Result<Vec<(String, String)>, HostError>> {
        let key = match link_key(self.plugin.clone()).await {
            Ok(key) => key,
            Err(err) => return Ok(Err(err)),
        };
        Ok(crate::plugin::links::verify(&key, &self.plugin.id, &url, Utc::now().timestamp()).map_err(invalid))
    }
}

//! The host calls behind the public helpers: the real host inside wasm, the in-memory
//! [`TestHost`](crate::testing::TestHost) in native builds (unit tests).

/// Log levels, in increasing severity. A minor version may add levels: a `match` on it needs a
/// `_` arm.
///
/// ```
/// use kith_plugin_sdk::log::Level;
/// assert!(Level::Warn > Level::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Diagnostic.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::__private::bindings::kith::plugin::host;
    use crate::__private::bindings::kith::plugin::types as wit;
    use crate::types::{Error, Page, Query, Record, Result};

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit::LogLevel::Trace,
            Level::Debug => wit::LogLevel::Debug,
            Level::Info => wit::LogLevel::Info,
            Level::Warn => wit::LogLevel::Warn,
            Level::Error => wit::LogLevel::Error,
        };
        host::log(level, message);
    }

    pub(crate) fn now() -> String {
        host::now()
    }

    pub(crate) fn get_record(object: &str, id: &str) -> Result<Option<Record>> {
        host::get_record(object, id).map_err(Error::from_wit)?.map(Record::from_wit).transpose()
    }

    pub(crate) fn query_records(object: &str, query: &Query) -> Result<Page> {
        let query = wit::Query {
            filter: query.filter.as_ref().map(|f| f.to_string()),
            order_by: query.order_by.as_ref().map(|o| o.to_string()),
            first: query.first,
            after: query.after.clone(),
        };
        let page = host::query_records(object, &query).map_err(Error::from_wit)?;
        Ok(Page {
            records: page.records.into_iter().map(Record::from_wit).collect::<Result<_>>()?,
            next_cursor: page.next_cursor,
        })
    }

    pub(crate) fn create_record(object: &str, fields: &str) -> Result<Record> {
        Record::from_wit(host::create_record(object, fields).map_err(Error::from_wit)?)
    }

    pub(crate) fn update_record(object: &str, id: &str, fields: &str, expected_version: Option<u64>) -> Result<Record> {
        Record::from_wit(host::update_record(object, id, fields, expected_version).map_err(Error::from_wit)?)
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>> {
        host::kv_get(key).map_err(Error::from_wit)
    }

    pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<()> {
        host::kv_set(key, value).map_err(Error::from_wit)
    }

    pub(crate) fn kv_delete(key: &str) -> Result<bool> {
        host::kv_delete(key).map_err(Error::from_wit)
    }

    pub(crate) fn kv_keys(prefix: &str) -> Result<Vec<String>> {
        host::kv_keys(prefix).map_err(Error::from_wit)
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        host::setting(key)
    }

    pub(crate) fn http_send(request: &crate::http::Request) -> Result<crate::http::Response> {
        use crate::__private::bindings::kith::plugin::http as wit_http;
        let wit_request = wit_http::Request {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| wit_http::Header { name: name.clone(), value: value.clone() })
                .collect(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        };
        let response = wit_http::send(&wit_request).map_err(Error::from_wit)?;
        Ok(crate::http::Response {
            status: response.status,
            headers: response.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: response.body,
            url: response.url,
        })
    }

    pub(crate) fn aggregate(object: &str, query: &crate::aggregate::Aggregate) -> Result<Vec<crate::aggregate::Row>> {
        use crate::__private::bindings::kith::plugin::aggregate as wit_agg;
        use crate::aggregate::{Bucket, Metric};
        let request = wit_agg::Request {
            filter: query.filter.as_ref().map(|f| f.to_string()),
            group_by: query
                .group_by
                .iter()
                .map(|(field, bucket)| wit_agg::GroupBy {
                    field: field.clone(),
                    bucket: bucket.map(|b| match b {
                        Bucket::Day => wit_agg::DateBucket::Day,
                        Bucket::Week => wit_agg::DateBucket::Week,
                        Bucket::Month => wit_agg::DateBucket::Month,
                        Bucket::Year => wit_agg::DateBucket::Year,
                    }),
                })
                .collect(),
            metrics: query
                .metrics
                .iter()
                .map(|(metric, field)| wit_agg::Metric {
                    kind: match metric {
                        Metric::Count => wit_agg::MetricKind::Count,
                        Metric::Sum => wit_agg::MetricKind::Sum,
                        Metric::Min => wit_agg::MetricKind::Min,
                        Metric::Max => wit_agg::MetricKind::Max,
                        Metric::CountDistinct => wit_agg::MetricKind::CountDistinct,
                    },
                    field: field.clone(),
                })
                .collect(),
            limit: query.limit,
            order: query.order.map(|(metric, descending)| wit_agg::MetricOrder { metric, descending }),
        };
        let rows = wit_agg::aggregate(object, &request).map_err(Error::from_wit)?;
        Ok(rows.into_iter().map(|r| crate::aggregate::Row { keys: r.keys, values: r.values }).collect())
    }

    pub(crate) fn create_records(object: &str, items: &[String]) -> Result<Vec<Result<Record>>> {
        use crate::__private::bindings::kith::plugin::bulk;
        let results = bulk::create_records(object, items).map_err(Error::from_wit)?;
        Ok(results.into_iter().map(|r| r.map_err(Error::from_wit).and_then(Record::from_wit)).collect())
    }

    pub(crate) fn update_records(object: &str, updates: &[crate::records::Update]) -> Result<Vec<Result<Record>>> {
        use crate::__private::bindings::kith::plugin::bulk;
        let updates: Vec<bulk::Update> = updates
            .iter()
            .map(|u| bulk::Update {
                id: u.id.clone(),
                fields: u.fields.to_string(),
                expected_version: u.expected_version,
            })
            .collect();
        let results = bulk::update_records(object, &updates).map_err(Error::from_wit)?;
        Ok(results.into_iter().map(|r| r.map_err(Error::from_wit).and_then(Record::from_wit)).collect())
    }

    pub(crate) fn send_mails(messages: &[crate::mail::Message]) -> Result<Vec<Result<String>>> {
        use crate::__private::bindings::kith::plugin::bulk;
        let messages: Vec<_> = messages.iter().map(wit_message).collect();
        let results = bulk::send_mails(&messages).map_err(Error::from_wit)?;
        Ok(results.into_iter().map(|r| r.map_err(Error::from_wit)).collect())
    }

    fn wit_message(message: &crate::mail::Message) -> crate::__private::bindings::kith::plugin::mail::Message {
        use crate::__private::bindings::kith::plugin::mail as wit_mail;
        wit_mail::Message {
            from: message.from.clone(),
            to: message.to.clone(),
            reply_to: message.reply_to.clone(),
            subject: message.subject.clone(),
            text: message.text.clone(),
            html: message.html.clone(),
            headers: message
                .headers
                .iter()
                .map(|(name, value)| wit_mail::Header { name: name.clone(), value: value.clone() })
                .collect(),
            reference: message.reference.clone(),
        }
    }

    pub(crate) fn mail_send(message: &crate::mail::Message) -> Result<String> {
        use crate::__private::bindings::kith::plugin::mail as wit_mail;
        wit_mail::send(&wit_message(message)).map_err(Error::from_wit)
    }

    pub(crate) fn sign_url(path: &str, params: &[(&str, &str)], expires_in_seconds: Option<u32>) -> Result<String> {
        use crate::__private::bindings::kith::plugin::links;
        let params: Vec<(String, String)> = params.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        links::sign_url(path, &params, expires_in_seconds).map_err(Error::from_wit)
    }

    pub(crate) fn verify_url(url: &str) -> Result<Vec<(String, String)>> {
        use crate::__private::bindings::kith::plugin::links;
        links::verify_url(url).map_err(Error::from_wit)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use crate::testing::with_current;
    use crate::types::{Page, Query, Record, Result};

    pub(crate) fn log(level: Level, message: &str) {
        with_current(|host| host.log(level, message))
    }

    pub(crate) fn now() -> String {
        with_current(|host| host.now())
    }

    pub(crate) fn get_record(object: &str, id: &str) -> Result<Option<Record>> {
        with_current(|host| host.get_record(object, id))
    }

    pub(crate) fn query_records(object: &str, query: &Query) -> Result<Page> {
        with_current(|host| host.query_records(object, query))
    }

    pub(crate) fn create_record(object: &str, fields: &str) -> Result<Record> {
        with_current(|host| host.create_record(object, fields))
    }

    pub(crate) fn update_record(object: &str, id: &str, fields: &str, expected_version: Option<u64>) -> Result<Record> {
        with_current(|host| host.update_record(object, id, fields, expected_version))
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>> {
        with_current(|host| host.kv_get(key))
    }

    pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<()> {
        with_current(|host| host.kv_set(key, value))
    }

    pub(crate) fn kv_delete(key: &str) -> Result<bool> {
        with_current(|host| host.kv_delete(key))
    }

    pub(crate) fn kv_keys(prefix: &str) -> Result<Vec<String>> {
        with_current(|host| host.kv_keys(prefix))
    }

    pub(crate) fn setting(key: &str) -> Option<String> {
        with_current(|host| host.setting_value(key))
    }

    pub(crate) fn http_send(request: &crate::http::Request) -> Result<crate::http::Response> {
        with_current(|host| host.http_send(request))
    }

    pub(crate) fn aggregate(object: &str, query: &crate::aggregate::Aggregate) -> Result<Vec<crate::aggregate::Row>> {
        with_current(|host| host.aggregate(object, query))
    }

    pub(crate) fn create_records(object: &str, items: &[String]) -> Result<Vec<Result<Record>>> {
        with_current(|host| host.create_records(object, items))
    }

    pub(crate) fn update_records(object: &str, updates: &[crate::records::Update]) -> Result<Vec<Result<Record>>> {
        with_current(|host| host.update_records(object, updates))
    }

    pub(crate) fn send_mails(messages: &[crate::mail::Message]) -> Result<Vec<Result<String>>> {
        with_current(|host| host.send_mails(messages))
    }

    pub(crate) fn mail_send(message: &crate::mail::Message) -> Result<String> {
        with_current(|host| host.mail_send(message))
    }

    pub(crate) fn sign_url(path: &str, params: &[(&str, &str)], expires_in_seconds: Option<u32>) -> Result<String> {
        with_current(|host| host.sign_url(path, params, expires_in_seconds))
    }

    pub(crate) fn verify_url(url: &str) -> Result<Vec<(String, String)>> {
        with_current(|host| host.verify_url(url))
    }
}

pub(crate) use imp::*;

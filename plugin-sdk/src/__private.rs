//! What `register_plugin!` expands to. Not part of the public API.

#![allow(missing_docs)]

use crate::Plugin;
use crate::types::{Call, Change, Event};

#[allow(unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../schemas/wit/v1.4.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__kith_export",
        default_bindings_module: "kith_plugin_sdk::__private::bindings",
        runtime_path: "kith_plugin_sdk::__private::wit_bindgen_rt",
    });
}

pub use bindings::__kith_export as export;
pub use bindings::Guest;
pub use bindings::exports::kith::plugin::extension::{Guest as ExtensionGuest, OperationError as WitOperationError};
pub use bindings::exports::kith::plugin::http_handler::{
    Guest as HttpHandlerGuest, Header as WitHeader, Request as WitRequest, Response as WitResponse,
};
pub use bindings::kith::plugin::types::{
    Change as WitChange, Event as WitEvent, EventFailure as WitEventFailure, Verdict as WitVerdict,
};
pub use wit_bindgen::rt as wit_bindgen_rt;

const fn parse_u16(s: &str) -> u16 {
    let bytes = s.as_bytes();
    let mut value: u16 = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u16;
        i += 1;
    }
    value
}

const fn version_bytes() -> [u8; 6] {
    let major = parse_u16(env!("CARGO_PKG_VERSION_MAJOR")).to_be_bytes();
    let minor = parse_u16(env!("CARGO_PKG_VERSION_MINOR")).to_be_bytes();
    let patch = parse_u16(env!("CARGO_PKG_VERSION_PATCH")).to_be_bytes();
    [major[0], major[1], minor[0], minor[1], patch[0], patch[1]]
}

/// The SDK version as stored in the `kith:sdk-version` custom section.
pub const SDK_VERSION_BYTES: [u8; 6] = version_bytes();

/// Answers a route's request with a fresh `P`.
pub fn dispatch_request<P: Plugin>(request: WitRequest) -> WitResponse {
    let request = crate::routes::Request {
        method: request.method,
        route: request.route,
        path: request.path,
        query: request.query,
        headers: request.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: request.body,
        caller: request.caller,
    };
    let response = P::default().handle_request(&request);
    WitResponse {
        status: response.status,
        headers: response.headers.into_iter().map(|(name, value)| WitHeader { name, value }).collect(),
        body: response.body,
    }
}

/// Delivers a batch to a fresh `P` ([`Plugin::on_events`]).
pub fn dispatch_events<P: Plugin>(events: Vec<WitEvent>) -> Result<(), WitEventFailure> {
    let last = events.len().saturating_sub(1);
    let events: Vec<Event> = events.into_iter().map(Event::from_wit).collect();
    P::default()
        .on_events(&events)
        .map_err(|(index, err)| WitEventFailure { index: index.min(last) as u32, message: err.to_string() })
}

/// Asks a fresh `P` about a write.
pub fn dispatch_before_write<P: Plugin>(change: WitChange) -> WitVerdict {
    match Change::from_wit(change) {
        Ok(change) => P::default().before_write(&change).into_wit(),
        Err(err) => WitVerdict::Deny(format!("the plugin could not read the change: {err}")),
    }
}

/// Asks a fresh `P` for a computed field of a page of records.
pub fn dispatch_compute_field<P: Plugin>(
    object: String,
    field: String,
    ids: Vec<String>,
) -> Result<Vec<String>, String> {
    let values = P::default().compute_field(&object, &field, &ids).map_err(|err| err.to_string())?;
    if values.len() != ids.len() {
        return Err(format!("computed {} values for {} records", values.len(), ids.len()));
    }
    Ok(values.iter().map(|value| value.to_string()).collect())
}

/// Runs a query or mutation on a fresh `P`.
pub fn dispatch_call<P: Plugin>(name: String, arguments: String, caller: String) -> Result<String, WitOperationError> {
    let arguments = serde_json::from_str(&arguments).map_err(|err| WitOperationError {
        code: crate::types::code_to_wit(crate::ErrorCode::Internal),
        message: format!("Kith sent arguments that are not JSON: {err}"),
        field: None,
    })?;
    let call = Call { name, arguments, caller };
    P::default().call(&call).map(|value| value.to_string()).map_err(|err| WitOperationError {
        code: crate::types::code_to_wit(err.code),
        message: err.message,
        field: err.field,
    })
}

/// Runs a job on a fresh `P`.
pub fn dispatch_job<P: Plugin>(job: String, scheduled_for: String) -> Result<(), String> {
    P::default().run_job(&job, &scheduled_for).map_err(|err| err.to_string())
}

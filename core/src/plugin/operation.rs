//! Running a plugin's query or mutation: the caller's role, the arguments checked against their
//! declared types, one call (writes only for mutations, in one transaction committed only if
//! the call succeeds), and the answer checked against the declared result type. GraphQL and
//! `kith plugin call` both come here.

use crate::domain::code::Code;
use crate::domain::extension::{Extension, OperationKind};

/// The first SDK whose components export `kith:plugin/extension`.
/// Why a plugin operation did not answer, with the GraphQL error code it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    /// `BAD_USER_INPUT`, `NOT_FOUND`, `CONFLICT`, `FORBIDDEN`, `RATE_LIMITED`, `UNAVAILABLE`
    /// or `PLUGIN_FAILED`.
    pub code: Code,
    /// What went wrong.
    pub message: String,
    /// The argument at fault, if any.
    pub field: Option<String>,
}

impl std::fmt::Display for OperationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {field}: {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

fn failure(code: Code, message: impl Into<String>, field: Option<String>) -> OperationFailure {
    OperationFailure { code, message: message.into(), field }
}

/// Runs the declared operation `name` of `extension`'s plugin for `actor` with `arguments` (a
/// JSON object): checks the role and every argument against its declared type, calls the
/// plugin (writes allowed only for mutations) and checks its answer against the declared
/// result type. The one path for GraphQL and the CLI.
pub async fn run_operation(
    kith: &crate::service::Kith,
    extension: &Extension,
    name: &str,
    actor: &crate::domain::actor::Actor,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, OperationFailure> {
    use crate::domain::extension::check_value;
    use crate::plugin::host::v1::kith::plugin::types::ErrorCode;
    let operation = extension.operations.iter().find(|o| o.name == name).ok_or_else(|| {
        failure(Code::BadUserInput, format!("the plugin `{}` has no operation `{name}`", extension.plugin), None)
    })?;
    if !actor.role.allows(operation.role) {
        return Err(failure(
            Code::Forbidden,
            format!("this needs the {} role; you have {}", operation.role, actor.role),
            None,
        ));
    }
    if let Some(unknown) = arguments.keys().find(|k| !operation.arguments.contains_key(*k)) {
        return Err(failure(
            Code::BadUserInput,
            format!("`{name}` has no argument `{unknown}`"),
            Some(unknown.clone()),
        ));
    }
    let mut checked = serde_json::Map::new();
    for (argument, ty) in &operation.arguments {
        let value = arguments.get(argument).cloned().unwrap_or(serde_json::Value::Null);
        check_value(extension, ty, &value, argument)
            .map_err(|reason| failure(Code::BadUserInput, reason, Some(argument.clone())))?;
        checked.insert(argument.clone(), value);
    }
    let runtime = crate::plugin::PluginManager::of(kith)
        .and_then(|manager| manager.loaded(&extension.plugin))
        .filter(|p| p.active)
        .ok_or_else(|| {
            failure(
                Code::Unavailable,
                format!("the plugin `{}` is not running in this Kith process", extension.plugin),
                None,
            )
        })?;
    let write = operation.kind == OperationKind::Mutation;
    let called =
        runtime.call_operation(name, &serde_json::Value::Object(checked).to_string(), &actor.name, write).await;
    if let Some(manager) = crate::plugin::PluginManager::of(kith) {
        manager.note_outcome(&runtime, called.as_ref().err(), &format!("answering `{name}`"));
    }
    let answer = called.map_err(|err| {
        tracing::warn!(plugin = %extension.plugin, operation = %name, error = %err, "plugin operation failed");
        failure(Code::PluginFailed, format!("the plugin `{}` failed answering `{name}`: {err}", extension.plugin), None)
    })?;
    match answer {
        Ok(text) => {
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
                failure(
                    Code::PluginFailed,
                    format!("the plugin `{}` answered `{name}` with text that is not JSON", extension.plugin),
                    None,
                )
            })?;
            if let Err(reason) = check_value(extension, &operation.returns, &value, name) {
                tracing::warn!(plugin = %extension.plugin, %reason, "a plugin answered with the wrong type");
                return Err(failure(
                    Code::PluginFailed,
                    format!(
                        "the plugin `{}` answered `{name}` with a value that is not a {}: {reason}",
                        extension.plugin, operation.returns
                    ),
                    None,
                ));
            }
            Ok(value)
        }
        Err(err) => {
            let code = match err.code {
                ErrorCode::InvalidInput => Code::BadUserInput,
                ErrorCode::NotFound => Code::NotFound,
                ErrorCode::Conflict => Code::Conflict,
                ErrorCode::Denied => Code::Forbidden,
                ErrorCode::LimitExceeded => Code::RateLimited,
                ErrorCode::Unavailable | ErrorCode::Internal => Code::PluginFailed,
            };
            Err(failure(code, crate::plugin::output::for_caller(&err.message), err.field))
        }
    }
}

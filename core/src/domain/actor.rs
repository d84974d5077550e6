//! Who is acting: a user, an API token, a plugin or the system itself, and with which role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainError;

/// A role, from least to most powerful. Each role can do everything the roles below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Reads records.
    Viewer,
    /// Also creates and updates records.
    Agent,
    /// Also deletes and merges records and reads reports.
    Manager,
    /// Also manages users, tokens, custom fields and plugins.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Agent, Role::Manager, Role::Admin];

    /// The wire name (`ADMIN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "VIEWER",
            Role::Agent => "AGENT",
            Role::Manager => "MANAGER",
            Role::Admin => "ADMIN",
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Role, DomainError> {
        Role::ALL.into_iter().find(|role| role.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            DomainError::invalid("role", format!("unknown role `{s}` (expected ADMIN, MANAGER, AGENT or VIEWER)"))
        })
    }
}

/// What kind of principal an [`Actor`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person logged in with a session token.
    User,
    /// An API token.
    Token,
    /// A plugin acting through the host API.
    Plugin,
    /// Kith itself: migrations, imports run from the CLI, scheduled work.
    System,
}

impl ActorKind {
    /// The name stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Plugin => "plugin",
            ActorKind::System => "system",
        }
    }
}

/// The principal behind a change, recorded in the audit log and on every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// What it is.
    pub kind: ActorKind,
    /// Its id: a user or token UUID, a plugin id; `None` for the system.
    pub id: Option<String>,
    /// A readable name for logs and the audit trail.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The user behind a session or token, used as the default owner of what it creates.
    pub user_id: Option<uuid::Uuid>,
    /// For a plugin handling an event: how many plugin writes led to that event, plus one.
    /// Stamped on the events this actor causes, so chains of plugin writes can be cut off.
    pub depth: u32,
}

impl Actor {
    /// Kith itself, with full rights.
    pub fn system(name: &str) -> Actor {
        Actor { kind: ActorKind::System, id: None, name: name.to_owned(), role: Role::Admin, user_id: None, depth: 0 }
    }

    /// A plugin, with the role its grants amount to.
    pub fn plugin(id: &str, role: Role, depth: u32) -> Actor {
        Actor {
            kind: ActorKind::Plugin,
            id: Some(id.to_owned()),
            name: format!("plugin:{id}"),
            role,
            user_id: None,
            depth,
        }
    }

    /// A short label, e.g. `user:ada@example.org`, stored where a single string is enough.
    pub fn label(&self) -> String {
        match self.kind {
            ActorKind::System => format!("system:{}", self.name),
            ActorKind::Plugin => self.name.clone(),
            ActorKind::User | ActorKind::Token => format!("{}:{}", self.kind.as_str(), self.name),
        }
    }

    /// The plugin id when a plugin acts, so events it causes carry their origin.
    pub fn origin_plugin(&self) -> Option<&str> {
        match self.kind {
            ActorKind::Plugin => self.id.as_deref(),
            _ => None,
        }
    }
}

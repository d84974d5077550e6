//! Every string the console shows people, in one catalogue (English), ready for translation.
//! Labels of objects and fields come from the registry (`ObjectDef::label`,
//! `FieldDef::label`), not from here.

/// The product's name.
pub const BRAND: &str = "Kith";
/// The menu's accessible name.
pub const MENU: &str = "Records";
/// The skip link.
pub const SKIP: &str = "Skip to content";
/// The search box's label.
pub const SEARCH: &str = "Search";
/// The search box's placeholder.
pub const SEARCH_HINT: &str = "Search (press /)";
/// No search hits.
pub const NO_HITS: &str = "Nothing found.";
/// Sign-out button.
pub const SIGN_OUT: &str = "Sign out";
/// Sign-in page title and button.
pub const SIGN_IN: &str = "Sign in";
/// The e-mail field.
pub const EMAIL: &str = "E-mail";
/// The password field.
pub const PASSWORD: &str = "Password";
/// The name field of the first admin.
pub const YOUR_NAME: &str = "Your name";
/// Wrong credentials.
pub const WRONG_LOGIN: &str = "Wrong e-mail or password.";
/// Throttled sign-in.
pub const TOO_MANY_TRIES: &str = "Too many failed sign-ins. Try again in";
/// Seconds.
pub const SECONDS: &str = "seconds";
/// A form whose CSRF token did not match.
pub const STALE_FORM: &str = "This form has expired or did not come from Kith. Reload the page and try again.";
/// The signed-out notice.
pub const SIGNED_OUT: &str = "You are signed out.";
/// The session expired.
pub const SESSION_EXPIRED: &str = "Your session has ended. Sign in again.";
/// First-run setup title.
pub const SETUP: &str = "Create the first administrator";
/// First-run setup explanation.
pub const SETUP_HINT: &str = "Kith has no users yet. The account you create here is an administrator.";
/// The setup code field.
pub const SETUP_CODE: &str = "Setup code (printed by kith serve)";
/// A wrong setup code.
pub const WRONG_SETUP_CODE: &str = "That setup code is not the one this server printed.";
/// Setup is over.
pub const SETUP_DONE: &str = "Kith has users already: sign in instead.";
/// Create button.
pub const CREATE: &str = "Create";
/// Save button.
pub const SAVE: &str = "Save";
/// Edit link.
pub const EDIT: &str = "Edit";
/// Delete button.
pub const DELETE: &str = "Delete";
/// Cancel link.
pub const CANCEL: &str = "Cancel";
/// New-record link prefix.
pub const NEW: &str = "New";
/// Next page.
pub const NEXT: &str = "Next page";
/// Previous page.
pub const PREVIOUS: &str = "Previous page";
/// Records counted.
pub const RECORDS: &str = "records";
/// An empty list.
pub const EMPTY: &str = "No records yet.";
/// Filter form: the field.
pub const FILTER_FIELD: &str = "Field";
/// Filter form: the operator.
pub const FILTER_OP: &str = "Condition";
/// Filter form: the value.
pub const FILTER_VALUE: &str = "Value";
/// Filter button.
pub const FILTER: &str = "Filter";
/// Clear the filter.
pub const CLEAR: &str = "Clear";
/// Operators of the filter builder, by the filter language's name.
pub const OPS: &[(&str, &str)] = &[
    ("eq", "is"),
    ("neq", "is not"),
    ("ilike", "contains"),
    ("startsWith", "starts with"),
    ("gt", "is more than"),
    ("lt", "is less than"),
    ("isNull", "is empty"),
];
/// Yes.
pub const YES: &str = "Yes";
/// No.
pub const NO: &str = "No";
/// No value chosen.
pub const NONE: &str = "—";
/// The timeline heading.
pub const TIMELINE: &str = "Timeline";
/// Computed values heading.
pub const COMPUTED: &str = "From plugins";
/// See all related records.
pub const SEE_ALL: &str = "See all";
/// A record that is gone.
pub const NOT_FOUND: &str = "This record does not exist or was deleted.";
/// An object the console does not know.
pub const NO_SUCH_OBJECT: &str = "There is no such kind of record.";
/// A role that may not see a page.
pub const FORBIDDEN: &str = "Your role may not do this.";
/// In place of a value the reader's role may not read.
pub const RESTRICTED: &str = "Restricted";
/// Beside [`RESTRICTED`]: the role that may read it (`Readable by MANAGER`).
pub const RESTRICTED_TO: &str = "Readable by";
/// The version-conflict notice.
pub const CONFLICT: &str = "This record was changed since you opened it";
/// Conflict: by whom.
pub const CONFLICT_BY: &str = "by";
/// Conflict choices.
pub const CONFLICT_CHOICE: &str =
    "Reload to see the current record (your changes are lost), or save again to overwrite it with yours.";
/// Reload link.
pub const RELOAD: &str = "Reload";
/// Overwrite button.
pub const OVERWRITE: &str = "Overwrite with my changes";
/// Errors of a form.
pub const FIX_ERRORS: &str = "The record was not saved:";
/// A whole number was expected.
pub const NOT_A_NUMBER: &str = "must be a whole number";
/// JSON was expected.
pub const NOT_JSON: &str = "must be JSON";
/// Tags field.
pub const TAGS: &str = "Tags (comma-separated)";
/// Something failed inside Kith.
pub const INTERNAL: &str = "Something went wrong inside Kith; the error is in its log.";
/// Plugin operations page.
pub const OPERATIONS: &str = "Plugin actions";
/// No plugin operations.
pub const NO_OPERATIONS: &str = "No enabled plugin offers an action your role may run.";
/// An operation that is not there.
pub const NO_SUCH_OPERATION: &str = "No enabled plugin offers that action to your role.";
/// List arguments.
pub const ONE_PER_LINE: &str = "(one per line)";
/// Run button.
pub const RUN: &str = "Run";
/// The answer of an operation.
pub const RESULT: &str = "Result";
/// The pipeline board.
pub const BOARD: &str = "Pipeline board";
/// No pipeline to show.
pub const NO_PIPELINES: &str = "There is no pipeline yet.";
/// Choose a pipeline.
pub const PIPELINE: &str = "Pipeline";
/// Show button.
pub const SHOW: &str = "Show";
/// Deals, counted.
pub const DEALS: &str = "deals";
/// The weighted forecast.
pub const WEIGHTED: &str = "weighted";
/// Move a card.
pub const MOVE_TO: &str = "Stage";
/// Move button.
pub const MOVE: &str = "Move";
/// Close a deal.
pub const CLOSE_DEAL: &str = "Close";
/// Outcome of a close.
pub const OUTCOME: &str = "Outcome";
/// Won.
pub const WON: &str = "Won";
/// Lost.
pub const LOST: &str = "Lost";
/// Why a deal closed.
pub const REASON: &str = "Reason";
/// A board showing only the first deals.
pub const BOARD_CAPPED: &str = "The board shows the first deals by title:";
/// The ticket inbox.
pub const INBOX: &str = "Inbox";
/// An SLA already missed.
pub const SLA_BREACHED: &str = "SLA breached";
/// An SLA about to be missed.
pub const SLA_DUE_SOON: &str = "Due soon";
/// Status.
pub const STATUS: &str = "Status";
/// Priority.
pub const PRIORITY: &str = "Priority";
/// The inbox's default statuses.
pub const WAITING_STATUSES: &str = "Waiting (new, open, pending, on hold)";
/// Any value.
pub const ANY: &str = "Any";
/// Queue.
pub const QUEUE: &str = "Queue";
/// Assignee.
pub const ASSIGNEE: &str = "Assignee";
/// The signed-in user.
pub const ME: &str = "Me";
/// Nobody.
pub const NOBODY: &str = "Nobody";
/// Tickets, counted.
pub const TICKETS: &str = "tickets";
/// Subject.
pub const SUBJECT: &str = "Subject";
/// The person who asked.
pub const REQUESTER: &str = "Requester";
/// The SLA column.
pub const SLA: &str = "SLA";
/// The customer's rating.
pub const RATING: &str = "Satisfaction";
/// A status change button.
pub const MARK_AS: &str = "Mark as";
/// Assign to oneself.
pub const ASSIGN_TO_ME: &str = "Assign to me";
/// The comments of a ticket.
pub const CONVERSATION: &str = "Conversation";
/// An internal note.
pub const INTERNAL_NOTE: &str = "internal note";
/// The reply box.
pub const REPLY: &str = "Reply";
/// Send as an internal note.
pub const AS_INTERNAL_NOTE: &str = "Internal note (not shown to the customer)";
/// Send button.
pub const SEND: &str = "Send";
/// The reports page.
pub const REPORTS: &str = "Reports";
/// A pipeline's forecast.
pub const FORECAST: &str = "Weighted forecast";
/// Deals won of those closed.
pub const WIN_RATE: &str = "Win rate";
/// Time to close.
pub const DAYS_TO_CLOSE: &str = "Average days to close";
/// Ticket volume.
pub const VOLUME: &str = "Tickets created";
/// First response p50.
pub const FIRST_RESPONSE_P50: &str = "First response, median (minutes)";
/// First response p90.
pub const FIRST_RESPONSE_P90: &str = "First response, 90th percentile (minutes)";
/// Resolution p50.
pub const RESOLUTION_P50: &str = "Resolution, median (minutes)";
/// Resolution p90.
pub const RESOLUTION_P90: &str = "Resolution, 90th percentile (minutes)";
/// Share of tickets past their SLA.
pub const SLA_BREACH_RATE: &str = "SLA breached";
/// Average rating.
pub const CSAT: &str = "Satisfaction (1 to 5)";
/// How many ratings.
pub const RATED: &str = "Ratings";
/// The growth report.
pub const CONTACT_GROWTH: &str = "Contact growth";
/// The growth chart.
pub const NEW_CONTACTS_BY_MONTH: &str = "New contacts by month";
/// A month.
pub const MONTH: &str = "Month";
/// Contacts created in a period.
pub const NEW_CONTACTS: &str = "New contacts";
/// Contacts at the end of a period.
pub const TOTAL_CONTACTS: &str = "All contacts";
/// CSV link.
pub const DOWNLOAD_CSV: &str = "Download as CSV";
/// The pipeline chart.
pub const AMOUNT_BY_STAGE: &str = "Amount by stage";
/// A stage.
pub const STAGE: &str = "Stage";
/// An amount.
pub const AMOUNT: &str = "Amount";
/// The ticket report.
pub const TICKETS_30_DAYS: &str = "Tickets, last 30 days";
/// The deals column of a table.
pub const DEALS_COLUMN: &str = "Deals";

// Import.
/// The import pages' title and menu entry.
pub const IMPORT: &str = "Import";
/// What the file holds.
pub const IMPORT_WHAT: &str = "What to import";
/// The file control.
pub const IMPORT_FILE: &str = "CSV file (header row first, UTF-8)";
/// Duplicates choice.
pub const IMPORT_DUPLICATES: &str = "Rows whose e-mail (or company domain) exists already";
/// Leave them.
pub const IMPORT_SKIP: &str = "Leave the existing record as it is";
/// Update them.
pub const IMPORT_UPDATE: &str = "Update it with the row's values";
/// Upload button.
pub const IMPORT_NEXT: &str = "Upload";
/// Latest runs.
pub const IMPORT_RUNS: &str = "Latest imports";
/// Run state column.
pub const IMPORT_STATE: &str = "State";
/// Counts column.
pub const IMPORT_COUNTS: &str = "Result";
/// Start column.
pub const IMPORT_STARTED: &str = "Started";
/// States.
pub const IMPORT_RUNNING: &str = "Running";
/// Done.
pub const IMPORT_DONE: &str = "Done";
/// Failed.
pub const IMPORT_FAILED: &str = "Failed";
/// Counts.
pub const IMPORT_CREATED: &str = "created";
/// Counts.
pub const IMPORT_UPDATED: &str = "updated";
/// Counts.
pub const IMPORT_SKIPPED: &str = "left as they were";
/// Counts.
pub const IMPORT_REJECTED: &str = "rejected";
/// A multipart body that cannot be read.
pub const IMPORT_UNREADABLE: &str = "The upload could not be read";
/// No data.
pub const IMPORT_EMPTY: &str = "The file is empty: a CSV import needs a header row, then one row per record.";
/// Not text.
pub const IMPORT_NOT_UTF8: &str = "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.";
/// Unknown kind.
pub const IMPORT_NOTHING: &str = "Choose what the file holds from the list.";
/// The mapping page.
pub const IMPORT_MAP: &str = "Map the columns";
/// Its hint.
pub const IMPORT_MAP_HINT: &str = "Each column goes to the field chosen beside it; Kith suggests what it recognises. Columns set to “Ignore” are not imported.";
/// Mapping table.
pub const IMPORT_COLUMN: &str = "Column";
/// Mapping table.
pub const IMPORT_SAMPLE: &str = "First values";
/// Mapping table.
pub const IMPORT_TARGET: &str = "Goes to";
/// Not imported.
pub const IMPORT_IGNORE: &str = "Ignore";
/// Start button.
pub const IMPORT_START: &str = "Import";
/// The staged file is gone.
pub const IMPORT_GONE: &str = "That upload has expired or was imported already. Upload the file again.";
/// No such run.
pub const IMPORT_NO_RUN: &str = "There is no such import, or it is someone else's.";
/// Progress.
pub const IMPORT_ROWS: &str = "rows read";
/// Reload link.
pub const IMPORT_REFRESH: &str = "Refresh";
/// Ignored columns.
pub const IMPORT_IGNORED: &str = "Columns not imported";
/// Rejected rows.
pub const IMPORT_REJECTED_ROWS: &str = "Rejected rows";
/// Download.
pub const IMPORT_DOWNLOAD_REJECTED: &str = "Download the rejected rows (CSV with reasons)";
/// Line column.
pub const IMPORT_LINE: &str = "Line";
/// Back link.
pub const IMPORT_ANOTHER: &str = "Import another file";

// Donor reports.
/// The page's title.
pub const DONOR_REPORTS: &str = "Fundraising reports";
/// No donor plugin.
pub const NO_DONOR_REPORTS: &str = "No enabled plugin offers fundraising reports (enable `donors`).";
/// Year control.
pub const YEAR: &str = "Year";
/// Retention section.
pub const DONOR_RETENTION: &str = "Donor retention";
/// Chart title.
pub const RETENTION_RATE_BY_YEAR: &str = "Retention rate by year (%)";
/// Chart title.
pub const DONORS_BY_STATUS: &str = "Donors by status in";
/// Retention columns.
pub const DONORS: &str = "Donors";
/// Retention columns.
pub const NEW_DONORS: &str = "New";
/// Retention columns.
pub const RETAINED: &str = "Retained";
/// Retention columns.
pub const RECOVERED: &str = "Recovered";
/// Retention columns.
pub const LAPSED: &str = "Lapsed";
/// Retention columns.
pub const RETENTION_RATE: &str = "Retention rate";
/// Lapsed section.
pub const LYBUNT_SYBUNT: &str = "Donors who have not given yet this year";
/// Chart title.
pub const LAST_GIFTS_AT_RISK: &str = "Last gifts of the donors listed, LYBUNT and SYBUNT";
/// Table caption.
pub const LYBUNT: &str = "LYBUNT: gave last year, not yet this year";
/// Table caption.
pub const SYBUNT: &str = "SYBUNT: gave some year before this one, not yet this year";
/// Lapsed columns.
pub const DONOR: &str = "Donor";
/// Lapsed columns.
pub const LAST_GIFT: &str = "Last gift";
/// Lapsed columns.
pub const LAST_GIFT_AMOUNT: &str = "Amount";
/// Lapsed columns.
pub const LIFETIME_GIVING: &str = "Lifetime giving";
/// Lapsed columns: giving plus soft credits.
pub const LIFETIME_RECOGNITION: &str = "Lifetime recognition";
/// What the lapsed tables' amounts are.
pub const LAPSED_AMOUNTS: &str = "Amounts are in the organisation's currency, gifts in other currencies at their \
                                  exchange rate. Recognition adds the soft credits a donor has on others' gifts.";
/// Campaign section.
pub const CAMPAIGN_PROGRESS: &str = "Campaign progress";
/// No campaign.
pub const NO_CAMPAIGNS: &str = "There is no campaign yet.";
/// Campaign columns.
pub const CAMPAIGN: &str = "Campaign";
/// Campaign columns.
pub const GOAL: &str = "Goal";
/// Campaign columns.
pub const RAISED: &str = "Raised";
/// Campaign columns and chart.
pub const PERCENT_OF_GOAL: &str = "% of goal";
/// Campaign columns.
pub const GIFTS: &str = "Gifts";
/// The administration pages.
pub const ADMINISTRATION: &str = "Administration";
/// The administration pages' menu.
pub const ADMIN_MENU: &str = "Administration sections";
/// Users and roles.
pub const USERS: &str = "Users";
/// API tokens.
pub const TOKENS: &str = "API tokens";
/// Custom fields.
pub const CUSTOM_FIELDS: &str = "Custom fields";
/// Plugins.
pub const PLUGINS: &str = "Plugins";
/// The audit log.
pub const AUDIT_LOG: &str = "Audit log";
/// A name.
pub const NAME: &str = "Name";
/// A role.
pub const ROLE: &str = "Role";
/// Whether a user may sign in.
pub const ACTIVE: &str = "Active (may sign in)";
/// The active column.
pub const ACTIVE_COLUMN: &str = "Active";
/// An optional password.
pub const PASSWORD_OPTIONAL: &str = "Password (optional; without one the user cannot sign in yet)";
/// New user form.
pub const NEW_USER: &str = "New user";
/// Edit a user.
pub const EDIT_USER: &str = "Edit user";
/// Nothing listed.
pub const NOTHING_YET: &str = "Nothing yet.";
/// Why something was refused.
pub const NOT_DONE: &str = "Not done:";
/// New token form.
pub const NEW_TOKEN: &str = "New API token";
/// Token expiry in days.
pub const EXPIRES_IN_DAYS: &str = "Expires after (days; empty for never)";
/// The first characters of a token.
pub const TOKEN_PREFIX: &str = "Starts with";
/// Created.
pub const CREATED: &str = "Created";
/// Last used.
pub const LAST_USED: &str = "Last used";
/// Expires.
pub const EXPIRES: &str = "Expires";
/// Revoked.
pub const REVOKED: &str = "Revoked";
/// Revoke button.
pub const REVOKE: &str = "Revoke";
/// Never.
pub const NEVER: &str = "never";
/// The new token's page.
pub const TOKEN_CREATED: &str = "API token created";
/// The secret is shown once.
pub const TOKEN_ONCE: &str = "Copy this token now: Kith keeps only a hash of it and will never show it again. Send it as `Authorization: Bearer <token>`.";
/// Back to the tokens.
pub const BACK_TO_TOKENS: &str = "Back to the API tokens";
/// An object.
pub const OBJECT: &str = "Object";
/// A custom field's key.
pub const KEY: &str = "Key (camelCase, e.g. tier)";
/// A custom field's label.
pub const LABEL: &str = "Label";
/// A custom field's kind.
pub const KIND: &str = "Kind";
/// Required.
pub const REQUIRED: &str = "Required";
/// Options of a choice.
pub const OPTIONS: &str = "Options (one per line, for SELECT and MULTI_SELECT)";
/// Define button.
pub const DEFINE: &str = "Define";
/// New custom field form.
pub const NEW_CUSTOM_FIELD: &str = "New custom field";
/// A custom field with several values.
pub const COMMA_SEPARATED: &str = "(comma-separated)";
/// The plugins list's columns.
pub const VERSION: &str = "Version";
/// Health.
pub const HEALTH: &str = "Health";
/// A healthy plugin.
pub const HEALTHY: &str = "No failures";
/// Failures counted.
pub const FAILURES: &str = "failures";
/// Dead letters.
pub const DEAD_LETTERS: &str = "Dead letters";
/// Calls refused.
pub const DENIED_CALLS: &str = "calls denied";
/// Capabilities.
pub const CAPABILITIES: &str = "Capabilities";
/// A capability.
pub const CAPABILITY: &str = "Capability";
/// Requested.
pub const REQUESTED: &str = "Requested";
/// Granted.
pub const GRANTED: &str = "Granted";
/// Operations.
pub const PLUGIN_OPERATIONS: &str = "Queries and mutations";
/// The least role.
pub const LEAST_ROLE: &str = "Least role";
/// What low roles may write.
pub const LOW_ROLE_WRITE: &str = "Lets roles below AGENT write";
/// Enable button.
pub const ENABLE: &str = "Enable";
/// Disable button.
pub const DISABLE: &str = "Disable";
/// Grants to give.
pub const GRANT: &str = "Grant";
/// Allow low-role writes.
pub const ALLOW_LOW_ROLE_WRITES: &str = "Allow roles below AGENT to write through its mutations";
/// Settings.
pub const SETTINGS: &str = "Settings";
/// A setting.
pub const SETTING: &str = "Setting";
/// A value.
pub const VALUE: &str = "Value";
/// How a setting's value is read.
pub const SETTING_HINT: &str = "Read as the setting's current type: a list one item per line, a number as a number. Secret values are never shown.";
/// Set button.
pub const SET: &str = "Set";
/// Replay button.
pub const REPLAY: &str = "Deliver again";
/// No dead letters.
pub const NO_DEAD_LETTERS: &str = "No events waiting to be delivered again.";
/// An event kind.
pub const EVENT: &str = "Event";
/// Attempts.
pub const ATTEMPTS: &str = "Attempts";
/// An error.
pub const ERROR: &str = "Error";
/// When something failed.
pub const FAILED_AT: &str = "Failed";
/// Jobs.
pub const JOBS: &str = "Jobs";
/// A job.
pub const JOB: &str = "Job";
/// A schedule.
pub const SCHEDULE: &str = "Schedule";
/// The next run.
pub const NEXT_RUN: &str = "Next run";
/// The last run.
pub const LAST_RUN: &str = "Last run";
/// Run now button.
pub const RUN_NOW: &str = "Run now";
/// The latest runs.
pub const LATEST_RUNS: &str = "Latest runs";
/// What started a run.
pub const TRIGGER: &str = "Trigger";
/// When a run started.
pub const STARTED: &str = "Started";
/// How long a run took.
pub const DURATION_MS: &str = "Duration (ms)";
/// A plugin that is not installed.
pub const NO_SUCH_PLUGIN: &str = "No plugin is installed with that id.";
/// The audit log's filters.
pub const ACTOR: &str = "Actor (name or id as recorded)";
/// An action.
pub const ACTION: &str = "Action (create, update, ...)";
/// From a day.
pub const FROM_DAY: &str = "From (day, UTC)";
/// Before a day.
pub const BEFORE_DAY: &str = "Before (day, UTC)";
/// When.
pub const WHEN: &str = "When";
/// Who.
pub const WHO: &str = "Who";
/// What.
pub const WHAT: &str = "What";
/// The record.
pub const RECORD: &str = "Record";
/// Changes.
pub const CHANGES: &str = "Changes";
/// Back to the first page.
pub const FIRST_PAGE: &str = "First page";
/// A day that is not one.
pub const NOT_A_DAY: &str = "must be a day (YYYY-MM-DD)";

// Timeline.
/// Open tasks heading.
pub const OPEN_TASKS: &str = "Open tasks";
/// Due date.
pub const DUE: &str = "due";
/// Complete button.
pub const COMPLETE_TASK: &str = "Mark done";
/// Add form.
pub const ADD_ACTIVITY: &str = "Add a note, call or task";
/// Kind control.
pub const ACTIVITY_KIND: &str = "Kind";
/// The kinds offered, as the API names them.
pub const ACTIVITY_KINDS: &[(&str, &str)] =
    &[("NOTE", "Note"), ("CALL", "Call"), ("MEETING", "Meeting"), ("EMAIL", "E-mail"), ("TASK", "Task")];
/// Body control.
pub const DETAILS: &str = "Details";
/// Due control.
pub const DUE_FOR_TASKS: &str = "Due (tasks only, UTC)";
/// Add button.
pub const ADD: &str = "Add";
/// Nothing links here.
pub const NO_TIMELINE: &str = "Activities cannot be linked to this kind of record.";

// List tools.
/// Column chooser.
pub const COLUMNS: &str = "Columns";
/// Its legend.
pub const COLUMNS_SHOWN: &str = "Columns shown";
/// Export link.
pub const EXPORT_CSV: &str = "Export CSV";
/// Save as segment.
pub const SAVE_AS_SEGMENT: &str = "Save as segment";
/// Its name control.
pub const SEGMENT_NAME: &str = "Segment name";
/// No filter to save.
pub const SEGMENT_NEEDS_FILTER: &str = "Filter the list first: a segment is a saved filter.";
/// Quick add.
pub const QUICK_ADD: &str = "Quick add:";
/// Bulk form.
pub const WITH_TICKED: &str = "With the ticked records";
/// Bulk action.
pub const ADD_TAG: &str = "Add a tag";
/// Bulk action.
pub const ASSIGN_TO: &str = "Assign to";
/// Tag control.
pub const TAG: &str = "Tag";
/// Owner control.
pub const OWNER: &str = "Owner";
/// Apply button.
pub const APPLY: &str = "Apply";
/// Row tick label.
pub const SELECT: &str = "Select";
/// Nothing ticked.
pub const TICK_FIRST: &str = "Tick the records to act on first.";
/// No tag.
pub const TAG_NEEDED: &str = "Type the tag to add.";
/// Rating form.
pub const RECORD_RATING: &str = "Record the customer's rating";
/// Rating comment.
pub const RATING_COMMENT: &str = "Their comment";
/// The record page's first group of fields.
pub const DETAILS_GROUP: &str = "Details";
/// Over the request budget.
pub const SLOW_DOWN: &str = "Too many requests from this session in the last minute. Wait a moment, then reload.";
/// The contact page's link to its privacy page.
pub const PRIVACY: &str = "Privacy";
/// Privacy page title prefix.
pub const PRIVACY_OF: &str = "Privacy: ";
/// Consent history heading.
pub const CONSENT_HISTORY: &str = "Consent history";
/// No consent recorded.
pub const NO_CONSENT: &str = "No consent has been recorded for this person.";
/// Consent table headers.
pub const CONSENT_COLUMNS: [&str; 6] = ["When", "Channel", "Given or withdrawn", "How", "Statement", "Recorded by"];
/// Record consent form.
pub const RECORD_CONSENT: &str = "Record a consent given or withdrawn";
/// Consent form labels.
pub const CHANNEL: &str = "Channel";
/// Consent form labels.
pub const CONSENT_STATUS: &str = "Given or withdrawn";
/// Consent form labels.
pub const CONSENT_SOURCE: &str = "How (web form, phone call, letter…)";
/// Consent form labels.
pub const CONSENT_STATEMENT: &str = "The wording or version they agreed to";
/// Consent channels, as people read them.
pub const CONSENT_CHANNELS: [(&str, &str); 5] = [
    ("EMAIL", "E-mail"),
    ("PHONE", "Phone"),
    ("SMS", "Text messages"),
    ("POST", "Post"),
    ("ALL", "Any contact at all"),
];
/// Consent statuses, as people read them.
pub const CONSENT_STATUSES: [(&str, &str); 2] = [("GRANTED", "Given"), ("WITHDRAWN", "Withdrawn")];
/// Legal hold heading.
pub const LEGAL_HOLD: &str = "Legal hold";
/// Legal hold on.
pub const ON_HOLD: &str = "On legal hold: this person cannot be erased, by request or by a retention policy.";
/// Legal hold off.
pub const NOT_ON_HOLD: &str = "Not on legal hold.";
/// Hold buttons.
pub const PLACE_HOLD: &str = "Place on legal hold";
/// Hold buttons.
pub const LIFT_HOLD: &str = "Lift the legal hold";
/// Export heading.
pub const EXPORT_HEADING: &str = "Request of access: everything we hold";
/// Export explanation.
pub const EXPORT_HELP: &str = "One JSON file with the contact, every record about them in Kith and its plugins, their consent history and the audit log about them. Downloading it is recorded in the audit log.";
/// Export button.
pub const DOWNLOAD_EXPORT: &str = "Download their data (JSON)";
/// Erase heading.
pub const ERASE_HEADING: &str = "Request to be forgotten: erase";
/// Erase explanation.
pub const ERASE_HELP: &str = "Erasure cannot be undone. The table says what happens to each kind of record about this person; one audit entry with your reason remains.";
/// Erasure plan headers.
pub const ERASE_COLUMNS: [&str; 4] = ["Records", "Kind", "What happens", "Why kept"];
/// Erasure reason label.
pub const ERASE_REASON: &str = "Reason (a request reference; no personal data)";
/// Erasure confirmation label.
pub const ERASE_CONFIRM: &str = "Type ERASE to confirm";
/// Erase button.
pub const ERASE: &str = "Erase this person";
/// After erasure.
pub const ERASED: &str = "The person was erased. What was done:";
/// Policies, as people read them.
pub const POLICIES: [(&str, &str); 4] = [
    ("delete", "deleted"),
    ("unlink", "kept, no longer linked to the person"),
    ("anonymise", "kept, their personal details removed"),
    ("keep", "kept as it is"),
];

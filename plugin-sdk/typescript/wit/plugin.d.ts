/// <reference path="./interfaces/kith-plugin-aggregate.d.ts" />
/// <reference path="./interfaces/kith-plugin-bulk.d.ts" />
/// <reference path="./interfaces/kith-plugin-extension.d.ts" />
/// <reference path="./interfaces/kith-plugin-host.d.ts" />
/// <reference path="./interfaces/kith-plugin-http-handler.d.ts" />
/// <reference path="./interfaces/kith-plugin-http.d.ts" />
/// <reference path="./interfaces/kith-plugin-links.d.ts" />
/// <reference path="./interfaces/kith-plugin-mail.d.ts" />
/// <reference path="./interfaces/kith-plugin-types.d.ts" />
declare module 'kith:plugin/plugin@1.4.0' {
  export type Event = import('kith:plugin/types@1.4.0').Event;
  export type EventFailure = import('kith:plugin/types@1.4.0').EventFailure;
  export type Change = import('kith:plugin/types@1.4.0').Change;
  export type Verdict = import('kith:plugin/types@1.4.0').Verdict;
  export type * as KithPluginAggregate140 from 'kith:plugin/aggregate@1.4.0'; // import kith:plugin/aggregate@1.4.0
  export type * as KithPluginBulk140 from 'kith:plugin/bulk@1.4.0'; // import kith:plugin/bulk@1.4.0
  export type * as KithPluginHost140 from 'kith:plugin/host@1.4.0'; // import kith:plugin/host@1.4.0
  export type * as KithPluginHttp140 from 'kith:plugin/http@1.4.0'; // import kith:plugin/http@1.4.0
  export type * as KithPluginLinks140 from 'kith:plugin/links@1.4.0'; // import kith:plugin/links@1.4.0
  export type * as KithPluginMail140 from 'kith:plugin/mail@1.4.0'; // import kith:plugin/mail@1.4.0
  export type * as KithPluginTypes140 from 'kith:plugin/types@1.4.0'; // import kith:plugin/types@1.4.0
  export * as extension from 'kith:plugin/extension@1.4.0'; // export kith:plugin/extension@1.4.0
  export * as httpHandler from 'kith:plugin/http-handler@1.4.0'; // export kith:plugin/http-handler@1.4.0
  /**
  * Handles a batch of events the plugin subscribed to, in order.
  */
  export function onEvent(events: Array<Event>): void;
  /**
  * Allows, refuses or amends a write to an object the plugin hooks, before it is stored.
  * Runs inside the write with a tight time budget; host writes are unavailable here.
  */
  export function beforeWrite(change: Change): Verdict;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}

/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/mail@1.4.0' {
  /**
   * Queues a message and returns its `Message-ID` (without the angle brackets). Refused with
   * `unavailable` in `before-write`, computed fields and queries, and when no relay is
   * configured; `limit-exceeded` past the plugin's rate; `denied` without `mail:send` or for
   * a sender the configuration does not allow.
   */
  export function send(message: Message): string;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
  /**
   * A header the plugin may set.
   */
  export interface Header {
    name: string,
    value: string,
  }
  /**
   * A message to one recipient.
   */
  export interface Message {
    /**
     * The sender, `addr@example.org` or `Name <addr@example.org>`: an address the
     * configuration allows (`[mail] senders`).
     */
    from: string,
    /**
     * The one recipient, `addr` or `Name <addr>`.
     */
    to: string,
    /**
     * Where replies go, if not to `from`.
     */
    replyTo?: string,
    /**
     * The subject (one line).
     */
    subject: string,
    /**
     * The plain-text body. At least one of `text` and `html`; when only `html` is given,
     * Kith derives the text from it.
     */
    text?: string,
    /**
     * The HTML body.
     */
    html?: string,
    /**
     * Extra headers: `List-Unsubscribe`, `List-Unsubscribe-Post` (RFC 8058), `List-Id`,
     * `Precedence`, `Auto-Submitted`, `In-Reply-To`, `References` and any `X-` header. Kith
     * sets `From`, `To`, `Reply-To`, `Subject`, `Date`, `Message-ID` and the MIME headers
     * itself; the others are refused (`invalid-input`).
     */
    headers: Array<Header>,
    /**
     * The plugin's own reference (at most 200 bytes), given back in the message's events.
     */
    reference?: string,
  }
}

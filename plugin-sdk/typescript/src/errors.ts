/** Why a host call or an operation failed (the WIT's `error-code`). */
export type ErrorCode =
  | 'denied'
  | 'invalid-input'
  | 'not-found'
  | 'conflict'
  | 'limit-exceeded'
  | 'unavailable'
  | 'internal';

/**
 * A host call Kith refused or failed. Let it propagate: from an event handler it fails the event
 * (Kith retries it), from an operation it is answered to the caller with its code.
 *
 * @example
 * try { records.create('activity', task); } catch (err) {
 *   if (err instanceof HostError && err.code === 'denied') log.warn('not granted activities:write');
 *   throw err;
 * }
 */
export class HostError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HostError';
  }
}

/**
 * The answer of a failed query, mutation, computed field or job, shown to the caller with its
 * code (`invalid-input` is GraphQL's `BAD_USER_INPUT`) and the argument at fault.
 *
 * @example
 * throw OperationError.invalid('contactId', `no contact \`${id}\``);
 */
export class OperationError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'OperationError';
  }

  /** A bad argument: `field` names it. */
  static invalid(field: string, message: string): OperationError {
    return new OperationError('invalid-input', message, field);
  }

  /** What the caller asked for does not exist. */
  static notFound(message: string): OperationError {
    return new OperationError('not-found', message);
  }

  /** The request clashes with the stored state. */
  static conflict(message: string): OperationError {
    return new OperationError('conflict', message);
  }

  /** Any thrown value as an operation error: a host error keeps its code, anything else is `internal`. */
  static of(err: unknown): OperationError {
    if (err instanceof OperationError) return err;
    if (err instanceof HostError) return new OperationError(err.code, err.message);
    return new OperationError('internal', describe(err));
  }
}

/** A thrown value as a message for Kith's log and dead letters: a host or operation error's own message (Kith's say what failed), anything else with its name. */
export function describe(err: unknown): string {
  if (err instanceof HostError || err instanceof OperationError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * Lines in Kith's log, tagged with the plugin id (rate-limited per plugin).
 *
 * @example
 * log.info(`welcome task ${taskId} for contact ${contactId}`);
 */
import { current } from './host.js';

export const trace = (message: string): void => current().log('trace', message);
export const debug = (message: string): void => current().log('debug', message);
export const info = (message: string): void => current().log('info', message);
export const warn = (message: string): void => current().log('warn', message);
export const error = (message: string): void => current().log('error', message);

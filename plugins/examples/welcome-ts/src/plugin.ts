/**
 * Kith's welcome plugin in TypeScript, on the Kith plugin SDK (`plugin-sdk/typescript`): the same
 * behaviour as the Rust one (`plugins/welcome`).
 *
 * - On `contact.created`: a TASK "Welcome {name}" (the `task_subject` setting) for the contact's
 *   owner, due in three days, and a `greeting` record (its own object), so a redelivered event
 *   greets nobody twice.
 * - Before a contact is stored: e-mail addresses at a domain of `blocked_domains` are refused.
 * - `Contact.welcomeStatus` (one aggregate for a whole page), the `greetingStats(since)` query,
 *   the `greetAgain(contactId, subject)` mutation and the daily `digest` job.
 */
import {
  Aggregate,
  HostError,
  OperationError,
  aggregate,
  allOf,
  allow,
  definePlugin,
  deny,
  field,
  log,
  now,
  records,
  settings,
  str,
  type Fields,
} from '@kith/plugin-sdk';

export default definePlugin({
  onEvent(event) {
    if (event.kind !== 'contact.created' || event.recordId === undefined) return;
    const contactId = event.recordId;
    // Delivery is at least once: a contact greeted already is done.
    if (records.first('greeting', field('contactId').eq(contactId))) return;
    const { taskId, subject } = welcomeTask(contactId, event.payload.record ?? {});
    records.create('greeting', { contactId, taskId, subject });
    log.info(`welcome task ${taskId} for contact ${contactId}`);
  },

  beforeWrite(change) {
    const email = str(change.after, 'email');
    if (email === undefined) return allow();
    const blocked = settings.get<string[]>('blocked_domains', []);
    const at = email.lastIndexOf('@');
    const domain = at < 0 ? '' : email.slice(at + 1).trim().toLowerCase();
    if (blocked.some((b) => b.trim().replace(/^@/, '').toLowerCase() === domain)) {
      return deny(`e-mail addresses at ${domain} are not accepted`);
    }
    return allow();
  },

  computeField(_object, name, ids) {
    if (name !== 'welcomeStatus') throw new OperationError('internal', `no computed field \`${name}\``);
    // One aggregate for the whole page: which of these contacts have a greeting.
    const rows = aggregate.run('greeting', new Aggregate().where(field('contactId').in(ids)).by('contactId').count());
    const greeted = new Set(rows.map((row) => row.key(0)));
    return ids.map((id) => (greeted.has(id) ? 'GREETED' : 'PENDING'));
  },

  call(call) {
    switch (call.name) {
      case 'greetingStats': {
        const since = str(call.arguments, 'since');
        const totals = new Aggregate().count().min('createdAt').max('createdAt');
        const months = new Aggregate().by('createdAt', 'month').count();
        if (since !== undefined) {
          totals.where(field('createdAt').gte(`${since}T00:00:00Z`));
          months.where(field('createdAt').gte(`${since}T00:00:00Z`));
        }
        const first = aggregate.run('greeting', totals)[0];
        return {
          total: first?.number(0) ?? 0,
          firstAt: first?.value(1) ?? null,
          lastAt: first?.value(2) ?? null,
          byMonth: aggregate.run('greeting', months).map((r) => ({ month: r.key(0) ?? null, greetings: r.number(0) ?? 0 })),
        };
      }
      case 'greetAgain': {
        const contactId = str(call.arguments, 'contactId') ?? '';
        let contact;
        try {
          contact = records.get('contact', contactId);
        } catch (err) {
          if (err instanceof HostError && err.code === 'invalid-input') throw OperationError.invalid('contactId', err.message);
          throw err;
        }
        if (!contact) throw OperationError.invalid('contactId', `no contact \`${contactId}\``);
        return welcomeTask(contactId, contact.fields, str(call.arguments, 'subject'));
      }
      default:
        throw new OperationError('internal', `no operation \`${call.name}\``);
    }
  },

  runJob(job, scheduledFor) {
    if (job !== 'digest') throw new OperationError('internal', `no job \`${job}\``);
    // The day before the run was due; one digest per day, so a second run changes nothing.
    const day = shiftDays(scheduledFor.slice(0, 10), -1);
    if (records.first('welcomeDigest', field('day').eq(day))) return;
    const counted = aggregate.run(
      'greeting',
      new Aggregate()
        .where(allOf(field('createdAt').gte(`${day}T00:00:00Z`), field('createdAt').lt(`${shiftDays(day, 1)}T00:00:00Z`)))
        .count(),
    );
    const greetings = counted[0]?.number(0) ?? 0;
    records.create('welcomeDigest', { day, greetings });
    log.info(`digest for ${day}: ${greetings} greetings`);
  },
});

/** Creates the welcome TASK for a contact; its id and subject. */
function welcomeTask(contactId: string, contact: Fields, subject?: string): { taskId: string; subject: string } {
  const name = displayName(contact);
  const template = subject ?? settings.get('task_subject', 'Welcome {name}');
  const text = template.replaceAll('{name}', name);
  const task: Fields = {
    kind: 'TASK',
    subject: text,
    body: `Say hello to ${name}: a first contact in the first three days matters.`,
    contactId,
    dueAt: dueInThreeDays(now()),
  };
  const owner = str(contact, 'ownerId');
  if (owner !== undefined) task.ownerId = owner;
  return { taskId: records.create('activity', task).id, subject: text };
}

function displayName(contact: Fields): string {
  const part = (name: string) => (str(contact, name) ?? '').trim();
  return `${part('firstName')} ${part('lastName')}`.trim() || part('email') || 'the new contact';
}

/** `day` (YYYY-MM-DD) moved by `delta` days. */
export function shiftDays(day: string, delta: number): string {
  const at = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(at) ? day : new Date(at + delta * 86_400_000).toISOString().slice(0, 10);
}

/** `at` plus three days, keeping its RFC 3339 shape (`YYYY-MM-DDTHH:MM:SS.ffffffZ`). */
export function dueInThreeDays(at: string): string {
  return shiftDays(at.slice(0, 10), 3) + at.slice(10);
}

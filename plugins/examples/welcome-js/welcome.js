// The welcome plugin's base behaviour in JavaScript, against Kith's WIT (`kith:plugin@1.2.0`,
// world `base`) and built with componentize-js, with no Kith SDK: on `contact.created` a TASK
// "Welcome {name}" (the `task_subject` setting) for the contact's owner, due in three days;
// before a contact is stored, e-mail addresses at a domain of `blocked_domains` are refused.
import { createRecord, now, setting as rawSetting } from 'kith:plugin/host@1.2.0';

/** A setting's value (Kith gives it as JSON text), or `fallback`. */
function setting(key, fallback) {
  const text = rawSetting(key);
  const value = text ? JSON.parse(text) : null;
  return value ?? fallback;
}

function displayName(contact) {
  const name = [contact.firstName, contact.lastName].map((p) => (p ?? '').trim()).filter(Boolean).join(' ');
  return name || (contact.email ?? '').trim() || 'the new contact';
}

function dueInThreeDays(at) {
  const due = new Date(Date.parse(at) + 3 * 24 * 3600 * 1000).toISOString();
  // Kith writes microseconds: `...T09:30:00.000000Z`.
  return due.replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function onEvent(events) {
  events.forEach((event, index) => {
    if (event.kind !== 'contact.created' || !event.recordId) return;
    const contact = JSON.parse(event.payload).record ?? {};
    const name = displayName(contact);
    const task = {
      kind: 'TASK',
      subject: setting('task_subject', 'Welcome {name}').replaceAll('{name}', name),
      body: `Say hello to ${name}: a first contact in the first three days matters.`,
      contactId: event.recordId,
      dueAt: dueInThreeDays(now()),
    };
    if (contact.ownerId) task.ownerId = contact.ownerId;
    try {
      createRecord('activity', JSON.stringify(task));
    } catch (err) {
      throw { index, message: err?.payload?.message ?? err?.message ?? String(err) };
    }
  });
}

export function beforeWrite(change) {
  const email = (JSON.parse(change.after).email ?? '').trim();
  const at = email.lastIndexOf('@');
  if (at < 0) return { tag: 'allow' };
  const domain = email.slice(at + 1).trim().toLowerCase();
  const blocked = setting('blocked_domains', []).map((b) => b.trim().replace(/^@/, '').toLowerCase());
  if (blocked.includes(domain)) return { tag: 'deny', val: `e-mail addresses at ${domain} are not accepted` };
  return { tag: 'allow' };
}

/**
 * Puts the message of a refused form next to the field it is about. The services answer
 * with messages such as "port: port must be 1-65535; name: a name is …" (the validation
 * names the field first); the rest is matched by what it says, and what names no field
 * is shown above the form.
 */
export interface FormErrors {
  /** Field name in the form → message. */
  fields: Record<string, string>;
  general: string[];
}

export const noErrors = (): FormErrors => ({ fields: {}, general: [] });

/** A service's setting name → the form field that holds it, where they differ. */
const FIELD_OF: Record<string, string> = {
  timeoutMs: 'timeout', hostKeyFingerprint: 'hostKey', parallelTransfers: 'parallel', user: 'username', type: 'type',
};

/** Messages that do not start with a field name: which field they belong to. */
export type MessageRules = [RegExp, string][];

export function formErrors(message: string, known: readonly string[], rules: MessageRules = []): FormErrors {
  const out = noErrors();
  const add = (field: string, text: string): void => {
    out.fields[field] = out.fields[field] ? `${out.fields[field]}; ${text}` : text;
  };
  for (const part of message.split(/;\s+(?=[A-Za-z.0-9]+: )/)) {
    const named = /^([A-Za-z]+)(?:\.\d+)?: (.*)$/s.exec(part);
    const field = named ? FIELD_OF[named[1]!] ?? named[1]! : null;
    if (field && known.includes(field)) { add(field, named![2]!); continue; }
    const rule = rules.find(([re]) => re.test(part));
    if (rule && known.includes(rule[1])) add(rule[1], part);
    else out.general.push(part);
  }
  return out;
}

/** A text field as typed (trimmed); absent and non-text values are empty. */
export const field = (body: Record<string, unknown>, name: string): string => (typeof body[name] === 'string' ? (body[name] as string).trim() : '');

/** A number field: `undefined` when empty, NaN when not a number (the service's validation names it). */
export const numberField = (value: string): number | undefined => (value === '' ? undefined : /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN);

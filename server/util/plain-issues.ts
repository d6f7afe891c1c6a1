/**
 * Plain-language messages for the checks of a zod schema that carry no message of their own.
 * zod's defaults ("Invalid input: expected string, received undefined", "Too small: expected
 * number to be >=0") reach whoever typed the value: the CLI's error, the API's 400, the message
 * next to a form's field, a config.json error. Given to `safeParse(value, plainIssues)`; a
 * schema's own messages win over these (zod asks the per-parse map only for issues without one).
 * Each message names the field the way the schemas' own messages do ("port must be 1-65535"),
 * after the `field: ` that validationMessage puts first.
 */

/** The words of a field that differ from its key spelled out ("freeSpaceLimitMb" → "free space limit mb"). */
const LABELS: Record<string, string> = {
  freeSpaceLimitMb: 'the free space limit (MB)', timeoutMs: 'the timeout (ms)', hostKeyFingerprint: 'the host key', parallelTransfers: 'parallel transfers',
  username: 'the user', privateKey: 'the private key', accessKeyId: 'the access key', secretAccessKey: 'the secret', serverFolder: 'the server folder',
  storageClass: 'the storage class', maxAttempts: 'attempts', partSizeMb: 'the part size (MB)', quotaGb: 'the quota (GB)', afterJob: 'the job to follow',
};
/** The words of one item of a list ("excludes.0"). */
const ITEM_LABELS: Record<string, string> = { excludes: 'an exclude pattern', accounts: 'an account name', items: 'an item' };

/** The raw issue as zod hands it to an error map (the fields used here). */
interface RawIssue {
  code: string;
  path?: PropertyKey[];
  input?: unknown;
  expected?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  values?: unknown[];
  keys?: string[];
  format?: string;
  divisor?: number | bigint;
}

function labelOf(path: readonly PropertyKey[]): string {
  const key = [...path].reverse().find((k): k is string => typeof k === 'string');
  if (key === undefined) return 'the value';
  const ofItem = typeof path[path.length - 1] === 'number';
  if (ofItem && ITEM_LABELS[key]) return ITEM_LABELS[key];
  const label = LABELS[key] ?? key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return ofItem ? `each of ${label}` : label;
}

const KIND: Record<string, string> = {
  string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a set of settings',
  date: 'a date', bigint: 'a whole number',
};

const shown = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : String(v));

/** The message of one issue zod found, or undefined to keep zod's (never for the codes below). */
export function plainIssue(issue: RawIssue): string | undefined {
  const label = labelOf(issue.path ?? []);
  const count = (n: number | bigint | undefined): string => String(n ?? '?');
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `${label} is required`;
      return `${label} must be ${KIND[issue.expected ?? ''] ?? issue.expected ?? 'of another kind'}`;
    case 'too_small':
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? `${label} must not be empty` : `${label} must be at least ${count(issue.minimum)} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return Number(issue.minimum) === 1 ? 'give at least one' : `give at least ${count(issue.minimum)}`;
      return issue.inclusive === false ? `${label} must be above ${count(issue.minimum)}` : `${label} must be at least ${count(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'string') return `${label} must be at most ${count(issue.maximum)} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `give at most ${count(issue.maximum)}`;
      return issue.inclusive === false ? `${label} must be below ${count(issue.maximum)}` : `${label} must be at most ${count(issue.maximum)}`;
    case 'invalid_value':
      return (issue.values ?? []).length === 1 ? `${label} must be ${shown(issue.values![0])}` : `${label} must be one of: ${(issue.values ?? []).map(shown).join(', ')}`;
    case 'invalid_format':
      if (issue.format === 'url') return `${label} must be a URL`;
      if (issue.format === 'email') return `${label} must be a mail address`;
      return `${label} is not in the expected form`;
    case 'not_multiple_of':
      return `${label} must be a multiple of ${count(issue.divisor)}`;
    case 'unrecognized_keys': {
      const keys = issue.keys ?? [];
      return `${keys.map((k) => `"${k}"`).join(', ')} ${keys.length === 1 ? 'is not a setting' : 'are not settings'} here`;
    }
    case 'invalid_union':
    case 'invalid_key':
    case 'invalid_element':
    case 'custom':
      return `${label} is not valid`;
    default:
      return undefined;
  }
}

/** The per-parse option: `schema.safeParse(value, plainIssues)`. */
export const plainIssues = { error: plainIssue } as const;

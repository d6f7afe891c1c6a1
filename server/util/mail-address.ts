/** A mail address as it may stand in a header: no spaces, no line breaks, no list separators. */
export const MAIL_ADDRESS = /^[^\s@<>,;"()\\]+@[^\s@<>,;"()\\]+$/;

export const isMailAddress = (v: string): boolean => MAIL_ADDRESS.test(v);

/**
 * The first address of a panel's contact field ("a@x.example, b@y.example"), or null when
 * it is empty or not a valid address: a bad value means no mail, never a mangled header.
 */
export function firstMailAddress(raw: string | undefined | null): string | null {
  const first = (raw ?? '').split(',')[0]!.trim();
  return first !== '' && isMailAddress(first) ? first : null;
}

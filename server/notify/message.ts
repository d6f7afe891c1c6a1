/** A plain-text mail, ready for SMTP DATA or `sendmail -t`. */
export interface Mail { from: string; to: string[]; subject: string; body: string }

/** Header values never carry a line break (no header injection); non-ASCII goes as RFC 2047 words. */
function headerText(v: string): string {
  const flat = v.replace(/[\r\n]+/g, ' ');
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(flat) ? flat : `=?UTF-8?B?${Buffer.from(flat, 'utf8').toString('base64')}?=`;
}

/** The whole message with CRLF line ends. */
export function formatMail(m: Mail, now = new Date()): string {
  const domain = m.from.split('@')[1] ?? 'localhost';
  const headers = [
    `From: ${m.from}`,
    `To: ${m.to.join(', ')}`,
    `Subject: ${headerText(m.subject)}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${now.getTime()}.${process.pid}.${Math.random().toString(36).slice(2)}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    'X-Mailer: Tidemark',
  ];
  return `${headers.join('\r\n')}\r\n\r\n${m.body.replace(/\r?\n/g, '\r\n')}${m.body.endsWith('\n') ? '' : '\r\n'}`;
}

import { spawn } from 'node:child_process';
import { formatMail, type Mail } from './message.js';

/** Hands the message to the server's MTA: `sendmail -t -i` reads the recipients from the headers. */
export function sendWithSendmail(mail: Mail, sendmailPath = '/usr/sbin/sendmail', timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(sendmailPath, ['-t', '-i'], { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString('utf8'); });
    child.on('error', (err) => reject(new Error(`sendmail (${sendmailPath}): ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`sendmail (${sendmailPath}) ${signal ? `was stopped by ${signal}` : `exited ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
    child.stdin.on('error', () => { /* reported by 'close' */ });
    child.stdin.end(formatMail(mail));
  });
}

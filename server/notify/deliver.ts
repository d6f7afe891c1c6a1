import type { NotificationsConfig } from '../config-schema.js';
import type { Mail } from './message.js';
import type { WebhookPayload } from './webhook.js';

export interface Delivery { channel: 'email' | 'webhook'; error: string | null }

export type EmailConfig = NonNullable<NotificationsConfig['email']>;

/** One mail through the configured transport (the server's sendmail, or an SMTP server). */
export async function sendMail(email: EmailConfig, mail: Mail): Promise<void> {
  if (email.via === 'smtp') {
    const { sendWithSmtp } = await import('./smtp.js');
    const s = email.smtp!;
    await sendWithSmtp({ host: s.host, port: s.port, secure: s.secure, user: s.user, password: s.password }, mail);
  } else {
    const { sendWithSendmail } = await import('./sendmail.js');
    await sendWithSendmail(mail, email.sendmailPath);
  }
}

/** Sends one notice on every configured channel; a channel that fails does not stop the others. */
export async function deliver(n: NotificationsConfig, subject: string, body: string, tidemark: Record<string, unknown>): Promise<Delivery[]> {
  const jobs: Promise<Delivery>[] = [];
  const attempt = async (channel: Delivery['channel'], send: () => Promise<void>): Promise<Delivery> => {
    try {
      await send();
      return { channel, error: null };
    } catch (err) {
      return { channel, error: (err as Error).message };
    }
  };
  const email = n.email;
  if (email) jobs.push(attempt('email', () => sendMail(email, { from: email.from, to: email.to, subject, body })));
  const webhook = n.webhook;
  if (webhook) {
    const payload: WebhookPayload = { text: `${subject}\n${body}`, tidemark };
    jobs.push(attempt('webhook', async () => (await import('./webhook.js')).sendWebhook(webhook.url, payload)));
  }
  return Promise.all(jobs);
}

import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { formatMail, type Mail } from './message.js';

export interface SmtpOptions {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when a password is to be sent. */
  secure: boolean;
  user?: string | undefined;
  password?: string | undefined;
  timeoutMs?: number;
}

interface Reply { code: number; text: string }

/** Reads SMTP replies (multi-line ones joined) from a socket, one at a time. */
class ReplyReader {
  private decoder = new StringDecoder('utf8');
  private buffer = '';
  private lines: string[] = [];
  private ready: Reply[] = [];
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (d: Buffer): void => {
    this.buffer += this.decoder.write(d);
    let i: number;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '');
      this.buffer = this.buffer.slice(i + 1);
      this.lines.push(line);
      if (/^\d{3}-/.test(line)) continue;
      this.ready.push({ code: /^\d{3}/.test(line) ? Number(line.slice(0, 3)) : 0, text: this.lines.join(' | ').slice(0, 500) });
      this.lines = [];
    }
    this.flush();
  };
  private readonly onError = (err: Error): void => { this.failure ??= err; this.flush(); };
  private readonly onClose = (): void => { this.failure ??= new Error('the server closed the connection'); this.flush(); };

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData).on('error', this.onError).on('close', this.onClose);
  }
  private flush(): void {
    if (!this.waiting) return;
    const w = this.waiting;
    const r = this.ready.shift();
    if (r) { this.waiting = null; w.resolve(r); } else if (this.failure) { this.waiting = null; w.reject(this.failure); }
  }
  next(): Promise<Reply> {
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject }; this.flush(); });
  }
  /** Stops reading this socket (before STARTTLS hands it to TLS). */
  detach(): void {
    this.socket.off('data', this.onData).off('error', this.onError).off('close', this.onClose);
  }
}

/** Lines that begin with a dot get another one, so that the message cannot end the DATA early. */
export const dotStuff = (crlfText: string): string => crlfText.replace(/^\./gm, '..');

function connect(o: SmtpOptions, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = o.secure
      ? tls.connect({ host: o.host, port: o.port, servername: net.isIP(o.host) ? undefined : o.host } as tls.ConnectionOptions)
      : net.connect({ host: o.host, port: o.port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    socket.once(o.secure ? 'secureConnect' : 'connect', () => { socket.off('error', reject); resolve(socket); });
    socket.once('error', reject);
  });
}

function startTls(socket: net.Socket, host: string, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secured = tls.connect({ socket, servername: net.isIP(host) ? undefined : host } as tls.ConnectionOptions);
    secured.setTimeout(timeoutMs, () => secured.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    secured.once('secureConnect', () => { secured.off('error', reject); resolve(secured); });
    secured.once('error', reject);
  });
}

/**
 * Sends one mail over SMTP: EHLO, STARTTLS when a password must be sent and the connection is
 * not already TLS, AUTH PLAIN (only over TLS), MAIL FROM, RCPT TO, DATA, QUIT. Errors say which
 * step failed and what the server answered; the password never appears in them.
 */
export async function sendWithSmtp(o: SmtpOptions, mail: Mail): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const where = `SMTP ${o.host}:${o.port}`;
  let socket: net.Socket;
  try {
    socket = await connect(o, timeoutMs);
  } catch (err) {
    throw new Error(`${where}: cannot connect: ${(err as Error).message}`);
  }
  let reader = new ReplyReader(socket);
  let encrypted = o.secure;
  const expect = async (step: string, codes: number[]): Promise<Reply> => {
    let r: Reply;
    try {
      r = await reader.next();
    } catch (err) {
      throw new Error(`${where}: ${step}: ${(err as Error).message}`);
    }
    if (!codes.includes(r.code)) throw new Error(`${where}: ${step} was refused: ${r.text}`);
    return r;
  };
  const command = async (line: string, step: string, codes: number[]): Promise<Reply> => {
    socket.write(`${line}\r\n`);
    return expect(step, codes);
  };
  try {
    await expect('greeting', [220]);
    const hello = `EHLO ${os.hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost'}`;
    let ehlo = await command(hello, 'EHLO', [250]);
    if (o.user !== undefined) {
      if (!encrypted) {
        if (!/\bSTARTTLS\b/i.test(ehlo.text)) {
          throw new Error(`${where}: refusing to send the password over an unencrypted connection (the server offers no STARTTLS; set "secure": true for TLS on connect)`);
        }
        await command('STARTTLS', 'STARTTLS', [220]);
        reader.detach();
        try {
          socket = await startTls(socket, o.host, timeoutMs);
        } catch (err) {
          throw new Error(`${where}: STARTTLS failed: ${(err as Error).message}`);
        }
        reader = new ReplyReader(socket);
        encrypted = true;
        ehlo = await command(hello, 'EHLO after STARTTLS', [250]);
      }
      const token = Buffer.from(`\0${o.user}\0${o.password ?? ''}`, 'utf8').toString('base64');
      socket.write(`AUTH PLAIN ${token}\r\n`);
      await expect('AUTH PLAIN (user or password)', [235]);
    }
    await command(`MAIL FROM:<${mail.from}>`, `MAIL FROM <${mail.from}>`, [250]);
    for (const to of mail.to) await command(`RCPT TO:<${to}>`, `RCPT TO <${to}>`, [250, 251]);
    await command('DATA', 'DATA', [354]);
    socket.write(dotStuff(formatMail(mail)));
    await command('.', 'the message', [250]);
    socket.write('QUIT\r\n');
    await reader.next().catch(() => undefined);
  } finally {
    reader.detach();
    socket.on('error', () => { /* closing anyway */ });
    socket.end();
    socket.destroy();
  }
}

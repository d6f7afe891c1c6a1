import net from 'node:net';

export interface ReceivedMail { from: string; to: string[]; data: string }

export interface SmtpSink { port: number; mails: ReceivedMail[]; close: () => void }

/** Enough of an SMTP server to accept messages and keep them (it understands dot-stuffing, as a real one does). */
export function startSmtpSink(): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const server = net.createServer((sock) => {
    let buf = '';
    let inData = false;
    let current: ReceivedMail = { from: '', to: [], data: '' };
    let dataLines: string[] = [];
    sock.write('220 sink.test ESMTP\r\n');
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            current.data = dataLines.join('\r\n');
            mails.push(current);
            current = { from: '', to: [], data: '' };
            sock.write('250 queued\r\n');
          } else dataLines.push(line.startsWith('.') ? line.slice(1) : line);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-sink.test\r\n250 8BITMIME\r\n');
        else if (verb === 'MAIL') { current.from = /<(.*)>/.exec(line)?.[1] ?? ''; sock.write('250 ok\r\n'); }
        else if (verb === 'RCPT') { current.to.push(/<(.*)>/.exec(line)?.[1] ?? ''); sock.write('250 ok\r\n'); }
        else if (verb === 'DATA') { inData = true; dataLines = []; sock.write('354 go on\r\n'); }
        else if (verb === 'QUIT') { sock.end('221 bye\r\n'); }
        else sock.write('502 not here\r\n');
      }
    });
    sock.on('error', () => { /* client gone */ });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ port: (server.address() as net.AddressInfo).port, mails, close: () => server.close() });
  }));
}

/** The body of a received message (after the headers), with CRLF line ends. */
export const bodyOf = (m: ReceivedMail): string => m.data.split('\r\n\r\n').slice(1).join('\r\n\r\n');

/** One header's value, or null. */
export const headerOf = (m: ReceivedMail, name: string): string | null => new RegExp(`^${name}: (.*)$`, 'mi').exec(m.data.split('\r\n\r\n')[0]!)?.[1] ?? null;

/**
 * A TCP proxy in front of a real server (the test radosgw) that lets a test break chosen HTTP
 * requests: answer one with 503 Slow Down, drop the connection halfway through its body, or
 * stall it (never forwarded nor answered, its connection held open until the client gives up).
 * Every other byte goes to the real server and back unchanged; the proxy parses no more of
 * HTTP than a request's head, to know where one request ends and the next begins on a
 * kept-alive connection.
 */
import net from 'node:net';

export interface ProxiedRequest { method: string; target: string }
export type Fault = 'pass' | '503' | 'drop' | 'stall';

export interface FaultProxy {
  port: number;
  endpoint: string;
  /** Decides for each request; default: pass everything. */
  rule: (req: ProxiedRequest) => Fault;
  /** Requests seen, and the faults injected. */
  seen: ProxiedRequest[];
  injected: { fault: Fault; req: ProxiedRequest }[];
  close(): Promise<void>;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: FaultProxy = {
    port: 0, endpoint: '', rule: () => 'pass', seen: [], injected: [],
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };

  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('close', () => { sockets.delete(client); upstream.destroy(); });
    upstream.on('close', () => { sockets.delete(upstream); client.destroy(); });
    client.on('error', end);
    upstream.on('error', end);
    upstream.pipe(client);

    let buf: Buffer = Buffer.alloc(0);
    /** Body bytes of the current request still to forward; -1: reading a head. */
    let bodyLeft = -1;
    /** Drop the connection after forwarding this many more body bytes (null: no drop planned). */
    let dropAfter: number | null = null;
    let raw = false;
    /** A stalled request's connection: nothing more of it goes anywhere. */
    let stalled = false;

    const forward = (chunk: Buffer): boolean => {
      if (dropAfter !== null) {
        if (chunk.length >= dropAfter) { upstream.write(chunk.subarray(0, dropAfter)); end(); return false; }
        dropAfter -= chunk.length;
      }
      upstream.write(chunk);
      return true;
    };

    client.on('data', (data: Buffer) => {
      if (stalled) return;
      if (raw) { upstream.write(data); return; }
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      while (buf.length > 0) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buf.length);
          const part = buf.subarray(0, take);
          buf = buf.subarray(take);
          bodyLeft -= take;
          if (!forward(part)) return;
          if (bodyLeft === 0) bodyLeft = -1;
          continue;
        }
        const at = buf.indexOf(HEAD_END);
        if (at < 0) {
          if (buf.length > MAX_HEAD) { raw = true; upstream.write(buf); buf = Buffer.alloc(0); }
          return;
        }
        const head = buf.subarray(0, at + 4);
        buf = buf.subarray(at + 4);
        const text = head.toString('latin1');
        const [method = '', target = ''] = text.slice(0, text.indexOf('\r\n')).split(' ');
        const req = { method, target };
        proxy.seen.push(req);
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0);
        const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(text);
        const fault = proxy.rule(req);
        if (fault !== 'pass') proxy.injected.push({ fault, req });
        if (fault === '503') {
          const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>';
          client.end(`HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
          upstream.destroy();
          return;
        }
        if (fault === 'stall') { stalled = true; buf = Buffer.alloc(0); return; }
        upstream.write(head);
        if (fault === 'drop') dropAfter = Math.floor(length / 2);
        if (chunked) { raw = true; if (buf.length) upstream.write(buf); buf = Buffer.alloc(0); return; }
        bodyLeft = length > 0 ? length : -1;
        if (fault === 'drop' && length === 0) { end(); return; }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.endpoint = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}

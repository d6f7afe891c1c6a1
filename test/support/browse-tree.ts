import fs from 'node:fs';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import type { TestAccount } from './accounts.js';

/** A folder of 4,000 mails (mail/msg-0001.eml … msg-4000.eml), message n being n+10 bytes. */
export const MAIL_COUNT = 4000;
export const mailName = (n: number): string => `msg-${String(n).padStart(4, '0')}.eml`;
export const mailBody = (n: number): string => `m${n} `.padEnd(n + 10, 'x');

/** Names that looked the same on the old pages. */
export const ODD = {
  newline: Buffer.from('new\nline.txt'),
  space: Buffer.from('new line.txt'),
  latin1E9: Buffer.from('caf\xe9.txt', 'latin1'),
  latin1E8: Buffer.from('caf\xe8.txt', 'latin1'),
  long: Buffer.from('L'.repeat(251) + '.txt'),
  longOdd: Buffer.concat([Buffer.from([0xff]), Buffer.from('o'.repeat(250) + '.txt')]),
  /** A name that would end a header and start another, with quotes and a backslash. */
  headerBreaker: Buffer.from('evil"\r\nSet-Cookie: pwn=1; \\x.txt'),
  question: Buffer.from('q?mark*star.txt'),
};

/** The smallest valid PNG (1×1, one grey pixel), built here rather than committed. */
export function tinyPng(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.from([0, 0x80]))), chunk('IEND', Buffer.alloc(0))]);
}

export const PREVIEW = {
  script: '<script>alert("xss")</script>\nplain text after\n',
  html: '<!doctype html><html><body><img src=x onerror="alert(1)"><script>alert(2)</script></body></html>\n',
  svg: '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"><script>alert(4)</script></svg>\n',
};

const at = (a: TestAccount, rel: Buffer | string): Buffer => Buffer.concat([Buffer.from(`${a.home}/`), typeof rel === 'string' ? Buffer.from(rel) : rel]);

/** Fills an account's home for the browse tests; everything owned by the account. */
export function buildBrowseTree(a: TestAccount): void {
  fs.mkdirSync(at(a, 'mail'));
  for (let n = 1; n <= MAIL_COUNT; n++) fs.writeFileSync(at(a, `mail/${mailName(n)}`), mailBody(n));
  fs.mkdirSync(at(a, 'odd'));
  for (const name of Object.values(ODD)) fs.writeFileSync(at(a, Buffer.concat([Buffer.from('odd/'), name])), Buffer.concat([Buffer.from('content of '), name]));
  fs.mkdirSync(at(a, 'links'));
  fs.writeFileSync(at(a, 'links/original.bin'), Buffer.alloc(5000, 7));
  fs.linkSync(at(a, 'links/original.bin'), at(a, 'links/second-name.bin'));
  fs.symlinkSync('original.bin', at(a, 'links/pointer'));
  fs.symlinkSync('/etc/passwd', at(a, 'links/outside'));
  fs.mkdirSync(at(a, 'previews'));
  fs.writeFileSync(at(a, 'previews/script.txt'), PREVIEW.script);
  fs.writeFileSync(at(a, 'previews/page.html'), PREVIEW.html);
  fs.writeFileSync(at(a, 'previews/drawing.svg'), PREVIEW.svg);
  fs.writeFileSync(at(a, 'previews/pixel.png'), tinyPng());
  // An SVG named like a PNG: the name never decides the type.
  fs.writeFileSync(at(a, 'previews/fake.png'), PREVIEW.svg);
  fs.writeFileSync(at(a, 'previews/long.log'), 'line of a long log\n'.repeat(10_000));
  fs.writeFileSync(at(a, 'previews/binary.bin'), Buffer.from([0, 1, 2, 3, 0, 0, 255, 0]));
  execFileSync('chown', ['-R', '-h', `${a.uid}:${a.gid}`, a.home]);
}

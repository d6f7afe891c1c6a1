import fs from 'node:fs';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { TestAccount } from './accounts.js';

export const NON_UTF8_NAME = Buffer.from([0x6e, 0x6f, 0x6e, 0xff, 0xfe, 0x2d, 0x75, 0x74, 0x66, 0x38]);
export const LONG_NAME = 'n'.repeat(251) + '.txt';
/** 19 directories of 200 bytes and a file: a path of about 3,900 bytes below the home. */
export const DEEP_DIRS = Array.from({ length: 19 }, (_, i) => String(i).padStart(3, '0') + 'd'.repeat(197));

const b = (home: string, rel: string | Buffer): Buffer =>
  Buffer.concat([Buffer.from(home + '/'), typeof rel === 'string' ? Buffer.from(rel) : rel]);

/**
 * Fills a home with everything that is easy to get wrong: odd names, links, modes,
 * empty and read-only folders, a fifo. Ownership goes to the account at the end.
 */
export function buildTrickyTree(a: TestAccount): void {
  const h = a.home;
  const w = (rel: string | Buffer, data: string | Buffer, mode = 0o644): void => {
    fs.writeFileSync(b(h, rel), data, { mode });
    fs.chmodSync(b(h, rel), mode);
  };
  fs.mkdirSync(b(h, 'public_html/sub dir'), { recursive: true });
  w('public_html/index.php', '<?php echo "hello"; ?>\n');
  w('public_html/sub dir/q?mark*star [x].txt', 'odd name\n');
  w('public_html/new\nline.txt', 'newline in name\n');
  w(NON_UTF8_NAME, 'latin1 name\n');
  w(LONG_NAME, 'long name\n');
  w('empty-file', '');
  w('script.sh', '#!/bin/sh\necho hi\n', 0o755);
  w('big.bin', crypto.randomBytes(3 * 1024 * 1024 + 17));
  w('text.log', 'log line\n'.repeat(20000));
  fs.mkdirSync(b(h, 'empty-dir'));
  fs.mkdirSync(b(h, 'shared'));
  fs.chmodSync(b(h, 'shared'), 0o2775);
  w('shared/inside.txt', 'in setgid dir\n');
  w('secret0000', 'mode zero\n', 0o000);
  fs.mkdirSync(b(h, 'readonly-dir'));
  w('readonly-dir/kept.txt', 'in a read-only dir\n');
  fs.chmodSync(b(h, 'readonly-dir'), 0o500);
  fs.symlinkSync('public_html/index.php', b(h, 'link-relative'));
  fs.symlinkSync('/etc/passwd', b(h, 'link-absolute'));
  fs.symlinkSync('does/not/exist', b(h, 'link-dangling'));
  w('hardlink-a', 'shared inode\n');
  fs.linkSync(b(h, 'hardlink-a'), b(h, 'public_html/hardlink-b'));
  let deep = '';
  for (const d of DEEP_DIRS) {
    deep = deep ? `${deep}/${d}` : d;
    fs.mkdirSync(b(h, deep));
  }
  w(`${deep}/deep-file.txt`, 'deep\n');
  execFileSync('mkfifo', ['-m', '640', `${h}/a-fifo`]);
  execFileSync('chown', ['-R', '-h', `${a.uid}:${a.gid}`, h]);
  // Spread the mtimes so that a restore that forgets them is caught.
  const past = Date.now() / 1000 - 86400 * 30;
  fs.utimesSync(b(h, 'public_html/index.php'), past, past + 0.123456);
  fs.utimesSync(b(h, 'empty-dir'), past, past + 7);
  // Before 1970 (unzipped archives carry such times): seconds below zero, nanoseconds positive.
  w('before-1970.txt', 'old\n');
  execFileSync('chown', ['-h', `${a.uid}:${a.gid}`, `${h}/before-1970.txt`]);
  execFileSync('touch', ['-h', '-d', '@-1.25', `${h}/before-1970.txt`]);
}

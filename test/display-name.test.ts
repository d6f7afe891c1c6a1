import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { displayName, displayNameHtml, displayParts } from '../server/app/display-name.js';

const u8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const raw = (...b: number[]): Buffer => Buffer.from(b);

describe('display of names', () => {
  test('ordinary names, including non-Latin scripts and emoji, are shown as they are', () => {
    for (const n of ['index.html', 'sub dir', 'Grüße.txt', 'élan', 'файл.txt', '日本語', 'q?mark*star [x].txt', '😀.png']) {
      assert.equal(displayName(u8(n)), n);
    }
  });

  test('a newline and a space never look the same; nor tab, CR, control bytes', () => {
    assert.equal(displayName(u8('new\nline')), 'new\\nline');
    assert.equal(displayName(u8('new line')), 'new line');
    assert.equal(displayName(u8('a\tb')), 'a\\tb');
    assert.equal(displayName(u8('a\rb')), 'a\\rb');
    assert.equal(displayName(raw(0x61, 0x1b, 0x5b, 0x33, 0x31, 0x6d)), 'a\\x1B[31m');
    assert.equal(displayName(raw(0x61, 0x7f)), 'a\\x7F');
  });

  test('bytes that are not UTF-8 are shown one by one, distinct from the UTF-8 letter', () => {
    assert.equal(displayName(raw(0x63, 0x61, 0x66, 0xe9)), 'caf\\xE9');
    assert.equal(displayName(u8('café')), 'café');
    assert.equal(displayName(raw(0x6e, 0xff, 0xfe)), 'n\\xFF\\xFE');
    // Overlong "/" and an encoded surrogate are not UTF-8 either.
    assert.equal(displayName(raw(0xc0, 0xaf)), '\\xC0\\xAF');
    assert.equal(displayName(raw(0xed, 0xa0, 0x80)), '\\xED\\xA0\\x80');
    // A truncated sequence at the end.
    assert.equal(displayName(raw(0x61, 0xe2, 0x82)), 'a\\xE2\\x82');
  });

  test('a backslash is escaped, so a name that spells an escape differs from the escaped one', () => {
    assert.equal(displayName(u8('a\\nb')), 'a\\\\nb');
    assert.notEqual(displayName(u8('a\\nb')), displayName(u8('a\nb')));
    assert.notEqual(displayName(u8('caf\\xE9')), displayName(raw(0x63, 0x61, 0x66, 0xe9)));
  });

  test('invisible and look-alike characters are escaped: bidi override, zero width, NBSP, edge spaces, decomposed accents', () => {
    assert.equal(displayName(u8('invoice\u202Etxt.exe')), 'invoice\\u{202E}txt.exe');
    assert.equal(displayName(u8('a\u200Bb')), 'a\\u{200B}b');
    assert.equal(displayName(u8('a\u00A0b')), 'a\\u{A0}b');
    assert.equal(displayName(u8(' lead')), '\\x20lead');
    assert.equal(displayName(u8('trail ')), 'trail\\x20');
    assert.equal(displayName(u8('dir/ x')), 'dir/\\x20x');
    assert.equal(displayName(u8('e\u0301')), 'e\\u{301}');
    assert.equal(displayName(u8('\u00E9')), 'é');
    assert.equal(displayName(u8('\u3164')), '\\u{3164}');
    assert.equal(displayName(u8('a\u0085b')), 'a\\u{85}b');
  });

  test('a 255-byte name is shown whole', () => {
    const name = 'n'.repeat(251) + '.txt';
    assert.equal(displayName(u8(name)), name);
    const odd = Buffer.concat([raw(0xff), u8('x'.repeat(254))]);
    assert.equal(displayName(odd), '\\xFF' + 'x'.repeat(254));
  });

  test('escapes are marked as such, and the HTML form escapes markup', () => {
    assert.deepEqual(displayParts(u8('a\nb')), [{ text: 'a', escaped: false }, { text: '\\n', escaped: true }, { text: 'b', escaped: false }]);
    assert.equal(displayNameHtml(u8('<img src=x onerror=alert(1)>\n"\'&')),
      '&lt;img src=x onerror=alert(1)&gt;<span class="esc">\\n</span>&quot;&#39;&amp;');
  });

  test('the byte-string form and the Buffer form agree', () => {
    const b = raw(0x61, 0xff, 0x0a, 0xc3, 0xa9);
    assert.equal(displayName(b.toString('latin1')), displayName(b));
  });

  test('regression: no two different names share a display (300,000 random names of tricky bytes)', () => {
    // Bytes chosen to collide if anything is lost: escapes' own letters, controls, lead and continuation bytes.
    const alphabet = [0x5c, 0x78, 0x75, 0x7b, 0x7d, 0x6e, 0x41, 0x45, 0x46, 0x30, 0x32, 0x20, 0x0a, 0x09, 0x2f, 0x00, 0x7f,
      0x80, 0x85, 0xa0, 0xc2, 0xc3, 0xa9, 0xe2, 0x80, 0x8b, 0xae, 0xcc, 0x81, 0x65, 0xff, 0xed, 0xf0, 0x9f, 0x98];
    const seen = new Map<string, string>();
    const rnd = crypto.randomBytes(300_000 * 6);
    for (let k = 0; k < 300_000; k++) {
      const len = 1 + (rnd[k * 6]! % 5);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = alphabet[rnd[k * 6 + 1 + j]! % alphabet.length]!;
      const shown = displayName(b);
      const hex = b.toString('hex');
      const before = seen.get(shown);
      if (before !== undefined && before !== hex) assert.fail(`${before} and ${hex} are both shown as ${JSON.stringify(shown)}`);
      seen.set(shown, hex);
      // Nothing invisible gets through: every char of the display is printable.
      assert.doesNotMatch(shown, /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u00A0]/u, hex);
    }
  });
});

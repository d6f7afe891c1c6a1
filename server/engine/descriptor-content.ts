import fs from 'node:fs';
import { takeFd } from '../native/pass-fds.js';
import { closeQuietly } from '../util/close-fd.js';

/**
 * The largest file the account worker hands over as a descriptor (backup-reader.ts); larger ones
 * come through the stream. Root refuses a larger announced size: it would pad a short file with
 * zeros up to it, bytes the worker never had to produce.
 */
export const DESCRIPTOR_MAX = 1 << 20;

/** Why a stored copy has zeros at its end: the worker's notice and root's say it alike. */
export const SHRANK_REASON = 'file shrank while being read; the stored copy is padded with zeros';

/** Why a descriptor from the account worker was refused: the run fails with this message. */
export class DescriptorRefused extends Error {}

const readAt = (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => {
    fs.read(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });

/**
 * The content of a file the account worker sent as a descriptor (backup-reader.ts): the next
 * descriptor on root's end of the channel, checked to be a regular file on the home's
 * filesystem (`homeDev`: root's own lstat of the home). Anything else is refused: a file of
 * another filesystem could be a FUSE or network file whose read never returns, holding a thread
 * of root's pool for ever. Exactly `size` bytes are read, from offset 0, on libuv's pool; a
 * file that shrank meanwhile is padded with zeros (`shrank`), as the worker pads one it reads.
 */
export async function readDescriptorContent(channel: number, homeDev: bigint, size: number,
  onPiece: (piece: Buffer) => Promise<void>): Promise<{ shrank: boolean }> {
  let fd: number;
  try {
    fd = takeFd(channel);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DescriptorRefused(code === 'EAGAIN' || code === 'EPIPE'
      ? 'the account worker announced a file descriptor it did not send'
      : `the account worker sent something other than one regular file's descriptor (${code ?? String(err)})`);
  }
  try {
    if (!Number.isSafeInteger(size) || size < 0 || size > DESCRIPTOR_MAX) {
      throw new DescriptorRefused(`the account worker announced ${size} bytes by descriptor (at most ${DESCRIPTOR_MAX})`);
    }
    const st = fs.fstatSync(fd, { bigint: true });
    if (st.dev !== homeDev) throw new DescriptorRefused("the account worker sent the descriptor of a file outside the home's filesystem");
    // At most DESCRIPTOR_MAX: the whole file is one piece.
    const piece = Buffer.allocUnsafe(size);
    let got = 0;
    let shrank = false;
    while (got < size && !shrank) {
      const n = await readAt(fd, piece, got, size - got, got);
      if (n === 0) shrank = true;
      got += n;
    }
    if (got < size) piece.fill(0, got);
    if (size > 0) await onPiece(piece);
    return { shrank };
  } finally {
    closeQuietly(fd);
  }
}

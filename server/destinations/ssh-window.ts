import type { ClientChannel } from 'ssh2';

/**
 * ssh2 keeps a channel's receive window at 2 MiB and tops it up each time 1 MiB has come in:
 * one SSH packet for every MiB received, each a socket write of its own (on loopback the
 * sender's system call also does the TCP work of delivering it) and a wake-up and a packet to
 * decrypt for the server. A restore's remote `tar -c` sends hundreds of MiB.
 *
 * A wider window: `size` bytes, topped up once `step` of them have come in. It bounds what the
 * server may send beyond what was taken in the same way (ssh2 buffers what comes while the
 * channel is paused, up to the window), so `size` is what a paused channel may hold.
 */
export interface WideWindow {
  /**
   * Called once data was taken in and the channel is not paused: tops the window up when
   * `step` of it has been used and ssh2 holds nothing back (what it holds came in under the
   * window, so granting more then would let a server that sends without pause pile up more).
   */
  topUp(): void;
}

/** ssh2's internals used here: its own windowAdjust does the same with its constants. */
interface ChannelInternals {
  incoming: { window: number };
  outgoing: { id: number; state: string };
  _client: { _protocol: { channelWindowAdjust(id: number, amount: number): void } };
}

export function widenWindow(channel: ClientChannel, size: number, step: number): WideWindow {
  const c = channel as unknown as ChannelInternals;
  const usable = typeof c.incoming?.window === 'number' && typeof c._client?._protocol?.channelWindowAdjust === 'function' && c.outgoing !== undefined;
  const grant = (): void => {
    if (c.outgoing.state === 'closed') return;
    const amount = size - c.incoming.window;
    if (amount <= 0) return;
    c.incoming.window += amount;
    c._client._protocol.channelWindowAdjust(c.outgoing.id, amount);
  };
  if (!usable) return { topUp: () => undefined };
  grant();
  return {
    topUp() {
      if (c.incoming.window <= size - step && channel.readableLength === 0) grant();
    },
  };
}

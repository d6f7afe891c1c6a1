import type net from 'node:net';

/**
 * ssh2 writes each SSH packet with a socket write of its own (a system call, a write request
 * and its callbacks): the packets written in one run of JavaScript go out together instead,
 * in one writev once it ends (process.nextTick), in the order written.
 */
export function coalesceWrites(sock: net.Socket): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  sock.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as typeof sock.write;
}

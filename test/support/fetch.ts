/**
 * fetch, tried a second time when the connection it reused had been closed by the server
 * before the request went out. The tests block their own event loop with synchronous CLI
 * calls for seconds at a time, so the client can pick a keep-alive socket whose idle
 * timeout passed meanwhile (the server closed it, the client had not yet seen the close).
 * Such a request never reached the server, so sending it again is safe.
 */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export async function fetchOnFreshSocket(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const code = ((err as { cause?: { code?: string } }).cause ?? {}).code ?? '';
    if (!(err instanceof TypeError) || !STALE_SOCKET.has(code)) throw err;
    return fetch(url, init);
  }
}

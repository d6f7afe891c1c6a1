/** What a Slack-compatible incoming webhook gets: `text` is all Slack needs; `tidemark` carries the structured result. */
export interface WebhookPayload { text: string; tidemark: Record<string, unknown> }

/** The URL as it may be shown: a webhook's path and query are its secret (Slack, Mattermost, Teams). */
export function maskedUrl(url: string): string {
  try {
    return `${new URL(url).origin}/********`;
  } catch {
    return '********';
  }
}

export async function sendWebhook(url: string, payload: WebhookPayload, timeoutMs = 15_000): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'Tidemark' },
      body: JSON.stringify(payload), signal: AbortSignal.timeout(timeoutMs), redirect: 'error',
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message;
    throw new Error(`webhook ${maskedUrl(url)}: ${(err as Error).message}${cause ? ` (${cause})` : ''}`);
  }
  await res.body?.cancel().catch(() => undefined);
  if (!res.ok) throw new Error(`webhook ${maskedUrl(url)} answered HTTP ${res.status}`);
}

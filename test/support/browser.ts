import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Screenshots and downloads the browser tests keep for people to look at (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Debian's chromium, headless, with a fresh profile that is deleted afterwards. */
export async function launchBrowser(opts: { locale?: string; width?: number } = {}): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    acceptDownloads: true,
    locale: opts.locale ?? 'en-US',
    viewport: { width: opts.width ?? 1280, height: 900 },
  });
  const page = context.pages()[0] ?? await context.newPage();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context, page,
    async screenshot(name) { await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }); },
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

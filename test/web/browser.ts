import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Where the browser tests leave their screenshots (README, "Dashboard"); CI keeps the folder as an artifact. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];

export type TestBrowser = {
  context: BrowserContext;
  page: Page;
  /** Every HTML document the browser received, with its URL and status. */
  documents: { url: string; status: number; body: string }[];
  /** Console errors and CSP refusals: a page that needs inline code shows up here. */
  problems: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
};

/** Debian's Chromium through playwright-core (no browser download), with a fresh profile. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'forgelink-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: { width: 1366, height: 900 },
  });
  const documents: TestBrowser['documents'] = [];
  const problems: string[] = [];
  const pending = new Set<Promise<void>>();
  context.on('response', (response) => {
    if (response.request().resourceType() !== 'document' || (response.status() >= 300 && response.status() < 400)) return;
    const read = response
      .text()
      .then((body) => {
        documents.push({ url: response.url(), status: response.status(), body });
      })
      .catch(() => {})
      .finally(() => pending.delete(read));
    pending.add(read);
  });
  context.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${message.location().url}: ${message.text()}`);
  });
  context.on('weberror', (error) => problems.push(String(error.error())));
  const page = context.pages()[0] ?? (await context.newPage());
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return {
    context,
    page,
    documents,
    problems,
    async screenshot(name) {
      const file = path.join(SCREENSHOT_DIR, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await Promise.allSettled([...pending]);
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

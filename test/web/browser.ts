import assert from 'node:assert/strict';
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
  /**
   * Saves the page at desktop width as `<name>.png` and at phone width as `<name>-390.png` (full page, in
   * artifacts/screenshots/), measures the layout at both and leaves the viewport at desktop width.
   */
  screenshot(name: string): Promise<Layouts>;
  close(): Promise<void>;
};

export const PHONE = { width: 390, height: 844 } as const;
export const DESKTOP = { width: 1280, height: 900 } as const;

/** What {@link measureLayout} finds at one width. */
export type Layout = {
  width: number;
  /** `document.documentElement.scrollWidth`: more than `width` means the whole page scrolls sideways. */
  scrollWidth: number;
  /** Elements that stick out of the viewport or whose content spills out of their own box. */
  overflows: string[];
  /** Height of the top bar: one row at desktop width. */
  topbarHeight: number;
  /** Boxes that scroll sideways inside themselves (tables, the log, long commands): selector and widths. */
  scrollers: { element: string; clientWidth: number; scrollWidth: number }[];
  /** For each `.columns` and `.connections` grid on the page: how many of its children sit in its first row. */
  gridRows: { grid: string; children: number; firstRow: number }[];
};

export type Layouts = { phone: Layout; desktop: Layout };

// Runs in the page. A string, as the DOM's types are not part of this project's TypeScript setup.
const MEASURE = `(() => {
  const width = window.innerWidth;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.classList.length > 0 ? '.' + [...el.classList].join('.') : '') + ' "' + (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40) + '"';
  const clips = (el) => getComputedStyle(el).overflowX !== 'visible';
  const overflows = [];
  const scrollers = [];
  for (const el of document.body.querySelectorAll('*')) {
    // Not drawn: a closed <details>' body, hidden and screen-reader-only text, the skip link until focused.
    if (!el.checkVisibility() || el.closest('.visually-hidden, .skip-link')) continue;
    let inside = false;
    for (let up = el.parentElement; up !== null && up !== document.body; up = up.parentElement) {
      if (clips(up)) { inside = true; break; }
    }
    // Whatever sits inside a box that scrolls or clips is that box's business; the box itself must fit.
    if (inside) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.left < -0.5 || box.right > width + 0.5) overflows.push(describe(el) + ' spans ' + Math.round(box.left) + '..' + Math.round(box.right) + 'px');
    const style = getComputedStyle(el);
    if (clips(el)) {
      // A text field always scrolls a long value inside itself; that is what fields do.
      const field = el.matches('input, textarea, select');
      if (!field && el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'hidden') scrollers.push({ element: describe(el), clientWidth: el.clientWidth, scrollWidth: el.scrollWidth });
      if (style.overflowX === 'hidden' && style.textOverflow !== 'ellipsis' && el.scrollWidth > el.clientWidth + 1) overflows.push(describe(el) + ' cuts off its content');
    } else if (style.display !== 'inline' && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      overflows.push(describe(el) + ' spills out: ' + el.scrollWidth + 'px of content in ' + el.clientWidth + 'px');
    }
  }
  // A status badge or a menu entry broken over two lines reads as two words.
  for (const el of document.querySelectorAll('.badge, .topbar nav a')) {
    const lines = el.getClientRects().length > 1 || el.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(el).fontSize) * 1.2 + 1;
    if (el.checkVisibility() && lines) overflows.push(describe(el) + ' wraps');
  }
  const gridRows = [...document.querySelectorAll('.columns, .connections')].map((grid) => {
    const tops = [...grid.children].map((child) => Math.round(child.getBoundingClientRect().top));
    return { grid: describe(grid), children: tops.length, firstRow: tops.filter((top) => top === tops[0]).length };
  });
  const topbar = document.querySelector('.topbar');
  return {
    width,
    scrollWidth: document.documentElement.scrollWidth,
    overflows,
    topbarHeight: topbar === null ? 0 : Math.round(topbar.getBoundingClientRect().height),
    scrollers,
    gridRows,
  };
})()`;

/** Measures the page as laid out at the current viewport width. */
export async function measureLayout(page: Page): Promise<Layout> {
  return (await page.evaluate(MEASURE)) as Layout;
}

/**
 * The page fits a 390 px phone: nothing scrolls the whole page sideways and nothing (button, link, field,
 * text) sticks out of the viewport or its own box; what is wider scrolls inside its own box. At 1280 px the
 * desktop layout holds: the top bar is one row, grids put cards side by side, and nothing needs to scroll
 * sideways.
 */
export function assertLayout(name: string, { phone, desktop }: Layouts): void {
  assert.ok(phone.scrollWidth <= phone.width, `${name} at ${phone.width} px scrolls sideways: ${phone.scrollWidth} px wide`);
  assert.deepEqual(phone.overflows, [], `${name} at ${phone.width} px`);
  assert.ok(desktop.scrollWidth <= desktop.width, `${name} at ${desktop.width} px scrolls sideways: ${desktop.scrollWidth} px wide`);
  assert.deepEqual(desktop.overflows, [], `${name} at ${desktop.width} px`);
  assert.deepEqual(desktop.scrollers, [], `${name} at ${desktop.width} px: boxes that scroll sideways`);
  assert.ok(desktop.topbarHeight > 0 && desktop.topbarHeight <= 64, `${name} at ${desktop.width} px: top bar ${desktop.topbarHeight} px high`);
  for (const grid of desktop.gridRows) {
    if (grid.children >= 2) assert.ok(grid.firstRow >= 2, `${name} at ${desktop.width} px: ${grid.grid} stacks its ${grid.children} children`);
  }
}

/** Debian's Chromium through playwright-core (no browser download), with a fresh profile. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'forgelink-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: DESKTOP,
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
      const scroll = (await page.evaluate('[window.scrollX, window.scrollY]')) as [number, number];
      await page.setViewportSize(PHONE);
      const phone = await measureLayout(page);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-390.png`), fullPage: true });
      await page.setViewportSize(DESKTOP);
      await page.evaluate(`window.scrollTo(${scroll[0]}, ${scroll[1]})`);
      const desktop = await measureLayout(page);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
      return { phone, desktop };
    },
    async close() {
      await Promise.allSettled([...pending]);
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type { AssetUrls } from './layout.ts';

const FILES = {
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
} as const;

type AssetName = keyof typeof FILES;

/**
 * The dashboard's stylesheet, script and icon, read once when the app is built. Their URLs carry a content
 * hash, so browsers cache them for a day and still fetch a changed file at once. No build step: the files
 * are served as they are in the repository.
 */
export function loadAssets(): { urls: AssetUrls; routes: Hono } {
  const loaded = new Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>();
  const version: Partial<Record<AssetName, string>> = {};
  for (const [name, type] of Object.entries(FILES) as [AssetName, string][]) {
    const body = readFileSync(new URL(`./assets/${name}`, import.meta.url));
    loaded.set(name, { body, type });
    version[name] = createHash('sha256').update(body).digest('hex').slice(0, 12);
  }
  const routes = new Hono().get('/:name', (c) => {
    const asset = loaded.get(c.req.param('name'));
    if (asset === undefined) return c.notFound();
    return c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=86400' });
  });
  return {
    urls: {
      css: `/assets/app.css?v=${version['app.css']}`,
      js: `/assets/app.js?v=${version['app.js']}`,
      icon: `/assets/favicon.svg?v=${version['favicon.svg']}`,
    },
    routes,
  };
}

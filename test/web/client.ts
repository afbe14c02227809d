import type { App } from '../../src/server/index.ts';

export type PageResponse = { status: number; headers: Headers; text: string; location: string | null };

/** A cookie-keeping client of the in-process app, as a browser without JavaScript would use it. */
export function webClient(app: App, origin = 'http://localhost') {
  const jar = new Map<string, string>();

  function remember(response: Response): void {
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const [name, ...rest] = (pair as string).split('=');
      const value = rest.join('=');
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name as string);
      else jar.set(name as string, value);
    }
  }

  async function request(method: string, path: string, init: { body?: URLSearchParams | FormData; headers?: Record<string, string> } = {}): Promise<PageResponse> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (jar.size > 0) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await app.request(`${origin}${path}`, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) });
    remember(response);
    return { status: response.status, headers: response.headers, text: await response.text(), location: response.headers.get('location') };
  }

  return {
    jar,
    get: (path: string, headers?: Record<string, string>) => request('GET', path, headers === undefined ? {} : { headers }),
    /** Posts a form as a same-origin browser would (Origin header included unless given otherwise). */
    post: (path: string, fields: Record<string, string> | FormData, headers: Record<string, string> = {}) =>
      request('POST', path, {
        body: fields instanceof FormData ? fields : new URLSearchParams(fields),
        headers: { origin, ...headers },
      }),
  };
}

/** The value of the first hidden `_csrf` field on a page. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF field on the page');
  return match[1] as string;
}

/** A client signed in to `app` with the user's name and password, through the sign-in form. */
export async function signedInClient(app: App, name: string, password: string): Promise<ReturnType<typeof webClient>> {
  const client = webClient(app);
  const form = await client.get('/sign-in');
  const response = await client.post('/sign-in', { _csrf: csrfOf(form.text), username: name, password, next: '/' });
  if (response.status !== 303) throw new Error(`signing in as ${name} answered ${response.status}`);
  return client;
}

import { randomInt } from 'node:crypto';

/** The characters of GitLab's classic token body (URL-safe base64). */
const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomFrom(alphabet: string, length: number): string {
  let text = '';
  for (let index = 0; index < length; index += 1) text += alphabet[randomInt(alphabet.length)];
  return text;
}

/**
 * The surrogate `GITLAB_TOKEN` of a brokered run: a personal access token as GitLab makes them (docs/gitlab.md,
 * "Tokens": `glpat-` and 20 characters of URL-safe base64), so tools that check the prefix or the length accept it.
 * 120 random bits, fresh for every run; GitLab has never seen it, so it opens nothing anywhere but at the run's
 * own proxy, which knows it only while the run lasts.
 */
export function gitLabSurrogate(): string {
  for (;;) {
    const body = randomFrom(TOKEN_CHARS, 20);
    // A leading or trailing "-" reads as an option or gets trimmed by careless tools; draw again.
    if (!body.startsWith('-') && !body.endsWith('-')) return `glpat-${body}`;
  }
}

/**
 * A surrogate for a secret bound to hosts (a model API key): the value's vendor prefix (`sk-ant-api03-`, `sk-`)
 * kept, so clients that look at it behave as with the real key, and the rest random letters and digits, at
 * least as long as the real value's and never under 32 characters (190 bits).
 */
export function secretSurrogate(real: string): string {
  const prefix = /^(?:[A-Za-z0-9]{1,8}[-_]){1,4}/.exec(real.slice(0, 24))?.[0] ?? '';
  const length = Math.max(real.length - prefix.length, 32);
  for (;;) {
    const candidate = `${prefix}${randomFrom(ALNUM, length)}`;
    if (candidate !== real) return candidate;
  }
}

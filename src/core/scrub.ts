/** Redaction of secrets from a stream of text (run logs): docs/security.md, invariant 1. */

export const REDACTED = '[REDACTED]';

/**
 * Secrets shorter than this are not redacted. Every token forgelink handles is far longer (`glpat-` + 20
 * characters, 64-hex OAuth tokens), while replacing a short string would black out ordinary words all over a
 * log and make it useless; an empty string would match everywhere.
 */
export const MIN_SECRET_LENGTH = 8;

/** A stateful redactor for one stream; `push` returns what is safe to emit now, `flush` the rest at the end. */
export type Scrubber = {
  push(chunk: string): string;
  flush(): string;
  /** Redacts one more secret from now on (a refreshed OAuth token), including in text still held back. */
  add(secret: string): void;
};

/**
 * Redacts every secret, and the forms it travels in — URL-encoded, base64 and base64url (at any alignment, so
 * also inside `Basic base64(user:token)`), and the whole `oauth2:<token>` basic-auth value — even when an
 * occurrence is split across chunks: a tail that is the start of a form is held back until the next chunk
 * or `flush`.
 */
export function createScrubber(secrets: readonly string[]): Scrubber {
  const known: string[] = [...secrets];
  let forms: string[] = [];
  let pattern: RegExp | null = null;
  let hold = 0;
  let pending = '';

  function compile(): void {
    forms = secretForms(known);
    // Longest first: at one position the alternation takes the first alternative that matches, so the whole
    // `oauth2:` value wins over the token's own base64 core inside it.
    pattern = forms.length === 0 ? null : new RegExp(forms.map(escapeRegExp).join('|'), 'g');
    hold = forms.length === 0 ? 0 : Math.max(...forms.map((form) => form.length)) - 1;
  }
  compile();

  return {
    push(chunk) {
      if (pattern === null) return chunk;
      const text = pending + chunk;
      // Hold back only a tail that could still grow into a secret (it is the start of one of its forms), so a
      // live log is not delayed by the length of the longest form. No form can start before `cut` and still be
      // incomplete, so every match found before it is final.
      const cut = text.length - incompleteTail(text, forms, hold);
      let out = '';
      let emitted = 0;
      pattern.lastIndex = 0;
      for (let match = pattern.exec(text); match !== null && match.index < cut; match = pattern.exec(text)) {
        out += text.slice(emitted, match.index) + REDACTED;
        emitted = match.index + match[0].length;
      }
      const keepFrom = Math.max(emitted, cut);
      out += text.slice(emitted, keepFrom);
      pending = text.slice(keepFrom);
      return out;
    },
    flush() {
      const rest = pattern === null ? pending : pending.replace(pattern, REDACTED);
      pending = '';
      return rest;
    },
    add(secret) {
      if (secret.length < MIN_SECRET_LENGTH || known.includes(secret)) return;
      known.push(secret);
      compile();
    },
  };
}

/** Length of the longest tail of `text` that is a proper prefix of some form (at most `hold`). */
function incompleteTail(text: string, forms: readonly string[], hold: number): number {
  for (let length = Math.min(hold, text.length); length > 0; length--) {
    const tail = text.slice(text.length - length);
    if (forms.some((form) => form.length > length && form.startsWith(tail))) return length;
  }
  return 0;
}

/** Every string to redact, longest first, without duplicates. */
export function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    // git and curl send credentials as `Authorization: Basic base64("oauth2:<token>")` (docs/gitlab.md, "Git
    // over HTTPS"); the whole value goes, padding included.
    forms.add(Buffer.from(`oauth2:${secret}`, 'utf8').toString('base64'));
    // The secret encoded on its own, padding included; the cores below only cover the characters that do not
    // depend on what follows.
    const alone = Buffer.from(secret, 'utf8').toString('base64');
    forms.add(alone);
    forms.add(alone.replace(/=+$/, ''));
    forms.add(Buffer.from(secret, 'utf8').toString('base64url'));
    for (const core of base64Cores(secret)) {
      forms.add(core);
      forms.add(core.replaceAll('+', '-').replaceAll('/', '_'));
    }
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * The base64 characters determined by the secret's bytes alone, for each of the three alignments it can have
 * inside a longer base64 text (`user:token`, a config file…). Characters that mix in neighbouring bytes are
 * left out, so a core matches wherever the secret was encoded.
 */
function base64Cores(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    cores.push(encoded.slice(first, end));
  }
  return cores;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

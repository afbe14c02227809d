import { X509Certificate } from 'node:crypto';
import { InputError } from '../core/index.ts';

const MAX_TOKEN_LENGTH = 4096;

/**
 * Checks a pasted token without ever echoing it. Leading and trailing whitespace (the newline of
 * `echo $TOKEN |`) is dropped; anything else that could not be a GitLab token is refused.
 */
export function cleanToken(raw: unknown): string {
  const field = 'token';
  if (typeof raw !== 'string') throw new InputError('invalid_token', 'A token is required.', { field });
  const token = raw.trim();
  if (token === '') {
    throw new InputError('invalid_token', raw === '' ? 'The token is empty.' : 'The token is only whitespace.', { field });
  }
  if (/[\r\n]/.test(token)) {
    throw new InputError('invalid_token', 'The token spans several lines; paste exactly one token.', { field });
  }
  if (/\s/.test(token)) throw new InputError('invalid_token', 'The token contains spaces; paste exactly one token.', { field });
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new InputError('invalid_token', `The token is longer than ${MAX_TOKEN_LENGTH} characters.`, { field });
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new InputError('invalid_token', 'The token contains characters a GitLab token never has.', { field });
  }
  return token;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Validates a PEM bundle of CA certificates; returns it normalised (one trailing newline), or null when absent. */
export function cleanCaPem(raw: unknown): string | null {
  const field = 'caPem';
  if (raw === undefined || raw === null || raw === '') return null;
  if (typeof raw !== 'string') throw new InputError('invalid_ca', 'The CA certificate must be PEM text.', { field });
  const blocks = raw.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) {
    throw new InputError(
      'invalid_ca',
      'The CA certificate is not PEM: expected one or more "-----BEGIN CERTIFICATE-----" blocks.',
      { field },
    );
  }
  for (const [index, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      throw new InputError('invalid_ca', `Certificate ${index + 1} in the CA bundle cannot be parsed.`, { field });
    }
    if (!cert.ca) {
      throw new InputError(
        'invalid_ca',
        `Certificate ${index + 1} (${cert.subject.replaceAll('\n', ', ')}) is not a CA certificate; give the certificate authority that signed the server's certificate.`,
        { field },
      );
    }
  }
  return `${blocks.join('\n')}\n`;
}

const MAX_LABEL_LENGTH = 100;

export function cleanLabel(raw: unknown, fallback: string): string {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw !== 'string') throw new InputError('invalid_label', 'The label must be text.', { field: 'label' });
  const label = raw.trim().replace(/\s+/g, ' ');
  if (label.length > MAX_LABEL_LENGTH) {
    throw new InputError('invalid_label', `The label is longer than ${MAX_LABEL_LENGTH} characters.`, { field: 'label' });
  }
  return label === '' ? fallback : label;
}

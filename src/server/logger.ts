import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs: a fixed message plus a metadata object, so lines can be counted. Secrets never enter metadata;
 * the redaction below is a second line of defence for keys that might carry one.
 */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers["private-token"]',
  '*.headers["private-token"]',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'forgelink' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}

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

export type LogFormat = 'json' | 'pretty';

/**
 * Readable lines for a person at a terminal: local time, level, message, then the metadata on the same line.
 * `service`, `pid` and `hostname` say nothing there; `setupUrl` repeats what the message already shows.
 * pino-pretty is loaded only here, so commands that never log to a terminal do not pay for it.
 */
export async function prettyLogStream(destination: DestinationStream | NodeJS.WritableStream | number = 1): Promise<DestinationStream> {
  const { default: pretty } = await import('pino-pretty');
  return pretty({
    destination,
    sync: true,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,service,setupUrl',
    singleLine: true,
  });
}

import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

const MAX_HEADER_BYTES = 64 * 1024;

function headerEnd(buffer: Buffer): { at: number; length: number } | null {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return null;
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { at: crlf, length: 4 };
  return { at: lf, length: 2 };
}

/** RFC 3875 response headers: `Status: 403 Forbidden` sets the status; the rest pass through. */
function parseHeaders(text: string): { status: number; headers: Headers } {
  const headers = new Headers();
  let status = 200;
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers.append(name, value);
  }
  return { status, headers };
}

export interface CgiRequest {
  command: string;
  args: string[];
  env: Record<string, string>;
  body: ReadableStream<Uint8Array> | null;
  /** Running children, so the owner can stop them on close. */
  children: Set<ChildProcess>;
}

/**
 * Runs a CGI program (git http-backend) with the request body on stdin and streams its answer back:
 * the header block becomes the status and headers, the rest the body.
 */
export function runCgi(request: CgiRequest): Promise<Response> {
  return new Promise((resolve) => {
    const child = spawn(request.command, request.args, { env: request.env, stdio: ['pipe', 'pipe', 'pipe'] });
    request.children.add(child);
    child.once('close', () => request.children.delete(child));
    let settled = false;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_HEADER_BYTES) stderr += chunk.toString();
    });
    // The program may answer (and exit) without reading everything, e.g. on a bad request.
    child.stdin.on('error', () => {});
    if (request.body) {
      Readable.fromWeb(request.body as WebReadableStream<Uint8Array>).on('error', () => child.stdin.destroy()).pipe(child.stdin);
    } else {
      child.stdin.end();
    }

    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      resolve(new Response(`${message}\n`, { status: 500, headers: { 'Content-Type': 'text/plain; charset=utf-8' } }));
    };
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = headerEnd(head);
      if (end === null) {
        if (head.length > MAX_HEADER_BYTES) fail('CGI header block too large');
        return;
      }
      child.stdout.off('data', onData);
      child.stdout.pause();
      const { status, headers } = parseHeaders(head.subarray(0, end.at).toString('latin1'));
      const body = new PassThrough();
      const rest = head.subarray(end.at + end.length);
      if (rest.length > 0) body.write(rest);
      child.stdout.pipe(body);
      settled = true;
      const stream = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
      resolve(new Response(status === 204 || status === 304 ? null : stream, { status, headers }));
    };
    child.stdout.on('data', onData);
    child.once('error', (error) => fail(`cannot run ${request.command}: ${error.message}`));
    child.once('close', (code) => fail(`${request.command} exited ${code} before answering: ${stderr.trim()}`));
  });
}

/**
 * openUpstreamConnection (src/core/upstream-proxy.ts): the one way forgelink's outbound connections leave, directly or
 * through the operator's CONNECT proxy. A caller that tracks the socket it was handed (the egress proxy keeps a set of
 * open sockets and drops each on 'close') must still hear that socket close after the connection was established.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { openUpstreamConnection } from '../../src/core/index.ts';

async function listen(onConnection: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('a caller that tracks the socket hears it close after the connection is up (direct)', async () => {
  const target = await listen((socket) => socket.end());
  try {
    const closes: string[] = [];
    const socket = await openUpstreamConnection(null, { host: '127.0.0.1', port: target.port }, {
      timeoutMs: 5_000,
      onSocket: (tracked) => tracked.once('close', () => closes.push('tracked')),
    });
    socket.on('error', () => {});
    socket.resume();
    await once(socket, 'close');
    assert.deepEqual(closes, ['tracked']);
  } finally {
    await target.close();
  }
});

test('a caller that tracks the socket hears it close after the tunnel is up (through a CONNECT proxy)', async () => {
  const target = await listen((socket) => socket.end());
  // A minimal CONNECT proxy: answers 200 and then closes the tunnel, as a proxy whose target went away does.
  const proxy = await listen((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 Connection established\r\n\r\n'));
  });
  try {
    const closes: string[] = [];
    const socket = await openUpstreamConnection({ host: '127.0.0.1', port: proxy.port }, { host: '127.0.0.1', port: target.port }, {
      timeoutMs: 5_000,
      onSocket: (tracked) => tracked.once('close', () => closes.push('tracked')),
    });
    socket.on('error', () => {});
    socket.resume();
    if (!socket.destroyed) await once(socket, 'close');
    assert.deepEqual(closes, ['tracked']);
  } finally {
    await Promise.all([target.close(), proxy.close()]);
  }
});

export { createPgRunQueue, RUN_QUEUE } from './pg-queue.ts';
export { createPgRunSignals, RUN_CHANNEL } from './pg-signals.ts';
export { createLocalRunQueue, createLocalRunSignals } from './local-queue.ts';
export { lockDataDir, LOCK_FILENAME, type ProcessLock } from './process-lock.ts';

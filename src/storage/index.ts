export { openStorage, SQLITE_FILENAME } from './open-storage.ts';
export type { Storage, StorageOptions } from './open-storage.ts';
export type { DatabaseSchema } from './tables.ts';
export { EgressJson, OutputsJson, RunErrorJson } from './schema.ts';

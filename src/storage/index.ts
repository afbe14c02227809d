export { openStorage, SQLITE_FILENAME } from './open-storage.ts';
export { secureDataDir } from './data-dir.ts';
export type { ModeChange } from './data-dir.ts';
export type { Storage, StorageOptions } from './open-storage.ts';
export type { DatabaseSchema } from './tables.ts';
export { EgressJson, OutputsJson, RunErrorJson } from './schema.ts';

// The forgelink command's entry point, in plain JavaScript on purpose: Node strips the types of the first
// TypeScript file it loads with a compiler it must load first (~0.1 s), unless the compile cache, which keeps
// the stripped code, is already on. So this file turns the cache on, then loads src/main.ts from the cache.
// The cache lives in the user's own cache directory, not a /tmp other users can write.
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';

const home = process.env.HOME?.trim() || homedir();
enableCompileCache(path.join(process.env.XDG_CACHE_HOME?.trim() || path.join(home, '.cache'), 'forgelink', 'node-compile-cache'));
await import('../src/main.ts');

import type { Command } from 'commander';
import { formatBytes } from '../core/index.ts';
import type { CliContext } from './context.ts';
import type { CacheMirror } from './local-actions.ts';

function mirrorLine(mirror: CacheMirror): string {
  const what = mirror.projectPath === null ? mirror.key : `${mirror.baseUrl ?? '?'} ${mirror.projectPath}${mirror.projectId === null ? '' : ` (#${mirror.projectId})`}`;
  return `${mirror.key.slice(0, 12)}  ${formatBytes(mirror.sizeBytes).padStart(10)}  used ${mirror.lastUsedAt ?? 'never'}${mirror.inUse ? '  in use' : ''}  ${what}`;
}

/** `forgelink cache list | prune`: the repository cache on this machine's data directory (docs/architecture.md, "The repository cache"). */
export function addCacheCommands(program: Command, cli: CliContext): void {
  const cache = program
    .command('cache')
    .description('the repository cache on this machine\'s data directory: a mirror per project that runs borrow from (list, prune)');
  cache
    .command('list')
    .description('list the mirrors, least recently used first, with their size and last use')
    .action(async (_options: unknown, command: Command) => {
      const listing = await (await cli.local()).listCache();
      cli.print(command, listing, () =>
        [
          `Repository cache ${listing.enabled ? 'on' : 'off (FORGELINK_REPO_CACHE)'}: ${listing.dir}, ${formatBytes(listing.totalBytes)} of ${formatBytes(listing.maxBytes)} (FORGELINK_REPO_CACHE_MAX)`,
          ...(listing.mirrors.length === 0 ? ['No mirrors.'] : listing.mirrors.map(mirrorLine)),
        ].join('\n'),
      );
    });
  cache
    .command('prune')
    .description('remove idle mirrors, least recently used first, until the cache is under FORGELINK_REPO_CACHE_MAX; mirrors in use stay')
    .option('--all', 'remove every mirror no run is using')
    .action(async (options: { all?: boolean }, command: Command) => {
      const result = await (await cli.local()).pruneCache({ all: options.all === true });
      cli.print(command, result, () =>
        [
          `Removed ${result.removed.length} mirror(s); the cache now holds ${formatBytes(result.totalBytes)} (limit ${formatBytes(result.maxBytes)}).`,
          ...result.removed.map(mirrorLine),
        ].join('\n'),
      );
    });
}

import { homedir } from 'node:os';
import path from 'node:path';
import { agentRecipeHash, buildAgentImage, type AgentImageResult } from '../../src/images/index.ts';

/**
 * The reference agent image, built for real by its recipe once per recipe hash and kept in the user's cache
 * directory (`$XDG_CACHE_HOME` or `~/.cache`, `forgelink-tests/agent-image`; `FORGELINK_TEST_IMAGE_CACHE` to move
 * it): the first build takes minutes (Debian and npm downloads); later test runs on the machine — fresh checkouts
 * and `npm ci` included — reuse it.
 */
export const AGENT_IMAGE_CACHE =
  process.env.FORGELINK_TEST_IMAGE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'forgelink-tests', 'agent-image');

export async function referenceAgentImage(progress: (line: string) => void = () => {}): Promise<AgentImageResult> {
  const hash = await agentRecipeHash();
  return buildAgentImage({ outDir: path.join(AGENT_IMAGE_CACHE, hash.slice(0, 16), 'agent'), progress });
}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentRecipeHash, buildAgentImage, type AgentImageResult } from '../../src/images/index.ts';

/**
 * The reference agent image, built for real by its recipe once per recipe hash and kept under node_modules/.cache
 * (gitignored): the first build takes minutes (Debian and npm downloads), later test runs reuse it.
 */
export const AGENT_IMAGE_CACHE = fileURLToPath(new URL('../../node_modules/.cache/forgelink-agent-image', import.meta.url));

export async function referenceAgentImage(progress: (line: string) => void = () => {}): Promise<AgentImageResult> {
  const hash = await agentRecipeHash();
  return buildAgentImage({ outDir: path.join(AGENT_IMAGE_CACHE, hash.slice(0, 16), 'agent'), progress });
}

/**
 * Run images (docs/architecture.md, "Run images"): the store that pulls image references with skopeo and
 * unpacks each digest once with umoci, and the recipe of forgelink's reference agent image.
 */
export { createImageStore, type ImageStore, type ImageStoreOptions, type StoredImage, type ReadyImage, type ImageProgress } from './store.ts';
export { AGENT_RECIPE, agentImageVersions, agentRecipeHash, buildAgentImage, type AgentImageOptions, type AgentImageResult } from './agent-image.ts';

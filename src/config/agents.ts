import { z } from 'zod';
import { BUILT_IN_AGENTS, agentHosts, agentProfileProblem, type AgentProfile } from '../core/index.ts';

const Override = z
  .object({
    image: z.string().min(1).optional(),
    command: z.array(z.string()).optional(),
    secrets: z.array(z.string()).optional(),
    hosts: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    baseUrlEnv: z.string().nullable().optional(),
    output: z.enum(['text', 'claude-stream-json']).optional(),
  })
  .strict();

const Overrides = z.record(z.string(), Override);

export type AgentsError = { path: string; message: string };

/**
 * The agent profiles: the built-in ones with the operator's changes (FORGELINK_AGENTS, a JSON object by
 * profile name). A field given replaces the built-in one, except `env`, whose variables are added; a new
 * name needs a command. When a profile's env points its base-URL variable at a gateway and the operator
 * lists no hosts, the gateway's origin replaces the default host. Returns the first problem instead.
 */
export function readAgentProfiles(raw: string | undefined): AgentProfile[] | AgentsError {
  const profiles = BUILT_IN_AGENTS.map((profile) => ({ ...profile, command: [...profile.command], env: { ...profile.env } }));
  if (raw === undefined) return profiles;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { path: '', message: 'is not valid JSON' };
  }
  const result = Overrides.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { path: issue?.path.join('.') ?? '', message: `expected {"<profile>":{"image","command","secrets","hosts","env"}}: ${issue?.message ?? ''}`.trim() };
  }
  const changed: AgentProfile[] = [];
  for (const [name, override] of Object.entries(result.data)) {
    const base = profiles.find((profile) => profile.name === name);
    const merged: AgentProfile = {
      name,
      image: override.image ?? base?.image ?? 'host',
      command: override.command ?? base?.command ?? [],
      secrets: override.secrets ?? base?.secrets ?? [],
      hosts: override.hosts ?? base?.hosts ?? [],
      env: { ...base?.env, ...override.env },
      baseUrlEnv: override.baseUrlEnv === undefined ? (base?.baseUrlEnv ?? null) : override.baseUrlEnv,
      output: override.output ?? base?.output ?? 'text',
    };
    const problem = agentProfileProblem(merged);
    if (problem !== null) return { path: name, message: problem };
    merged.hosts = agentHosts(merged, override.hosts !== undefined);
    changed.push(merged);
  }
  // Changed profiles keep their place; new ones come after the built-in ones.
  const builtIn = profiles.map((profile) => changed.find((other) => other.name === profile.name) ?? profile);
  return [...builtIn, ...changed.filter((profile) => !profiles.some((other) => other.name === profile.name))];
}

import type { Command } from 'commander';
import type { ApiClient } from './api-client.ts';

type Io = {
  api(command: Command): Promise<ApiClient>;
  print: (command: Command, value: unknown, human: () => string) => void;
};

/** One profile as `GET /agents` lists it. */
export type AgentView = { name: string; image: string; secrets: string[]; hosts: string[] };

/** The profiles as a table. */
export function agentsTable(agents: readonly AgentView[]): string {
  const rows = [
    ['NAME', 'IMAGE', 'SECRETS', 'HOSTS'],
    ...agents.map((agent) => [agent.name, agent.image, agent.secrets.join(', ') || '-', agent.hosts.join(', ') || '-']),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => [...row[column]!].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/** `forgelink agents list`: the agent profiles `forgelink run --agent` may name. */
export function addAgentCommands(program: Command, io: Io): void {
  const agents = program.command('agents').description('the agent profiles runs may use (forgelink run --agent <name> "<task>")');
  agents
    .command('list')
    .description('list the agent profiles: image, the secrets a run needs (forgelink secrets set NAME) and the hosts it reaches')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await io.api(command)).request<{ agents: AgentView[] }>('GET', '/agents');
      io.print(command, result, () => agentsTable(result.agents));
    });
}

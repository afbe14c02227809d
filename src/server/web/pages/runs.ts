import { html } from 'hono/html';
import type { ConnectionView } from '../../../core/index.ts';
import type { RunView } from '../../../runs/index.ts';
import type { Auth } from '../context.ts';
import { csrfField, describedBy, fieldError, firstError, notice, page, type AssetUrls, type Html } from '../layout.ts';
import { runsTable } from './run-parts.ts';

export type StartRunField = 'connectionId' | 'project' | 'branch' | 'agent' | 'task' | 'command';

export type StartRunValues = {
  connectionId: string | null;
  project: string;
  branch: string;
  /** The agent profile; `custom` runs `command`, every other one gets `task`. */
  agent: string;
  task: string;
  command: string;
  errors: Partial<Record<StartRunField | 'form', string>>;
};

/** The chosen connection's projects, or why they could not be listed (then the path is typed). */
export type ProjectChoices = { ok: true; paths: string[] } | { ok: false; message: string };

export type RunsView = {
  assets: AssetUrls;
  auth: Auth;
  runs: RunView[];
  connections: ConnectionView[];
  projects: ProjectChoices | null;
  /** The agent profiles the form offers. */
  agents: { name: string; secrets: string[] }[];
  form: StartRunValues;
};

function connectionOption(connection: ConnectionView, selected: boolean): Html {
  const account = connection.account === null ? '' : ` · @${connection.account.username}`;
  return html`<option value="${connection.id}"${selected ? html` selected` : ''}>${connection.label} · ${connection.host}${account}${connection.status === 'active' ? '' : ` (${connection.status})`}</option>`;
}

function projectControl(projects: ProjectChoices | null, values: StartRunValues, focus: boolean): Html {
  const error = values.errors.project;
  if (projects !== null && projects.ok && projects.paths.length > 0) {
    const paths = projects.paths.includes(values.project) || values.project === '' ? projects.paths : [values.project, ...projects.paths];
    return html`<select id="project" name="project" required${describedBy('project', { error, focus })}>
      ${paths.map((path) => html`<option${path === values.project ? html` selected` : ''}>${path}</option>`)}
    </select>`;
  }
  const hint = projects === null ? null : projects.ok ? 'This account has no project with Developer access or more; type a path.' : projects.message;
  return html`<input id="project" name="project" type="text" spellcheck="false" placeholder="group/subgroup/project" value="${values.project}" required${describedBy('project', { hint: hint !== null, error, focus })}>
    ${hint === null ? '' : html`<p class="hint" id="project-hint">${hint}</p>`}`;
}

function startForm(view: RunsView): Html {
  const { form, connections, auth } = view;
  if (connections.length === 0) {
    return html`<p class="empty">Connect a GitLab account first: <a href="/integrations/gitlab">Integrations → GitLab</a>.</p>`;
  }
  const errors = form.errors;
  const focus = firstError(['connectionId', 'project', 'branch', 'agent', 'task', 'command'] as const, errors);
  return html`<form method="post" action="/runs" class="stack" id="start-run" novalidate>
  ${csrfField(auth)}
  ${errors.form === undefined ? '' : notice('error', errors.form)}
  <div class="field${errors.connectionId === undefined ? '' : ' has-error'}">
    <label for="connectionId">Connection</label>
    <div class="inline">
      <select id="connectionId" name="connectionId" data-projects-for="project-field"${describedBy('connectionId', { error: errors.connectionId, focus: focus === 'connectionId' })}>
        ${connections.map((connection) => connectionOption(connection, connection.id === form.connectionId))}
      </select>
      <button type="submit" name="intent" value="load-projects" formnovalidate data-js-remove>Load projects</button>
    </div>
    ${fieldError('connectionId', errors.connectionId)}
  </div>
  <div class="field${errors.project === undefined ? '' : ' has-error'}" id="project-field">
    <label for="project">Project</label>
    ${projectControl(view.projects, form, focus === 'project')}
    ${fieldError('project', errors.project)}
  </div>
  <div class="field${errors.branch === undefined ? '' : ' has-error'}">
    <label for="branch">Branch <span class="muted">(optional)</span></label>
    <input id="branch" name="branch" type="text" spellcheck="false" placeholder="the project's default branch" value="${form.branch}"${describedBy('branch', { hint: true, error: errors.branch, focus: focus === 'branch' })}>
    <p class="hint" id="branch-hint">The branch the agent starts from.</p>
    ${fieldError('branch', errors.branch)}
  </div>
  <div class="field${errors.agent === undefined ? '' : ' has-error'}">
    <label for="agent">Agent</label>
    <select id="agent" name="agent"${describedBy('agent', { hint: true, error: errors.agent, focus: focus === 'agent' })}>
      ${view.agents.map((agent) => html`<option value="${agent.name}"${agent.name === form.agent ? html` selected` : ''}>${agent.name}${agent.secrets.length === 0 ? '' : ` (needs ${agent.secrets.join(', ')})`}</option>`)}
    </select>
    <p class="hint" id="agent-hint">A profile runs its agent with your task; <code>custom</code> runs the command below.</p>
    ${fieldError('agent', errors.agent)}
  </div>
  <div class="field${errors.task === undefined ? '' : ' has-error'}">
    <label for="task">Task <span class="muted">(for a profile)</span></label>
    <textarea id="task" name="task" rows="3" placeholder="Fix the failing test and open a merge request"${describedBy('task', { error: errors.task, focus: focus === 'task' })}>${form.task}</textarea>
    ${fieldError('task', errors.task)}
  </div>
  <div class="field${errors.command === undefined ? '' : ' has-error'}">
    <label for="command">Agent command <span class="muted">(for custom)</span></label>
    <input id="command" name="command" type="text" spellcheck="false" class="mono" placeholder="claude -p 'fix the failing test'" value="${form.command}"${describedBy('command', { hint: true, error: errors.command, focus: focus === 'command' })}>
    <p class="hint" id="command-hint">One line, split into arguments like a shell does ('…' and "…" group words, \\ escapes), but run without a shell: nothing is expanded. For pipes or variables use <code>sh -c '…'</code>.</p>
    ${fieldError('command', errors.command)}
  </div>
  <button type="submit" name="intent" value="start" class="primary">Start run</button>
</form>`;
}

/** Runs: the start form and the user's runs, newest first. */
export function runsPage(view: RunsView): Html {
  return page(
    { title: 'Runs', auth: view.auth, assets: view.assets, section: 'runs' },
    html`<h1>Runs</h1>
<section aria-labelledby="start-title" class="panel">
  <h2 id="start-title">Start a run</h2>
  ${startForm(view)}
</section>
<section aria-labelledby="runs-title">
  <h2 id="runs-title">Your runs</h2>
  ${view.runs.length === 0 ? html`<p class="empty">No runs yet.</p>` : runsTable(view.runs, 'Your runs, newest first')}
</section>`,
  );
}

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createMergeRequest,
  openMergeRequestFor,
  refreshMergeRequests,
  updateMergeRequest,
  type MergeRequestDeps,
} from './merge-requests.ts';
import { isProtected, protectBranch } from './protected-branches.ts';
import { optionFlag, optionList, optionText, parsePushOptions, type PushOptionValue } from './push-options.ts';
import { branchName, type RefChange } from './pre-receive.ts';
import { listBranches } from './repo-queries.ts';
import { ZERO_SHA } from './repos.ts';
import { isoNow, type FakeProject, type FakeUser } from './state.ts';

/** Gitlab::InternalPostReceive::Response messages; Gitaly prints `alert` ones framed, `basic` ones as they are. */
export interface PostReceiveMessage {
  type: 'basic' | 'alert';
  message: string;
}

export interface PostReceiveContext extends MergeRequestDeps {
  project: FakeProject;
  user: FakeUser;
  /** The project's web URL (`<base>/<full path>`). */
  webUrl: string;
}

/** Ruby's CGI.escape, which Rails' `to_query` uses: everything but `A-Za-z0-9_.-~` is %-encoded, spaces as `+`. */
function cgiEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** Branches a push created or moved, in push order; the default branch and deletions left out (GetUrlsService#get_branches). */
function pushedBranches(changes: readonly RefChange[], defaultBranch: string | null): string[] {
  const branches: string[] = [];
  for (const change of changes) {
    const branch = branchName(change.ref);
    if (branch === null || change.newrev === ZERO_SHA || branch === defaultBranch) continue;
    if (!branches.includes(branch)) branches.push(branch);
  }
  return branches;
}

/**
 * The first push into an empty repository chooses the default branch (GitLab prefers the instance
 * default, `main`, when it was pushed) and, under default branch protection, protects it.
 */
async function adoptDefaultBranch(context: PostReceiveContext, changes: readonly RefChange[]): Promise<void> {
  const { project } = context;
  if (project.defaultBranch !== null) return;
  const repo = context.repos.ensure(project);
  const existing = (await listBranches(context.repos, repo)).map((b) => b.name);
  if (existing.length === 0) return;
  const created = changes.map((c) => branchName(c.ref)).filter((b): b is string => b !== null && existing.includes(b));
  setDefaultBranch(context, project, created.includes('main') ? 'main' : (created[0] ?? existing[0] ?? 'main'));
}

/** Points HEAD at `branch` and protects it when the project asks for default branch protection. */
export function setDefaultBranch(deps: MergeRequestDeps, project: FakeProject, branch: string): void {
  project.defaultBranch = branch;
  writeFileSync(join(deps.repos.ensure(project), 'HEAD'), `ref: refs/heads/${branch}\n`);
  if (project.protectDefaultBranch && !isProtected(project, branch)) protectBranch(deps.state, project, branch);
}

/**
 * MergeRequests::PushOptionsHandlerService: for every pushed branch, update its open merge request or,
 * with `merge_request.create`, create one (author and assignee: the pusher; target: the option or the
 * default branch). Returns the errors GitLab collects.
 */
async function handleMergeRequestOptions(
  context: PostReceiveContext,
  options: Record<string, PushOptionValue>,
  branches: readonly string[],
): Promise<string[]> {
  const { project, state } = context;
  const errors: string[] = [];
  if (branches.length > 10) errors.push(`Too many branches pushed (${branches.length} were pushed, limit is 10)`);
  const target = optionText(options, 'target');
  if (target !== undefined) {
    const exists = (await listBranches(context.repos, context.repos.ensure(project))).some((b) => b.name === target);
    if (!exists) errors.push(`Target branch ${project.pathWithNamespace}:${target} does not exist`);
  }
  if (errors.length > 0) return errors;

  // base_params: a literal `\n` in the description becomes a line break.
  const description = optionText(options, 'description')?.replace(/\\n/g, '\n');
  const title = optionText(options, 'title');
  const draft = optionFlag(options, 'draft');
  const removeSourceBranch = optionFlag(options, 'remove_source_branch');
  const addLabels = optionList(options, 'label');
  const removeLabels = optionList(options, 'unlabel');
  for (const branch of branches) {
    const existing = openMergeRequestFor(state, project.id, branch);
    if (existing) {
      errors.push(
        ...updateMergeRequest(state, existing, {
          ...(title === undefined ? {} : { title }),
          ...(description === undefined ? {} : { description }),
          ...(target === undefined ? {} : { targetBranch: target }),
          ...(draft === undefined ? {} : { draft }),
          ...(removeSourceBranch === undefined ? {} : { removeSourceBranch }),
          ...(addLabels === undefined ? {} : { addLabels }),
          ...(removeLabels === undefined ? {} : { removeLabels }),
        }),
      );
      continue;
    }
    if (options.create === undefined) {
      errors.push(`A merge_request.create push option is required to create a merge request for branch ${branch}`);
      continue;
    }
    const outcome = await createMergeRequest(context, project, {
      authorId: context.user.id,
      assigneeIds: [context.user.id],
      sourceBranch: branch,
      targetBranch: target ?? project.defaultBranch ?? 'main',
      ...(title === undefined ? {} : { title }),
      ...(description === undefined ? {} : { description }),
      ...(draft === undefined ? {} : { draft }),
      ...(removeSourceBranch === undefined ? {} : { removeSourceBranch }),
      labels: (addLabels ?? []).filter((l) => !(removeLabels ?? []).includes(l)),
    });
    if (outcome.ok) continue;
    // collect_errors_from_merge_request: ActiveModel full messages.
    if (outcome.kind === 'invalid') {
      for (const [field, messages] of Object.entries(outcome.errors)) {
        const label = field.charAt(0).toUpperCase() + field.slice(1).replace(/_/g, ' ');
        for (const message of messages) errors.push(`${label} ${message}`);
      }
    } else {
      errors.push(...outcome.messages);
    }
  }
  return errors;
}

/**
 * PostReceiveService#execute: default branch for a first push, merge request refresh, push options
 * (warnings as an alert), then one link per pushed branch (MergeRequests::GetUrlsService): the open
 * merge request's page, or the form for a new one.
 */
export async function postReceive(
  context: PostReceiveContext,
  changes: readonly RefChange[],
  rawPushOptions: readonly string[],
): Promise<PostReceiveMessage[]> {
  const { project } = context;
  await adoptDefaultBranch(context, changes);
  const moved = changes
    .filter((c) => c.newrev !== ZERO_SHA)
    .map((c) => branchName(c.ref))
    .filter((b): b is string => b !== null);
  await refreshMergeRequests(context, project, moved);
  project.lastActivityAt = isoNow(context.state);

  const messages: PostReceiveMessage[] = [];
  const branches = pushedBranches(changes, project.defaultBranch);
  const mergeRequestOptions = parsePushOptions(rawPushOptions).merge_request;
  if (mergeRequestOptions) {
    const errors = await handleMergeRequestOptions(context, mergeRequestOptions, branches);
    if (errors.length > 0) {
      const quoted = rawPushOptions.map((p) => `'${p}'`).join(' ');
      messages.push({
        type: 'alert',
        message: `WARNINGS:\nError encountered with push options ${quoted}: ${errors.join('\n\n')}`,
      });
    }
  }
  for (const branch of branches) {
    const open = openMergeRequestFor(context.state, project.id, branch);
    const text = open
      ? `View merge request for ${branch}:\n  ${context.webUrl}/-/merge_requests/${open.iid}`
      : `To create a merge request for ${branch}, visit:\n  ${context.webUrl}/-/merge_requests/new?merge_request%5Bsource_branch%5D=${cgiEscape(branch)}`;
    messages.push({ type: 'basic', message: text });
  }
  return messages;
}

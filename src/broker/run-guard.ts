import { decideGitLabRequest, decideReceivePack, updatesNeedingAncestry, type Decision, type RunPolicy } from './policy.ts';
import type { GuardRequest } from './proxy.ts';

/** Whether `newId` descends from `oldId`; undefined when that cannot be told (the commit is not where it is looked for). */
export type AncestryCheck = (oldId: string, newId: string) => Promise<boolean | undefined>;

/**
 * The broker's hook for one run: each request to the GitLab origin decided by the run policy (policy.ts), a push by
 * its URL and then by its ref updates. `policy()` is read per request, so the run can complete it (the branches that
 * existed before the run are known once it listed the remote) before the agent starts.
 */
export function runGuard(policy: () => RunPolicy, isAncestor?: AncestryCheck): (request: GuardRequest) => Promise<Decision> {
  return async (request) => {
    const current = policy();
    const decision = decideGitLabRequest(current, {
      method: request.method,
      path: request.path,
      query: request.query,
      contentType: request.contentType,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    if (!decision.allow || request.receivePack === undefined) return decision;
    const answers = new Map<string, boolean | undefined>();
    for (const update of updatesNeedingAncestry(current, request.receivePack.commands)) {
      answers.set(`${update.oldId} ${update.newId}`, await isAncestor?.(update.oldId, update.newId).catch(() => undefined));
    }
    return decideReceivePack(current, request.receivePack, { isAncestor: (oldId, newId) => answers.get(`${oldId} ${newId}`) });
  };
}

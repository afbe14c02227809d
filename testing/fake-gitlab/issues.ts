import { isoNow, type FakeIssue, type FakeProject, type FakeState } from './state.ts';

export interface NewIssue {
  authorId: number;
  title: string;
  description?: string | null;
  labels?: string[];
  confidential?: boolean;
}

/** Issues::CreateService: a new open issue with the project's next issue iid. */
export function createIssue(state: FakeState, project: FakeProject, input: NewIssue): FakeIssue {
  const now = isoNow(state);
  const issue: FakeIssue = {
    id: state.nextId.issue++,
    iid: project.nextIid.issue++,
    projectId: project.id,
    title: input.title,
    description: input.description ?? null,
    state: 'opened',
    authorId: input.authorId,
    labels: [...new Set(input.labels ?? [])].sort(),
    confidential: input.confidential ?? false,
    createdAt: now,
    updatedAt: now,
    closedAt: null,
  };
  state.issues.push(issue);
  project.lastActivityAt = now;
  return issue;
}

export function issuesOf(state: FakeState, projectId: number): FakeIssue[] {
  return state.issues.filter((issue) => issue.projectId === projectId);
}

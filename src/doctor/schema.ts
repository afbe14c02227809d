import { z } from 'zod';

/** `GET /metadata` as the doctor reads it (GitLab docs: api/metadata.md): only the version. */
export const DoctorMetadata = z.object({ version: z.string() });
export type DoctorMetadata = z.infer<typeof DoctorMetadata>;

/** `GET /projects?simple=true` entries as the doctor reads them (GitLab docs: api/projects.md). */
export const DoctorProjects = z.array(z.object({ id: z.number(), path_with_namespace: z.string(), http_url_to_repo: z.string() }));
export type DoctorProjects = z.infer<typeof DoctorProjects>;

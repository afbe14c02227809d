import { z } from 'zod';

/** The JSON held in `connections.account`. */
export const AccountJson = z.object({ id: z.number(), username: z.string(), name: z.string() });
export type AccountJson = z.infer<typeof AccountJson>;

/** The JSON held in `connections.scopes`. */
export const ScopesJson = z.array(z.string());
export type ScopesJson = z.infer<typeof ScopesJson>;

export const ConnectionKindColumn = z.enum(['pat', 'oauth']);
export const ConnectionStatusColumn = z.enum(['active', 'expired', 'revoked', 'invalid', 'unreachable']);
export const ProviderColumn = z.literal('gitlab');

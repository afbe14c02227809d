import { z } from 'zod';

/**
 * The keyring file: `{ "format": "forgelink-keyring/1", "versions": [{ "id", "key" (base64), "createdAt"? }], "lost"? }`.
 * `lost` lists the ids of keys given up with `forgelink serve --new-master-key`.
 */
export const KeyringFile = z.object({
  format: z.literal('forgelink-keyring/1').optional(),
  versions: z
    .array(
      z.object({
        id: z.string(),
        key: z.string(),
        createdAt: z.string().optional(),
      }),
    )
    .min(1),
  lost: z.array(z.string()).optional(),
});
export type KeyringFile = z.infer<typeof KeyringFile>;

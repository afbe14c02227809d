/** How long a test waits for something that should happen at once on an idle machine: generous for a busy one. */
export const EVENT_DEADLINE_MS = 30_000;

/**
 * Resolves once `condition` holds, checking every `intervalMs`; rejects naming `what` if it still does not hold after
 * `timeoutMs`. Tests wait for the event this way instead of sleeping a fixed time and hoping it happened.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? EVENT_DEADLINE_MS);
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs ?? EVENT_DEADLINE_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 20));
  }
}

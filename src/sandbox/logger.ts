/** The subset of pino's logger the sandbox uses; metadata never holds a secret (docs/security.md, invariant 1). */
export type SandboxLogger = {
  debug(meta: Record<string, unknown>, message: string): void;
  info(meta: Record<string, unknown>, message: string): void;
  warn(meta: Record<string, unknown>, message: string): void;
};

export const silentLogger: SandboxLogger = { debug() {}, info() {}, warn() {} };

/** A role's Logger over one line sink: warnings and errors prefixed (embedded mode, on its main thread and its worker threads). */
import type { Logger } from '../contract/index.js';

export function roleLogger(role: string, id: string, log: (role: string, id: string, line: string) => void): Logger {
  return {
    info: (m) => log(role, id, m),
    warn: (m) => log(role, id, `warning: ${m}`),
    error: (m) => log(role, id, `error: ${m}`),
  };
}

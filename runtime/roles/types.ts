// Kept for older imports; role code imports runtime/cluster/role.ts (roles never import each other).
export type { Logger, RoleContext, RoleHandle } from '../cluster/role.js';

import { fileURLToPath } from 'node:url';

/** The project's root: child processes run there, so its node_modules resolve. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Node's arguments to run a TypeScript entry point through tsx. */
export const TSX = ['--import', 'tsx'];

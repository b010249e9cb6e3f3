/** Public surface of the Proxmox VE API simulator. */
export { startSimulator } from './server.js';
export type { ProxmoxSimulator } from './server.js';
export { demoClusters, DEMO_TOKEN_ID } from './seed.js';
export type { SimGuestSeed, SimClusterSeed, SimApiTokenSeed, SimAclEntry, SimulatorOptions } from './types.js';
export { FaultInjector } from './faults.js';
export type { FaultSpec, FaultRule } from './faults.js';
export { MutationLog } from './mutation-log.js';
export type { Mutation, MutationOp, DuplicateGroup } from './mutation-log.js';
export { SimulatorModel } from './model.js';
export type { BackupVolume, GuestView } from './model-types.js';
export type { TaskView, TaskStop } from './tasks.js';
export { RequestLog } from './request-log.js';
export type { RequestRecord, RequestAnswer } from './request-log.js';
export { SERVED_ROUTES } from './served-routes.js';
export type { RouteKey } from './served-routes.js';

/**
 * The project's custom Temporal search attributes, as typed keys.
 *
 * WORKFLOW-SAFE: this module is imported by workflow code (for `upsertSearchAttributes`) and is bundled
 * into the workflow sandbox, so it must import only from `@temporalio/common` — no Node built-ins, no
 * client/worker packages. Registration against a server lives in `search-attributes-admin.ts`.
 *
 * Capacity note: the SQLite dev server allows 10 Keyword and 3 Int (3 each of Text/Double/Bool/Datetime/
 * KeywordList) custom attributes per namespace. We use 8 Keyword + 1 Int.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * `{ name, type }` of a search attribute — structurally the SDK's `SearchAttributeKey` (which
 * `@temporalio/common` does not re-export from its index).
 */
export interface SearchAttributeDef {
  readonly name: string;
  readonly type: SearchAttributeType;
}

/** Action type, e.g. `qemu.start`. */
export const ProxmoxAction = defineSearchAttributeKey('ProxmoxAction', SearchAttributeType.KEYWORD);
/** Target environment, e.g. `lab`, `prod`. */
export const ProxmoxEnvironment = defineSearchAttributeKey('ProxmoxEnvironment', SearchAttributeType.KEYWORD);
/** Risk class assigned by policy. */
export const ProxmoxRisk = defineSearchAttributeKey('ProxmoxRisk', SearchAttributeType.KEYWORD);
/** Request lifecycle status (planned, awaiting-approval, applying, …). */
export const ProxmoxStatus = defineSearchAttributeKey('ProxmoxStatus', SearchAttributeType.KEYWORD);
/** Proxmox node name. */
export const ProxmoxNode = defineSearchAttributeKey('ProxmoxNode', SearchAttributeType.KEYWORD);
/** Guest VMID. */
export const ProxmoxVmid = defineSearchAttributeKey('ProxmoxVmid', SearchAttributeType.INT);
/** Who asked (agent / user id). */
export const ProxmoxRequester = defineSearchAttributeKey('ProxmoxRequester', SearchAttributeType.KEYWORD);
/** Plan identifier. */
export const ProxmoxPlanId = defineSearchAttributeKey('ProxmoxPlanId', SearchAttributeType.KEYWORD);

/** The freeze (kill switch) holding a run that would apply now: set while it waits, removed when it goes on. */
export const ProxmoxFrozen = defineSearchAttributeKey('ProxmoxFrozen', SearchAttributeType.KEYWORD);

/** All typed keys by name. */
export const proxmoxSearchAttributes = {
  ProxmoxAction,
  ProxmoxEnvironment,
  ProxmoxRisk,
  ProxmoxStatus,
  ProxmoxNode,
  ProxmoxVmid,
  ProxmoxRequester,
  ProxmoxPlanId,
  ProxmoxFrozen,
} as const;

/** What must be registered on the server: `{ name, type }` for every project attribute. */
export const PROJECT_SEARCH_ATTRIBUTES: readonly SearchAttributeDef[] = Object.freeze(
  Object.values(proxmoxSearchAttributes).map(({ name, type }) => Object.freeze({ name, type })),
);

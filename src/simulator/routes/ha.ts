/**
 * HA routes (pve-ha-manager's API2/HA): resources, manager status, PVE 8 groups, PVE 9 rules.
 *
 * Resources are the seed's `haManaged` guests; their config is read-only here (no POST/PUT/DELETE of
 * resources is served). Groups and rules live in the model. PVE 9 still routes the group endpoints
 * (apidata 9.1 lists them as deprecated) but every handler dies `… ha groups have been migrated to
 * rules`, as API2/HA/Groups.pm does once `have_groups_been_migrated` (always so on a cluster without
 * groups.cfg). Rules exist only on PVE 9: on PVE 8 the router does not match them (501).
 */
import { createHash } from 'node:crypto';
import { type Handler, type RequestContext, str } from '../context.js';
import { die } from '../errors.js';
import type { RouteKey } from '../served-routes.js';
import { haCrmState, haSid } from '../guest-facts.js';
import type { HaGroup, HaRule, StoredGuest } from '../model-types.js';

/** PVE::Tools::assert_if_modified, which SectionConfig's digest check calls. */
function assertIfModified(ctx: RequestContext, current: string): void {
  const digest = str(ctx, 'digest');
  if (digest !== undefined && digest !== current) die('detected modified configuration - file changed by other user? Try again.');
}

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');

/** lock_ha_domain prefixes what dies inside it with its own message. */
function inHaDomain<T>(errmsg: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && e.name === 'ApiError') die(`${errmsg}: ${e.message}`);
    throw e;
  }
}

function managed(ctx: RequestContext): StoredGuest[] {
  return ctx.sim.model.allGuests().filter((g) => g.haManaged);
}

/** resources.cfg as ha-manager writes it; its SHA-1 is the digest every resource entry carries. */
function resourcesDigest(ctx: RequestContext): string {
  return sha1(managed(ctx).map((g) => `${g.type === 'qemu' ? 'vm' : 'ct'}: ${g.vmid}\n\tstate ${g.haState ?? 'started'}\n`).join('\n'));
}

/** PVE::HA::Config::parse_sid: `vm:100`, `ct:300`, or a bare VMID looked up in the cluster's vmlist. */
function parseSid(ctx: RequestContext, raw: string): string {
  if (/^\d+$/.test(raw)) {
    const g = ctx.sim.model.findGuest(Number(raw));
    if (!g) die(`unable to detect SID from VMID - VM/CT ${raw} does not exist`);
    return haSid(g);
  }
  if (/^\S+:\S+$/.test(raw)) return raw;
  die(`unable to parse service id '${raw}'`);
}

function resourceEntry(g: StoredGuest, digest: string): Record<string, unknown> {
  // The config as `ha-manager add` wrote it: only the options set (qemu-server/pve-container add `state`).
  return { sid: haSid(g), type: g.type === 'qemu' ? 'vm' : 'ct', state: g.haState ?? 'started', digest };
}

const resourceList: Handler = (ctx) => {
  const type = str(ctx, 'type');
  const digest = resourcesDigest(ctx);
  return managed(ctx)
    .filter((g) => !type || type === (g.type === 'qemu' ? 'vm' : 'ct'))
    .map((g) => resourceEntry(g, digest));
};

const resourceOne: Handler = (ctx) => {
  const sid = parseSid(ctx, str(ctx, 'sid')!);
  const g = managed(ctx).find((x) => haSid(x) === sid);
  if (!g) die(`no such resource '${sid}'`);
  return resourceEntry(g, resourcesDigest(ctx));
};

/**
 * PVE::HA::Tools::get_verbose_service_state: the CRM's state, with quick feedback on a request it has
 * not carried out yet (`starting`, `stopping`).
 */
function verboseState(g: StoredGuest): string {
  const cur = haCrmState(g);
  const req = g.haState ?? 'started';
  if (cur === 'stopped' && req === 'started') return 'starting';
  if (cur === 'started' && req === 'stopped') return 'stopping';
  if (cur === 'started' && g.status !== 'running') return 'starting';
  return cur;
}

/** `localtime` as Perl prints it in status strings: `Sun Dec  6 21:39:26 2026`. */
function perlLocaltime(epoch: number): string {
  const d = new Date(epoch * 1000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const t = d.toISOString().slice(11, 19);
  return `${day} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${t} ${d.getUTCFullYear()}`;
}

/** API2/HA/Status.pm `current`: quorum, master, (PVE 9.1) fencing, one lrm per node, one entry per service. */
const statusCurrent: Handler = (ctx) => {
  const { model } = ctx.sim;
  const master = model.nodes[0]!;
  const now = Math.floor(Date.now() / 1000);
  const services = managed(ctx);
  const out: Record<string, unknown>[] = [{ id: 'quorum', type: 'quorum', node: master, status: 'OK', quorate: 1 }];
  out.push({ id: 'master', type: 'master', node: master, status: `${master} (${services.length ? 'active' : 'idle'}, ${perlLocaltime(now)})`, timestamp: now });
  if (ctx.sim.pve === 9) {
    out.push({ id: 'fencing', type: 'fencing', node: master, status: 'armed (CRM watchdog active)', 'armed-state': 'armed' });
  }
  for (const node of [...model.nodes].sort()) {
    const active = services.some((g) => g.node === node);
    const state = active ? 'active' : 'idle';
    const wd = ctx.sim.pve === 9 ? `, watchdog ${active ? 'active' : 'standby'}` : '';
    out.push({ id: `lrm:${node}`, type: 'lrm', node, status: `${node} (${state}${wd}, ${perlLocaltime(now)})`, timestamp: now });
  }
  for (const g of [...services].sort((a, b) => haSid(a).localeCompare(haSid(b)))) {
    const sid = haSid(g);
    const state = verboseState(g);
    out.push({
      id: `service:${sid}`,
      type: 'service',
      sid,
      node: g.node,
      crm_state: haCrmState(g),
      state,
      status: `${sid} (${g.node}, ${state})`,
      request_state: g.haState ?? 'started',
    });
  }
  return out;
};

// ---- groups (PVE 8; on PVE 9 they have been migrated to rules) ----------------------------------

function groupsMigrated(ctx: RequestContext, what: string): void {
  if (ctx.sim.pve === 9) die(`cannot ${what}: ha groups have been migrated to rules`);
}

function groupsDigest(ctx: RequestContext): string {
  return sha1(JSON.stringify([...ctx.sim.model.haGroups.values()].sort((a, b) => a.group.localeCompare(b.group))));
}

function groupEntry(ctx: RequestContext, gr: HaGroup): Record<string, unknown> {
  return {
    group: gr.group,
    type: 'group',
    nodes: gr.nodes,
    ...(gr.restricted ? { restricted: 1 } : {}),
    ...(gr.nofailback ? { nofailback: 1 } : {}),
    ...(gr.comment !== undefined ? { comment: gr.comment } : {}),
    digest: groupsDigest(ctx),
  };
}

const groupList: Handler = (ctx) => {
  groupsMigrated(ctx, 'index groups');
  return [...ctx.sim.model.haGroups.values()].map((gr) => groupEntry(ctx, gr));
};

const groupOne: Handler = (ctx) => {
  groupsMigrated(ctx, 'read group');
  const gr = ctx.sim.model.haGroups.get(str(ctx, 'group')!);
  if (!gr) die(`no such ha group '${str(ctx, 'group')}'`);
  return groupEntry(ctx, gr);
};

function applyGroupOptions(ctx: RequestContext, gr: HaGroup): void {
  const nodes = str(ctx, 'nodes');
  if (nodes !== undefined) gr.nodes = nodes;
  const restricted = str(ctx, 'restricted');
  if (restricted !== undefined) gr.restricted = restricted === '1';
  const nofailback = str(ctx, 'nofailback');
  if (nofailback !== undefined) gr.nofailback = nofailback === '1';
  const comment = str(ctx, 'comment');
  if (comment !== undefined) gr.comment = comment;
}

const groupCreate: Handler = (ctx) => {
  groupsMigrated(ctx, 'create group');
  const id = str(ctx, 'group')!;
  const type = str(ctx, 'type');
  if (type !== undefined && type !== 'group') die('types does not match');
  return inHaDomain('create ha group failed', () => {
    if (ctx.sim.model.haGroups.has(id)) die(`ha group ID '${id}' already defined`);
    const gr: HaGroup = { group: id, nodes: '' };
    applyGroupOptions(ctx, gr);
    ctx.sim.model.haGroups.set(id, gr);
    return null;
  });
};

const groupUpdate: Handler = (ctx) => {
  groupsMigrated(ctx, 'update group');
  const id = str(ctx, 'group')!;
  return inHaDomain('update ha group failed', () => {
    assertIfModified(ctx, groupsDigest(ctx));
    const gr = ctx.sim.model.haGroups.get(id);
    if (!gr) die(`no such ha group '${id}'`);
    applyGroupOptions(ctx, gr);
    for (const k of (str(ctx, 'delete') ?? '').split(/[,;\s\0]+/).filter(Boolean)) {
      if (k === 'nodes') die(`unable to delete required option '${k}'`);
      if (k !== 'restricted' && k !== 'nofailback' && k !== 'comment') die(`no such option '${k}'`);
      delete gr[k as 'restricted' | 'nofailback' | 'comment'];
    }
    return null;
  });
};

const groupDelete: Handler = (ctx) => {
  groupsMigrated(ctx, 'delete group');
  // No seeded resource names a group (resources carry no `group` here), so none is ever "in use".
  ctx.sim.model.haGroups.delete(str(ctx, 'group')!);
  return null;
};

// ---- rules (PVE 9) ------------------------------------------------------------------------------

function rulesDigest(ctx: RequestContext): string {
  return sha1(JSON.stringify([...ctx.sim.model.haRules.values()].sort((a, b) => a.order - b.order)));
}

const splitList = (v: string): string[] => v.split(/[,;\s\0]+/).filter(Boolean);

function ruleEntry(ctx: RequestContext, r: HaRule): Record<string, unknown> {
  return {
    rule: r.rule,
    type: r.type,
    resources: r.resources,
    ...(r.nodes !== undefined ? { nodes: r.nodes } : {}),
    // set_rule_defaults: a node affinity rule is non-strict unless said otherwise.
    ...(r.type === 'node-affinity' ? { strict: r.strict ? 1 : 0 } : {}),
    ...(r.affinity ? { affinity: r.affinity } : {}),
    ...(r.disable ? { disable: 1 } : {}),
    ...(r.comment !== undefined ? { comment: r.comment } : {}),
    digest: rulesDigest(ctx),
    order: r.order,
  };
}

/** Rules.pm `$assert_valid_resources_param` / `$assert_valid_nodes_param`. */
function checkRuleMembers(ctx: RequestContext, r: HaRule): void {
  const resources = splitList(r.resources);
  if (resources.length === 0) die('no resources were specified');
  const known = new Set(managed(ctx).map(haSid));
  const unmanaged = resources.filter((s) => !known.has(s));
  if (unmanaged.length) die(`cannot use unmanaged resource(s) ${unmanaged.join(', ')}.`);
  if (r.nodes !== undefined) {
    const nodes = splitList(r.nodes).map((n) => n.split(':')[0]!);
    if (nodes.length === 0) die('no nodes were specified');
    const missing = nodes.filter((n) => !ctx.sim.model.nodes.includes(n));
    if (missing.length) die(`cannot use non-existent node(s) ${missing.join(', ')}.`);
  }
}

function applyRuleOptions(ctx: RequestContext, r: HaRule): void {
  const resources = str(ctx, 'resources');
  if (resources !== undefined) r.resources = resources;
  const nodes = str(ctx, 'nodes');
  if (nodes !== undefined) r.nodes = nodes;
  const strict = str(ctx, 'strict');
  if (strict !== undefined) r.strict = strict === '1';
  const affinity = str(ctx, 'affinity');
  if (affinity !== undefined) r.affinity = affinity as 'positive' | 'negative';
  const disable = str(ctx, 'disable');
  if (disable !== undefined) r.disable = disable === '1';
  const comment = str(ctx, 'comment');
  if (comment !== undefined) r.comment = comment;
}

/** The options of each rule type (NodeAffinity.pm / ResourceAffinity.pm `options`); the rest are refused. */
const RULE_OPTIONS: Record<HaRule['type'], { required: string[]; optional: string[] }> = {
  'node-affinity': { required: ['resources', 'nodes'], optional: ['strict', 'disable', 'comment'] },
  'resource-affinity': { required: ['resources', 'affinity'], optional: ['disable', 'comment'] },
};

function checkRuleOptions(ctx: RequestContext, type: HaRule['type'], create: boolean): void {
  const { required, optional } = RULE_OPTIONS[type];
  for (const k of ['nodes', 'strict', 'affinity']) {
    if (str(ctx, k) !== undefined && !required.includes(k) && !optional.includes(k)) die(`unexpected property '${k}'`);
  }
  if (create) for (const k of required) if (str(ctx, k) === undefined) die(`missing value for required option '${k}'`);
}

const ruleList: Handler = (ctx) => {
  const type = str(ctx, 'type');
  const resource = str(ctx, 'resource');
  return [...ctx.sim.model.haRules.values()]
    .sort((a, b) => a.order - b.order)
    .filter((r) => (!type || r.type === type) && (!resource || splitList(r.resources).includes(resource)))
    .map((r) => ruleEntry(ctx, r));
};

const ruleOne: Handler = (ctx) => {
  const r = ctx.sim.model.haRules.get(str(ctx, 'rule')!);
  if (!r) die(`no such ha rule '${str(ctx, 'rule')}'`);
  return ruleEntry(ctx, r);
};

const ruleCreate: Handler = (ctx) => {
  const id = str(ctx, 'rule')!;
  const type = str(ctx, 'type') as HaRule['type'];
  checkRuleOptions(ctx, type, true);
  return inHaDomain('create ha rule failed', () => {
    const rules = ctx.sim.model.haRules;
    if (rules.has(id)) die(`HA rule '${id}' already defined`);
    const r: HaRule = { rule: id, type, resources: '', order: Math.max(0, ...[...rules.values()].map((x) => x.order)) + 1 };
    applyRuleOptions(ctx, r);
    checkRuleMembers(ctx, r);
    rules.set(id, r);
    return null;
  });
};

const ruleUpdate: Handler = (ctx) => {
  const id = str(ctx, 'rule')!;
  // Rules.pm update: its lock_ha_domain message really says "HA rules" here.
  return inHaDomain('update HA rules failed', () => {
    assertIfModified(ctx, rulesDigest(ctx));
    const current = ctx.sim.model.haRules.get(id);
    if (!current) die(`HA rule '${id}' does not exist`);
    // SectionConfig check_value accepts `type` only when it is the rule's own.
    if (str(ctx, 'type') !== current.type) die(`unexpected property 'type'`);
    checkRuleOptions(ctx, current.type, false);
    const r = { ...current };
    // SectionConfig::delete_from_config, then the new values.
    for (const k of splitList(str(ctx, 'delete') ?? '')) {
      const { required, optional } = RULE_OPTIONS[r.type];
      if (!required.includes(k) && !optional.includes(k)) die(`no such option '${k}'`);
      if (required.includes(k)) die(`unable to delete required option '${k}'`);
      if (str(ctx, k) !== undefined) die(`cannot set and delete property '${k}' at the same time!`);
      delete (r as Partial<HaRule>)[k as keyof HaRule];
    }
    applyRuleOptions(ctx, r);
    checkRuleMembers(ctx, r);
    ctx.sim.model.haRules.set(id, r);
    return null;
  });
};

const ruleDelete: Handler = (ctx) => {
  ctx.sim.model.haRules.delete(str(ctx, 'rule')!);
  return null;
};

/**
 * The strict node affinity rule that keeps `g` off `target`, if any (PVE 9; disabled rules do not count).
 * A guest in several strict rules may only run on nodes every one of them names.
 */
export function strictNodeAffinityExcluding(ctx: RequestContext, g: StoredGuest, target: string): HaRule | undefined {
  if (ctx.sim.pve !== 9) return undefined;
  const sid = haSid(g);
  return [...ctx.sim.model.haRules.values()]
    .sort((a, b) => a.order - b.order)
    .find(
      (r) =>
        r.type === 'node-affinity' &&
        r.strict &&
        !r.disable &&
        splitList(r.resources).includes(sid) &&
        !splitList(r.nodes ?? '').some((n) => n.split(':')[0] === target),
    );
}

/**
 * What `ha-manager` prints before it exits 255 when a guest task asks it for something it refuses
 * (API2/HA/Resources.pm `check_service_state`): the worker's run_command then fails with
 * `command '…' failed: exit code 255`, so the hastart/hamigrate task ends with that status.
 */
export function haCommandRefusal(g: StoredGuest, command: string[]): { log: string[]; exit: string } | undefined {
  if (g.haCrmOverride !== 'error') return undefined;
  return {
    log: [`service '${haSid(g)}' in error state, must be disabled and fixed first`],
    exit: `command '${command.join(' ')}' failed: exit code 255`,
  };
}

export const haRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /cluster/ha/resources': resourceList,
  'GET /cluster/ha/resources/{sid}': resourceOne,
  'GET /cluster/ha/status/current': statusCurrent,
  'GET /cluster/ha/groups': groupList,
  'POST /cluster/ha/groups': groupCreate,
  'GET /cluster/ha/groups/{group}': groupOne,
  'PUT /cluster/ha/groups/{group}': groupUpdate,
  'DELETE /cluster/ha/groups/{group}': groupDelete,
  'GET /cluster/ha/rules': ruleList,
  'POST /cluster/ha/rules': ruleCreate,
  'GET /cluster/ha/rules/{rule}': ruleOne,
  'PUT /cluster/ha/rules/{rule}': ruleUpdate,
  'DELETE /cluster/ha/rules/{rule}': ruleDelete,
};

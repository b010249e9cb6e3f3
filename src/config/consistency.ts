import { CHAT_CHANNELS } from '../channels/registry.js';
import { ACTION_NAMES } from '../domain/actions/catalog.js';
import { globMatch } from '../policy/engine.js';
import type { Config } from './schema.js';

export interface ConsistencyProblem {
  path: string;
  message: string;
}

/**
 * Checks that the schema alone cannot make: a rule naming an action or environment that does not
 * exist is almost always a typo, and a typo in a deny rule silently allows what it meant to stop.
 * A required role that no approver holds would make every matching plan wait until it expires.
 */
export function checkPolicyAgainstConfig(config: Config): ConsistencyProblem[] {
  const problems: ConsistencyProblem[] = [];
  const environments = Object.keys(config.environments);
  const roles = approverRoles(config);
  config.policy.rules.forEach((rule, i) => {
    const at = `policy.rules.${i} (${rule.id})`;
    rule.match.actions?.forEach((pattern, j) => {
      if (!ACTION_NAMES.some((name) => globMatch(pattern, name)))
        problems.push({ path: `${at}.match.actions.${j}`, message: `'${pattern}' matches no action in the catalog` });
    });
    rule.match.environments?.forEach((pattern, j) => {
      if (!environments.some((name) => globMatch(pattern, name)))
        problems.push({ path: `${at}.match.environments.${j}`, message: `'${pattern}' matches no configured environment` });
    });
    const requirements = rule.approvals === undefined ? [] : Array.isArray(rule.approvals) ? rule.approvals : [rule.approvals];
    requirements.forEach((req, j) => {
      if (typeof req === 'number' || !req.roles) return;
      for (const role of req.roles) {
        if (!roles.has(role))
          problems.push({ path: `${at}.approvals${requirements.length > 1 ? `.${j}` : ''}.roles`, message: `no approver holds role '${role}'` });
      }
    });
  });
  return problems;
}

/** Roles held by identities that may approve: tokens with the approve scope, and chat identities. */
export function approverRoles(config: Config): Set<string> {
  const chat = CHAT_CHANNELS.flatMap((c) => c.identities(config.channels[c.key] as never).map((i) => i.identity));
  return new Set([...config.tokens.filter((t) => t.scopes.includes('approve')).flatMap((t) => t.roles), ...chat.flatMap((i) => i.roles)]);
}

import type { ProblemCode } from '../http/problems.js';

/**
 * What each problem type means and what a client should do about it: the text of `/problems/{code}`
 * and of the examples in the OpenAPI document. Keyed by every code of `PROBLEMS`, so a new problem
 * type does not compile until it is explained here.
 */
export const PROBLEM_ADVICE: Readonly<Record<ProblemCode, { when: string; todo: string; example: string }>> = {
  'validation-failed': {
    when: 'The body, a path or query parameter or a header does not match the schema. `errors[]` lists every bad field by path.',
    todo: 'Fix the fields listed in `errors` and send again. `GET /v1/catalog` lists each action\'s params as JSON Schema.',
    example: 'target.vmid: Too small: expected number to be >=100',
  },
  'unauthenticated': {
    when: 'No `Authorization: Bearer …` header, an unknown token, or (on /v1/channels/*) a bad or expired signature.',
    todo: 'Send a valid token. Do not retry with the same credentials.',
    example: 'a valid bearer token is required',
  },
  'forbidden': {
    when: 'The token lacks the scope, the environment or the action pattern the request needs.',
    todo: 'Use a token that holds the scope for that environment, or ask an administrator. Retrying does not help.',
    example: "token 'demo-agent' needs the approve scope",
  },
  'channel-not-allowed': {
    when: "An approval's `X-Proxmox-Agent-Channel` (absent: `api`) names a channel the token is not allowed to speak for. Each token lists its channels in the config (`tokens[].channels`, default `api` only); `errors[]` lists the ones it may use.",
    todo: 'Send the approval through a channel the token has (no header means api), or ask an administrator to add the channel to the token, e.g. `channels: [api, cli]` for a token used with the CLI. Retrying does not help.',
    example: "token 'pi-approver' may not approve through channel 'cli' (it may use: api)",
  },
  'self-approval': {
    when: 'The principal that requested a plan tried to approve or reject it.',
    todo: 'Someone else must decide. An agent never approves its own plans.',
    example: 'agent:pi-demo requested plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G and cannot approve or reject it',
  },
  'not-found': {
    when: 'No such route, or a feature that is not configured on this server (for example a chat channel).',
    todo: 'Check the path against this reference.',
    example: 'no route GET /v1/nothing',
  },
  'method-not-allowed': {
    when: 'The path exists, but not with this method (for example `DELETE /v1/catalog`). The `Allow` header lists the methods it takes.',
    todo: 'Use one of the methods in `Allow`; this reference lists what each takes.',
    example: 'DELETE is not allowed on /v1/catalog; allowed: GET, HEAD',
  },
  'plan-not-found': {
    when: 'No plan with this id exists in an environment the token may see.',
    todo: 'Check the plan id; plans of other environments are reported as not found on purpose.',
    example: 'no plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G',
  },
  'request-hash-mismatch': {
    when: 'The `requestHash` sent with apply or an approval is not the plan\'s: the request differs from the one reviewed.',
    todo: 'Read the plan (`GET /v1/actions/{planId}`) and send its `requestHash`; if the request should be different, make a new plan.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G has requestHash sha256:…',
  },
  'plan-denied': {
    when: 'Policy denied the plan, at plan time or when re-evaluated at apply.',
    todo: 'Read `reasons[].hint` on the plan: it says what would change the outcome. Do not retry the same request.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G is denied',
  },
  'plan-rejected': {
    when: 'An approver rejected the plan; that ends it.',
    todo: 'Read the rejection comment on the plan (`approval.rejectedBy`). Make a new plan only if the concern was addressed.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G is rejected',
  },
  'plan-finished': {
    when: 'The plan already ran (succeeded or failed) and takes no more apply requests.',
    todo: 'Read its outcome with `GET /v1/actions/{planId}`; make a new plan to act again.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G already finished: succeeded',
  },
  'plan-stale': {
    when: 'The target changed between plan and apply (state, lock, existence or config digest).',
    todo: 'Make a new plan, so that policy and approvers see the target as it is now.',
    example: 'vmid 101 changed since the plan: status stopped → running',
  },
  'plan-not-ready': {
    when: 'The run has not finished evaluating the plan yet.',
    todo: 'Retry in a moment.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G is still being evaluated',
  },
  'plan-not-undoable': {
    when: 'An undo of a plan that did not succeed, changed nothing (a no-op), or whose action has no inverse (`undo.inverse` is null on the plan, with the reason).',
    todo: 'Read `detail` and the plan\'s `undo.reason`. Nothing was planned; plan the change you need yourself if it still makes sense.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G cannot be undone: disks cannot shrink: a grown disk stays grown',
  },
  'plan-already-undone': {
    when: 'The plan has its one undo already (`undoneBy` on the plan), requested by another caller or with another reason.',
    todo: 'Read the undo plan named in `detail` (and `undoneBy`); follow it instead of asking again.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G is already undone by plan plan_7TQ2M9X4B1C8D5E6F0G3H2J1K4',
  },
  'approval-not-counted': {
    when: 'The approval would not count: a duplicate from the same identity, a plan that needs no approval, an approver without a required role or channel, or a plan that takes no more decisions.',
    todo: 'Read `detail`; another identity (or the required role or channel) has to approve.',
    example: 'human:alice has already approved plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G; one identity counts once',
  },
  'request-replayed': {
    when: 'A signed chat request (Slack or webhook) whose signature or nonce was already received.',
    todo: 'Sign a new request with a new nonce and a current timestamp.',
    example: 'this signed request was already received; sign a new one',
  },
  'plan-expired': {
    when: 'The plan\'s `expiresAt` passed before apply and the approvals were both in.',
    todo: 'Make a new plan.',
    example: 'plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G expired at 2026-03-01T13:00:00.000Z',
  },
  'payload-too-large': {
    when: 'The request body is over 64 KiB.',
    todo: 'Send a smaller body.',
    example: 'at most 65536 bytes',
  },
  'unsupported-media-type': {
    when: 'A body was sent without `Content-Type: application/json`.',
    todo: 'Send JSON with that content type.',
    example: 'Send application/json',
  },
  'idempotency-key-reused': {
    when: 'This `Idempotency-Key` already names a plan made for a different request.',
    todo: 'Use a new key for a new request; the same key with the same body returns the same plan.',
    example: 'this Idempotency-Key already names plan plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G, made for a different request',
  },
  'unknown-environment': {
    when: 'The request is well formed, but names an environment this service does not have.',
    todo: 'Use one of the environments the problem lists (your token may be limited to some of them).',
    example: "no environment 'staging'; configured: lab, prod",
  },
  'rate-limited': {
    when: 'The token sent more requests than its per-token limit allows.',
    todo: 'Wait `Retry-After` seconds, then retry.',
    example: "token 'demo-agent' sent too many requests; retry in 2 s",
  },
  'proxmox-unavailable': {
    when: 'A read of the inventory reached Proxmox, which failed or could not be reached (a node offline, a timeout, a 5xx).',
    todo: 'Retry with backoff. The detail quotes what Proxmox said.',
    example: "Proxmox GET /nodes/pve-lab/qemu/100/status/current failed: 595 No route to host",
  },
  'temporal-unavailable': {
    when: 'The workflow service (Temporal) cannot be reached, or is shedding load. While the service knows Temporal to be down (it probes it every half second), such requests are answered at once rather than after the client library\'s ~20 s of retries.',
    todo: 'Retry after `Retry-After` seconds, with backoff (with the same Idempotency-Key when planning); `GET /healthz` says when the service is healthy again.',
    example: 'Temporal at temporal.internal:7233 is not reachable: 14 UNAVAILABLE: No connection established; retry shortly',
  },
  'temporal-misconfigured': {
    when: "The Temporal namespace lacks a search attribute the service sets on every plan (or does not exist), so no plan can start and the approval queue cannot be listed. The detail names the attribute and the command that registers them; `/readyz` says the same until they are known.",
    todo: 'An operator registers the search attributes (`npm run temporal:search-attributes -- --address <host:port> --namespace <ns>`, once per namespace); then retry. A server takes a few seconds to see new attributes.',
    example: 'namespace "default" does not know the search attribute ProxmoxPlanId; register the project\'s search attributes with: npm run temporal:search-attributes -- --address temporal.internal:7233 --namespace default',
  },
  'replay-cache-full': {
    when: 'Too many signed chat requests arrived within the replay window.',
    todo: 'Retry shortly.',
    example: 'Too many signed requests in the replay window; retry shortly',
  },
  'replay-store-unavailable': {
    when: 'A signed chat request (Slack or webhook) arrived while the replay cache shared by the API replicas (a table in the `audit.postgres` database) could not be reached. The request is refused rather than accepted unchecked, since it could be a replay; nothing was recorded.',
    todo: 'Retry after `Retry-After` seconds with a newly signed request (new nonce, current timestamp).',
    example: 'the replay cache cannot be reached, so signed requests are refused; retry shortly',
  },
  'freezes-unavailable': {
    when: 'A freeze was asked for, listed or lifted on an API process that cannot reach the dispatch journal where freezes are kept: an API-only process with the file audit store (the journal lives in the process that runs the worker). Nothing was changed.',
    todo: 'Send it to the process that runs the worker (`npm start`), or run the API replicas with the PostgreSQL audit store (`audit.postgres`), where every replica and worker shares the journal.',
    example: 'this API process cannot reach the dispatch journal that keeps freezes: run it with the worker (the file store), or with the PostgreSQL audit store',
  },
  'internal': {
    when: 'An unexpected error; it is logged on the server.',
    todo: 'Retry later; report it with the time and `instance` if it persists.',
    example: 'unexpected error; see the service log',
  },
};

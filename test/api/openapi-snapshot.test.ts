/**
 * The v1 guard: the generated document must match the committed snapshot (docs/openapi.v1.json).
 * A breaking change fails with a BREAKING message; a compatible change fails too, asking for the
 * snapshot to be updated (`npm run openapi:snapshot`), so the snapshot always tells the truth.
 * The checker itself is tested on deliberate changes of each kind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { compareOpenApi, currentDocument, formatReport, readSnapshot } from '../../scripts/openapi-compat.js';

type Json = Record<string, any>;
let current: Json;

beforeAll(async () => {
  current = await currentDocument();
});

it('the generated document matches docs/openapi.v1.json', () => {
  const report = compareOpenApi(readSnapshot(), current);
  if (!report.identical) expect.fail(formatReport(report));
});

describe('the compatibility checker', () => {
  const change = (mutate: (d: Json) => void) => {
    const after = structuredClone(current);
    mutate(after);
    return compareOpenApi(current, after);
  };
  const schemas = (d: Json) => d.components.schemas;

  it.each<[string, (d: Json) => void, RegExp]>([
    ['a removed operation', (d) => delete d.paths['/v1/catalog'].get, /Removed\] operation GET \/v1\/catalog/],
    ['a removed path', (d) => delete d.paths['/v1/approvals'], /Removed\] operation GET \/v1\/approvals/],
    ['a removed response field', (d) => delete schemas(d).ApplyAccepted.properties.links, /Removed\] property `links`/],
    ['a removed response status', (d) => delete d.paths['/v1/actions/apply'].post.responses['202'], /Removed\] Response 202/],
    ['a new required request field', (d) => { schemas(d).ApplyRequest.properties.ticket = { type: 'string' }; schemas(d).ApplyRequest.required.push('ticket'); }, /required status to `ticket`/],
    ['a parameter made required', (d) => { d.paths['/v1/approvals'].get.parameters[0].required = true; }, /required status to required query parameter `status`/],
    ['a narrowed request enum', (d) => { schemas(d).ApprovalRequest.properties.decision.enum = ['approve']; }, /possible values of `decision`/],
    ['a changed type', (d) => { schemas(d).ApplyAccepted.properties.planId.type = 'integer'; }, /planId/],
  ])('flags %s as breaking', (_name, mutate, message) => {
    const report = change(mutate);
    expect(report.breaking.length).toBeGreaterThan(0);
    const text = formatReport(report);
    expect(text).toMatch(/^BREAKING CHANGES to API v1/);
    expect(text).toMatch(message);
    expect(text).toContain('npm run openapi:snapshot');
  });

  it.each<[string, (d: Json) => void]>([
    ['a new operation', (d) => { d.paths['/v1/things'] = { get: { summary: 'x', responses: { 200: { description: 'ok' } } } }; }],
    ['a new optional request field', (d) => { schemas(d).ApplyRequest.properties.note = { type: 'string' }; }],
    ['a new response field', (d) => { schemas(d).ApplyAccepted.properties.queuedAt = { type: 'string' }; }],
    ['a deprecation', (d) => { d.paths['/v1/approvals'].get.deprecated = true; }],
    ['a new description', (d) => { d.paths['/v1/approvals'].get.description = 'Other words'; }],
  ])('asks for a snapshot update, not a new version, for %s', (_name, mutate) => {
    const report = change(mutate);
    expect(report.breaking).toEqual([]);
    expect(report.identical).toBe(false);
    const text = formatReport(report);
    expect(text).toMatch(/^The OpenAPI document changed compatibly/);
    expect(text).not.toMatch(/BREAKING/);
  });

  it('says nothing changed when nothing did', () => {
    const report = change(() => {});
    expect(report).toMatchObject({ breaking: [], other: [], identical: true });
  });
});

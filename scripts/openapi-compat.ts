/**
 * The v1 compatibility guard (docs/api-versioning-policy.md).
 *
 *   npm run openapi:snapshot      writes the generated document to docs/openapi.v1.json
 *   npm run openapi:check         compares the generated document with that snapshot
 *
 * test/api/openapi-snapshot.test.ts runs the same comparison in `npm test`. Changes are classified
 * by api-smart-diff's OpenAPI rules: removed operations, responses or response fields, new required
 * request fields or parameters, narrowed request enums, changed types... are breaking; new
 * operations, optional fields and descriptions are not, but still need the snapshot updated.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { apiCompare } from 'api-smart-diff';
import { createApp } from '../src/api/http/app.js';
import type { ApiDeps } from '../src/api/http/context.js';

export const SNAPSHOT_PATH = fileURLToPath(new URL('../docs/openapi.v1.json', import.meta.url));

type Json = Record<string, any>;

/** The document the API serves, built from an app over inert dependencies (routes do not depend on them). */
export async function currentDocument(): Promise<Json> {
  const unused = () => {
    throw new Error('not used to build the document');
  };
  const deps: ApiDeps = {
    plans: {} as ApiDeps['plans'],
    authenticate: unused,
    environments: new Set(),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: unused,
  };
  const res = await createApp(deps).request('/v1/openapi.json');
  return (await res.json()) as Json;
}

export function readSnapshot(path = SNAPSHOT_PATH): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

export function serialize(doc: Json): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export interface Change {
  kind: 'breaking' | 'additive' | 'deprecated' | 'annotation';
  where: string;
  description: string;
}

export interface CompatReport {
  breaking: Change[];
  /** Everything that is not breaking: new operations and fields, deprecations, descriptions. */
  other: Change[];
  identical: boolean;
}

export function compareOpenApi(before: Json, after: Json): CompatReport {
  const { diffs } = apiCompare(before, after);
  const changes: Change[] = diffs.map((d: { type: string; path: (string | number)[]; description?: string; action: string }) => ({
    kind: d.type === 'breaking' ? 'breaking' : d.type === 'deprecated' ? 'deprecated' : d.type === 'non-breaking' ? 'additive' : 'annotation',
    where: d.path.join('/'),
    description: d.description ?? `${d.action} ${d.path.join('/')}`,
  }));
  // The same change shows once per operation that uses a component and once in the component.
  const dedupe = (list: Change[]) => [...new Map(list.map((c) => [`${c.kind} ${c.where}`, c])).values()];
  return {
    breaking: dedupe(changes.filter((c) => c.kind === 'breaking')),
    other: dedupe(changes.filter((c) => c.kind !== 'breaking')),
    identical: serialize(before) === serialize(after),
  };
}

/** The message a failed check prints: breaking changes first and distinctly, then the rest. */
export function formatReport(r: CompatReport, limit = 40): string {
  const lines = (list: Change[]) => [...list.slice(0, limit).map((c) => `  - ${c.description}  (${c.where})`), ...(list.length > limit ? [`  … and ${list.length - limit} more`] : [])];
  if (r.breaking.length > 0) {
    return [
      `BREAKING CHANGES to API v1 (${r.breaking.length}): v1 only changes additively (docs/api-versioning-policy.md).`,
      ...lines(r.breaking),
      'Make the change additive (a new optional field, a new operation), deprecate the old one with deprecate() and keep it until its sunset,',
      'or, if this is deliberate, run `npm run openapi:snapshot` and commit docs/openapi.v1.json together with a note in the change log.',
      ...(r.other.length > 0 ? ['Non-breaking changes too:', ...lines(r.other)] : []),
    ].join('\n');
  }
  if (!r.identical) {
    return [
      `The OpenAPI document changed compatibly (${r.other.length} additive or descriptive change(s)); update the snapshot so it stays current:`,
      '  npm run openapi:snapshot   (then commit docs/openapi.v1.json)',
      ...lines(r.other),
    ].join('\n');
  }
  return 'The OpenAPI document matches docs/openapi.v1.json.';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const doc = await currentDocument();
  if (process.argv.includes('--write')) {
    writeFileSync(SNAPSHOT_PATH, serialize(doc));
    console.log(`wrote ${SNAPSHOT_PATH}`);
  } else {
    const report = compareOpenApi(readSnapshot(), doc);
    console.log(formatReport(report));
    process.exitCode = report.breaking.length > 0 ? 2 : report.identical ? 0 : 1;
  }
}

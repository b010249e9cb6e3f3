import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { renderRiskMatrix } from '../../src/policy/matrix.js';
import { ACTIONS } from '../../src/domain/actions/catalog.js';

describe('docs/policy-risk-matrix.md', () => {
  it('is exactly what the catalog and the default policy produce (run `npm run docs:matrix` after a change)', () => {
    const doc = readFileSync(new URL('../../docs/policy-risk-matrix.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderRiskMatrix(loadConfig({}).config, 'config/demo.yaml'));
  });

  it('has a row for every action', () => {
    const doc = readFileSync(new URL('../../docs/policy-risk-matrix.md', import.meta.url), 'utf8');
    for (const a of ACTIONS) expect(doc).toContain(`| \`${a.name}\` |`);
  });
});

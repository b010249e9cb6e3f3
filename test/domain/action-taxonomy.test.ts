/**
 * docs/action-taxonomy.md and the catalog describe the same actions: this parses the doc's table and
 * compares every row with the catalog, so neither can change alone.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ACTIONS } from '../../src/domain/actions/catalog.js';

interface Row {
  name: string;
  call: string;
  taskTypes: string[];
  risk: string;
  destructive: boolean;
  reversible: boolean;
  params: string[];
}

const ticks = (cell: string) => [...cell.matchAll(/`([^`]+)`(\*?)/g)].map((m) => `${m[1]}${m[2]}`);

function parseTable(markdown: string): Row[] {
  return markdown
    .split('\n')
    .filter((line) => /^\| `(vm|ct)\./.test(line))
    .map((line) => {
      const cells = line.replace(/^\| /, '').replace(/ \|$/, '').split(' | ');
      expect(cells, line).toHaveLength(8);
      const [name, call, tasks, risk, destructive, reversible, , params] = cells as [string, string, string, string, string, string, string, string];
      const yesNo = (cell: string) => {
        expect(['yes', 'no'], line).toContain(cell);
        return cell === 'yes';
      };
      return {
        name: ticks(name)[0]!,
        call: ticks(call)[0]!,
        taskTypes: ticks(tasks),
        risk,
        destructive: yesNo(destructive),
        reversible: yesNo(reversible),
        params: ticks(params),
      };
    });
}

function fromCatalog(): Row[] {
  return ACTIONS.map((a) => {
    const schema = z.toJSONSchema(a.params, { io: 'input' }) as { properties?: Record<string, unknown>; required?: string[] };
    const required = new Set(schema.required ?? []);
    return {
      name: a.name,
      call: `${a.proxmox.method} ${a.proxmox.path}`,
      taskTypes: a.taskTypes,
      risk: `${a.baseRisk.nonprod} / ${a.baseRisk.prod}`,
      destructive: a.destructive,
      reversible: a.reversible,
      params: Object.keys(schema.properties ?? {}).map((k) => `${k}${required.has(k) ? '*' : ''}`),
    };
  });
}

describe('docs/action-taxonomy.md', () => {
  const doc = readFileSync(new URL('../../docs/action-taxonomy.md', import.meta.url), 'utf8');
  const rows = parseTable(doc);

  it('lists exactly the catalog actions, in catalog order', () => {
    expect(rows.map((r) => r.name)).toEqual(ACTIONS.map((a) => a.name));
  });

  it('matches the catalog row by row: call, task types, risk, flags, parameters', () => {
    const byName = new Map(rows.map((r) => [r.name, r]));
    for (const expected of fromCatalog()) expect(byName.get(expected.name), expected.name).toEqual(expected);
  });

  it('the parser sees a changed row (the test can fail)', () => {
    const tampered = doc.replace('| `vm.start` | `POST /nodes/{node}/qemu/{vmid}/status/start` | `qmstart`, `hastart` | low / medium |', '| `vm.start` | `POST /nodes/{node}/qemu/{vmid}/status/start` | `qmstart`, `hastart` | medium / medium |');
    expect(tampered).not.toBe(doc);
    expect(parseTable(tampered).find((r) => r.name === 'vm.start')).not.toEqual(fromCatalog().find((r) => r.name === 'vm.start'));
  });
});

/**
 * The committed apidata-subset.json must be exactly what the generator derives from the real
 * apidata.js, and every route the simulator serves must exist there with that method.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractSubset, loadApiIndex, serializeSubset } from '../../src/simulator/schema-extract.js';
import { SERVED_ROUTE_KEYS } from '../../src/simulator/router.js';
import { SERVED_ROUTES, splitRouteKey } from '../../src/simulator/served-routes.js';
import { APIDATA_MISSING_HELP, APIDATA_PATH } from '../../scripts/apidata-path.js';

const repoRoot = resolve(import.meta.dirname, '../..');
const apidataPath = APIDATA_PATH;
const subsetPath = resolve(repoRoot, 'src/simulator/apidata-subset.json');

describe('schema fidelity', () => {
  it('finds the real apidata.js beside the repository', () => {
    expect(existsSync(apidataPath), APIDATA_MISSING_HELP).toBe(true);
  });

  const index = loadApiIndex(apidataPath);

  it('committed subset equals a fresh extraction from apidata.js', () => {
    expect(readFileSync(subsetPath, 'utf8')).toBe(serializeSubset(extractSubset(index)));
  });

  it('every served route exists in apidata with that method', () => {
    expect(SERVED_ROUTE_KEYS).toEqual([...SERVED_ROUTES]);
    for (const key of SERVED_ROUTE_KEYS) {
      const { method, path } = splitRouteKey(key);
      expect(index.get(path)?.[method], key).toBeDefined();
    }
  });

  it('keeps the details validation relies on (additionalProperties, enum, pattern, bounds)', () => {
    const subset = JSON.parse(readFileSync(subsetPath, 'utf8'));
    const start = subset.routes['POST /nodes/{node}/qemu/{vmid}/status/start'];
    expect(start.additionalProperties).toBe(false);
    expect(start.properties.vmid).toMatchObject({ type: 'integer', minimum: 100, maximum: 999999999, format: 'pve-vmid' });
    expect(subset.routes['POST /nodes/{node}/vzdump'].properties.mode.enum).toEqual(['snapshot', 'suspend', 'stop']);
    expect(subset.routes['PUT /nodes/{node}/qemu/{vmid}/resize'].properties.size.pattern).toBe('\\+?\\d+(\\.\\d+)?[KMGT]?');
    expect(subset.routes['PUT /nodes/{node}/qemu/{vmid}/config'].properties.memory.format.current).toMatchObject({ minimum: 16, default_key: true });
  });
});

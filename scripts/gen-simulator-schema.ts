/**
 * Regenerates src/simulator/apidata-subset.json from the real Proxmox API schema.
 *
 * Usage: npx tsx scripts/gen-simulator-schema.ts [path/to/apidata.js]
 * Default input is ../shared/proxmox/apidata.js relative to the repository root; the file itself is
 * never copied into the project, only the parameter schemas of the routes the simulator serves.
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractSubset, loadApiIndex, serializeSubset } from '../src/simulator/schema-extract.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const input = process.argv[2] ?? resolve(repoRoot, '../shared/proxmox/apidata.js');
const output = resolve(repoRoot, 'src/simulator/apidata-subset.json');

const subset = extractSubset(loadApiIndex(input));
writeFileSync(output, serializeSubset(subset));
console.log(`wrote ${Object.keys(subset.routes).length} route schemas to ${output}`);

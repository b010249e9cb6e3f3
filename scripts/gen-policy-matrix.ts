// Writes docs/policy-risk-matrix.md from the catalog and the demo config's policy.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { renderRiskMatrix } from '../src/policy/matrix.js';

const out = fileURLToPath(new URL('../docs/policy-risk-matrix.md', import.meta.url));
writeFileSync(out, renderRiskMatrix(loadConfig({}).config, 'config/demo.yaml'));
console.log(`wrote ${out}`);

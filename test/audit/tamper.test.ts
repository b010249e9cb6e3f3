import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { checkpointsPathFor, openFileAuditStore, readCheckpoints, readRecords } from '../../src/audit/file-store.js';
import { tamperSuite } from './tamper-scenarios.js';

describe('tampering with the file audit store', () => {
  tamperSuite({
    async open(signing) {
      const path = join(mkdtempSync(join(tmpdir(), 'pa-tamper-')), 'audit.jsonl');
      const store = await openFileAuditStore(path, signing ? { signing } : {});
      const lines = (items: unknown[]) => items.map((i) => `${JSON.stringify(i)}\n`).join('');
      return {
        store,
        read: async () => ({ records: await readRecords(path), checkpoints: await readCheckpoints(checkpointsPathFor(path)) }),
        async overwrite(records, checkpoints) {
          writeFileSync(path, lines(records));
          writeFileSync(checkpointsPathFor(path), lines(checkpoints));
        },
        verifyArgs: ['--file', path],
      };
    },
  });
});

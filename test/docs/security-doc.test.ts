import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { BEGIN, END, renderPrivileges, SECURITY_DOC, spliceSection } from '../../scripts/gen-proxmox-privileges.js';

describe('docs/security.md: the least-privilege Proxmox role', () => {
  // Fails, never skips, without apidata.js (test/support/apidata-path.ts says where it is looked for).
  it('matches what the catalog and apidata.js give (npx tsx scripts/gen-proxmox-privileges.ts --write)', () => {
    const doc = readFileSync(SECURITY_DOC, 'utf8');
    const section = renderPrivileges();
    expect(doc.slice(doc.indexOf(BEGIN), doc.indexOf(END) + END.length)).toBe(section);
    expect(spliceSection(doc, section)).toBe(doc);
  });

  it('names a privilege for every catalog action', () => {
    const section = renderPrivileges();
    for (const a of ACTIONS) expect(section).toMatch(new RegExp(`\\| \`${a.name.replace(/\./g, '\\.')}\` \\| \`[A-Z]+ [^\`]+\` \\| \`[A-Z]`));
  });
});

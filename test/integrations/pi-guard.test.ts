/**
 * The pi extension's shell guard on a table of commands: the Proxmox CLIs and direct API calls are
 * blocked however they are dressed up; the same words as data are not.
 */
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../integrations/pi/extensions/proxmox-agent/guard.js';

const BLOCKED: string[] = [
  'qm stop 100',
  'pct start 300',
  'pvesh get /nodes',
  'pveum user list',
  'vzdump 100 --storage local',
  'sudo qm stop 100',
  'sudo -u root qm stop 100',
  '/usr/sbin/qm start 101',
  '"qm" stop 100',
  'q\\m stop 100',
  'FOO=1 pvesh get /nodes',
  'env PATH=/usr/sbin qm list',
  'env -i HOME=/root pct list',
  'timeout 30 qm shutdown 100',
  'timeout -s KILL 30 qm shutdown 100',
  'nohup pct start 300 &',
  'nice -n 10 qm list',
  'exec qm list',
  'command qm list',
  'echo 100 | xargs qm start',
  'echo 100 | xargs -I{} qm start {}',
  'watch -n 5 qm list',
  'watch "qm list"',
  'ls && qm destroy 201 --purge',
  'true; pct stop 300',
  'false || pct stop 300',
  '(cd /tmp && qm list)',
  'echo $(qm list)',
  'echo "$(pct list)"',
  'echo `qm list`',
  '$(which qm) stop 100',
  'bash -c "pct start 300"',
  "sh -c 'pvesh get /nodes'",
  "sh -lc 'qm list'",
  "su -c 'qm list' root",
  'eval "qm list"',
  'bash <<EOF\nqm stop 100\nEOF',
  'ssh root@pve-lab qm stop 100',
  'ssh -p 22 pve-lab "pct exec 300 -- ls"',
  "ssh -o StrictHostKeyChecking=no pve 'sudo qm migrate 100 pve2'",
  'curl -k https://pve:8006/api2/json/nodes',
  'curl -sk -H "Authorization: PVEAPIToken=root@pam!x=y" https://10.0.0.5:8006/api2/json/cluster/resources',
  'curl -X POST https://pve.example.com/api2/json/nodes/pve/qemu/100/status/stop',
  'wget -qO- https://pve.example.com:8006/api2/json/version',
  'http --verify=no GET https://pve:8006/api2/json/nodes',
  'sudo curl -k https://pve:8006/api2/json/nodes',
  `python3 -c "import requests; requests.get('https://pve:8006/api2/json/nodes', verify=False)"`,
  `node -e "fetch('https://pve:8006/api2/json/nodes')"`,
  `python3 -c "import subprocess; subprocess.run(['qm', 'stop', '100'])"`,
  'openssl s_client -connect pve:8006',
];

const ALLOWED: string[] = [
  'echo qm',
  'echo "qm stop 100"',
  "printf '%s\\n' 'pct start 300'",
  'grep -rn "qm stop" docs/',
  'grep -rn "/api2/json" src/',
  'man qm',
  'which qm',
  'command -v qm',
  'cat notes/qm.txt',
  'ls /etc/pve',
  'git log --oneline -5',
  'npm test',
  'sqm stop 100',
  'qmail-send',
  'curl -s http://127.0.0.1:8787/v1/catalog',
  'ssh build-host make',
  '# qm stop 100',
];

describe('the tool_call guard', () => {
  it.each(BLOCKED)('blocks %j', (cmd) => {
    const v = checkCommand(cmd);
    expect(v.block).toBe(true);
    expect(v.reason).toMatch(/proxmox_plan_action/);
  });
  it.each(ALLOWED)('allows %j', (cmd) => {
    expect(checkCommand(cmd)).toEqual({ block: false });
  });
});

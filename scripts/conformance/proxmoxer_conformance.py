"""Third-party conformance: proxmoxer (PyPI, 2.3.x) against the simulator, over TLS.

The simulator must not drift into agreeing only with this project's own client. proxmoxer is a
widely used client written by others; it talks to the simulator through a TLS proxy
(scripts/conformance/sim-tls.ts) exactly as it talks to pveproxy, and every expectation below is
what a real Proxmox VE answers, taken from ../shared/reference/proxmox-api.md and apidata.js, not
from what the simulator answers today.

A check marked `differs=` is a known difference that another change is fixing: it runs, and its
result is reported apart ("expected to differ"), not as a failure. When such a check passes, it is
reported as "now agrees" and counted as passed: its marker can go.

Usage: python proxmoxer_conformance.py REPORT.json   (from the repository root)
Writes {"numPassedTests", "numFailedTests", "numExpectedToDiffer", "checks": [...]} and exits 1 when
any check failed. Prints one line per check and a closing count line.
"""

import json
import os
import re
import subprocess
import sys
import time
import traceback

import proxmoxer
import requests
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE, NODE2 = "pve-prod", "pve-prod-2"
UPID_RE = re.compile(r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$")
# proxmoxer's decode_upid keeps the user of `user@realm!tokenid` (it drops the token id).
TOKEN_USER = "proxmox-agent@pve"

CHECKS = []


def check(name, differs=None):
    def register(fn):
        CHECKS.append((name, differs, fn))
        return fn

    return register


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def raises(fn, status, content=None, errors=None):
    """The call fails as pveproxy fails it: proxmoxer's ResourceException with the status code, the
    reason phrase (first line of the message) as content, and the `errors` object when there is one."""
    try:
        got = fn()
    except ResourceException as e:
        expect(e.status_code == status, f"status {e.status_code}, expected {status} ({e})")
        if content is not None:
            expect(e.content.startswith(content), f"content {e.content!r}, expected {content!r}")
        if errors is not None:
            for key, text in errors.items():
                expect(key in str(e.errors) and text in str(e.errors), f"errors {e.errors!r}, expected {key}: {text!r}")
        return e
    raise AssertionError(f"expected ResourceException {status}, got {got!r}")


def wait(api, upid, timeout=30):
    status = Tasks.blocking_status(api, upid, timeout=timeout, polling_interval=0.1)
    expect(status is not None, f"task {upid} still running after {timeout} s")
    return status


def task_ok(api, upid, task_type, vmid):
    expect(isinstance(upid, str) and UPID_RE.match(upid), f"not a UPID: {upid!r}")
    decoded = Tasks.decode_upid(upid)
    expect(decoded["type"] == task_type, f"UPID type {decoded['type']!r}, expected {task_type!r}")
    expect(decoded["id"] == str(vmid), f"UPID id {decoded['id']!r}, expected {vmid}")
    expect(decoded["user"] == TOKEN_USER, f"UPID user {decoded['user']!r}")
    status = wait(api, upid)
    expect(status["status"] == "stopped", f"status {status['status']!r}")
    expect(status.get("exitstatus") == "OK", f"exitstatus {status.get('exitstatus')!r}, expected 'OK'")
    return status


# --- reads ---------------------------------------------------------------------------------------------


@check("GET /version: version, release, repoid")
def _(api):
    v = api.version.get()
    for key in ("version", "release", "repoid"):
        expect(isinstance(v.get(key), str) and v[key], f"missing {key}: {v!r}")


@check("GET /nodes: every node online with node, status, maxcpu, maxmem, ssl_fingerprint")
def _(api):
    nodes = {n["node"]: n for n in api.nodes.get()}
    expect(set(nodes) == {NODE, NODE2}, f"nodes {sorted(nodes)}")
    for n in nodes.values():
        expect(n["status"] == "online", f"{n['node']} status {n['status']!r}")
        for key in ("maxcpu", "maxmem"):
            expect(isinstance(n.get(key), int), f"{n['node']} {key} {n.get(key)!r}")
        expect(re.fullmatch(r"([A-F0-9]{2}:){31}[A-F0-9]{2}", str(n.get("ssl_fingerprint", ""))), f"{n['node']} ssl_fingerprint {n.get('ssl_fingerprint')!r}")


@check("GET /cluster/resources?type=vm: id, type, node, integer vmid, name, status")
def _(api):
    res = {r["id"]: r for r in api.cluster.resources.get(type="vm")}
    expect(set(res) >= {"qemu/200", "qemu/201", "lxc/400"}, f"ids {sorted(res)}")
    for r in res.values():
        expect(r["type"] in ("qemu", "lxc"), f"type {r['type']!r} with type=vm")
    r = res["qemu/200"]
    expect(r["vmid"] == 200 and r["node"] == NODE and r["name"] == "web-prod" and r["status"] == "running", f"qemu/200 {r!r}")
    expect(res["lxc/400"]["type"] == "lxc" and res["qemu/201"]["status"] == "stopped", f"{res['lxc/400']!r} {res['qemu/201']!r}")


@check("GET /cluster/resources: node and storage entries beside the guests")
def _(api):
    types = {r["type"] for r in api.cluster.resources.get()}
    expect({"node", "storage", "qemu", "lxc"} <= types, f"types {sorted(types)}")


@check("GET /cluster/resources: a pool entry for each pool (id /pool/NAME)")
def _(api):
    pools = [r for r in api.cluster.resources.get() if r["type"] == "pool"]
    expect(any(p.get("id") == "/pool/production" and p.get("pool") == "production" for p in pools), f"pool entries {pools!r}")


@check("GET /nodes/{node}/qemu and /lxc: the node's guests, integer vmids")
def _(api):
    qemu = {g["vmid"]: g for g in api.nodes(NODE).qemu.get()}
    expect(set(qemu) == {200, 201}, f"qemu vmids {sorted(qemu)}")
    expect(qemu[200]["status"] == "running" and qemu[200]["name"] == "web-prod", f"{qemu[200]!r}")
    lxc = api.nodes(NODE).lxc.get()
    expect([int(g["vmid"]) for g in lxc] == [400] and lxc[0]["status"] == "running", f"lxc {lxc!r}")
    expect(api.nodes(NODE2).qemu.get() == [], "guests on the empty node")


@check("GET …/qemu/200/status/current: status, qmpstatus, ha, name, vmid")
def _(api):
    s = api.nodes(NODE).qemu(200).status.current.get()
    expect(s["status"] == "running" and s.get("qmpstatus") == "running", f"status {s.get('status')!r} qmpstatus {s.get('qmpstatus')!r}")
    expect(s.get("ha", {}).get("managed") == 0, f"ha {s.get('ha')!r}")
    expect(s.get("name") == "web-prod" and int(s.get("vmid")) == 200, f"name/vmid {s.get('name')!r} {s.get('vmid')!r}")


@check("GET …/qemu/201/status/current of a stopped VM: qmpstatus 'stopped'")
def _(api):
    s = api.nodes(NODE).qemu(201).status.current.get()
    expect(s["status"] == "stopped" and s.get("qmpstatus") == "stopped", f"status {s.get('status')!r} qmpstatus {s.get('qmpstatus')!r}")


@check("qmpstatus only in the full status, agent only when the config enables it")
def _(api):
    listed = api.nodes(NODE).qemu.get()
    expect(all("qmpstatus" not in g for g in listed), f"qmpstatus in the list without full=1: {listed!r}")
    s = api.nodes(NODE).qemu(201).status.current.get()
    expect("agent" not in s, f"agent key {s.get('agent')!r} without agent in the config")


@check("GET …/lxc/400/status/current: status running, type lxc, no qmpstatus")
def _(api):
    s = api.nodes(NODE).lxc(400).status.current.get()
    expect(s["status"] == "running" and s.get("type") == "lxc" and "qmpstatus" not in s, f"{s!r}")


# --- config and digest ---------------------------------------------------------------------------------


@check("QEMU config GET/PUT with digest: PUT answers null, the digest changes, a stale one is refused")
def _(api):
    vm = api.nodes(NODE).qemu(200)
    before = vm.config.get()
    expect(re.fullmatch(r"[0-9a-f]{40}", before.get("digest", "")), f"digest {before.get('digest')!r}")
    expect(vm.config.put(cores=6, digest=before["digest"]) is None, "PUT config is synchronous (data null)")
    after = vm.config.get()
    expect(int(after["cores"]) == 6 and after["digest"] != before["digest"], f"cores {after.get('cores')!r}, digest unchanged")
    raises(lambda: vm.config.put(cores=2, digest=before["digest"]), 500, "checksum mismatch (file change by other user?)")


@check("QEMU config POST answers a qmconfig task that ends OK")
def _(api):
    upid = api.nodes(NODE).qemu(200).config.post(description="via POST")
    task_ok(api, upid, "qmconfig", 200)


@check("LXC config PUT with a stale digest: 500 'detected modified configuration'")
def _(api):
    ct = api.nodes(NODE).lxc(400)
    digest = ct.config.get()["digest"]
    expect(ct.config.put(cores=3, digest=digest) is None, "PUT config is synchronous (data null)")
    raises(lambda: ct.config.put(cores=1, digest=digest), 500, "detected modified configuration - file changed by other user? Try again.")


@check("config PUT tags 'b,a': read back as 'a;b'")
def _(api):
    vm = api.nodes(NODE).qemu(201)
    vm.config.put(tags="zeta,alpha")
    tags = vm.config.get().get("tags")
    expect(tags == "alpha;zeta", f"tags {tags!r}")


# --- tasks ---------------------------------------------------------------------------------------------


@check("snapshot create → qmsnapshot UPID → polled to stopped/OK → listed, log ends TASK OK")
def _(api):
    vm = api.nodes(NODE).qemu(201)
    upid = vm.snapshot.post(snapname="conformance", description="proxmoxer")
    status = task_ok(api, upid, "qmsnapshot", 201)
    expect(status.get("user") == "proxmox-agent@pve" and status.get("tokenid") == "agent", f"user/tokenid {status.get('user')!r} {status.get('tokenid')!r}")
    names = [s["name"] for s in vm.snapshot.get()]
    expect("conformance" in names and names[-1] == "current", f"snapshots {names}")
    log = api.nodes(NODE).tasks(upid).log.get()
    expect(log and log[-1]["t"] == "TASK OK", f"log tail {log[-1:]!r}")


@check("LXC snapshot create → vzsnapshot task OK, listed under its name")
def _(api):
    ct = api.nodes(NODE).lxc(400)
    upid = ct.snapshot.post(snapname="ct-conformance")
    task_ok(api, upid, "vzsnapshot", 400)
    names = [s["name"] for s in ct.snapshot.get()]
    expect("ct-conformance" in names, f"snapshots {names}")


@check("LXC snapshot names: a snapshot's list entry carries the name it was given, with snaptime")
def _(api):
    ct = api.nodes(NODE).lxc(400)
    task_ok(api, ct.snapshot.post(snapname="named", description="d"), "vzsnapshot", 400)
    listed = ct.snapshot.get()
    entry = next((s for s in listed if s["name"] == "named"), None)
    expect(entry is not None and isinstance(entry.get("snaptime"), int) and entry.get("description") == "d", f"entry {entry!r}")
    expect(listed[-1]["name"] == "current" and listed[-1].get("parent") == "named", f"current {listed[-1]!r}")
    # The task log and the UPID name the container, the snapshot is deleted by its name.
    task_ok(api, ct.snapshot("named").delete(), "vzdelsnapshot", 400)
    expect("named" not in [s["name"] for s in ct.snapshot.get()], "deleted snapshot still listed")


@check("snapshot name already used: the task fails with exitstatus \"snapshot name 'nightly' already used\"")
def _(api):
    upid = api.nodes(NODE).qemu(201).snapshot.post(snapname="nightly")
    status = wait(api, upid)
    expect(status.get("exitstatus") == "snapshot name 'nightly' already used", f"exitstatus {status.get('exitstatus')!r}")


@check("QEMU start when running: a task that fails 'VM 200 already running'")
def _(api):
    upid = api.nodes(NODE).qemu(200).status.start.post()
    status = wait(api, upid)
    expect(status.get("exitstatus") == "VM 200 already running", f"exitstatus {status.get('exitstatus')!r}")


@check("QEMU and LXC resize answer a resize task (qemu-server >= 8.0.2) that grows the disk")
def _(api):
    upid = api.nodes(NODE).qemu(201).resize.put(disk="scsi0", size="+1G")
    task_ok(api, upid, "resize", 201)
    disk = api.nodes(NODE).qemu(201).config.get()["scsi0"]
    expect("size=129G" in disk, f"scsi0 {disk!r} after +1G")
    upid = api.nodes(NODE).lxc(400).resize.put(disk="rootfs", size="+1G")
    task_ok(api, upid, "resize", 400)


@check("vzdump of one guest (stop mode, and a running one in snapshot mode): exitstatus OK")
def _(api):
    upid = api.nodes(NODE).vzdump.post(vmid="201", storage="local", mode="stop")
    task_ok(api, upid, "vzdump", 201)
    # A running guest in the default snapshot mode: also OK (VZDump.pm), the log ending TASK OK.
    upid = api.nodes(NODE).vzdump.post(vmid="200", storage="local")
    task_ok(api, upid, "vzdump", 200)
    log = api.nodes(NODE).tasks(upid).log.get(limit=1000)
    expect(log[-1]["t"] == "TASK OK", f"log tail {log[-2:]!r}")


@check("LXC suspend and resume answer vzsuspend/vzresume tasks that end OK")
def _(api):
    upid = api.nodes(NODE).lxc(400).status.suspend.post()
    task_ok(api, upid, "vzsuspend", 400)
    upid = api.nodes(NODE).lxc(400).status.resume.post()
    task_ok(api, upid, "vzresume", 400)


@check("GET /nodes/{node}/tasks?source=active: a running task reads status 'RUNNING'")
def _(api):
    upid = api.nodes(NODE).qemu(201).snapshot.post(snapname="listed")
    active = [t for t in api.nodes(NODE).tasks.get(source="active") if t["upid"] == upid]
    wait(api, upid)
    expect(active and active[0].get("status") == "RUNNING", f"active entry {active!r}")


@check("GET /nodes/{node}/tasks: a finished task with status and endtime")
def _(api):
    upid = api.nodes(NODE).qemu(201).snapshot.post(snapname="archived")
    wait(api, upid)
    done = [t for t in api.nodes(NODE).tasks.get(vmid=201) if t["upid"] == upid]
    expect(done and done[0].get("status") == "OK" and isinstance(done[0].get("endtime"), int), f"archive entry {done!r}")


@check("GET /cluster/tasks lists recent tasks")
def _(api):
    upid = api.nodes(NODE).qemu(201).snapshot.post(snapname="cluster-listed")
    wait(api, upid)
    expect(any(t.get("upid") == upid for t in api.cluster.tasks.get()), "the task is not in /cluster/tasks")


@check("GET …/qemu/200/pending: key/value entries")
def _(api):
    pending = api.nodes(NODE).qemu(200).pending.get()
    expect(any(p.get("key") == "cores" and str(p.get("value")) == "4" for p in pending), f"pending {pending!r}")


@check("POST …/qemu/201/template of a VM with snapshots: ResourceException 500 'unable to create template, because VM contains snapshots'")
def _(api):
    raises(lambda: api.nodes(NODE).qemu(201).template.post(), 500, "unable to create template, because VM contains snapshots")


@check("POST …/qemu/{vmid}/template of a full clone (no snapshots): a qmtemplate task; the guest is then a template")
def _(api):
    wait(api, api.nodes(NODE).qemu(201).clone.post(newid=290, name="conformance-template"))
    upid = api.nodes(NODE).qemu(290).template.post()
    task_ok(api, upid, "qmtemplate", 290)
    expect(int(api.nodes(NODE).qemu(290).config.get().get("template", 0)) == 1, "template flag not set")


# --- errors --------------------------------------------------------------------------------------------


@check("LXC start when running: ResourceException 500 'CT 400 already running'")
def _(api):
    raises(lambda: api.nodes(NODE).lxc(400).status.start.post(), 500, "CT 400 already running")


@check("migrate to the local node: ResourceException 400 with errors {target: 'target is local node.'}")
def _(api):
    raises(lambda: api.nodes(NODE).qemu(201).migrate.post(target=NODE), 400, errors={"target": "target is local node."})


@check("a guest not on the node: ResourceException 500 'Configuration file … does not exist'")
def _(api):
    raises(lambda: api.nodes(NODE2).qemu(200).config.get(), 500, "Configuration file 'nodes/pve-prod-2/qemu-server/200.conf' does not exist")


@check("an invalid parameter: ResourceException 400 with the parameter's error")
def _(api):
    raises(lambda: api.nodes(NODE).qemu(200).config.put(cores="abc"), 400, errors={"cores": "type check ('integer') failed - got 'abc'"})


@check("an unknown task: ResourceException 400 {upid: 'no such task'}")
def _(api):
    raises(lambda: api.nodes(NODE).tasks("UPID:pve-prod:00000001:00000001:00000001:qmstart:200:root@pam:").status.get(), 400, errors={"upid": "no such task"})


@check("a path PVE does not serve: ResourceException 501 \"Method 'GET /nodes/pve-prod/nonexistent' not implemented\"")
def _(api):
    raises(lambda: api.nodes(NODE).nonexistent.get(), 501, "Method 'GET /nodes/pve-prod/nonexistent' not implemented")


@check("a wrong token secret: ResourceException 401 'Authentication failed!' (empty body)")
def _(api, target):
    bad = connect(target, secret="00000000-0000-0000-0000-000000000000")
    e = raises(lambda: bad.version.get(), 401, "Authentication failed!")
    # proxmoxer wraps a body that is not JSON as {"errors": <raw bytes>}: pveproxy sends none.
    expect(e.errors == {"errors": b""}, f"errors {e.errors!r}: the 401 body was not empty")


# --- harness -------------------------------------------------------------------------------------------


def connect(target, secret=None):
    return ProxmoxAPI(
        target["host"],
        port=target["port"],
        user=target["user"],
        token_name=target["tokenName"],
        token_value=secret or target["secret"],
        # The certificate made for this run: TLS is verified, as against a real cluster's CA.
        verify_ssl=target["ca"],
        timeout=15,
    )


def reset(target):
    # Each check starts from the seeded cluster (the control API, plain HTTP on loopback).
    r = requests.post(f"{target['simUrl']}/_sim/reset", headers={"Authorization": f"PVEAPIToken={target['user']}!{target['tokenName']}={target['secret']}"}, timeout=10)
    r.raise_for_status()


def main():
    report_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "test-artifacts", "conformance.json")
    launcher = subprocess.Popen(
        ["node", "--import", "tsx", os.path.join(ROOT, "scripts", "conformance", "sim-tls.ts")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    results = []
    try:
        line = launcher.stdout.readline()
        if not line:
            raise SystemExit("the simulator behind TLS did not start")
        target = json.loads(line)
        api = connect(target)
        print(f"proxmoxer {proxmoxer.__version__} → https://{target['host']}:{target['port']} (TLS proxy) → simulator {target['simUrl']}")
        for name, differs, fn in CHECKS:
            reset(target)
            t0 = time.monotonic()
            try:
                fn(api, target) if fn.__code__.co_argcount == 2 else fn(api)
                outcome, detail = ("now agrees" if differs else "passed"), ""
            except Exception as e:  # noqa: BLE001 — every failure of a check is its result
                detail = str(e) if isinstance(e, (AssertionError, ResourceException)) else traceback.format_exc(limit=3).strip()
                outcome = "expected to differ" if differs else "failed"
            ms = int((time.monotonic() - t0) * 1000)
            results.append({"name": name, "outcome": outcome, "differs": differs, "detail": detail, "ms": ms})
            mark = {"passed": "ok  ", "now agrees": "ok! ", "expected to differ": "diff", "failed": "FAIL"}[outcome]
            extra = f" [known difference: {differs}]" if differs else ""
            print(f"  {mark} {name}{extra}" + (f"\n         {detail}" if detail else ""))
    finally:
        launcher.stdin.close()
        try:
            launcher.wait(timeout=15)
        except subprocess.TimeoutExpired:
            launcher.kill()
    passed = sum(r["outcome"] in ("passed", "now agrees") for r in results)
    failed = sum(r["outcome"] == "failed" for r in results)
    differ = sum(r["outcome"] == "expected to differ" for r in results)
    agrees = [r["name"] for r in results if r["outcome"] == "now agrees"]
    os.makedirs(os.path.dirname(report_path), exist_ok=True)
    with open(report_path, "w") as f:
        json.dump({"numPassedTests": passed, "numFailedTests": failed, "numExpectedToDiffer": differ, "checks": results}, f, indent=2)
    # Not "N passed, N failed": that form is .ci/run's closing line alone.
    print(f"conformance: {passed} checks agree with a real PVE, {failed} disagree, {differ} known differences (reported apart)")
    if agrees:
        print(f"  {len(agrees)} known difference(s) now agree: drop their marker")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

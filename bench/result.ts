/** What one run of the bench measured: returned by runBench, written to BENCH_JSON. */
import type { BenchSettings } from './settings.js';
import type { CellResult, Row } from './stats.js';

export interface HistoryLengths {
  lowRiskPlanApply: number[];
  highRiskApproved: number[];
  floor: number[];
  /** Floor (a′): its update awaits a local activity. */
  floorLocal: number[];
  planOnly: number[];
}

export interface WaitingPlans {
  plans: number;
  createOpsPerSec: number;
  createP50: number;
  createP99: number;
  workerRssIdleMiB: number;
  /** The floor's worker after the cells (every floor run still open and cached), for comparison. */
  floorWorkerRssMiB: number;
  workerRssWaitingMiB: number;
  workerRssAfterMiB: number;
  workerHwmMiB: number;
  /** Worker RSS as the waiting plans were created. */
  rssCurve: { plans: number; rssMiB: number }[];
  approvalToSucceeded: { n: number; p50: number; p99: number; max: number };
  /** GET /v1/approvals?limit=50 with the plans waiting: first pages and middle pages, alternately. */
  approvalList: { n: number; p50: number; max: number };
  /** Ten GET /v1/approvals at once (the first page, default limit 50), `listRounds` times; then the same for the middle page. */
  approvalListParallel: { first: ParallelListing; middle: ParallelListing };
}

export interface ParallelListing {
  n: number;
  p50: number;
  max: number;
  /** The slowest call of each round. */
  rounds: number[];
}

/** The CPU of one phase: ours per process, and everybody else's. */
export interface PhaseCpu {
  phase: string;
  wallSeconds: number;
  ownCpuSeconds: number;
  foreignCpuSeconds: number;
  foreignCores: number;
  byProcess: Record<string, number>;
}

export interface Machine {
  cores: number;
  memoryGiB: number;
  /** `free -g`, or 'unavailable'. */
  free: string;
  node: string;
  temporal: string;
  loadavgAtEnd: number[];
  date: string;
}

export interface StalledReads {
  n: number;
  p50: number;
  p99: number;
  max: number;
  stallMs: number;
}

export interface BenchResult {
  settings: BenchSettings;
  machine: Machine;
  cells: Record<string, CellResult>;
  history: HistoryLengths;
  /** The events of one run of each kind (type, and the marker's or activity's name). */
  eventTypes: Record<string, string[]>;
  waiting: WaitingPlans;
  interference: PhaseCpu[];
  /** GET /v1/actions/{id}, one after another, while the plan's apply-time re-check hangs on Proxmox (issue 18). */
  stalledReads: StalledReads;
  rows: Row[];
  table: string;
}

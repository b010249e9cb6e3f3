import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { cancelledResult, failedResult } from '../../src/workflows/outcomes.js';

const UPID = 'UPID:pve-lab:00000001:000F4240:6B000000:vzdump:100:proxmox-agent@pve!agent:';

describe('a run cancelled while applying reports what became of its dispatch', () => {
  it.each([
    [{ state: 'dispatched', upid: UPID, exitstatus: 'received interrupt' }, { outcome: 'failed', errorType: 'Cancelled', upid: UPID, exitstatus: 'received interrupt' }],
    [{ state: 'dispatched', upid: UPID, exitstatus: 'OK' }, { outcome: 'applied', upid: UPID }],
    [{ state: 'dispatched', upid: UPID, exitstatus: 'WARNINGS: 2' }, { outcome: 'applied', upid: UPID }],
    [{ state: 'dispatched', upid: UPID }, { outcome: 'outcome_unknown', upid: UPID }],
    [{ state: 'intent' }, { outcome: 'outcome_unknown' }],
    [{ state: 'unknown', note: 'nothing of it appeared in 300 s' }, { outcome: 'outcome_unknown', errorType: 'Cancelled' }],
    [{ state: 'done' }, { outcome: 'applied' }],
    [{ state: 'noop', note: 'VM 100 is already running' }, { outcome: 'noop' }],
    [{ state: 'not_dispatched' }, { outcome: 'failed', errorType: 'Cancelled' }],
    [{ state: 'none' }, { outcome: 'failed', errorType: 'Cancelled' }],
  ] as const)('%o → %o', (seen, expected) => {
    expect(cancelledResult(seen as never)).toMatchObject(expected);
  });
});

describe('a failed execute', () => {
  const failure = (type: string, details: unknown[] = []) =>
    new ActivityFailure('activity failed', 'executeAction', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', ApplicationFailure.create({ type, message: 'm', nonRetryable: true, details }));
  it('keeps an unknown outcome unknown, and a task failure a failure with its task', () => {
    expect(failedResult(failure('OutcomeUnknown'))).toMatchObject({ outcome: 'outcome_unknown', errorType: 'OutcomeUnknown' });
    expect(failedResult(failure('ProxmoxTaskFailedError', [{ upid: UPID, exitstatus: 'boom', logTail: ['TASK ERROR: boom'] }]))).toMatchObject({ outcome: 'failed', upid: UPID, exitstatus: 'boom', logTail: ['TASK ERROR: boom'] });
  });
});

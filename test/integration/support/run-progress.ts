/**
 * Positive events that show a run has moved past a point, for tests that assert "nothing happened":
 * asserted after the run decided, never after a fixed sleep (which a slow machine passes trivially).
 */
import type { AuditEvent } from '../../../src/audit/events.js';
import type { TestService } from './service.js';
import { until } from './until.js';

/** Waits until the plan's audit chain holds `count` records of `event` (the run wrote them: it decided). */
export async function untilRecorded(t: TestService, planId: string, event: AuditEvent, count = 1): Promise<void> {
  await until(`${count} × ${event} on the chain of ${planId}`, async () => (await t.service.audit.forPlan(planId)).filter((r) => r.event === event).length >= count, 30_000, 25);
}

/**
 * The activity types the run has scheduled so far, from its history: what its completed workflow
 * tasks decided. Throws if no workflow task has completed yet (nothing would be decided to look at).
 */
export async function scheduledActivities(t: TestService, planId: string): Promise<string[]> {
  const events = (await t.service.client.workflow.getHandle(planId).fetchHistory()).events ?? [];
  if (!events.some((e) => e.workflowTaskCompletedEventAttributes)) throw new Error(`no workflow task of ${planId} has completed yet`);
  return events.flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : []));
}

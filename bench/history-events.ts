/** A run's history events as the bench shows them: when, and what (type, and the marker's or activity's name). */
import proto, { type temporal } from '@temporalio/proto';

export function eventMs(e: temporal.api.history.v1.IHistoryEvent | undefined): number {
  const t = e?.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : 0;
}

/** `MARKER_RECORDED recordAudit`, `ACTIVITY_TASK_SCHEDULED executeAction`, `TIMER_STARTED`... */
export function describeEvent(e: temporal.api.history.v1.IHistoryEvent): string {
  const type = String(proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? e.eventType).replace(/^EVENT_TYPE_/, '');
  const marker = e.markerRecordedEventAttributes;
  if (marker) {
    const data = marker.details?.data?.payloads?.[0]?.data ?? marker.details?.patch_data?.payloads?.[0]?.data;
    let detail = marker.markerName ?? '';
    try {
      const parsed = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string; id?: string }) : undefined;
      detail = parsed?.activity_type ?? (parsed?.id ? `patch ${parsed.id}` : detail);
    } catch {
      /* not JSON */
    }
    return `${type} ${detail}`;
  }
  const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
  const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
  const signal = e.workflowExecutionSignaledEventAttributes?.signalName;
  const attrs = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
  return [type, activity ?? update ?? signal ?? (attrs ? Object.keys(attrs).join(',') : '')].filter(Boolean).join(' ');
}

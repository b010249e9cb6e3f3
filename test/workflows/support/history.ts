/**
 * Reads a history JSON file (as `temporal workflow show --output json` writes it) into the SDK's
 * History type. The SDK's own `historyFromJSON` fails in this install with "type must be a Type":
 * `@temporalio/common` and `@temporalio/proto` each get a private copy of protobufjs 8 (a protobufjs 7
 * is hoisted to the top for @grpc/proto-loader), so a Type from one copy fails the other's instanceof.
 * Both halves are taken from @temporalio/proto's copy here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { temporal } from '@temporalio/proto';

const fromProto = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'));
const { fromJson } = fromProto('protobufjs/ext/protojson') as { fromJson(type: unknown, json: unknown, opts: object): unknown };
const { patchProtobufRoot } = fromProto('@temporalio/proto/lib/patch-protobuf-root') as { patchProtobufRoot(root: unknown): { lookupType(name: string): unknown } };
const historyType = patchProtobufRoot(fromProto('@temporalio/proto')).lookupType('temporal.api.history.v1.History');

export type History = temporal.api.history.v1.IHistory;

export function readHistory(file: string): History {
  const history = fromJson(historyType, JSON.parse(readFileSync(file, 'utf8')), { ignoreUnknownFields: true });
  if (!history) throw new TypeError(`${file}: not a history`);
  return history as History;
}

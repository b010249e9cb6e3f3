/**
 * Registers the project's custom search attributes on a Temporal namespace (server/admin side).
 * Not workflow-safe (talks to the Operator service) — workflow code imports `search-attributes.ts` instead.
 */
import type { SearchAttributeType } from '@temporalio/common';
import type { Connection } from '@temporalio/client';
import { silentLog, type TemporalLog } from './log.js';
import { PROJECT_SEARCH_ATTRIBUTES, type SearchAttributeDef } from './search-attributes.js';

/** `temporal.api.enums.v1.IndexedValueType` numbers (stable wire values). */
const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

/** Names used by the Temporal CLI (`--search-attribute Name=Keyword`, `operator search-attribute create --type`). */
export const CLI_SEARCH_ATTRIBUTE_TYPE: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** `Name=Type` strings for `temporal server start-dev --search-attribute`. */
export function cliSearchAttributeArgs(attrs: readonly SearchAttributeDef[] = PROJECT_SEARCH_ATTRIBUTES): string[] {
  return attrs.map((a) => `${a.name}=${CLI_SEARCH_ATTRIBUTE_TYPE[a.type]}`);
}

function typeName(indexed: number | undefined): string {
  const entry = Object.entries(INDEXED_VALUE_TYPE).find(([, v]) => v === indexed);
  return entry ? entry[0] : `unknown(${String(indexed)})`;
}

/** Anything with an Operator service: a client `Connection` or a worker `NativeConnection`. */
export type OperatorConnection = Pick<Connection, 'operatorService'>;

export interface EnsureSearchAttributesResult {
  /** Attributes this call registered. */
  added: string[];
  /** Attributes that were already registered with the right type. */
  existing: string[];
}

/** Thrown when an attribute exists with a different type, or registration fails for another reason. */
export class SearchAttributeError extends Error {
  override readonly name = 'SearchAttributeError';
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return e?.code === 6 /* gRPC ALREADY_EXISTS */ || /already exists/i.test(String(e?.message ?? ''));
}

/** The namespace's custom search attributes: name → `IndexedValueType` number. */
export async function listCustomSearchAttributes(connection: OperatorConnection, namespace: string): Promise<Record<string, number>> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  return (res.customAttributes ?? {}) as Record<string, number>;
}

/** How a namespace's custom attributes (as listed) stand against the ones the project needs. */
export interface SearchAttributeComparison {
  /** Registered with the right type. */
  existing: string[];
  /** Not registered. */
  missing: SearchAttributeDef[];
  /** Registered with another type, which cannot be changed: what to say about each. */
  wrongType: { name: string; problem: string }[];
}

export function compareSearchAttributes(
  current: Readonly<Record<string, number>>,
  namespace: string,
  attrs: readonly SearchAttributeDef[] = PROJECT_SEARCH_ATTRIBUTES,
): SearchAttributeComparison {
  const result: SearchAttributeComparison = { existing: [], missing: [], wrongType: [] };
  for (const a of attrs) {
    if (!(a.name in current)) result.missing.push(a);
    else if (current[a.name] === INDEXED_VALUE_TYPE[a.type]) result.existing.push(a.name);
    else
      result.wrongType.push({
        name: a.name,
        problem:
          `Search attribute ${a.name} is registered on namespace "${namespace}" as ${typeName(current[a.name])}, but the project needs ${a.type}. ` +
          'Search attributes cannot change type; remove it (temporal operator search-attribute remove) or use a fresh namespace/DB file.',
      });
  }
  return result;
}

/**
 * Idempotently registers `attrs` (default: all project attributes) on `namespace`.
 * Lists first and adds only the missing ones; tolerates a concurrent "already exists".
 * Throws {@link SearchAttributeError} if an attribute exists with a different type.
 */
export async function ensureSearchAttributes(
  connection: OperatorConnection,
  namespace: string,
  attrs: readonly SearchAttributeDef[] = PROJECT_SEARCH_ATTRIBUTES,
  log: TemporalLog = silentLog,
): Promise<EnsureSearchAttributesResult> {
  const { existing, missing, wrongType } = compareSearchAttributes(await listCustomSearchAttributes(connection, namespace), namespace, attrs);
  if (wrongType[0]) throw new SearchAttributeError(wrongType[0].problem);
  if (missing.length === 0) return { added: [], existing };

  const searchAttributes: Record<string, number> = {};
  for (const a of missing) searchAttributes[a.name] = INDEXED_VALUE_TYPE[a.type];
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    if (!isAlreadyExists(err)) {
      throw new SearchAttributeError(
        `Registering search attributes ${missing.map((a) => `${a.name}(${a.type})`).join(', ')} on namespace "${namespace}" failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    // Someone else registered (some of) them concurrently: add the rest one by one.
    for (const a of missing) {
      try {
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { [a.name]: INDEXED_VALUE_TYPE[a.type] } });
      } catch (inner) {
        if (!isAlreadyExists(inner)) throw inner;
      }
    }
  }
  log(`Registered search attributes on namespace "${namespace}": ${missing.map((a) => `${a.name}=${CLI_SEARCH_ATTRIBUTE_TYPE[a.type]}`).join(', ')}`);
  return { added: missing.map((a) => a.name), existing };
}

/**
 * One shape for every chat channel (docs/approvals.md, "Adding a channel"). A channel is a value of
 * this interface in one file, listed once in registry.ts; the config schema, the secret resolution,
 * the inbound route, its OpenAPI entry and the notification format all come from that value.
 *
 * The route (src/api/routes/channels.ts) runs every channel through the same pipeline, so the rules
 * hold for all of them: the signature is checked on the raw body before anything is parsed; the
 * request is claimed once in the replay cache; the approver comes from the config, never from the
 * request alone; environment scoping applies; the decision reaches the run as the same approval
 * signal (channel `chat`), where separation of duties is enforced for every channel alike.
 */
import type { z } from 'zod';
import type { ProblemCode } from '../api/http/problems.js';
import type { ApproverIdentity, SecretRef } from '../config/schema.js';
import type { PlanView } from '../domain/plan-view.js';
import type { PlanLinks } from './plan-summary.js';
import type { SignatureCheck } from './signing.js';

/** The parts of the service config a channel's own schema is built from (passed in: no import cycle). */
export interface ConfigParts {
  secretRef: z.ZodType<SecretRef>;
  approverIdentity: z.ZodType<ApproverIdentity, unknown>;
}

/** Reads a secret reference; the field names it in errors, the value is never logged. */
export type ResolveSecret = (ref: SecretRef, field: string) => string;

export interface ChannelRequest {
  header(name: string): string | undefined;
  /** The raw body, exactly as received: the signature covers these bytes. */
  body: string;
  nowMs: number;
}

export interface ChatDecision {
  planId: string;
  requestHash: string;
  decision: 'approve' | 'reject';
  comment?: string;
}

export interface Received<Context> {
  decision: ChatDecision;
  /** Accepted once per replay window: a nonce, or what stands for one in the channel's protocol. */
  replayKey: string;
  /** Who decided, as the channel names them: the key of the channel's approver map. */
  approverId: string;
  context: Context;
}

/** What the endpoint answers; `followUp` is POSTed afterwards (Slack's response_url), never awaited. */
export interface Reply {
  status: 200 | 202;
  json?: unknown;
  followUp?: { url: string; message: unknown };
}

/** The request is signed but is not a decision this channel understands: a 400, nothing changes. */
export class ChannelPayloadError extends Error {
  override readonly name = 'ChannelPayloadError';
  constructor(
    message: string,
    readonly errors?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

export interface ChatChannel<Config = any, Settings = any, Signer = any, Context = any, Key extends string = string> {
  /** The key under `channels` in the config. */
  readonly key: Key;
  /** The inbound route, under /v1/channels/. */
  readonly path: string;
  configSchema(parts: ConfigParts): z.ZodType<Config, any>;
  /** Every approver identity in the config, with its path, for the environment check at load. */
  identities(config: Config): { path: (string | number)[]; identity: ApproverIdentity }[];
  /** Undefined when the channel is not configured (its route answers 404). */
  resolve(config: Config, secret: ResolveSecret): Settings | undefined;

  /** Headers without which a request is unauthenticated (401) before anything else is said. */
  readonly signatureHeaders: readonly string[];
  /** The shape a signature header must have, where it is shared with other schemes (Teams' Authorization). */
  readonly signatureShape?: Readonly<Record<string, RegExp>>;
  /** The signature over the raw body (and the protocol's timestamp window), and who signed. */
  verify(settings: Settings, req: ChannelRequest): SignatureCheck<Signer>;
  /** The decision in the signed body; throws ChannelPayloadError. */
  parse(body: string, signer: Signer, settings: Settings): Received<Context>;
  /** The configured identity of the one who decided, and the tokenId the decision is recorded with. */
  approver(settings: Settings, signer: Signer, received: Received<Context>): { identity: ApproverIdentity | undefined; tokenId: string; unknown: string };

  replies: {
    /** `recorded` false: the view is the prediction (the run had not confirmed it in time). */
    decided(view: PlanView, who: string, received: Received<Context>, links: PlanLinks, recorded?: boolean): Reply;
    /**
     * The channel tells its user why nothing was recorded (`unmapped`: the sender is no configured
     * approver); undefined: answer with the problem itself.
     */
    refused(message: string, received: Received<Context>, unmapped?: boolean): Reply | undefined;
  };

  openapi: {
    summary: string;
    description: string;
    headers: z.ZodObject;
    body: { contentType: string; schema: z.ZodType };
    success: { status: 200 | 202; description: string; schema?: z.ZodType };
    problems: ProblemCode[];
    /** Examples for the document (test/api/openapi.test.ts checks every JSON body has one). */
    examples?: { request?: unknown; response?: unknown };
  };

  /** How an approval request and its outcome look when posted to a notification target of this format. */
  notification?: {
    format: string;
    request(view: PlanView, links: PlanLinks): unknown;
    outcome(view: PlanView, links: PlanLinks): unknown;
  };
}

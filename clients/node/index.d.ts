// Type declarations for cumulus-message-adapter-client, the warm-sidecar drop-in for
// @cumulus/cumulus-message-adapter-js. Every type the published client exports is exported
// here under the same name, so TypeScript tasks can switch imports without other changes.

import type { ChildProcessWithoutNullStreams } from 'child_process';

/** A Cumulus workflow message (only the keys this client reads are spelled out). */
export interface CumulusMessage {
  cumulus_meta?: {
    execution_name?: string;
    parentExecutionArn?: string;
    asyncOperationId?: string;
    state_machine?: string;
    system_bucket?: string;
    [key: string]: any;
  };
  meta?: {
    stack?: string;
    input_granules?: Array<{ granuleId: string; [key: string]: unknown }>;
    [key: string]: any;
  };
  payload?: unknown;
  exception?: unknown;
  task_config?: Record<string, unknown>;
  replace?: { Bucket: string; Key: string; TargetPath?: string };
  [key: string]: any;
}

/** A message whose body is stored in S3 (`replace`), as a previous step left it. */
export interface CumulusRemoteMessage {
  cumulus_meta?: Record<string, unknown>;
  replace: { Bucket: string; Key: string; TargetPath?: string };
  [key: string]: any;
}

/** A message wrapped by Step Functions parameters: `{cma: {event, task_config, ...}}`. */
export interface CMAMessage {
  cma?: { event?: object; [key: string]: any };
  replace?: { Bucket: string; Key: string; TargetPath?: string };
  [key: string]: any;
}

/** The published client's name for what the task function receives (see NestedEvent). */
export interface LoadNestedEventInput {
  input: unknown;
  config: unknown;
  messageConfig?: unknown;
}

/** A full (not remote) message whose payload a step has set: what runCumulusTask returns. */
export interface CumulusMessageWithAssignedPayload extends CumulusMessage {
  payload: {
    granules?: { granuleId: string }[];
    [key: string]: unknown;
  } | null;
  meta: {
    workflow_name: string;
    stack?: string;
    input_granules?: { granuleId: string }[];
    [key: string]: unknown;
  };
  replace?: { Bucket: string; Key: string; TargetPath?: string };
}

/** The published client's record of an adapter process's stderr. */
export interface CumulusMessageAdapterError {
  stderrBuffer: string;
}

/** The published client's handle on one adapter process. */
export interface InvokeCumulusMessageAdapterResult {
  cmaProcess: ChildProcessWithoutNullStreams;
  errorObj: CumulusMessageAdapterError;
  statusObj: { close: boolean };
}

/** What the task function receives: the answer of loadNestedEvent. */
export interface NestedEvent<Input = any, Config = any> {
  input: Input;
  config: Config;
  messageConfig?: {
    input?: unknown;
    outputs?: Array<{ source: string; destination: string }>;
    [key: string]: any;
  };
  cumulus_config?: {
    state_machine?: string;
    execution_name?: string;
    cumulus_context?: unknown;
    [key: string]: any;
  };
}

/**
 * The parts of an AWS Lambda context this client uses (an aws-lambda `Context` fits):
 * functionName/functionVersion set SENDER/TASKVERSION, getRemainingTimeInMillis sets the
 * deadline for the adapter's answers, and the whole object (as JSON) goes to the adapter.
 */
export interface LambdaContext {
  functionName?: string;
  functionVersion?: string;
  invokedFunctionArn?: string;
  getRemainingTimeInMillis?: () => number;
  [key: string]: any;
}

/** Maps `input`, `config` and `output` to JSON Schema files (relative to LAMBDA_TASK_ROOT). */
export interface SchemaLocations {
  input?: string;
  config?: string;
  output?: string;
}

export type TaskFunction<Input = any, Config = any, Output = unknown> = (
  event: NestedEvent<Input, Config>,
  context: any
) => Output | Promise<Output>;

/**
 * Run a Cumulus task: loadAndUpdateRemoteEvent → loadNestedEvent → `TaskFunction(nestedEvent,
 * context)` → createNextEvent with the nested event's `messageConfig`. Resolves with the next
 * Cumulus message. A task error whose `name` contains "WorkflowError" resolves with the
 * incoming message, `payload: null` and `exception: name` (it is thrown for `cma` messages);
 * other task errors are rethrown as they are; adapter failures throw
 * CumulusMessageAdapterExecutionError.
 */
export function runCumulusTask<Input = any, Config = any, Output = unknown>(
  TaskFunction: TaskFunction<Input, Config, Output>,
  cumulusMessage: CumulusMessage | CumulusRemoteMessage | CMAMessage,
  context: LambdaContext,
  schemas?: SchemaLocations | string | null
): Promise<CumulusMessage | CumulusRemoteMessage>;
/** The published client's signature: any function, whatever its parameter types. */
export function runCumulusTask(
  TaskFunction: Function,
  cumulusMessage: CumulusMessage | CumulusRemoteMessage | CMAMessage,
  context: LambdaContext,
  schemas?: SchemaLocations | string | null
): Promise<CumulusMessage | CumulusRemoteMessage>;

/** Thrown when the adapter fails; `message` is what it wrote on stderr. */
export class CumulusMessageAdapterExecutionError extends Error {
  constructor(message: string, details?: Record<string, unknown>);
  name: 'CumulusMessageAdapterExecutionError';
  /** The command that failed (loadAndUpdateRemoteEvent, loadNestedEvent, createNextEvent). */
  command?: string;
  /** The adapter's structured error, when it answered with one. */
  adapterError?: { name: string; message: string; command?: string };
  /** Set when the adapter was stopped because it missed the invocation's deadline. */
  timedOut?: boolean;
  exitCode?: number;
  signal?: string;
}

/**
 * Thrown when the next message is over Step Functions' limit for a state's output
 * (STEP_FUNCTIONS_LIMIT bytes of UTF-8 JSON, or CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES;
 * 0 turns the check off): set ReplaceConfig so the adapter offloads the large part to S3.
 */
export class MessageTooLargeError extends Error {
  constructor(size: number, limit: number, variable: string);
  name: 'MessageTooLargeError';
  command: 'createNextEvent';
  /** Bytes of UTF-8 JSON of the next message. */
  size: number;
  /** The limit it exceeds, in bytes. */
  limit: number;
}

export interface MessageAdapterOptions {
  /**
   * Start the adapter with this argv instead of finding it through
   * CUMULUS_MESSAGE_ADAPTER_DIR, USE_CMA_BINARY and PATH; the client appends
   * `stream --structured-errors`. Example: `["python3", "/opt/cumulus-message-adapter"]`.
   */
  command?: string[] | string;
  /** Give up on an unanswered command this long before the deadline (default 500 ms). */
  deadlineMarginMs?: number;
}

/** One warm sidecar and the queue of commands sent to it. */
export class MessageAdapter {
  constructor(options?: MessageAdapterOptions);
  /** Process id of the running sidecar, if one is running. */
  readonly pid: number | undefined;
  /** How many sidecars this adapter has started. */
  readonly spawned: number;
  runCumulusTask<Input = any, Config = any, Output = unknown>(
    TaskFunction: TaskFunction<Input, Config, Output>,
    cumulusMessage: CumulusMessage | CumulusRemoteMessage | CMAMessage,
    context: LambdaContext,
    schemas?: SchemaLocations | string | null
  ): Promise<CumulusMessage | CumulusRemoteMessage>;
  runCumulusTask(
    TaskFunction: Function,
    cumulusMessage: CumulusMessage | CumulusRemoteMessage | CMAMessage,
    context: LambdaContext,
    schemas?: SchemaLocations | string | null
  ): Promise<CumulusMessage | CumulusRemoteMessage>;
  /** Send one protocol command; `body` is the request's JSON text. */
  request(
    command: 'loadAndUpdateRemoteEvent' | 'loadNestedEvent' | 'createNextEvent' | string,
    body: string,
    options?: { deadlineAt?: number; raw?: boolean }
  ): Promise<any>;
  /** Start the sidecar now if none is running. */
  start(): this;
  /** Let the sidecar finish, then exit; a later command starts a new one. */
  close(): Promise<void>;
  /** Stop the sidecar now. */
  kill(): void;
}

/** The adapter shared by `runCumulusTask` in this process. */
export function getAdapter(): MessageAdapter;
/** Give the shared adapter new options; the old sidecar exits once idle. */
export function configure(options?: MessageAdapterOptions): MessageAdapter;
/** Start the shared sidecar now (e.g. at module load), so the first invocation does not wait. */
export function prewarm(): MessageAdapter;
/** Stop the shared sidecar. */
export function close(): Promise<void>;

/** As the published client: `[file, [...args, command], {env}]` for child_process.spawn. */
export function generateCMASpawnArguments(
  command: string
): Promise<[string, string[], { env: Record<string, string | undefined> }]>;

/** Ids of the first `limit` (500) granules of payload.granules, else meta.input_granules. */
export function getMessageGranules(message: object, limit?: number): string[];

export const DEFAULT_DEADLINE_MARGIN_MS: number;
/** Step Functions' limit for a state's output: 262144 bytes of UTF-8 JSON. */
export const STEP_FUNCTIONS_LIMIT: number;

// Compiled (not run) by types.test.js: the declarations accept a typical task handler.
import type { Context } from 'aws-lambda';
import type { CumulusMessage as PublishedMessage, CumulusRemoteMessage, CMAMessage as PublishedCMAMessage } from '@cumulus/types/message';
import {
  runCumulusTask,
  configure,
  close,
  getAdapter,
  prewarm,
  CumulusMessageAdapterExecutionError,
  MessageAdapter,
  NestedEvent,
  CumulusMessage,
} from '../../index';

interface Input { granules: Array<{ granuleId: string }> }
interface Config { provider: { host: string }; bucket: string }

async function moveGranules(event: NestedEvent<Input, Config>): Promise<{ granules: string[] }> {
  return { granules: event.input.granules.map((g) => `${event.config.bucket}/${g.granuleId}`) };
}

function syncTask(event: NestedEvent): number {
  return Object.keys(event.config).length;
}

export async function handler(event: CumulusMessage, context: Context): Promise<unknown> {
  return runCumulusTask(moveGranules, event, context);
}

export async function withSchemas(event: CumulusMessage, context: Context) {
  try {
    const next = await runCumulusTask(syncTask, event, context, { output: 'schemas/output.json' });
    return next.payload;
  } catch (error) {
    if (error instanceof CumulusMessageAdapterExecutionError) {
      const frame = error.adapterError;
      return frame ? `${frame.name}: ${frame.message}` : error.message;
    }
    throw error;
  }
}

prewarm();

export async function explicit(): Promise<void> {
  configure({ command: ['python3', '/opt/cumulus-message-adapter'], deadlineMarginMs: 250 });
  const own = new MessageAdapter({ command: '/opt/cumulus-message-adapter/cma_bin/cma' });
  await own.runCumulusTask(() => null, { cma: { event: {} } }, { functionName: 'local' });
  const pid: number | undefined = getAdapter().pid;
  void pid;
  own.kill();
  await close();
}

export async function misuse(event: CumulusMessage, context: Context) {
  // @ts-expect-error the context is required
  await runCumulusTask(moveGranules, event);
  // @ts-expect-error schemas map input/config/output to files
  await runCumulusTask(moveGranules, event, context, 42);
  // @ts-expect-error the command is an argv array or a path
  configure({ command: 3 });
}

// Drop-in: code typed for the published client compiles unchanged.
interface StrictEvent { input: { granules: string[] }; config: { bucket: string }; cumulus_config: { state_machine: string } }
const strictTask = (event: StrictEvent, context: Context) => event.input.granules.length + context.getRemainingTimeInMillis();
const untypedTask: Function = () => 1;

export async function publishedTypes(event: PublishedMessage | CumulusRemoteMessage | PublishedCMAMessage, context: Context) {
  await runCumulusTask(strictTask, event, context);
  return runCumulusTask(untypedTask, event, context, null);
}

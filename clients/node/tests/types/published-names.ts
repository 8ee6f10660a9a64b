// Compiled (not run) by types.test.js: every type @cumulus/cumulus-message-adapter-js
// exports is exported here too, so Cumulus's TypeScript tasks switch imports unchanged.
import type { Context } from 'aws-lambda';
import type {
  CMAMessage,
  CumulusMessageAdapterError,
  CumulusMessageWithAssignedPayload,
  InvokeCumulusMessageAdapterResult,
  LoadNestedEventInput,
} from '../../index';
import { runCumulusTask } from '../../index';

async function task(event: LoadNestedEventInput): Promise<{ count: number }> {
  const input = event.input as { granules: unknown[] };
  return { count: input.granules.length };
}

export async function handler(event: CMAMessage, context: Context): Promise<string | undefined> {
  const next = (await runCumulusTask(task, event, context)) as CumulusMessageWithAssignedPayload;
  return next.meta.workflow_name + (next.payload?.granules?.[0]?.granuleId ?? '');
}

export function stderrOf(result: InvokeCumulusMessageAdapterResult): string {
  const error: CumulusMessageAdapterError = result.errorObj;
  return result.statusObj.close ? error.stderrBuffer : String(result.cmaProcess.pid);
}

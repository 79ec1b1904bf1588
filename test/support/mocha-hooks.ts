// Loaded through `require` in .mocharc.json; mocha runs the exported global fixtures once per run, after
// every test file, so the control plane that integration tests share lives exactly as long as the run.
import { stopSharedControlPlane } from '../../playground/controlplane.ts';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopSharedControlPlane();
}

// Runs the router container of a router pod for real, the way a node would: its own Node process
// started from the container's command and args, on the pod's IP, as the pod's ServiceAccount (a
// token from the TokenRequest API), so a permission the router's Role lacks fails the test. The work
// is image-runner.ts's; this keeps to containers named `router`, whatever their image.
import { ROUTER_CONTAINER } from '../src/api/router/v1.ts';
import type { ControlPlane } from './controlplane.ts';
import { imageRunner, type EntryProcess, type ImageRunner } from './image-runner.ts';

/** One router process the runner started. */
export type RouterProcess = EntryProcess;

/** The image runner limited to router containers (the same view of what it started). */
export type RouterRunner = ImageRunner;

export function routerRunner(cp: ControlPlane, log: (line: string) => void = () => undefined): RouterRunner {
  const inner = imageRunner(cp, {
    isOurImage: () => true,
    log: (line) => {
      log(`router ${line}`);
    },
  });
  return {
    run: (c, ctx) =>
      c.name === ROUTER_CONTAINER && !ctx.init ? inner.run(c, ctx) : Promise.resolve(undefined),
    running: inner.running,
    lines: inner.lines,
    started: inner.started,
  };
}

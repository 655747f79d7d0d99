// Container test fixtures: a busybox image inside a TestDaemon without any registry.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestDaemon } from './daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from './images.ts';

/** busybox as an image in the daemon: `docker import` of the busybox-static rootfs, CMD sh. */
export async function importBusybox(daemon: TestDaemon, dir: string, tag = 'busybox:latest'): Promise<void> {
  const root = join(dir, 'rootfs');
  makeBusyboxRootfs(root);
  const tar = join(dir, 'busybox.tar');
  writeFileSync(tar, tarDirectory(root));
  const r = await daemon.docker(['import', '--change', 'CMD ["sh"]', tar, tag], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
}
